"""Load the committed pictogram sprites (assets/sprites/*.png); no font is needed.

A sprite is an RGBA PIL image cropped to the tight box of its non-zero alpha (render_sprites.py
made them), so the sprite's box is exactly the object's extent. Loaded once per process and
cached: callers must treat the returned images as read-only (Pillow's resize/rotate/transpose
return new images, so ordinary use is safe).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import Image

from overfeat.data.voc import VOC_CLASSES

SPRITE_DIR = Path(__file__).resolve().parents[2] / "assets" / "sprites"


def _load_png(path: Path) -> Image.Image:
    with Image.open(path) as im:
        sprite = im.convert("RGBA")  # convert() reads the pixels, so the file can close
    return sprite


def _check_dir(folder: Path) -> None:
    if not folder.is_dir():
        raise ValueError(f"expected a sprite folder at {folder}, got no such folder "
                         "(run: python -m overfeat.data.render_sprites)")


@lru_cache(maxsize=4)
def load_class_sprites(folder: str | Path = SPRITE_DIR) -> dict[str, Image.Image]:
    """One RGBA sprite per VOC class, keyed by class name, in VOC_CLASSES order."""
    folder = Path(folder)
    _check_dir(folder)
    missing = [c for c in VOC_CLASSES if not (folder / f"{c}.png").is_file()]
    if missing:
        raise ValueError(f"expected one sprite per VOC class in {folder}, "
                         f"got none for {missing}")
    return {c: _load_png(folder / f"{c}.png") for c in VOC_CLASSES}


@lru_cache(maxsize=4)
def load_distractor_sprites(folder: str | Path = SPRITE_DIR) -> dict[str, Image.Image]:
    """The hard-negative sprites (not VOC classes), keyed by name, sorted by name."""
    folder = Path(folder)
    _check_dir(folder)
    paths = sorted((folder / "distractors").glob("*.png"))
    if not paths:
        raise ValueError(f"expected distractor sprites in {folder / 'distractors'}, got none")
    return {p.stem: _load_png(p) for p in paths}
