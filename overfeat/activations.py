"""Inside the network: what each layer computes for one image (the Architecture page's view).

`compute(model, image)` runs the model ONCE on one scale of the image (unflipped, coarse
stride: the plain network, every layer as its modules compute it) and keeps, per layer, what a
page needs to draw it: the map's shape, its stride and receptive field (read off
overfeat.geometry), statistics, and small uint8 thumbnails of its most active channels. Never
the raw float maps: a thumbnail is at most THUMB_SIDE px a side, so one image's view of a model
is a few MB at most (EfficientNet's 22 layers) and its figures tens of KB.

The layers, for every model the same way (its capabilities, not its name):
- a net with `layers()` (EfficientNet, P-Net, NanoDet's backbone): those (name, fn) in turn;
- the OverFeat net: its trunk's modules, one row per convolution (with its batch norm and
  ReLU) or max pool, then its last max pool (the one done with offsets elsewhere), then the
  classifier's layers;
- a pyramid net (`pyramid`): after the backbone, the neck's maps (one per stride, P3-P5 for
  strides 8, 16, 32) and each level's class scores (its `dense` output).
The last layer(s) are the class outputs: probabilities (softmax over the classes, or a pyramid
net's sigmoids), ranked by their spatial maximum (the scale's vote) over the object classes;
every other layer's channels are ranked by their mean activation over the map.

Which scale: `default_scale`, the middle one of the six (index 2, "scale 3": for a 640x480 photo
317x425 px for OverFeat, 320x416 for NanoDet); the page lets one choose another.

`trace_cell` gives the input window behind one cell of an output map: offsets.cell_window for
a net with one output map (its coarse stride and window), a pyramid net's nominal window (the
square of 5 strides centred on the cell, as multiscale gives its views), in the resized input
and in the original image's pixels.

`offset_strip` and `offset_differences` dissect the offset trick on one View of an analysis
(paper Fig. 3): one band of the pre-pool map, what each offset keeps of the stride-1 pooled map,
and how far each offset's class map is from offset (0, 0)'s.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from . import geometry
from .multiscale import View, _image_tensor, _resize, scale_sizes
from .offsets import cell_window, interleave, offsets

THUMB_SIDE = 64  # px: the longest side of a channel's thumbnail
TOP_CHANNELS = 36  # channels kept per layer, most active first (the page's grid: 6 x 6)
STRIP_CHANNELS = 4  # of them in the layer strip


def default_scale(model) -> int:
    """The scale the view runs on unless one is chosen: the middle of the model's scales (index
    2 of six, "scale 3"), large enough that the maps show where things are, one pass cheap."""
    return (len(model.scales) - 1) // 2


@dataclass(frozen=True)
class LayerView:
    """One layer's output for the image, reduced to what a page draws."""

    name: str  # as the layer tables name it ("conv3", "block11.depthwise (offsets)", "neck P3")
    group: str  # "trunk", "head" (the classifier's hidden layers), "neck", "output"
    kind: str  # conv, pool, block, subsample, fc, neck, classes
    shape: tuple[int, int, int]  # channels, height, width of the full map
    stride: int  # input pixels between neighbouring cells (cumulative stride, "jump")
    receptive_field: int  # input pixels one cell could see (geometry.layer_table)
    channels: tuple[int, ...]  # the top channels, most active first
    ranking: tuple[float, ...]  # their ranking value (mean activation, or a class's spatial max)
    ranked_by: str  # "mean activation" or "spatial maximum"
    labels: tuple[str, ...]  # "channel 12", or a class's name for an output layer
    thumbs: np.ndarray  # uint8 [n, h, w]: each channel's map, area-averaged to <= THUMB_SIDE
    lo: tuple[float, ...]  # the value each thumbnail's 0 stands for (its own minimum) ...
    hi: tuple[float, ...]  # ... and its 255 (its maximum): each stretched to its own range
    mean: float  # over the whole map (all channels)
    minimum: float
    maximum: float
    active: float  # fraction of the map's values above 0
    level: int = 0  # a pyramid net's level (0 the finest) for neck and output layers
    probs: np.ndarray | None = None  # an output layer: [h, w] float32, the chosen class's map

    @property
    def nbytes(self) -> int:
        return int(self.thumbs.nbytes + (self.probs.nbytes if self.probs is not None else 0))


