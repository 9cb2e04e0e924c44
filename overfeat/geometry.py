"""Geometry read off a model (the analogue of the paper's Table 5) and per-layer costs.

Sizes come from running the model's own modules on shape-only "meta" tensors, never from
formulas typed separately, so the table is right for any preset or width by construction.

A pyramid net (a model with `pyramid = True` and `strides`, NanoDet) has no offset pooling: one
input gives one output map per stride. Its ScaleGeometry lists those maps (`levels`), its layer
table the backbone, then the neck (lateral 1x1 convolutions, top-down and bottom-up resizes)
and each level's head; its cost rows count the windows of every level.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import asdict, dataclass, field

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
    fine: tuple[int, int]  # interleaved map (a pyramid: its finest level's map)
    windows: int  # cells of the fine map = windows evaluated at this scale (a pyramid: all levels)
    # A pyramid net: each level's output map (finest first; `pooled`, `classifier` and `fine`
    # then hold the finest level's map, k = 1). Empty for the other nets.
    levels: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def is_pyramid(model) -> bool:
    """A model (or meta model) with several output maps per input (overfeat.models: `pyramid`)."""
    return bool(getattr(model, "pyramid", False))


def scale_geometry(model: OverFeat, size: tuple[int, int]) -> ScaleGeometry:
    """Map sizes at one input size (height, width), read off the model on meta tensors."""
    return _scale_geometry(model.cfg, tuple(int(v) for v in size))


@_kept(maxsize=512)
@torch.no_grad()
def _scale_geometry(cfg: ModelConfig | ZooConfig, size: tuple[int, int]) -> ScaleGeometry:
    x = torch.empty(1, 3, *size, device="meta")
    m = meta_model(cfg)
    if is_pyramid(m):
        levels = [tuple(p.shape[-2:]) for p in m.neck(m.backbone(x))]
        return ScaleGeometry(input=tuple(size), prepool=levels[0], pooled=[levels[0]],
                             classifier=[levels[0]], fine=levels[0],
                             windows=sum(h * w for h, w in levels), levels=levels)
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
    kind: str  # conv, pool, fc; a pretrained net's block, subsample; a pyramid's resize
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
    A pyramid net (NanoDet): its backbone, then the neck and every level's head (pyramid rows,
    _pyramid_rows); its default size is one window of its coarsest level (5 x 32 = 160 px).
    """
    if head not in ("classifier", "regressor", "both"):
        raise ValueError(f"head must be classifier, regressor or both, got {head!r}")
    return _layer_table(cfg, None if size is None else tuple(int(v) for v in size), head)


@_kept(maxsize=512)
@torch.no_grad()
def _layer_table(cfg: ModelConfig, size: tuple[int, int] | None, head: str) -> list[LayerInfo]:
    m = meta_model(cfg)
    size = size or (max(window_sides(m)),) * 2
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


