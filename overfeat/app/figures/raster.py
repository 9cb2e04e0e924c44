"""The Merge page's step picture as a raster image (issue 27, speed).

A merge step changes a few boxes; redrawing it as a Plotly figure made the browser lay out and
draw the whole figure again (the image, a trace per class and confidence band, the pair on top)
on every Next, the largest part of a step's browser time (measured: tests/browser_latency.py).
Drawn here with PIL and shown as an <img>, a step costs the browser one JPEG decode. What the
picture shows is what the Plotly figure (boxes.merge_figure) shows, in the same order and
styles: the image dimmed, the boxes left after the step by class colour, their line width and
opacity by confidence (boxes.CONF_BANDS), then on top the merged box (dashed black), a white
halo, b1 (solid orange) and b2 (dotted blue) with their names at their centres; a title line
above and a legend below. Hover is lost: the page lists the pair's numbers beside it.

merge_picture returns the image and `drawn`, the list of what was drawn in drawing order (each
item's name, style and box in image pixels), so that tests read the picture as they read a
figure's traces without decoding pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ...merge import MergeStep
from .base import DEFAULT_MAX_BOXES, class_color

# The pair's styles (as boxes.PAIR_STYLES: colour-blind safe), widths in picture px at the
# picture's own size (it is shown 1:1 on a 1400 px wide screen).
PAIR = {"b1": ("#D55E00", 3, "solid"), "b2": ("#0072B2", 3, "dot"),
        "merged": ("#111111", 3, "dash")}
HALO = ("#ffffff", 7)
# (lower bound of the confidence, line width px, opacity), as boxes.CONF_BANDS.
BANDS = ((10.0, 3.5, 1.0), (1.0, 2.0, 0.8), (0.0, 1.0, 0.45))
PAD = 0.06  # margin around the image, a fraction of its size (regressed boxes reach outside)
DIM = 0.55  # the image's opacity over white, so that hundreds of thin boxes stay visible
DASH, DOT = (9, 6), (2, 4)  # on / off lengths in px of a dashed and a dotted outline
QUALITY = 85  # JPEG quality of the picture sent to the browser


@dataclass
class Drawn:
    """One thing drawn: its name (as the figure's trace names), colour, line width, dash
    ("solid", "dash", "dot"), opacity and boxes in image pixels ([K, 4])."""

    name: str
    color: str
    width: float
    dash: str
    opacity: float
    boxes: np.ndarray


@dataclass
class Picture:
    image: Image.Image  # RGB
    drawn: list[Drawn] = field(default_factory=list)
    scale: float = 1.0  # picture px per image px
    origin: tuple[int, int] = (0, 0)  # the picture px of image pixel (0, 0)
    title: str = ""
    legend: list[tuple[str, str]] = field(default_factory=list)  # (colour, text)
    labels: list[tuple[str, tuple]] = field(default_factory=list)  # (text, x0 y0 x1 y1 on the canvas)

    font_size: int = 16

    def jpeg(self, quality: int = QUALITY) -> bytes:
        buf = io.BytesIO()
        self.image.save(buf, format="JPEG", quality=quality)
        return buf.getvalue()

    def items(self) -> list[dict]:
        """What was drawn, in drawing order, as Plotly-like trace dicts (name, x and y: each
        box's closed outline path in image pixels, None between boxes; line: colour, width,
        dash; opacity): what tests read, as they read a figure's traces."""
        out = []
        for d in self.drawn:
            xs, ys = [], []
            for x1, y1, x2, y2 in np.asarray(d.boxes, dtype=np.float64).reshape(-1, 4).tolist():
                xs += [x1, x2, x2, x1, x1, None]
                ys += [y1, y1, y2, y2, y1, None]
            out.append({"name": d.name, "x": xs, "y": ys, "opacity": d.opacity,
                        "line": {"color": d.color, "width": d.width, "dash": d.dash}})
        return out


@lru_cache(maxsize=8)
def text_font(size: int) -> ImageFont.ImageFont:
    """Pillow's own font at `size` px (no font file to ship): the pictures' text (here and
    figures.grids)."""
    return ImageFont.load_default(size=size)


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def canvas(image: Image.Image, height: int, pad: float = PAD, dim: float = DIM
           ) -> tuple[Image.Image, float, tuple[int, int]]:
    """The image at opacity `dim` over white inside a margin of `pad` (a fraction of its size),
    `height` px tall (margins included): (picture, scale in picture px per image px, picture px
    of image pixel (0, 0)). The page caches it per image: it is the same for every step."""
    w, h = image.size
    scale = height / (h * (1 + 2 * pad))
    width = max(1, round(w * (1 + 2 * pad) * scale))
    ox, oy = round(pad * w * scale), round(pad * h * scale)
    inner = image.convert("RGB").resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                        Image.Resampling.BILINEAR)
    white = Image.new("RGB", inner.size, (255, 255, 255))
    out = Image.new("RGB", (width, height), (255, 255, 255))
    out.paste(inner if dim >= 1 else Image.blend(white, inner, dim), (ox, oy))
    return out, scale, (ox, oy)


