"""Seeded synthetic scenes of pictograms, written as a Pascal VOC folder.

What a sample is
----------------
An RGB image, each side 256..480 px with aspect ratio (width / height) in [3/4, 4/3], showing
pictograms of the 20 VOC classes (assets/sprites) pasted onto a random background: a linear or
radial gradient, smooth colour noise, or a stripe/checker texture, often with clutter (random
ellipses, rectangles, polygons, lines) and pixel noise on top. Every pasted pictogram is
flipped with probability 1/2, colour-jittered (brightness, contrast, saturation, tint),
stretched in aspect by up to +-20%, rotated by up to +-15 degrees and resized so that its
longer side (before rotation) is a given fraction of the image's shorter side; sizes are
log-uniform, so objects span all six OverFeat scales (245..461 px). Unlabelled hard-negative
pictograms (tree, house, ball, ... from assets/sprites/distractors) are pasted too, either
under everything or on top.

Two kinds (SCENE_PRESETS):
- "loc" (like ILSVRC localization): exactly one labelled object, 20%..90% of the shorter side,
  plus 0..2 small distractors (10%..25%).
- "det" (like VOC detection): 0..5 labelled objects (about 8% of scenes are empty), 15%..70%
  of the shorter side, plus 0..3 distractors. Two objects of the same class overlap with box
  IoU <= 0.5.

Its labels
----------
One entry per labelled object: class name, box, truncated, occluded.
- Box: the tight box of the object's visible pixels, "visible" meaning alpha >= 128 (at least
  half opaque) after flip/resize/rotation, clipped to the image. It is the object's own extent
  and does not shrink where a later object covers it (see occlusion).
  make_scene gives it as 0-based floats (x1, y1, x2, y2) with x2, y2 exclusive: the box covers
  pixel columns x1 .. x2-1. The VOC XML holds the same box 1-based and inclusive:
  xmin = x1 + 1, ymin = y1 + 1, xmax = x2, ymax = y2 (voc.py converts back exactly).
- truncated: some of the object's visible pixels fall outside the image (cut by the border).
  At most about a quarter of the object's width or height is cut on each side.
- occluded: a later pictogram covers more than 5% of its pixels. Placement guarantees every
  labelled object keeps at least half of its in-image pixels visible.
- difficult is always 0 (VOC's flag for objects to ignore in evaluation).

Determinism: image `index` of `seed` draws all its randomness from one
numpy.random.Generator seeded by (seed, index, kind), so a scene does not depend on n, on the
other images or on the number of worker processes: same arguments, byte-identical files.
"""

from __future__ import annotations

import contextlib
import io
import math
import multiprocessing
import os
import sys
import types
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from overfeat.data.backgrounds import background
from overfeat.data.sprites import load_class_sprites, load_distractor_sprites
from overfeat.data.voc import VOC_CLASSES

KINDS = ("loc", "det")
SPLITS = ("train", "val", "test")
MIN_SIDE, MAX_SIDE = 256, 480  # image sides; the smallest OverFeat scale is 245
ALPHA_VISIBLE = 128  # a pixel belongs to an object's box when its alpha is at least half
MIN_VISIBLE = 0.5  # a labelled object keeps >= this fraction of its in-image pixels uncovered
MAX_CUT = 0.25  # a truncated object loses at most this fraction of its width/height per side
JPEG_QUALITY = 92


@dataclass(frozen=True)
class SceneConfig:
    """How many objects a scene holds and how large they are."""

    object_size: tuple[float, float]  # labelled objects' longer side / image's shorter side
    object_counts: tuple[float, ...]  # P(k labelled objects) for k = 0, 1, 2, ...
    distractor_size: tuple[float, float]  # the same for unlabelled hard negatives
    distractor_counts: tuple[float, ...]  # P(k distractors) for k = 0, 1, 2, ...
    same_class_max_iou: float  # two objects of one class must stay separable by box IoU
    p_inside: float  # chance that an object is placed wholly inside the image (if it fits)
    tries: int  # placements tried before an object is dropped