def window_sides(model) -> list[int]:
    """The window side (px, at the input of a scale) of each output map: one for an OverFeat-like
    net (its window), one per level for a pyramid net (its finest level's window times the
    level's stride over the finest stride: NanoDet's 5 x stride, 40, 80 and 160 px)."""
    if is_pyramid(model):
        return [model.window * s // model.strides[0] for s in model.strides]
    return [model.window]


def _chain(mod: nn.Module, k: int, s: int) -> list[tuple[int, int]]:
    """(span, stride) of each convolution along a block's longest path: its Conv2d modules in
    the order they are registered (a CSP block: in_conv, each residual block's two convs,
    res_out_conv; an inverted residual: expand, depthwise, project). A module without any:
    one step of kernel k, stride s."""
    convs = [c for c in mod.modules() if isinstance(c, nn.Conv2d)] if mod is not None else []
    if not convs:
        return [(k, s)]
    return [(c.dilation[0] * (c.kernel_size[0] - 1) + 1, c.stride[0]) for c in convs]


def _net_layer_table(m, size: tuple[int, int], regressor: bool = False) -> list[LayerInfo]:
    """layer_table for a pretrained net, from its layers() list (blocks count as one row; a
    block's kernel and stride are its depthwise convolution's, its receptive field grows along
    its chain of convolutions). regressor: also the box layer of a net that has one (P-Net's
    conv4_2, a 1x1 convolution beside the class layer on the same map: the layers() list holds
    the class path only; a pyramid net's box outputs, one row per level)."""
    x = torch.empty(1, 3, *size, device="meta")
    rf, jump = 1, 1
    rows: list[LayerInfo] = []
    taps: dict[int, tuple] = {}  # cumulative stride -> (map, rf, jump) after the last row there
    for name, kind, mod, fn, k, s in m.layers():
        c_in = x.shape[1]
        x_in, (macs, x) = x, _macs(fn, x)
        params = sum(t.numel() for t in mod.parameters()) if mod is not None else 0
        pad = (k - 1) // 2 if getattr(m, "padding", False) else 0
        rf_in, jump_in = rf, jump
        for span, step in _chain(mod if kind == "block" else None, k, s):
            rf, jump = rf + (span - 1) * jump, jump * step
        rows.append(LayerInfo(name, kind, x.shape[1] if kind != "pool" else c_in, k, s, pad,
                              tuple(x.shape[-2:]), params, macs, rf, jump))
        taps[jump] = (x, rf, jump)
    if is_pyramid(m):
        return rows + _pyramid_rows(m, [taps[s] for s in m.strides], regressor)
    box = getattr(m, "conv4_2", None) if regressor and getattr(m, "has_regressor", False) else None
    if box is not None:  # beside the last (class) layer: same input, same receptive field
        k, s = box.kernel_size[0], box.stride[0]
        macs, out = _macs(box, x_in)
        rows.append(LayerInfo("conv4_2 (regressor)", "fc", box.out_channels, k, s, 0,
                              tuple(out.shape[-2:]), sum(t.numel() for t in box.parameters()),
                              macs, rf_in + (k - 1) * jump_in, jump_in * s))
    return rows


def _conv_row(name: str, kind: str, conv: nn.Conv2d, x, rf: int, jump: int,
              channels: slice | None = None) -> tuple[LayerInfo, object, int]:
    """One convolution's row on input x (meta), or the output channels `channels` of it (a
    1x1 conv whose outputs are two heads): (row, output, receptive field after it)."""
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    out = conv(x)
    c_out = conv.out_channels
    part = range(c_out)[channels] if channels is not None else range(c_out)
    n = len(part)
    params = n * (conv.in_channels // conv.groups) * k * k + (n if conv.bias is not None else 0)
    macs = out.shape[-2] * out.shape[-1] * n * (conv.in_channels // conv.groups) * k * k
    rf_out = rf + (k - 1) * jump
    return (LayerInfo(name, kind, n, k, s, p, tuple(out.shape[-2:]), params, macs, rf_out,
                      jump * s), out, rf_out)


def _pyramid_rows(m, taps: list[tuple], regressor: bool) -> list[LayerInfo]:
    """A pyramid net's neck and heads after its backbone (taps: (map, receptive field, jump)
    at each level's stride, finest first), read off its modules: the lateral 1x1 convolutions,
    the top-down then bottom-up resize-and-add steps (no parameters; a bilinear resize reads
    2x2 cells of the map it resizes (the row's kernel 2), so the sum's receptive field is the larger of the two
    inputs', that one's grown by one of its cells), then each level's head: its 3x3
    convolution and its 1x1 output, split into the class scores and (regressor) the box values
    (one convolution in the net: its first len(names) outputs are the classes)."""
    rows: list[LayerInfo] = []
    maps, rfs, jumps = [], [], []
    for (f, rf, jump), lat, s in zip(taps, m.lateral, m.strides):
        row, p, _ = _conv_row(f"neck lateral 1x1, stride {s}", "conv", lat, f, rf, jump)
        rows.append(row)
        maps.append(p)
        rfs.append(rf)
        jumps.append(jump)
    n = len(maps)
    # PAN: top-down (coarse into fine), then bottom-up (fine into coarse).
    steps = [(i + 1, i, "top-down") for i in reversed(range(n - 1))] + \
            [(i, i + 1, "bottom-up") for i in range(n - 1)]
    for src, dst, way in steps:
        rfs[dst] = max(rfs[dst], rfs[src] + jumps[src])
        verb = "up" if src > dst else "down"
        rows.append(LayerInfo(
            f"neck {way}: P{dst + 3} += {verb}(P{src + 3}), stride {m.strides[dst]}", "resize",
            maps[dst].shape[1], 2, 1, 0, tuple(maps[dst].shape[-2:]), 0, 0, rfs[dst], jumps[dst]))
    n_cls = len(m.names)
    for i, (head, p, s) in enumerate(zip(m.head, maps, m.strides)):
        row, h, rf = _conv_row(f"head {s}: 3x3 conv", "conv", head.conv, p, rfs[i], jumps[i])
        rows.append(row)
        row, _, _ = _conv_row(f"head {s}: {n_cls} class scores", "fc", head.out, h, rf,
                              jumps[i], slice(0, n_cls))
        rows.append(row)
        if regressor:
            row, _, _ = _conv_row(f"head {s}: box values (regressor)", "fc", head.out, h, rf,
                                  jumps[i], slice(n_cls, None))
            rows.append(row)
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
    """Multiply-adds of dense evaluation (trunk once, classifier over every offset map). A
    pyramid net: the whole net once over the input (all its levels; it has no offsets)."""
    return _dense_macs(cfg, tuple(int(v) for v in size), bool(fine))


@_kept(maxsize=512)
def _dense_macs(cfg: ModelConfig, size: tuple[int, int], fine: bool) -> int:
    m = meta_model(cfg)
    if isinstance(cfg, ZooConfig):  # counted on the dense computation itself, as run_views runs it
        x = torch.empty(1, 3, *size, device="meta")
        if is_pyramid(m):
            return _macs(m.dense, x)[0]
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


def crop_macs(cfg: ModelConfig, n_windows: int, level: int = 0) -> int:
    """Multiply-adds of evaluating n_windows crops one by one (trunk + head per window). A
    pyramid net: windows of that level, each a crop of the level's window side
    (window_sides) run through the whole net."""
    return n_windows * _window_macs(cfg, int(level))


@_kept(maxsize=64)
def _window_macs(cfg: ModelConfig, level: int = 0) -> int:
    if isinstance(cfg, ZooConfig):
        m = meta_model(cfg)
        side = window_sides(m)[level]
        return _macs(m, torch.empty(1, 3, side, side, device="meta"))[0]
    return sum(r.macs for r in layer_table(cfg) if r.kind in ("conv", "fc"))


def cost_rows(cfg: ModelConfig, image_hw: tuple[int, int], scales, rule: str = "aspect",
              fine: bool = True) -> list[dict]:
    """Per scale (one view: flips double it): windows evaluated and the multiply-adds of dense
    evaluation (dense_macs) against evaluating each window as its own crop (crop_macs). A
    pyramid net: its windows are the cells of all its levels (a column gives them per stride),
    each level's windows cropped at that level's window side. For the other nets the same rows
    as overfeat.app.state.cost_rows."""
    from .multiscale import scale_sizes

    m = meta_model(cfg)
    sizes = scale_sizes(image_hw, m, rule)
    rows = []
    for s in scales:
        g = scale_geometry(m, sizes[s])
        row = {"scale": s + 1, "input": f"{sizes[s][0]}x{sizes[s][1]}"}
        if g.levels:
            counts = [h * w for h, w in g.levels]
            windows = sum(counts)
            crop = sum(crop_macs(cfg, n, level) for level, n in enumerate(counts))
            row["windows"] = windows
            row["windows per stride (" + "/".join(str(v) for v in m.strides) + ")"] = \
                " + ".join(f"{n:,}" for n in counts)
        else:
            windows = g.windows if fine else g.classifier[0][0] * g.classifier[0][1]
            crop = crop_macs(cfg, windows)
            row["windows"] = windows
        dense = dense_macs(cfg, sizes[s], fine)
        row.update({"dense multiply-adds": dense, "crop multiply-adds": crop,
                    "crop / dense": round(crop / dense, 2)})
        rows.append(row)
    return rows


def pyramid_scale_rows(cfg: ZooConfig, image_hw: tuple[int, int], rule: str = "aspect") -> list[dict]:
    """A pyramid net's Table 5 analogue for this image: per scale, the input and each level's
    output map (cells), its window side in the input and in the original image, and the
    windows of all levels."""
    from .multiscale import scale_sizes

    m = meta_model(cfg)
    sides = window_sides(m)
    rows = []
    for s, size in enumerate(scale_sizes(image_hw, m, rule)):
        g = scale_geometry(m, size)
        f = min(size[0] / image_hw[0], size[1] / image_hw[1])
        row = {"scale": s + 1, "input": f"{size[0]}x{size[1]}"}
        for (h, w), stride, side in zip(g.levels, m.strides, sides):
            row[f"stride {stride} map"] = f"{h}x{w}"
            row[f"stride {stride} window (px, original)"] = round(side / f)
        row["windows (all strides)"] = g.windows
        rows.append(row)
    return rows


def output_fields(cfg: ModelConfig | ZooConfig) -> list[tuple[int, int]]:
    """(stride, receptive field) of each output map's class layer, in px at the input: one for
    an OverFeat-like net (its last classifier layer), one per level for a pyramid net."""
    rows = [r for r in layer_table(cfg) if not r.name.endswith(" (regressor)")]
    if is_pyramid(meta_model(cfg)):
        rows = [r for r in rows if r.name.endswith(" class scores")]
        return [(r.jump, r.receptive_field) for r in rows]
    return [(rows[-1].jump, rows[-1].receptive_field)]


def neck_fields(cfg: ModelConfig | ZooConfig) -> list[tuple[int, int]]:
    """(receptive field, jump) of each level's map after a pyramid net's neck (finest first):
    the last neck row at that level's stride (its last resize-and-add, else its lateral 1x1
    convolution), the map its head reads. [] for a net without a pyramid."""
    m = meta_model(cfg)
    if not is_pyramid(m):
        return []
    rows = layer_table(cfg)
    neck = [r for r in rows if r.kind == "resize" or r.name.startswith("neck ")]
    out = []
    for s in m.strides:
        last = [r for r in neck if r.jump == s][-1]
        out.append((last.receptive_field, last.jump))
    return out


def offset_layer(cfg: ModelConfig | ZooConfig) -> LayerInfo | None:
    """The layer whose stride the offset trick removes (paper section 3.3): the last layer with
    a stride above 1 before the classifier (OverFeat: its last max pool; EfficientNet: block
    11's depthwise convolution; P-Net: its max pool), as a row of layer_table. None for a
    model without offset pooling (k = 1: a pyramid net)."""
    m = meta_model(cfg)
    if m.k <= 1:
        return None
    rows = [r for r in layer_table(cfg) if r.stride > 1]
    return rows[-1] if rows else None


__all__ = ["ScaleGeometry", "LayerInfo", "scale_geometry", "layer_table",
           "dense_macs", "crop_macs", "meta_model", "offsets", "human_count",
           "readable_cost_rows", "cost_rows", "pyramid_scale_rows", "window_sides",
           "offset_layer", "is_pyramid", "output_fields", "neck_fields"]
