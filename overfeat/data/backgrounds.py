"""The backgrounds of the synthetic scenes (overfeat.data.scenes): a linear or radial gradient,
smooth colour noise, or a stripe/checker/dot texture, often with clutter (random ellipses,
rectangles, polygons, lines) on top. Every draw comes from the scene's numpy Generator.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    colour = rng.uniform(0, 255, 3)
    if rng.random() < 0.5:  # muted colours too, not only saturated ones
        colour = 0.5 * colour + 0.5 * colour.mean()
    return colour.astype(np.float32)


def _gradient(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    ys = np.arange(h, dtype=np.float32)[:, None] / h  # [H, 1]
    xs = np.arange(w, dtype=np.float32)[None, :] / w  # [1, W]
    if rng.random() < 0.7:  # linear, any direction
        theta = rng.uniform(0, 2 * math.pi)
        t = xs * math.cos(theta) + ys * math.sin(theta)  # [H, W]
    else:  # radial around a random centre
        cx, cy = rng.uniform(0, 1, 2)
        t = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    c0, c1 = _random_colour(rng), _random_colour(rng)
    return c0 + t[..., None] * (c1 - c0)  # [H, W, 3]


def _smooth_noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.float32)
    for _ in range(int(rng.integers(1, 3))):  # one or two octaves of colour blobs
        g = int(rng.integers(2, 12))
        grid = rng.uniform(0, 255, (g, g, 3)).astype(np.uint8)
        img += np.asarray(Image.fromarray(grid).resize((w, h), Image.BICUBIC), np.float32)
    return img / img.max() * 255 if img.max() > 0 else img


def _texture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    theta = rng.uniform(0, math.pi)
    period = rng.uniform(6, 60)
    u = (xs * math.cos(theta) + ys * math.sin(theta)) * (2 * math.pi / period)
    v = (-xs * math.sin(theta) + ys * math.cos(theta)) * (2 * math.pi / period)
    pattern = rng.integers(3)
    if pattern == 0:  # stripes
        t = 0.5 + 0.5 * np.sin(u + rng.uniform(0, 2 * math.pi))
    elif pattern == 1:  # checkerboard
        t = (np.sin(u) * np.sin(v) > 0).astype(np.float32)
    else:  # dots
        t = ((np.sin(u) * np.sin(v)) > 0.5).astype(np.float32)
    c0, c1 = _random_colour(rng), _random_colour(rng)
    return c0 + t[..., None] * (c1 - c0)


def _clutter(rng: np.random.Generator, canvas: Image.Image) -> None:
    """Random shapes and lines: edges and blobs that are not objects."""
    draw = ImageDraw.Draw(canvas)
    w, h = canvas.size
    side = min(w, h)
    for _ in range(int(rng.integers(3, 25))):
        colour = tuple(int(c) for c in _random_colour(rng))
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.02, 0.2, 2) * side
        shape = rng.integers(4)
        if shape == 0:
            draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
        elif shape == 1:
            draw.rectangle((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
        elif shape == 2:
            k = int(rng.integers(3, 7))
            angles = np.sort(rng.uniform(0, 2 * math.pi, k))
            points = [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]
            draw.polygon(points, fill=colour)
        else:
            x2, y2 = rng.uniform(0, w), rng.uniform(0, h)
            draw.line((cx, cy, x2, y2), fill=colour, width=int(rng.integers(1, 7)))


def background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A w x h background: a gradient, smooth colour noise or a texture, often with clutter."""
    maker = (_gradient, _smooth_noise, _texture)[int(rng.integers(3))]
    canvas = Image.fromarray(np.clip(maker(rng, w, h), 0, 255).astype(np.uint8))
    if rng.random() < 0.7:
        _clutter(rng, canvas)
    return canvas
