"""Bad input: images and checkpoints (issue: predict never tracebacks, never writes a partial
file). Most cases run the CLI in-process; one runs it as a real subprocess."""

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from overfeat.checkpoint import CheckpointError, load_checkpoint
from overfeat.cli import main
from overfeat.images import ImageError, load_image

ROOT = Path(__file__).resolve().parent.parent


def png_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


def rgb(h=60, w=80, seed=0) -> Image.Image:
    a = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(a)


def bomb_png(w=30000, h=30000) -> bytes:
    """A tiny valid-looking PNG whose header claims w x h pixels."""
    raw = bytearray(png_bytes(Image.new("L", (8, 8))))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(raw)


BAD = {
    "not_an_image.png": (b"hello, I am text\n" * 20, "not an image"),
    "empty.jpg": (b"", "empty file"),
    "truncated.png": (png_bytes(rgb())[:200], "truncated"),
    "truncated.jpg": (png_bytes(rgb(), format="JPEG")[:300], "truncated"),
    "bomb.png": (bomb_png(), "too large"),
    "thin.png": (png_bytes(rgb(20, 200)), "aspect ratio"),
    "tiny.png": (png_bytes(rgb(5, 5)), "too small"),  # issue 28: refused, not blown up 50x
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_images_raise_one_line(name):
    data, words = BAD[name]
    with pytest.raises(ImageError) as e:
        load_image(data, name)
    msg = str(e.value)
    assert name in msg and words in msg and "\n" not in msg


def test_odd_modes_become_rgb():
    base = rgb(40, 50)
    cases = {
        "gray": base.convert("L"),
        "rgba": base.convert("RGBA"),
        "palette": base.convert("P"),
        "cmyk": base.convert("CMYK"),
        "la": base.convert("LA"),
    }
    for name, im in cases.items():
        fmt = "JPEG" if name == "cmyk" else "PNG"
        out = load_image(png_bytes(im, format=fmt), name)
        assert out.mode == "RGB" and out.size == (50, 40), name
    # 16-bit grayscale: the full range maps onto 0..255 (not clipped at 255).
    a = (np.linspace(0, 65535, 40 * 50).reshape(40, 50)).astype(np.uint16)
    out = np.asarray(load_image(png_bytes(Image.fromarray(a)), "16bit"))
    assert out.max() == 255 and out.min() == 0 and 100 < out[20, 25, 0] < 160
    # Transparent pixels become white.
    t = Image.new("RGBA", (30, 30), (255, 0, 0, 0))
    assert np.asarray(load_image(png_bytes(t), "t"))[0, 0].tolist() == [255, 255, 255]
    # Animated GIF: the first frame.
    frames = [Image.new("RGB", (30, 20), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    first = np.asarray(load_image(buf.getvalue(), "anim.gif"))
    assert first[5, 5, 0] > 200 and first[5, 5, 2] < 50


def test_exif_rotation_is_applied():
    im = Image.new("RGB", (80, 40), (0, 0, 0))
    im.paste((255, 255, 255), (0, 0, 40, 40))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = png_bytes(im, format="JPEG", exif=exif.tobytes(), quality=95)
    out = load_image(data, "rotated.jpg")
    assert out.size == (40, 80)  # portrait once rotated
    a = np.asarray(out)
    assert a[5, 20].mean() > 200 and a[75, 20].mean() < 50  # white half now on top


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_bad_inputs_exit_nonzero_without_partial_output(tmp_path, tiny_ckpt, capsys):
    ckpt, _ = tiny_ckpt
    for name, (data, words) in BAD.items():
        src = tmp_path / name
        src.write_bytes(data)
        out = tmp_path / f"{name}.out.png"
        code, stdout, err = run_cli(["predict", src, "--checkpoint", ckpt, "--out", out], capsys)
        assert code != 0, name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], (name, err)
        assert "Traceback" not in err
        assert not out.exists()
        assert not list(tmp_path.glob(f".{out.name}*"))  # no temporary left either
    code, _, err = run_cli(["predict", tmp_path / "missing.png", "--checkpoint", ckpt], capsys)
    assert code != 0 and "no such file" in err


def test_predict_odd_images_work(tmp_path, tiny_ckpt, capsys):
    ckpt, _ = tiny_ckpt
    small = tmp_path / "small.png"  # smaller than one window: scaled up to each scale
    rgb(30, 40).convert("L").save(small)
    out = tmp_path / "ann.png"
    code, stdout, err = run_cli(["predict", small, "--checkpoint", ckpt, "--json", "--out", out,
                                 "--scales", "0,1", "--min-score", "0"], capsys)
    assert code == 0, err
    import json

    res = json.loads(stdout)
    assert res["size"] == [30, 40] and res["raw_boxes"] > 0
    for d in res["detections"]:
        assert d["class"] in ("a", "b")  # never the background class
    assert Image.open(out).size == (40, 30)


def test_checkpoint_round_trip(tiny_ckpt):
    p, m = tiny_ckpt
    m2, meta = load_checkpoint(p)
    assert meta["note"] == "test" and m2.cfg == m.cfg
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k


def test_bad_checkpoints(tmp_path, tiny_ckpt):
    p, m = tiny_ckpt
    data = p.read_bytes()
    cases = {
        "random.pt": (os.urandom(2000), "not"),
        "truncated.pt": (data[: len(data) // 2], "truncated or corrupt"),
        "empty.pt": (b"", "not"),
    }
    for name, (blob, words) in cases.items():
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(blob, name)
        assert name in str(e.value) and words in str(e.value)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {"w": torch.zeros(3)}}, foreign)
    with pytest.raises(CheckpointError, match="not an OverFeat teaching checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="for the 'accurate' geometry, expected 'fast'"):
        load_checkpoint(p, expect_geometry="fast")
    # Weights of another geometry under this checkpoint's config.
    blob = torch.load(p, weights_only=True)
    blob["config"]["geometry"] = "fast"
    bad = tmp_path / "mixed.pt"
    torch.save(blob, bad)
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_checkpoint(bad)


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {Evil.target}",))


def test_pickle_with_code_is_refused_and_not_executed(tmp_path):
    Evil.target = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "overfeat-teach/1", "payload": Evil()}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(evil)
    assert not Evil.target.exists()


@pytest.mark.slow  # a subprocess CLI run: imports torch and the package again (~2 s CPU)
def test_cli_subprocess_one_line_error(tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0garbage")
    r = subprocess.run([sys.executable, "-m", "overfeat", "predict", str(bad)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: x.jpg:")


def test_geometry_cli(capsys):
    import json

    code, out, _ = run_cli(["geometry", "--preset", "accurate", "--json"], capsys)
    assert code == 0
    g = json.loads(out)
    assert [s["input"] for s in g["scales"]] == [[245, 245], [281, 317], [317, 389], [389, 461],
                                                [425, 497], [461, 569]]
    assert [s["windows"] for s in g["scales"]] == [9, 54, 135, 315, 432, 630]
    assert 143e6 < sum(r["params"] for r in g["layers"]) < 146e6  # paper: about 144M
    code, out, _ = run_cli(["geometry", "--preset", "fast", "--json"], capsys)
    assert 145e6 < sum(json.loads(out)["layers"][i]["params"] for i in range(11)) < 147e6
    code, out, err = run_cli(["geometry", "--preset", "accurate", "--size", "100x300"], capsys)
    assert code == 2 and "smaller than one 221x221 window" in err
