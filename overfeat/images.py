"""Safe image loading: every file a user can throw at the CLI or the app becomes either an RGB
image or one ImageError with a one-line message naming the problem."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Decoding is refused above this many pixels (a 30000x30000 header would need 2.7 GB).
MAX_PIXELS = 40_000_000
# The six scales resize the shorter side to 245..461 px; a very long thin image would blow up
# the longer side, so extreme aspect ratios are refused.
MAX_ASPECT = 6.0
# Below this shorter side an image is refused (project choice): the smallest scale blows its
# shorter side up to at least 192 px, so a 5x5 image would be shown to the network as blocks of
# 40 px and every map, box and count would describe those blocks, not a picture.
MIN_SIDE = 16
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "MPO")


class ImageError(ValueError):
    """A file that cannot be used as an input image; str(err) is one line for the user."""


def load_image(source: str | Path | bytes, name: str | None = None) -> Image.Image:
    """Open a path or raw bytes as an 8-bit RGB PIL image, upright (EXIF orientation applied).

    Grayscale, palette, CMYK, 16-bit and transparent images are converted (transparency onto
    white); an animated GIF gives its first frame. Raises ImageError for anything else.
    """
    label = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{label}: is a directory, not an image file") from None
    except OSError as e:
        raise ImageError(f"{label}: cannot read file ({e.strerror or e})") from None
    if len(data) == 0:
        raise ImageError(f"{label}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            if im.format not in FORMATS:
                raise ImageError(f"{label}: unsupported image format {im.format}; "
                                 f"expected one of {', '.join(FORMATS)}")
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"{label}: image too large ({w}x{h} = {w * h / 1e6:.0f} "
                                 f"megapixels; the limit is {MAX_PIXELS / 1e6:.0f})")
            if w < 1 or h < 1:
                raise ImageError(f"{label}: image has no pixels ({w}x{h})")
            im.seek(0)  # animated GIF/WebP: the first frame
            im.load()
            im = ImageOps.exif_transpose(im)
            im = _to_rgb(im)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{label}: image too large (its header claims more than "
                         f"{MAX_PIXELS / 1e6:.0f} megapixels)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image file Pillow can read "
                         f"(expected {', '.join(FORMATS)})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as e:
        # Truncated or corrupt data: Pillow raises a zoo of errors here.
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageError(f"{label}: corrupt or truncated image ({msg})") from None
    w, h = im.size
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"{label}: image too small ({w}x{h}); its shorter side must be at least "
                         f"{MIN_SIDE} px")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ImageError(f"{label}: aspect ratio {w}x{h} is too extreme (at most {MAX_ASPECT:g}:1)")
    return im


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit or float grayscale: rescale the actual range to 0..255 (convert('L') clips).
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") else max(float(a.max()), 1.0)
        a = np.clip(a / hi * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(a, mode="L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    if im.mode != "RGB":
        return im.convert("RGB")
    return im


def to_tensor(im: Image.Image):
    """RGB PIL image -> float32 Tensor[3, H, W] with pixel values 0..255."""
    import torch

    a = np.asarray(im.convert("RGB"), dtype=np.float32)  # [H, W, 3]
    return torch.from_numpy(a.copy()).permute(2, 0, 1).contiguous()
