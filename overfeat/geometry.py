"""Geometry read off a model (the analogue of the paper's Table 5) and per-layer costs.

Sizes come from running the model's own modules on shape-only "meta" tensors, never from
formulas typed separately, so the table is right for any preset or width by construction.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import asdict, dataclass

import torch
from torch import nn

from torch.utils.flop_counter import FlopCounterMode

from .config import ModelConfig
from .models.overfeat import OverFeat
from .offsets import deinterleave, fine_size, offset_pool, offsets
from .models.registry import ZooConfig


@functools.lru_cache(maxsize=16)
def meta_model(cfg: ModelConfig | ZooConfig) -> OverFeat:
    """The model with shape-only parameters: instant even at full width (145M parameters).
    A ZooConfig gives one of the pretrained nets (overfeat.models.registry), with the same interface.
    One per config (configs are frozen): building it runs every layer's initialiser on meta
    tensors, 30 ms the app paid twice per script run. Shape-only, so sharing it is safe;
    callers must not modify it."""
    with torch.device("meta"):
        return (cfg.build() if isinstance(cfg, ZooConfig) else OverFeat(cfg)).eval()


def _kept(maxsize: int):
    """functools.lru_cache for a pure function of hashable arguments (a frozen config, a size),
    each caller getting its own copy of the result. The app asks for the same map sizes and
    layer costs of an image on several pages and runs (meta tensors: 5 to 40 ms a call)."""
    def wrap(fn):
        cached = functools.lru_cache(maxsize=maxsize)(fn)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            return copy.deepcopy(cached(*args, **kwargs))

        call.cache_clear = cached.cache_clear
        return call
    return wrap


def _macs(fn, *args, **kwargs) -> tuple[int, object]:
    """Multiply-adds of fn(*args) counted by PyTorch's FlopCounterMode (works on meta tensors):
    (macs, result). Used for the pretrained nets, whose layers are not plain convolutions."""
    with FlopCounterMode(display=False) as fc:
        out = fn(*args, **kwargs)
    return fc.get_total_flops() // 2, out


@dataclass
class ScaleGeometry:
    input: tuple[int, int]
    prepool: tuple[int, int]  # last conv map, before the offset pool
    pooled: list[tuple[int, int]]  # per offset, ordered as offsets(k)
    classifier: list[tuple[int, int]]  # classifier map per offset
    fine: tuple[int, int]  # interleaved map
    windows: int  # cells of the fine map = windows evaluated at this scale

    def to_dict(self) -> dict:
        return asdict(self)


def scale_geometry(model: OverFeat, size: tuple[int, int]) -> ScaleGeometry:
    """Map sizes at one input size (height, width), read off the model on meta tensors."""
    return _scale_geometry(model.cfg, tuple(int(v) for v in size))


@_kept(maxsize=512)
@torch.no_grad()
def _scale_geometry(cfg: ModelConfig | ZooConfig, size: tuple[int, int]) -> ScaleGeometry:
    x = torch.empty(1, 3, *size, device="meta")
    m = meta_model(cfg)
    f = m.features(x)
    # OverFeat: offset_pool, the paper's k*k pools; the pretrained nets: their subsampling layer
    # at stride 1, cut into its k*k offsets (the same shapes for a max pool).
    pooled = offset_pool(f, m.k) if isinstance(m, OverFeat) else deinterleave(m.pool_fine(f), m.k)
    cls = [m.classify(p) for p in pooled]
    cls_sizes = [tuple(c.shape[-2:]) for c in cls]
    fh, fw = fine_size(cls_sizes, m.k) if all(h > 0 and w > 0 for h, w in cls_sizes) else (0, 0)
    return ScaleGeometry(input=tuple(size), prepool=tuple(f.shape[-2:]),
                         pooled=[tuple(p.shape[-2:]) for p in pooled], classifier=cls_sizes,
                         fine=(fh, fw), windows=fh * fw)


@dataclass
class LayerInfo:
    name: str
    kind: str  # conv, pool, fc
    channels: int
    kernel: int
    stride: int
    padding: int
    out_size: tuple[int, int]  # at the input size asked for
    params: int
    macs: int  # multiply-adds at that input size
    receptive_field: int  # input pixels seen by one output cell
    jump: int  # input pixels between neighbouring output cells (cumulative stride)


def layer_table(cfg: ModelConfig, size: tuple[int, int] | None = None,
                head: str = "classifier") -> list[LayerInfo]:
    """Per-layer parameters and multiply-adds at `size` (default: one window), trunk + head.

    head: "classifier" or "regressor", or "both": the classifier's layers, then the
    regressor's, named "<layer> (regressor)" and read off the same last pooled map (rows for
    every parameter of the network: the Architecture page's table). A pretrained net lists its
    own layers (overfeat.models.registry); with "both", P-Net's box layer too (EfficientNet has none).
    The trunk's last max pool is listed as done once (coarse stride); offset pooling repeats
    the head k*k times on slightly smaller maps, which layer costs at a full image show.
    """
    if head not in ("classifier", "regressor", "both"):
        raise ValueError(f"head must be classifier, regressor or both, got {head!r}")
    return _layer_table(cfg, None if size is None else tuple(int(v) for v in size), head)


@_kept(maxsize=512)
@torch.no_grad()
def _layer_table(cfg: ModelConfig, size: tuple[int, int] | None, head: str) -> list[LayerInfo]:
    m = meta_model(cfg)
    size = size or (m.window, m.window)
    if isinstance(cfg, ZooConfig):
        return _net_layer_table(m, size, regressor=head == "both")
    mods: list[tuple[str, nn.Module]] = list(m.features.named_children())
    mods.append((f"pool{len(cfg.geo.trunk)}", nn.MaxPool2d(m.k, m.k)))
    heads = ("classifier", "regressor") if head == "both" else (head,)
    x = torch.empty(1, 3, *size, device="meta")
    rf, jump = 1, 1
    rows: list[LayerInfo] = []
    for name, mod in mods:
        x, rf, jump = _layer_row(rows, name, mod, x, rf, jump)
    pooled = (x, rf, jump)
    for h in heads:
        x, rf, jump = pooled  # each head starts from the last pooled map
        suffix = " (regressor)" if head == "both" and h == "regressor" else ""
        for name, mod in getattr(m, h).named_children():
            x, rf, jump = _layer_row(rows, name + suffix, mod, x, rf, jump)
    return rows


def _layer_row(rows: list[LayerInfo], name: str, mod: nn.Module, x, rf: int, jump: int):
    """Apply one module of layer_table to x (meta); append its row (a conv or a pool) or add
    its parameters to the row before (batch norm); returns (x, rf, jump) after it."""
    x_in = x
    x = mod(x)
    if isinstance(mod, nn.Conv2d):
        k, s, p = mod.kernel_size[0], mod.stride[0], mod.padding[0]
        # The KxK head convolution acts on the pooled map: its "jump" is the pooled stride.
        params = sum(t.numel() for t in mod.parameters())
        macs = x.shape[-2] * x.shape[-1] * mod.out_channels * (mod.in_channels * k * k)
        kind = "fc" if name.startswith("fc") else "conv"
        rows.append(LayerInfo(name, kind, mod.out_channels, k, s, p, tuple(x.shape[-2:]),
                              params, macs, rf + (k - 1) * jump, jump * s))
        rf, jump = rf + (k - 1) * jump, jump * s
    elif isinstance(mod, nn.BatchNorm2d) and rows:  # its scale and shift belong to the conv
        rows[-1].params += sum(t.numel() for t in mod.parameters())
    elif isinstance(mod, nn.MaxPool2d):
        k, s = int(mod.kernel_size), int(mod.stride)
        rows.append(LayerInfo(name, "pool", x_in.shape[1], k, s, 0, tuple(x.shape[-2:]), 0, 0,
                              rf + (k - 1) * jump, jump * s))
        rf, jump = rf + (k - 1) * jump, jump * s
    return x, rf, jump


def _net_layer_table(m, size: tuple[int, int], regressor: bool = False) -> list[LayerInfo]:
    """layer_table for a pretrained net, from its layers() list (blocks count as one row; a
    block's kernel and stride are its depthwise convolution's). regressor: also the box layer
    of a net that has one (P-Net's conv4_2, a 1x1 convolution beside the class layer on the
    same map: the layers() list holds the class path only)."""
    x = torch.empty(1, 3, *size, device="meta")
    rf, jump = 1, 1
    rows: list[LayerInfo] = []
    for name, kind, mod, fn, k, s in m.layers():
        c_in = x.shape[1]
        x_in, (macs, x) = x, _macs(fn, x)
        params = sum(t.numel() for t in mod.parameters()) if mod is not None else 0
        pad = (k - 1) // 2 if getattr(m, "padding", False) else 0
        rf_in, jump_in = rf, jump
        rf, jump = rf + (k - 1) * jump, jump * s
        rows.append(LayerInfo(name, kind, x.shape[1] if kind != "pool" else c_in, k, s, pad,
                              tuple(x.shape[-2:]), params, macs, rf, jump))
    box = getattr(m, "conv4_2", None) if regressor and getattr(m, "has_regressor", False) else None
    if box is not None:  # beside the last (class) layer: same input, same receptive field
        k, s = box.kernel_size[0], box.stride[0]
        macs, out = _macs(box, x_in)
        rows.append(LayerInfo("conv4_2 (regressor)", "fc", box.out_channels, k, s, 0,
                              tuple(out.shape[-2:]), sum(t.numel() for t in box.parameters()),
                              macs, rf_in + (k - 1) * jump_in, jump_in * s))
    return rows


_UNITS = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))


def human_count(n: float, decimals: int | None = None) -> str:
    """A large count the way a person reads it: 157240896 -> '157 M', 1234567890 -> '1.2 G',
    6632 -> '6.6 K', 950 -> '950': two significant digits below 10 units, whole units above,
    and 999,999 -> '1.0 M' (never '1000 K'). decimals: that many decimals at any size instead
    (1: as app.state.describe's '3.9M' and '253.7M parameters')."""
    if n < 0:
        return "-" + human_count(-n, decimals)
    if n < 1000:
        return f"{n:.0f}" if float(n).is_integer() else f"{n:.3g}"
    i = next(i for i, (size, _) in enumerate(_UNITS) if n >= size)
    size, unit = _UNITS[i]
    v = n / size
    if decimals is not None:
        text = f"{v:.{decimals}f}"
    else:
        text = f"{v:.1f}" if round(v, 1) < 10 else f"{v:.0f}"
    if float(text) >= 1000 and i > 0:  # 999.6 K -> 1.0 M
        return human_count(_UNITS[i - 1][0], decimals)
    return f"{text} {unit}"


COST_KEYS = ("dense multiply-adds", "crop multiply-adds")


def readable_cost_rows(rows: list[dict], keys: tuple[str, ...] = COST_KEYS) -> list[dict]:
    """app.state.cost_rows with the large counts as human_count text (for a table; the exact
    numbers stay in the rows, the figures and the metrics)."""
    return [{k: human_count(v) if k in keys else v for k, v in r.items()} for r in rows]


def dense_macs(cfg: ModelConfig, size: tuple[int, int], fine: bool = True) -> int:
    """Multiply-adds of dense evaluation (trunk once, classifier over every offset map)."""
    return _dense_macs(cfg, tuple(int(v) for v in size), bool(fine))


@_kept(maxsize=512)
def _dense_macs(cfg: ModelConfig, size: tuple[int, int], fine: bool) -> int:
    m = meta_model(cfg)
    if isinstance(cfg, ZooConfig):  # counted on the dense computation itself, as run_views runs it
        x = torch.empty(1, 3, *size, device="meta")
        f_macs, f = _macs(m.features, x)
        if fine:
            h_macs, _ = _macs(lambda t: m.classify(m.pool_fine(t), dilation=m.k), f)
        else:
            h_macs, _ = _macs(lambda t: m.classify(m.pool(t)), f)
        return f_macs + h_macs
    g = scale_geometry(m, size)
    trunk = sum(r.macs for r in layer_table(cfg, size) if r.name.startswith("conv"))
    head_per_window = sum(r.macs for r in layer_table(cfg) if r.name.startswith("fc"))
    maps = g.classifier if fine else g.classifier[:1]
    return trunk + head_per_window * sum(h * w for h, w in maps)


def crop_macs(cfg: ModelConfig, n_windows: int) -> int:
    """Multiply-adds of evaluating n_windows crops one by one (trunk + head per window)."""
    return n_windows * _window_macs(cfg)


@_kept(maxsize=64)
def _window_macs(cfg: ModelConfig) -> int:
    if isinstance(cfg, ZooConfig):
        m = meta_model(cfg)
        return _macs(m, torch.empty(1, 3, m.window, m.window, device="meta"))[0]
    return sum(r.macs for r in layer_table(cfg) if r.kind in ("conv", "fc"))


__all__ = ["ScaleGeometry", "LayerInfo", "scale_geometry", "layer_table",
           "dense_macs", "crop_macs", "meta_model", "offsets", "human_count",
           "readable_cost_rows"]