@dataclass(frozen=True)
class Activations:
    """compute()'s result: the layers of one forward pass on one scale of one image."""

    scale: int  # index into the model's scales
    n_scales: int
    size: tuple[int, int]  # the input, (height, width) px
    factor: tuple[float, float]  # (fy, fx): input / original
    image_size: tuple[int, int]  # the original image, (height, width)
    pyramid: bool
    window: int  # the net's window (a pyramid net: its finest level's nominal window)
    sides: tuple[int, ...]  # each output map's window side, input px (geometry.window_sides)
    cls: int  # the class whose map the output layers keep in `probs`: this scale's top class
    class_name: str
    layers: tuple[LayerView, ...]
    seconds: float = 0.0  # the forward pass and the thumbnails, wall clock
    class_names: tuple[str, ...] = field(default=(), repr=False)

    @property
    def outputs(self) -> list[int]:
        """Indices into layers of the class outputs, finest level first."""
        return [i for i, lv in enumerate(self.layers) if lv.group == "output"]

    @property
    def nbytes(self) -> int:
        return sum(lv.nbytes for lv in self.layers)


@dataclass(frozen=True)
class Trace:
    """The input window behind one cell of an output map."""

    layer: int  # index into Activations.layers
    row: int
    col: int
    stride: int
    side: int  # window side, input px
    window: tuple[float, float, float, float]  # x1, y1, x2, y2 in the input (resized) px
    original: tuple[float, float, float, float]  # the same in the original image's px
    prob: float  # the chosen class's probability at the cell
    receptive_field: int
    nominal: bool  # a pyramid net's window: nominal (the cell sees its receptive field)


# --- the forward pass, layer by layer ----------------------------------------------------------
@dataclass(frozen=True)
class _Stage:
    name: str
    row: str  # the layer_table row giving its stride and receptive field ("" = look up by level)
    group: str
    kind: str
    level: int = 0


def _overfeat_rows(model) -> list[tuple[str, str, str, str, list]]:
    """(name, row name, group, kind, modules) of an OverFeat net: one row per convolution (with
    the batch norm and ReLU after it) or max pool of the trunk, its last max pool (at the coarse
    stride; done with offsets on the Offsets page), then the classifier's convolutions (with
    their ReLU; dropout is the identity in evaluation)."""
    rows: list = []
    for part, group in ((model.features, "trunk"), (None, "trunk"), (model.classifier, "head")):
        if part is None:
            name = f"pool{len(model.cfg.geo.trunk)}"
            rows.append((f"{name} (offsets)", name, group, "pool", [model.pool]))
            continue
        for name, mod in part.named_children():
            if isinstance(mod, (nn.Conv2d, nn.MaxPool2d)):
                kind = "pool" if isinstance(mod, nn.MaxPool2d) else (
                    "fc" if name.startswith("fc") else "conv")
                rows.append((name, name, group, kind, [mod]))
            else:
                rows[-1][4].append(mod)
    return rows


def _stages(model, x: Tensor):
    """(stage, output [1, C, H, W]) of each layer of the plain network on normalised x, in
    order; the class output(s) last, as probabilities (softmax over the classes; a pyramid
    net's own sigmoids)."""
    x0 = x
    if not hasattr(model, "layers"):  # the OverFeat net: its modules
        rows = _overfeat_rows(model)
        for i, (name, row, group, kind, mods) in enumerate(rows):
            for mod in mods:
                x = mod(x)
            if i == len(rows) - 1:
                yield _Stage(f"{name}: class scores", row, "output", "classes"), \
                    torch.softmax(x, dim=1)
            else:
                yield _Stage(name, row, group, kind), x
        return
    layers = model.layers()
    pyramid = geometry.is_pyramid(model)
    taps: dict[int, Tensor] = {}
    jump = 1
    for i, (name, kind, _mod, fn, _k, s) in enumerate(layers):
        x = fn(x)
        jump *= s
        taps[jump] = x  # a pyramid's levels: the last map at each stride
        last = i == len(layers) - 1 and not pyramid
        yield (_Stage(f"{name}: class scores", name, "output", "classes"), torch.softmax(x, dim=1)) \
            if last else (_Stage(name, name, "trunk", kind), x)
    if not pyramid:
        return
    for level, (p, s) in enumerate(zip(model.neck([taps[s] for s in model.strides]),
                                       model.strides)):
        yield _Stage(f"neck P{int(math.log2(s))}, stride {s}", "", "neck", "neck", level), p
    n = len(model.names)
    # The net's own dense output (its class probabilities), as the analysis' views hold them.
    for level, ((probs, _dist), s) in enumerate(zip(model.dense(x0), model.strides)):
        yield _Stage(f"class scores, stride {s}", "", "output", "classes", level), probs[:, :n]