def segments(x0: float, y0: float, x1: float, y1: float, dash: str) -> list[tuple]:
    """The pieces of the line (x0, y0) -> (x1, y1) that a dashed or dotted outline draws (on /
    off lengths DASH or DOT, starting with a piece); a solid line is one piece."""
    if dash == "solid":
        return [(x0, y0, x1, y1)]
    on, off = DASH if dash == "dash" else DOT
    length = float(np.hypot(x1 - x0, y1 - y0))
    if length == 0:
        return [(x0, y0, x1, y1)]
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    out, t = [], 0.0
    while t < length:
        e = min(t + on, length)
        out.append((x0 + ux * t, y0 + uy * t, x0 + ux * e, y0 + uy * e))
        t = e + off
    return out


def outline(draw: ImageDraw.ImageDraw, box, color, width: float, dash: str = "solid") -> None:
    """One box's outline (picture px), the line centred on the box's edges."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w = max(1, round(width))
    if dash == "solid":
        h = w / 2
        draw.rectangle([x0 - h + 0.5, y0 - h + 0.5, x1 + h - 0.5, y1 + h - 0.5], outline=color,
                       width=w)
        return
    for a, b, c, d in ((x0, y0, x1, y0), (x1, y0, x1, y1), (x1, y1, x0, y1), (x0, y1, x0, y0)):
        for p in segments(a, b, c, d, dash):
            draw.line(p, fill=color, width=w)


def _layer(base: Image.Image, items: list[tuple[np.ndarray, str]], width: float,
           opacity: float) -> Image.Image:
    """base with the outlines of items ((boxes in picture px, colour), drawn in order) over it
    at `opacity`: one layer, so outlines that cross do not add up (as one Plotly trace's
    opacity)."""
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    for boxes, color in items:
        for b in boxes:
            outline(d, b, color, width)
    if opacity < 1:
        layer.putalpha(layer.getchannel("A").point(lambda v: round(v * opacity)))
    out = base.convert("RGBA")
    out.alpha_composite(layer)
    return out.convert("RGB")


def merge_picture(base: tuple[Image.Image, float, tuple[int, int]], ms: MergeStep, class_names,
                  title: str, max_boxes: int | None = DEFAULT_MAX_BOXES,
                  font_size: int = 16) -> Picture:
    """One step of the greedy merge drawn on `base` (canvas(): the dimmed image, its scale and
    origin), with a title line above and a legend below. Under: the boxes left after the step,
    the most confident max_boxes of them, per class and confidence band (BANDS: width and
    opacity). On top, in this order: the merged box (dashed black), a white halo under both
    members, b1 (solid orange) and b2 (dotted blue), and each member's name at its centre."""
    im, scale, (ox, oy) = base
    font = text_font(font_size)
    line = round(font_size * 1.6)

    def px(b) -> np.ndarray:
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        return b * scale + np.array([ox, oy, ox, oy])

    pic = Picture(image=im, scale=scale, origin=(ox, oy), title=title, font_size=font_size)
    st = ms.alive
    order = torch.argsort(st.confs, descending=True, stable=True)
    if max_boxes is not None and len(order) > max_boxes:
        order = order[:max_boxes]
    labels, confs = st.labels[order], st.confs[order]
    boxes = st.boxes[order].double().numpy()
    classes = sorted(set(labels.tolist()))
    counts = {c: int((st.labels == c).sum()) for c in classes}
    left = {c: f"{class_names[c]}: {counts[c]} box{'' if counts[c] == 1 else 'es'} left"
            for c in classes}
    out = im
    # Band by band, the faintest first (under), every class's boxes of the band in one layer.
    bounds = [lo for lo, _, _ in BANDS]
    for k in range(len(BANDS) - 1, -1, -1):
        lo, width, opacity = BANDS[k]
        upper = float("inf") if k == 0 else bounds[k - 1]
        items = []
        for c in classes:
            sel = ((labels == c) & (confs >= lo) & (confs < upper)).numpy()
            if sel.any():
                items.append((px(boxes[sel]), class_color(c)))
                pic.drawn.append(Drawn(left[c], class_color(c), width, "solid", opacity,
                                       boxes[sel]))
        if items:
            out = _layer(out, items, width, opacity)
    pic.legend = [(class_color(c), left[c]) for c in classes]
    out = out.copy() if out is im else out
    d = ImageDraw.Draw(out)
    if ms.pair is not None:
        i, j = ms.pair
        color, width, dash = PAIR["merged"]
        outline(d, px(ms.merged)[0], color, width, dash)
        pic.drawn.append(Drawn("merged box (dashed)", color, width, dash, 1.0,
                               ms.merged.double().numpy().reshape(1, 4)))
        pair = np.stack([ms.b1.double().numpy(), ms.b2.double().numpy()])
        for b in px(pair):
            outline(d, b, HALO[0], HALO[1])
        pic.drawn.append(Drawn("halo", HALO[0], HALO[1], "solid", 1.0, pair))
        for k, (name, box) in enumerate((("b1", ms.b1), ("b2", ms.b2))):
            color, width, dash = PAIR[name]
            outline(d, px(box)[0], color, width, dash)
            pic.drawn.append(Drawn(f"{name} = box #{(i, j)[k]} (pair being merged)", color,
                                   width, dash, 1.0, box.double().numpy().reshape(1, 4)))
        for k, (name, b) in enumerate(zip(("b1", "b2"), px(pair))):
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            color = PAIR[name][0]
            r = 5
            if name == "b1":  # an x; b2: a +
                d.line((cx - r, cy - r, cx + r, cy + r), fill=color, width=3)
                d.line((cx - r, cy + r, cx + r, cy - r), fill=color, width=3)
                anchor, at = "rb", (cx - r, cy - r)
            else:
                d.line((cx - r, cy, cx + r, cy), fill=color, width=3)
                d.line((cx, cy - r, cx, cy + r), fill=color, width=3)
                anchor, at = "lt", (cx + r, cy + r)
            d.text(at, name, fill=color, font=font, anchor=anchor, stroke_width=3,
                   stroke_fill="white")
        pic.drawn.append(Drawn("centres of the pair", PAIR["b1"][0], 3, "solid", 1.0, pair))
        pic.legend += [(PAIR["merged"][0], "merged box (dashed)"),
                       (PAIR["b1"][0], f"b1 = box #{i} (solid)"),
                       (PAIR["b2"][0], f"b2 = box #{j} (dotted)")]
    pic.image = _framed(out, title, pic.legend, font, line)
    return pic


