"""Geometry read off a model (the analogue of the paper's Table 5) and per-layer costs.

Sizes come from running the model's own modules on shape-only "meta" tensors, never from
formulas typed separately, so the table is right for any preset or width by construction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .config import ModelConfig
from .model import OverFeat
from .offsets import fine_size, offset_pool, offsets


def meta_model(cfg: ModelConfig) -> OverFeat:
    """The model with shape-only parameters: instant even at full width (145M parameters)."""
    with torch.device("meta"):
        return OverFeat(cfg).eval()


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


@torch.no_grad()
def scale_geometry(model: OverFeat, size: tuple[int, int]) -> ScaleGeometry:
    """Map sizes at one input size (height, width), read off the model on meta tensors."""
    x = torch.empty(1, 3, *size, device="meta")
    m = model if next(model.parameters()).is_meta else meta_model(model.cfg)
    f = m.features(x)
    pooled = offset_pool(f, m.k)
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


@torch.no_grad()
def layer_table(cfg: ModelConfig, size: tuple[int, int] | None = None,
                head: str = "classifier") -> list[LayerInfo]:
    """Per-layer parameters and multiply-adds at `size` (default: one window), trunk + head.

    The trunk's last max pool is listed as done once (coarse stride); offset pooling repeats
    the head k*k times on slightly smaller maps, which layer costs at a full image show.
    """
    m = meta_model(cfg)
    size = size or (m.window, m.window)
    mods: list[tuple[str, nn.Module]] = list(m.features.named_children())
    mods.append((f"pool{len(cfg.geo.trunk)}", nn.MaxPool2d(m.k, m.k)))
    mods += list(getattr(m, head).named_children())
    x = torch.empty(1, 3, *size, device="meta")
    rf, jump = 1, 1
    rows: list[LayerInfo] = []
    for name, mod in mods:
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
    return rows


def count_params(cfg: ModelConfig) -> dict[str, int]:
    m = meta_model(cfg)
    return {part: sum(p.numel() for p in getattr(m, part).parameters())
            for part in ("features", "classifier", "regressor")}


def dense_macs(cfg: ModelConfig, size: tuple[int, int], fine: bool = True) -> int:
    """Multiply-adds of dense evaluation (trunk once, classifier over every offset map)."""
    m = meta_model(cfg)
    g = scale_geometry(m, size)
    trunk = sum(r.macs for r in layer_table(cfg, size) if r.name.startswith("conv"))
    head_per_window = sum(r.macs for r in layer_table(cfg) if r.name.startswith("fc"))
    maps = g.classifier if fine else g.classifier[:1]
    return trunk + head_per_window * sum(h * w for h, w in maps)


def crop_macs(cfg: ModelConfig, n_windows: int) -> int:
    """Multiply-adds of evaluating n_windows crops one by one (trunk + head per window)."""
    return n_windows * sum(r.macs for r in layer_table(cfg) if r.kind in ("conv", "fc"))


__all__ = ["ScaleGeometry", "LayerInfo", "scale_geometry", "layer_table", "count_params",
           "dense_macs", "crop_macs", "meta_model", "offsets"]