def _fields(cfg) -> tuple[dict[str, tuple[int, int]], list[tuple[int, int]], list[tuple[int, int]]]:
    """(receptive field, jump) by layer_table row name; per pyramid level, those of the neck's
    map and of the class scores."""
    rows = geometry.layer_table(cfg)
    by_name = {r.name: (r.receptive_field, r.jump) for r in rows}
    return by_name, geometry.neck_fields(cfg), [(rf, j) for j, rf in geometry.output_fields(cfg)]


def layer_maps(model, image: Image.Image | Tensor, scale: int | None = None,
               rule: str = "aspect") -> list[tuple[_Stage, Tensor]]:
    """Every layer's full output [C, H, W] (float, a copy) for one scale of the image: what
    compute() reduces. For tests and for a reader of the code; the app never keeps these."""
    x, _ = _input(model, image, scale, rule)
    out = []
    with torch.no_grad():
        for stage, t in _run(model, x):
            out.append((stage, t[0].detach().clone()))
    return out


def _input(model, image, scale: int | None, rule: str) -> tuple[Tensor, dict]:
    img = _image_tensor(image)
    H, W = img.shape[-2:]
    s = default_scale(model) if scale is None else int(scale)
    sizes = scale_sizes((int(H), int(W)), model, rule)
    if not 0 <= s < len(sizes):
        raise ValueError(f"scale must be in 0..{len(sizes) - 1}, got {scale}")
    size = sizes[s]
    x = _resize(img, size)[None]
    info = {"scale": s, "n_scales": len(sizes), "size": tuple(size),
            "factor": (size[0] / H, size[1] / W), "image_size": (int(H), int(W))}
    return x, info


def _run(model, x: Tensor):
    """_stages on the normalised input."""
    return _stages(model, model.normalize(x))


# --- reducing one map to what a page draws -------------------------------------------------
def thumbnail(maps: Tensor, side: int = THUMB_SIDE) -> tuple[np.ndarray, Tensor, Tensor]:
    """[n, H, W] float maps -> (uint8 [n, h, w], lo [n], hi [n]): each map area-averaged so that
    its longest side is at most `side` (the aspect kept), then stretched to 0..255 from its own
    minimum (lo) to its maximum (hi); a constant map is all 0."""
    H, W = maps.shape[-2:]
    f = min(1.0, side / max(H, W))
    h, w = max(1, round(H * f)), max(1, round(W * f))
    t = maps.float()
    if (h, w) != (H, W):
        t = F.adaptive_avg_pool2d(t[None], (h, w))[0]
    lo = t.flatten(1).amin(dim=1)
    hi = t.flatten(1).amax(dim=1)
    span = (hi - lo).clamp_min(1e-12)[:, None, None]
    q = ((t - lo[:, None, None]) / span * 255).round().clamp(0, 255)
    q = torch.where((hi > lo)[:, None, None], q, torch.zeros_like(q))
    return q.to(torch.uint8).numpy(), lo, hi


def top_channels(values: Tensor, n: int, among: list[int] | None = None) -> list[int]:
    """The n channels with the highest values (the first of ties), among the given ones."""
    idx = torch.arange(len(values)) if among is None else torch.tensor(among, dtype=torch.long)
    order = torch.argsort(values[idx], descending=True, stable=True)[:n]
    return idx[order].tolist()


def _reduce(stage: _Stage, t: Tensor, fields, model, cls: int | None, top: int,
            side: int) -> LayerView:
    by_name, neck, outs = fields
    if stage.group == "output":
        rf, jump = outs[stage.level]
    elif stage.group == "neck":
        rf, jump = neck[stage.level]
    else:
        rf, jump = by_name[stage.row]
    if stage.kind == "classes":
        ranked_by = "spatial maximum"
        values = t.flatten(1).amax(dim=1)
        chosen = top_channels(values, top, list(model.object_classes))
        labels = tuple(model.names[c] for c in chosen)
    else:
        ranked_by = "mean activation"
        values = t.flatten(1).mean(dim=1)
        chosen = top_channels(values, top)
        labels = tuple(f"channel {c}" for c in chosen)
    thumbs, lo, hi = thumbnail(t[chosen], side)
    probs = t[cls].float().numpy().copy() if stage.kind == "classes" and cls is not None else None
    return LayerView(
        name=stage.name, group=stage.group, kind=stage.kind, shape=tuple(int(v) for v in t.shape),
        stride=int(jump), receptive_field=int(rf), channels=tuple(chosen),
        ranking=tuple(float(values[c]) for c in chosen), ranked_by=ranked_by, labels=labels,
        thumbs=thumbs, lo=tuple(lo.tolist()), hi=tuple(hi.tolist()), mean=float(t.mean()),
        minimum=float(t.min()), maximum=float(t.max()), active=float((t > 0).float().mean()),
        level=stage.level, probs=probs)