def _legend_rows(legend: list[tuple[str, str]], font, width: int, line: int,
                 lead: str = "thicker = more confident:") -> list[list]:
    """The legend's entries flowed into rows of the picture's width: [(x, colour, text)]."""
    rows, row, x = [], [], 8
    for color, text in ([("", lead)] if lead else []) + legend:
        w = (0 if not color else 26) + round(font.getlength(text)) + 18
        if row and x + w > width:
            rows.append(row)
            row, x = [], 8
        row.append((x, color, text))
        x += w
    return rows + [row] if row else rows


def _framed(im: Image.Image, title: str, legend: list, font, line: int,
            lead: str = "thicker = more confident:") -> Image.Image:
    """The picture with its title line above and its legend (swatch, text) below."""
    rows = _legend_rows(legend, font, im.width, line, lead)
    top = line if title else 0
    out = Image.new("RGB", (im.width, top + im.height + line * len(rows) + 4), "white")
    out.paste(im, (0, top))
    d = ImageDraw.Draw(out)
    if title:
        d.text((8, line // 2), title, fill="#222222", font=font, anchor="lm")
    for r, row in enumerate(rows):
        y = top + im.height + line * r + line // 2
        for x, color, text in row:
            if color:
                d.line((x, y, x + 20, y), fill=color, width=3)
                x += 26
            d.text((x, y), text, fill="#222222", font=font, anchor="lm")
    return out


# --- the final boxes ---------------------------------------------------------------------------
TRUTH = ("#ffffff", 2, "dot")  # the scene's true objects, as boxes.final_boxes_figure


def final_boxes_picture(base: tuple[Image.Image, float, tuple[int, int]], result, class_names,
                        n: int = 5, truth: list[dict] | None = None, title: str = "",
                        font_size: int = 16) -> Picture:
    """The n most confident merged boxes of a MergeResult on `base` (canvas(..., pad=0.03,
    dim=1): the image as it is), each labelled with its rank, class and confidence (the most
    confident 4 px wide, the others 2), over the truth (dotted white); a title above and a
    legend below. As boxes.final_boxes_figure, drawn as an image (issue 27, speed)."""
    im, scale, (ox, oy) = base
    font = text_font(font_size)
    out = im.copy()
    d = ImageDraw.Draw(out)
    pic = Picture(image=im, scale=scale, origin=(ox, oy), title=title, font_size=font_size)

    def px(b) -> np.ndarray:
        return np.asarray(b, dtype=np.float64).reshape(4) * scale + np.array([ox, oy, ox, oy])

    for t in truth or []:
        box = np.asarray(t["box"], dtype=np.float64)
        outline(d, px(box), TRUTH[0], TRUTH[1], TRUTH[2])
        pic.drawn.append(Drawn(f"truth: {t['name']}", TRUTH[0], TRUTH[1], TRUTH[2], 1.0,
                               box.reshape(1, 4)))
        pic.legend.append(("#9e9e9e", f"truth: {t['name']} (dotted white)"))
    f = result.final
    labels = []
    for i in range(min(n, len(f))):
        c = int(f.labels[i])
        name = f"{i + 1}. {class_names[c]} {float(f.confs[i]):.2f}"
        box = f.boxes[i].double().numpy()
        width = 4 if i == 0 else 2
        outline(d, px(box), class_color(c), width)
        pic.drawn.append(Drawn(name, class_color(c), width, "solid", 1.0, box.reshape(1, 4)))
        pic.legend.append((class_color(c), name))
        labels.append((px(box), f"{i + 1}. {class_names[c]}", class_color(c)))
    sizes = []
    for _, text, _ in labels:
        x0, y0, x1, y1 = d.textbbox((0, 0), text, font=font, anchor="lt", stroke_width=3)
        sizes.append((x1 - x0, y1 - y0))
    spots = label_spots([box for box, _, _ in labels], sizes, out.size)
    for (_, text, color), spot, (w, h) in zip(labels, spots, sizes):  # on top of every outline
        d.text(spot, text, fill=color, font=font, anchor="lt", stroke_width=3,
               stroke_fill="white")
        pic.labels.append((text, (spot[0], spot[1], spot[0] + w, spot[1] + h)))
    pic.image = _framed(out, title, pic.legend, font, round(font_size * 1.6), lead="")
    return pic


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def label_candidates(box, size: tuple[int, int]) -> list[tuple[float, float]]:
    """Where a box's label may go (its top-left corner), in order of preference: inside the
    top-left corner, just above the box, inside the bottom-left corner, just below the box,
    inside the top-right corner."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = size
    return [(x0 + 4, y0 + 3), (x0, y0 - h - 3), (x0 + 4, y1 - h - 3), (x0, y1 + 3),
            (x1 - w - 4, y0 + 3)]


def label_spots(boxes, sizes: list[tuple[int, int]], bounds: tuple[int, int]
                ) -> list[tuple[float, float]]:
    """Each label's top-left corner, most confident box first: the first of its candidates
    (label_candidates) that stays on the picture and overlaps no label placed before it; the
    first candidate when none is free. On a busy picture ("1. bicycle" was written over
    "5. bench" on dog.jpg) a label moves above, below or to the other corner of its box."""
    placed: list[tuple[float, float, float, float]] = []
    spots = []
    for box, (w, h) in zip(boxes, sizes):
        cands = label_candidates(box, (w, h))

        def free(p) -> bool:
            r = (p[0], p[1], p[0] + w, p[1] + h)
            return (r[0] >= 0 and r[1] >= 0 and r[2] <= bounds[0] and r[3] <= bounds[1]
                    and not any(_overlap(r, q) for q in placed))

        spot = next((p for p in cands if free(p)), cands[0])
        placed.append((spot[0], spot[1], spot[0] + w, spot[1] + h))
        spots.append(spot)
    return spots