SCENE_PRESETS: dict[str, SceneConfig] = {
    # ILSVRC-like: one large-ish object; distractors small so the main object is unambiguous.
    "loc": SceneConfig(object_size=(0.20, 0.90), object_counts=(0.0, 1.0),
                       distractor_size=(0.10, 0.25), distractor_counts=(0.4, 0.35, 0.25),
                       same_class_max_iou=0.5, p_inside=0.7, tries=30),
    # VOC-like: several objects, some scenes empty so the background class gets whole images.
    "det": SceneConfig(object_size=(0.15, 0.70),
                       object_counts=(0.08, 0.30, 0.25, 0.17, 0.12, 0.08),
                       distractor_size=(0.10, 0.45), distractor_counts=(0.35, 0.35, 0.2, 0.1),
                       same_class_max_iou=0.5, p_inside=0.75, tries=30),
}
_KIND_CODE = {"loc": 1, "det": 2}  # mixed into the seed so loc and det scenes differ


# ---------------------------------------------------------------- pictograms

def _jitter_colour(rng: np.random.Generator, sprite: Image.Image) -> Image.Image:
    """Brightness, contrast (about the opaque pixels' mean), saturation and a channel tint."""
    arr = np.asarray(sprite, np.float32)  # [h, w, 4]
    rgb, alpha = arr[..., :3], arr[..., 3:] / 255.0
    mean = (rgb * alpha).sum((0, 1)) / max(float(alpha.sum()), 1.0)  # [3]
    rgb = (rgb - mean) * rng.uniform(0.75, 1.25) + mean  # contrast
    grey = rgb.mean(-1, keepdims=True)
    rgb = grey + (rgb - grey) * rng.uniform(0.6, 1.4)  # saturation
    rgb = rgb * rng.uniform(0.75, 1.25) * rng.uniform(0.9, 1.1, 3)  # brightness, tint
    arr = np.concatenate([np.clip(rgb, 0, 255), arr[..., 3:]], -1)
    return Image.fromarray(arr.astype(np.uint8), "RGBA")


def _transform(rng: np.random.Generator, sprite: Image.Image, size_px: float) -> Image.Image:
    """Flip, colour jitter, aspect jitter, resize (longer side = size_px), rotate.

    Returns an RGBA image cropped to its non-zero alpha.
    """
    if rng.random() < 0.5:
        sprite = sprite.transpose(Image.FLIP_LEFT_RIGHT)
    sprite = _jitter_colour(rng, sprite)  # on the small sprite: cheaper than after resizing
    stretch = math.exp(rng.uniform(math.log(0.8), math.log(1.2)))  # width / height factor
    w, h = sprite.width * stretch, sprite.height / stretch
    scale = size_px / max(w, h)
    sprite = sprite.resize((max(4, round(w * scale)), max(4, round(h * scale))), Image.BICUBIC)
    sprite = sprite.rotate(rng.uniform(-15, 15), resample=Image.BICUBIC, expand=True)
    bbox = sprite.getchannel("A").getbbox()
    return sprite.crop(bbox) if bbox else sprite


@dataclass
class _Placed:
    """A pictogram with its place in the image; box only for labelled objects."""

    sprite: Image.Image
    x: int  # top-left corner of the sprite in the image (may be negative)
    y: int
    name: str | None  # class name, or None for a distractor
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    truncated: bool = False
    area: int = 0  # in-image visible pixels of the object itself
    visible: int = 0  # of those, how many no later pictogram covers


def _box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    # Imported here: the generator's worker processes need torch only when two objects of one
    # class meet (overfeat.metrics.iou is overfeat.boxes.box_iou of the pair).
    from overfeat.metrics import iou

    return iou(a, b)


def _sample_position(rng: np.random.Generator, mask: np.ndarray, w: int, h: int,
                     p_inside: float) -> tuple[int, int]:
    """Top-left corner for a sprite whose visible mask is `mask` [sh, sw]."""
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    mx0, mx1, my0, my1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
    mw, mh = mx1 - mx0, my1 - my0
    if rng.random() < p_inside and mw <= w and mh <= h:
        lo_x, hi_x, lo_y, hi_y = 0, w - mw, 0, h - mh
    else:  # may be cut by the border, by at most MAX_CUT of its extent on each side
        lo_x, hi_x = -int(MAX_CUT * mw), w - mw + int(MAX_CUT * mw)
        lo_y, hi_y = -int(MAX_CUT * mh), h - mh + int(MAX_CUT * mh)
    x = int(rng.integers(lo_x, max(lo_x, hi_x) + 1))
    y = int(rng.integers(lo_y, max(lo_y, hi_y) + 1))
    return x - int(mx0), y - int(my0)