@torch.no_grad()
def compute(model, image: Image.Image | Tensor, scale: int | None = None, rule: str = "aspect",
            top: int = TOP_CHANNELS, side: int = THUMB_SIDE) -> Activations:
    """One forward pass of the plain network on scale `scale` (default_scale) of the image,
    every layer reduced to its top channels' thumbnails, shape, stride, receptive field and
    statistics (LayerView). The output layers keep the map of this scale's top object class
    (the highest spatial maximum over the output maps)."""
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    x, info = _input(model, image, scale, rule)
    fields = _fields(model.cfg)
    staged: list[tuple[_Stage, Tensor | LayerView]] = []
    outputs: list[Tensor] = []
    try:
        for stage, t in _run(model, x):
            t = t[0]
            if stage.kind == "classes":  # kept until the class is known (small maps)
                outputs.append(t)
                staged.append((stage, t))
            else:  # reduced at once: the float map is dropped before the next layer runs
                staged.append((stage, _reduce(stage, t, fields, model, None, top, side)))
    finally:
        if was_training:
            model.train()
    obj = list(model.object_classes)
    votes = torch.stack([o.flatten(1).amax(dim=1) for o in outputs]).amax(dim=0)
    cls = top_channels(votes, 1, obj)[0]
    layers = tuple(v if isinstance(v, LayerView) else _reduce(s, v, fields, model, cls, top, side)
                   for s, v in staged)
    return Activations(
        scale=info["scale"], n_scales=info["n_scales"], size=info["size"],
        factor=info["factor"], image_size=info["image_size"],
        pyramid=geometry.is_pyramid(model), window=int(model.window),
        sides=tuple(geometry.window_sides(model)), cls=cls, class_name=model.names[cls],
        layers=layers, seconds=round(time.perf_counter() - t0, 4),
        class_names=tuple(model.names))


# --- from an output cell back to the input --------------------------------------------------
def trace_cell(acts: Activations, layer: int, row: int, col: int) -> Trace:
    """The window of cell (row, col) of output layer `layer` (an index into acts.layers):
    offsets.cell_window at the map's stride and the net's window (one output map: the plain
    network's coarse map), or a pyramid net's nominal window of that level; in the input and
    in the original image (unflipped)."""
    lv = acts.layers[layer]
    if lv.group != "output":
        raise ValueError(f"layer {layer} ({lv.name}) is not a class output")
    h, w = lv.shape[-2:]
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"cell ({row}, {col}) is outside the {h}x{w} map")
    side = acts.sides[lv.level] if acts.pyramid else acts.window
    if acts.pyramid:
        from .models.nanodet import windows  # the pyramid views' windows (multiscale)

        win = tuple(float(v) for v in windows(h, w, lv.stride)[row, col])
    else:
        win = tuple(float(v) for v in cell_window(row, col, lv.stride, acts.window))
    fy, fx = acts.factor
    x1, y1, x2, y2 = win
    prob = float(lv.probs[row, col]) if lv.probs is not None else float("nan")
    return Trace(layer=layer, row=row, col=col, stride=lv.stride, side=int(side), window=win,
                 original=(x1 / fx, y1 / fy, x2 / fx, y2 / fy), prob=prob,
                 receptive_field=lv.receptive_field, nominal=acts.pyramid)


