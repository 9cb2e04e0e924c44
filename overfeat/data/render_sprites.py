"""Render the pictogram sprites that the synthetic scenes are built from (run once, by hand).

    apt-get install -y fonts-noto-color-emoji      # only this script needs the font
    python -m overfeat.data.render_sprites [--font PATH] [--out assets/sprites]
                                           [--contact-sheet /tmp/sprites_sheet.png]

Each pictogram is drawn once from Noto Color Emoji at the font's bitmap size (109 -> glyphs of
about 136x128 px) and saved as an RGBA PNG cropped to the tight box of its non-zero alpha, so
that a sprite's box is exactly its visible extent (scenes.py relies on this). The 20 Pascal VOC
classes go to assets/sprites/<class>.png, hard-negative pictograms (not VOC classes) to
assets/sprites/distractors/<name>.png. The PNGs are committed; nothing else needs the font.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from overfeat.data.voc import VOC_CLASSES

DEFAULT_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "assets" / "sprites"
FONT_SIZE = 109  # the only size at which this bitmap (CBDT) font renders

# One pictogram per VOC class, in VOC_CLASSES order. U+FE0F asks for the colour presentation.
CLASS_TEXT: dict[str, str] = {
    "aeroplane": "\u2708\ufe0f",
    "bicycle": "\U0001f6b2",
    "bird": "\U0001f426",
    "boat": "\u26f5",
    "bottle": "\U0001f37e",
    "bus": "\U0001f68c",
    "car": "\U0001f697",
    "cat": "\U0001f408",
    "chair": "\U0001fa91",
    "cow": "\U0001f404",
    "diningtable": "\U0001f37d\ufe0f",
    "dog": "\U0001f415",
    "horse": "\U0001f40e",
    "motorbike": "\U0001f3cd\ufe0f",
    "person": "\U0001f9cd",
    "pottedplant": "\U0001fab4",
    "sheep": "\U0001f411",
    "sofa": "\U0001f6cb\ufe0f",
    "train": "\U0001f686",
    "tvmonitor": "\U0001f4fa",
}

# Hard negatives: pictograms that are no VOC class, some of them near one (tree ~ pottedplant,
# house ~ background clutter, ball, umbrella), so a detector must learn to say "background".
DISTRACTOR_TEXT: dict[str, str] = {
    "tree": "\U0001f333",
    "house": "\U0001f3e0",
    "sunflower": "\U0001f33b",
    "soccerball": "\u26bd",
    "umbrella": "\u2602\ufe0f",
    "star": "\u2b50",
    "apple": "\U0001f34e",
    "mushroom": "\U0001f344",
}


def render_pictogram(text: str, font: ImageFont.FreeTypeFont) -> Image.Image:
    """Draw one pictogram and crop it to the tight box of its non-zero alpha.

    Returns an RGBA image whose first/last rows and columns each hold a pixel with alpha > 0.
    Raises ValueError if nothing was drawn (the font lacks the glyph).
    """
    canvas = Image.new("RGBA", (200, 200), (0, 0, 0, 0))  # > 136x128 glyph plus margin
    ImageDraw.Draw(canvas).text((20, 20), text, font=font, embedded_color=True)
    bbox = canvas.getchannel("A").getbbox()  # box of alpha > 0, (left, top, right, bottom)
    if bbox is None or bbox[2] - bbox[0] < 32 or bbox[3] - bbox[1] < 32:
        codepoints = " ".join(f"U+{ord(c):04X}" for c in text)
        raise ValueError(f"expected a colour pictogram of at least 32x32 px for {codepoints}, "
                         f"got alpha box {bbox}")
    return canvas.crop(bbox)


def render_all(font_path: str = DEFAULT_FONT, out_dir: Path = DEFAULT_OUT) -> list[Path]:
    """Render every class and distractor sprite into out_dir; returns the written paths."""
    if set(CLASS_TEXT) != set(VOC_CLASSES):
        raise ValueError(f"expected one pictogram per VOC class, got {sorted(CLASS_TEXT)}")
    if not Path(font_path).is_file():
        raise ValueError(f"expected the Noto Color Emoji font at {font_path}, got no such file "
                         "(apt-get install -y fonts-noto-color-emoji)")
    font = ImageFont.truetype(font_path, FONT_SIZE)
    written = []
    for folder, table in ((out_dir, CLASS_TEXT), (out_dir / "distractors", DISTRACTOR_TEXT)):
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in table.items():
            path = folder / f"{name}.png"
            render_pictogram(text, font).save(path, optimize=True)
            written.append(path)
    return written


def contact_sheet(paths: list[Path], cell: int = 150) -> Image.Image:
    """Lay the sprites out on a grey grid with their names, to check them by eye."""
    cols = 7
    rows = (len(paths) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell, rows * (cell + 14)), (200, 200, 200))
    draw = ImageDraw.Draw(sheet)
    for i, path in enumerate(paths):
        sprite = Image.open(path).convert("RGBA")
        x, y = (i % cols) * cell, (i // cols) * (cell + 14)
        sheet.paste(sprite, (x + (cell - sprite.width) // 2, y + (cell - sprite.height) // 2),
                    sprite)
        draw.rectangle((x, y, x + cell - 1, y + cell - 1), outline=(120, 120, 120))
        draw.text((x + 3, y + cell), f"{path.stem} {sprite.width}x{sprite.height}", fill=(0, 0, 0))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--font", default=DEFAULT_FONT, help="path to NotoColorEmoji.ttf")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="sprite folder")
    parser.add_argument("--contact-sheet", type=Path, default=None,
                        help="also write a contact sheet PNG here (keep it out of the repo)")
    args = parser.parse_args()
    paths = render_all(args.font, args.out)
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} sprites to {args.out} ({total} bytes)")
    if args.contact_sheet is not None:
        contact_sheet(paths).save(args.contact_sheet)
        print(f"contact sheet: {args.contact_sheet}")


if __name__ == "__main__":
    main()