def _place(rng: np.random.Generator, sprite: Image.Image, name: str | None, owner: np.ndarray,
           placed: list[_Placed], config: SceneConfig) -> _Placed | None:
    """Find a position that keeps the labels valid, and claim its pixels in `owner`.

    owner [H, W] holds, per pixel, the index in `placed` of the labelled object seen there,
    or -1. A new pictogram goes on top of everything placed so far.
    """
    h, w = owner.shape
    mask = np.asarray(sprite.getchannel("A")) >= ALPHA_VISIBLE  # [sh, sw]
    if not mask.any():
        return None
    for _ in range(config.tries):
        x, y = _sample_position(rng, mask, w, h, config.p_inside)
        ix0, iy0 = max(x, 0), max(y, 0)
        ix1, iy1 = min(x + sprite.width, w), min(y + sprite.height, h)
        if ix1 <= ix0 or iy1 <= iy0:
            continue
        sub = mask[iy0 - y:iy1 - y, ix0 - x:ix1 - x]  # the part of the mask inside the image
        area = int(sub.sum())
        if area < 16:
            continue
        region = owner[iy0:iy1, ix0:ix1]
        # Pixels of each earlier labelled object that the new pictogram would cover.
        covered = np.bincount(region[sub] + 1, minlength=len(placed) + 1)[1:]
        if any(p.name is not None and p.visible - covered[i] < MIN_VISIBLE * p.area
               for i, p in enumerate(placed)):
            continue
        item = _Placed(sprite, x, y, name)
        if name is not None:
            rows, cols = np.nonzero(sub.any(1))[0], np.nonzero(sub.any(0))[0]
            item.box = (float(ix0 + cols[0]), float(iy0 + rows[0]),
                        float(ix0 + cols[-1] + 1), float(iy0 + rows[-1] + 1))
            if any(p.name == name and _box_iou(p.box, item.box) > config.same_class_max_iou
                   for p in placed):
                continue
            item.truncated = area < int(mask.sum())  # some visible pixels left the image
            item.area = item.visible = area
        for i, count in enumerate(covered):
            placed[i].visible -= int(count)
        region[sub] = len(placed) if name is not None else -1
        placed.append(item)
        return item
    return None


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _photometric(rng: np.random.Generator, canvas: Image.Image) -> Image.Image:
    """Whole-image photometric jitter and sensor-like noise, over objects and background alike."""
    arr = np.asarray(canvas, np.float32)
    mean = float(arr.mean())
    arr = (arr - mean) * rng.uniform(0.85, 1.15) + mean * rng.uniform(0.85, 1.15)
    if rng.random() < 0.5:
        arr += rng.standard_normal(arr.shape, dtype=np.float32) * rng.uniform(1, 8)
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")


