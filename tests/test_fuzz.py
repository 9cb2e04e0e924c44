"""Fuzzing the image loader: random bytes, every truncation of real files, flipped bytes,
wrong extensions. Each case must end as an RGB image or one ImageError line, never another
exception, a hang or a huge allocation."""

import io
import random
import time

import numpy as np
import pytest
from PIL import Image

from overfeat.images import ImageError, load_image


def encoded(fmt: str, mode: str = "RGB", size=(37, 29), **kw) -> bytes:
    rng = np.random.default_rng(len(fmt) + len(mode))
    a = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(a).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


SEEDS = {
    "png": encoded("PNG"),
    "jpeg": encoded("JPEG", quality=80),
    "gif": encoded("GIF", "P"),
    "bmp": encoded("BMP"),
    "webp": encoded("WEBP"),
    "tiff": encoded("TIFF"),
    "cmyk.jpg": encoded("JPEG", "CMYK"),
    "png16": (lambda: (lambda b: (Image.fromarray(np.arange(600, dtype=np.uint16).reshape(20, 30) * 100)
                                  .save(b, format="PNG"), b.getvalue())[1])(io.BytesIO()))(),
}


def check(data: bytes, name: str) -> str:
    t = time.perf_counter()
    try:
        im = load_image(data, name)
    except ImageError as e:
        msg = str(e)
        assert "\n" not in msg and msg.startswith(name), msg
        outcome = "error"
    else:
        assert im.mode == "RGB" and im.size[0] >= 1 and im.size[1] >= 1
        outcome = "image"
    assert time.perf_counter() - t < 5, f"{name} took too long"
    return outcome


def test_fuzz_image_loader():
    rng = random.Random(1234)
    outcomes = {"image": 0, "error": 0}
    cases = 0
    for kind, data in SEEDS.items():
        assert check(data, kind) == "image"
        # Every truncation point for small files, a sample for the others.
        cuts = range(len(data)) if len(data) < 400 else rng.sample(range(len(data)), 150)
        for cut in cuts:
            outcomes[check(data[:cut], f"{kind}-cut{cut}")] += 1
            cases += 1
        for i in range(60):  # random byte flips
            b = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            outcomes[check(bytes(b), f"{kind}-flip{i}")] += 1
            cases += 1
        # Wrong extension: content decides, not the name.
        assert check(data, f"{kind}.txt") == "image"
        cases += 1
    for i in range(200):  # pure noise, sometimes behind a real magic number
        magic = rng.choice([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"RIFF"])
        data = magic + bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
        assert check(data, f"noise{i}") == "error"
        cases += 1
    print(f"fuzz: {cases} cases, {outcomes}")
    assert cases > 1500 and outcomes["error"] > 500


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP", "TIFF"])
def test_headers_claiming_huge_sizes(fmt):
    """Decompression bombs: refused from the header, before any pixel is decoded."""
    data = bytearray(encoded(fmt, "P" if fmt == "GIF" else "RGB", size=(8, 8)))
    if fmt == "PNG":
        import struct
        import zlib

        data[16:24] = struct.pack(">II", 30000, 30000)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    elif fmt == "GIF":
        data[6:10] = (65535).to_bytes(2, "little") * 2
    elif fmt == "BMP":
        data[18:26] = (30000).to_bytes(4, "little") + (30000).to_bytes(4, "little")
    else:
        im = Image.new("RGB", (8, 8))
        buf = io.BytesIO()
        im.save(buf, format="TIFF")
        data = bytearray(buf.getvalue())
        # Patch ImageWidth/ImageLength tags (256/257) in the first IFD.
        off = int.from_bytes(data[4:8], "little")
        n = int.from_bytes(data[off:off + 2], "little")
        for i in range(n):
            e = off + 2 + 12 * i
            tag = int.from_bytes(data[e:e + 2], "little")
            if tag in (256, 257):
                typ = int.from_bytes(data[e + 2:e + 4], "little")
                width = 2 if typ == 3 else 4
                data[e + 8:e + 8 + width] = (30000).to_bytes(width, "little")
    t = time.perf_counter()
    with pytest.raises(ImageError) as e:
        load_image(bytes(data), f"bomb.{fmt.lower()}")
    assert time.perf_counter() - t < 2
    msg = str(e.value)
    assert "too large" in msg or "corrupt" in msg or "aspect" in msg, msg