def best_cell(acts: Activations) -> tuple[int, int, int]:
    """(output layer index, row, col) of the most confident cell for acts.cls over the output
    maps (the first of ties, finest level first)."""
    best = (-1.0, acts.outputs[0], 0, 0)
    for i in acts.outputs:
        p = acts.layers[i].probs
        if p is None or p.size == 0:
            continue
        j = int(np.argmax(p))
        if float(p.flat[j]) > best[0]:
            best = (float(p.flat[j]), i, j // p.shape[1], j % p.shape[1])
    return best[1:]


# --- the offset trick in one view (paper Fig. 3) ---------------------------------------------
@dataclass(frozen=True)
class OffsetStrip:
    """A band of the pre-pool map and what the k offsets make of it (paper Fig. 3, in 1-D).

    band: the pre-pool rows row0..row0+k-1, columns col0..col0+width-1, of one channel. fine:
    the stride-1 output of the offset layer on row row0 (the k*k offset maps interleaved, each
    offset's own columns), at columns col0..col0+width-k: fine[j] reads the pre-pool columns
    col0+j .. col0+j+kernel-1 (a max pool: the k x k cells it takes the maximum of). Column c
    belongs to offset dx = c mod k: pooled[dx] lists (column, value) of offset dx's cells in the
    band, the pooled map of offset (dx, dy = row0 mod k), row row0 // k."""

    channel: int
    k: int
    kernel: int
    row0: int
    col0: int
    band: np.ndarray  # float32 [k, width]
    fine: np.ndarray  # float32 [width - k + 1]: the interleaved row
    pooled: tuple[tuple[tuple[int, float], ...], ...]  # per dx: (column, value)
    is_max: bool  # the offset layer is a max pool (its value is the band's k x k maximum)

    @property
    def dy(self) -> int:
        return self.row0 % self.k

    @property
    def pooled_row(self) -> int:
        return self.row0 // self.k


def offset_strip(view: View, channel: int, k: int, kernel: int | None = None,
                 is_max: bool = True, width: int = 24, row0: int | None = None,
                 col0: int | None = None) -> OffsetStrip:
    """The OffsetStrip of one channel of a view (an analysis with keep_maps and fine stride):
    by default the band around the channel's strongest pre-pool cell (row0: the band's first
    row), `width` columns wide (fewer on a narrower map), centred on the band's strongest
    column. The interleaved row is interleave(view.pooled): the offset
    layer at stride 1, as multiscale ran it."""
    if view.features is None or view.pooled is None or len(view.pooled) != k * k:
        raise ValueError("the view has no offset-pooled maps (run the analysis with fine stride "
                         "and keep_maps)")
    f = view.features[channel].float()
    H, W = f.shape
    if H < k or W < k:
        raise ValueError(f"the pre-pool map ({H}x{W}) is smaller than the {k}x{k} pool")
    p1 = interleave([p[channel] for p in view.pooled], k)  # [H1, W1]: stride 1
    width = max(k, min(width, W))
    if row0 is None:
        j = int(f.flatten().argmax())
        row0 = j // W - (k - 1) // 2
    row0 = max(0, min(int(row0), H - k, p1.shape[0] - 1))
    if col0 is None:  # centred on the band's strongest column
        col0 = int(f[row0:row0 + k].amax(dim=0).argmax()) - width // 2
    col0 = max(0, min(int(col0), W - width))
    band = f[row0:row0 + k, col0:col0 + width]
    cols = range(col0, min(col0 + width - k + 1, p1.shape[1]))
    fine = p1[row0, cols.start:cols.stop]
    pooled = tuple(tuple((c, float(p1[row0, c])) for c in cols if c % k == dx) for dx in range(k))
    return OffsetStrip(channel=int(channel), k=k, kernel=int(kernel or k), row0=row0, col0=col0,
                       band=band.numpy().astype(np.float32), fine=fine.numpy().astype(np.float32),
                       pooled=pooled, is_max=is_max)


def offset_differences(maps: list[Tensor], k: int) -> tuple[list[Tensor], dict]:
    """|map(dx, dy) - map(0, 0)| for each of k*k offset maps [h, w] (ordered as offsets(k): one
    class's classifier maps, or one channel's pooled maps), each cut to the cells every offset
    map has (they can be a row or column shorter), and a summary: {"largest": (value, dx, dy,
    row, col), "mean": {(dx, dy): mean difference}, "spread": [h, w] max - min over the
    offsets per cell}. Cell (j, i) of offset (dx, dy) is the window dx, dy pre-pool strides
    right of and below offset (0, 0)'s cell (j, i)."""
    if len(maps) != k * k:
        raise ValueError(f"expected {k * k} offset maps, got {len(maps)}")
    h = min(m.shape[-2] for m in maps)
    w = min(m.shape[-1] for m in maps)
    cut = [m[:h, :w].float() for m in maps]
    diffs = [(m - cut[0]).abs() for m in cut]
    largest = (0.0, 0, 0, 0, 0)
    for (dx, dy), d in zip(offsets(k), diffs):
        if d.numel() and float(d.max()) > largest[0]:
            j = int(d.flatten().argmax())
            largest = (float(d.max()), dx, dy, j // w, j % w)
    stack = torch.stack(cut)
    summary = {"largest": largest,
               "mean": {(dx, dy): float(d.mean()) if d.numel() else 0.0
                        for (dx, dy), d in zip(offsets(k), diffs)},
               "spread": stack.amax(dim=0) - stack.amin(dim=0)}
    return diffs, summary


__all__ = ["Activations", "LayerView", "OffsetStrip", "Trace", "THUMB_SIDE", "TOP_CHANNELS",
           "STRIP_CHANNELS", "best_cell", "compute", "default_scale", "layer_maps",
           "offset_differences", "offset_strip", "thumbnail", "top_channels", "trace_cell"]