def make_scene(kind: str, seed: int, index: int) -> tuple[Image.Image, list[dict]]:
    """Scene `index` of the series `seed` (see the module docstring for what it holds).

    Returns:
        image: PIL RGB image, sides 256..480 px.
        objects: one dict per labelled object, bottom to top:
            {"name": str (a VOC class), "box": (x1, y1, x2, y2) floats, 0-based, x2/y2
             exclusive (VOC xmax = x2), "truncated": bool, "occluded": bool}.
    """
    if kind not in SCENE_PRESETS:
        raise ValueError(f"expected kind in {list(SCENE_PRESETS)}, got {kind!r}")
    if int(seed) < 0 or int(index) < 0:
        raise ValueError(f"expected seed >= 0 and index >= 0, got seed={seed} index={index}")
    config = SCENE_PRESETS[kind]
    rng = np.random.default_rng([int(seed), int(index), _KIND_CODE[kind]])
    classes, distractors = load_class_sprites(), load_distractor_sprites()
    distractor_names = list(distractors)

    while True:  # sides 256..480 with aspect 3:4 .. 4:3 (a few redraws at most)
        w, h = (int(v) for v in rng.integers(MIN_SIDE, MAX_SIDE + 1, 2))
        if 3 / 4 <= w / h <= 4 / 3:
            break
    short = min(w, h)
    canvas = background(rng, w, h)
    owner = np.full((h, w), -1, np.int32)
    placed: list[_Placed] = []

    # Labelled objects first, each on top of the previous ones, so the first one (the loc
    # scene's main object) always finds a place; distractors then go under or over them.
    n_objects = int(rng.choice(len(config.object_counts), p=config.object_counts))
    for _ in range(n_objects):
        name = VOC_CLASSES[int(rng.integers(len(VOC_CLASSES)))]
        size = _log_uniform(rng, *config.object_size) * short
        _place(rng, _transform(rng, classes[name], size), name, owner, placed, config)
    assert kind != "loc" or len(placed) == 1, "a loc scene's first object always fits"
    under: list[_Placed] = []
    n_distractors = int(rng.choice(len(config.distractor_counts), p=config.distractor_counts))
    for _ in range(n_distractors):
        sprite = distractors[distractor_names[int(rng.integers(len(distractor_names)))]]
        sprite = _transform(rng, sprite, _log_uniform(rng, *config.distractor_size) * short)
        if rng.random() < 0.5:  # under everything: occludes nothing, so no check needed
            mask = np.asarray(sprite.getchannel("A")) >= ALPHA_VISIBLE
            x, y = _sample_position(rng, mask, w, h, config.p_inside)
            under.append(_Placed(sprite, x, y, None))
        else:
            _place(rng, sprite, None, owner, placed, config)

    for item in under + placed:  # paint bottom to top; paste clips at the border
        canvas.paste(item.sprite, (item.x, item.y), item.sprite)

    image = _photometric(rng, canvas)

    objects = [{"name": p.name, "box": p.box, "truncated": p.truncated,
                "occluded": p.visible < 0.95 * p.area}
               for p in placed if p.name is not None]
    return image, objects


# ---------------------------------------------------------------- VOC folder

def annotation_xml(kind: str, filename: str, width: int, height: int,
                   objects: list[dict]) -> str:
    """VOC XML for one image; boxes (x1, y1, x2, y2) 0-based -> xmin = x1 + 1, xmax = x2."""
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = f"OverFeat-synthetic-{kind}"  # not the path: the
    ET.SubElement(ann, "filename").text = filename                    # bytes must not
    source = ET.SubElement(ann, "source")                             # depend on out_dir
    ET.SubElement(source, "database").text = "OverFeat synthetic pictograms (Noto Color Emoji)"
    size = ET.SubElement(ann, "size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(ann, "segmented").text = "0"
    for obj in objects:
        x1, y1, x2, y2 = obj["box"]
        node = ET.SubElement(ann, "object")
        ET.SubElement(node, "name").text = obj["name"]
        ET.SubElement(node, "pose").text = "Unspecified"
        ET.SubElement(node, "truncated").text = str(int(obj["truncated"]))
        ET.SubElement(node, "occluded").text = str(int(obj.get("occluded", False)))
        ET.SubElement(node, "difficult").text = "0"
        bndbox = ET.SubElement(node, "bndbox")
        for tag, value in (("xmin", round(x1) + 1), ("ymin", round(y1) + 1),
                           ("xmax", round(x2)), ("ymax", round(y2))):
            ET.SubElement(bndbox, tag).text = str(value)
    ET.indent(ann)
    return ET.tostring(ann, encoding="unicode") + "\n"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name, then rename: a crash never leaves a half file at `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_one(task: tuple[str, str, int, int]) -> list[tuple[str, bool]]:
    """Worker: generate scene `index`, write its JPEG and XML; returns [(name, truncated)]."""
    out_dir, kind, seed, index = task
    image, objects = make_scene(kind, seed, index)
    image_id = f"{index:06d}"
    root = Path(out_dir)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    _write_atomic(root / "JPEGImages" / f"{image_id}.jpg", buffer.getvalue())
    xml = annotation_xml(kind, f"{image_id}.jpg", image.width, image.height, objects)
    _write_atomic(root / "Annotations" / f"{image_id}.xml", xml.encode("utf-8"))
    return [(o["name"], o["truncated"]) for o in objects]


@contextlib.contextmanager
def _bare_main():
    """Show spawned workers a bare __main__ while they start.

    A spawned process re-imports its parent's __main__ module. Inside Streamlit (the app, or
    AppTest in a test process) __main__ is the app script, so every worker would run the app,
    die, and be replaced by the pool for ever: the pool hangs. Workers need nothing from
    __main__ (_write_one lives in this module), so they are started while __main__ is empty.
    """
    saved = sys.modules.get("__main__")
    bare = types.ModuleType("__main__")
    sys.modules["__main__"] = bare
    try:
        yield
    finally:
        if sys.modules.get("__main__") is bare and saved is not None:
            sys.modules["__main__"] = saved


def split_sizes(n: int, split_fractions: tuple[float, float, float]) -> dict[str, int]:
    """Images per split: train and val rounded from the fractions, test takes the rest."""
    if len(split_fractions) != 3 or min(split_fractions) < 0 \
            or abs(sum(split_fractions) - 1.0) > 1e-6:
        raise ValueError("expected three non-negative split fractions (train, val, test) "
                         f"summing to 1, got {split_fractions}")
    n_train = min(n, round(n * split_fractions[0]))
    n_val = min(n - n_train, round(n * split_fractions[1]))
    return {"train": n_train, "val": n_val, "test": n - n_train - n_val}


def write_voc_dataset(out_dir: str | Path, kind: str, n: int, seed: int,
                      split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                      workers: int | None = None) -> dict:
    """Generate scenes 0..n-1 of `seed` and write them as a VOC folder.

    Writes out_dir/JPEGImages/<id>.jpg (JPEG quality 92), out_dir/Annotations/<id>.xml and
    out_dir/ImageSets/Main/{train,val,test}.txt, ids "000000", "000001", ... Splits are
    contiguous runs of ids (train first, then val, then test), so they are fixed by n and the
    fractions. Each file is written under a temporary name and renamed, and the split files
    come last: after a crash no split file names a missing or half-written image. A split may
    be empty if n is tiny (voc.read_split refuses to read an empty split).

    workers: processes to use (default: the available CPUs, 1 below 100 images); the files do
    not depend on it.
    Returns a summary: {"out_dir", "kind", "n", "seed", "splits": {split: images},
    "objects_per_class": {class: count}, "images_without_objects", "truncated_objects"}.
    """
    if kind not in SCENE_PRESETS:
        raise ValueError(f"expected kind in {list(SCENE_PRESETS)}, got {kind!r}")
    if n < 1:
        raise ValueError(f"expected at least one image, got n={n}")
    sizes = split_sizes(n, split_fractions)
    load_class_sprites(), load_distractor_sprites()  # fail early if the sprites are missing
    root = Path(out_dir)
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)

    tasks = [(str(root), kind, int(seed), i) for i in range(n)]
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if n >= 100 else 1
    if workers > 1:
        # spawn, not fork: the caller may be a threaded app (Streamlit) or hold torch threads.
        with _bare_main():  # the workers start here, in Pool()
            pool = multiprocessing.get_context("spawn").Pool(workers)
        with pool:
            results = pool.map(_write_one, tasks, chunksize=max(1, n // (8 * workers)))
    else:
        results = [_write_one(t) for t in tasks]

    per_class = {c: 0 for c in VOC_CLASSES}
    for objects in results:
        for name, _ in objects:
            per_class[name] += 1
    start = 0
    for split in SPLITS:  # last: a split file only names files that are complete
        ids = [f"{i:06d}" for i in range(start, start + sizes[split])]
        _write_atomic(root / "ImageSets" / "Main" / f"{split}.txt",
                      "".join(f"{i}\n" for i in ids).encode())
        start += sizes[split]
    return {
        "out_dir": str(root), "kind": kind, "n": n, "seed": int(seed), "splits": sizes,
        "objects_per_class": per_class,
        "images_without_objects": sum(1 for objects in results if not objects),
        "truncated_objects": sum(t for objects in results for _, t in objects),
    }
