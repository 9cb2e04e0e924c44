"""Multi-scale dense evaluation (paper §3.3) and box accumulation (paper §4.2, §5).

At each scale the trunk runs once over the whole resized image; the classifier and the regressor,
being convolutions, slide over every offset-pooled map (overfeat.offsets): one output cell per
221x221 window, no cropping. analyze() returns one Analysis holding everything a visualisation
needs per scale and flip; Analysis.merge() runs the greedy merge on its boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from . import boxes as box_ops
from .merge import DEFAULT_AVERAGE, MergeResult, check_stop, merge
from .models.overfeat import OverFeat
from .offsets import cell_window, deinterleave

SCALE_RULES = ("aspect", "paper")


def snap(x: float, base: int, step: int) -> int:
    """Nearest size of the form base + step*n (n >= 0): sizes the fine grid tiles exactly."""
    return base + step * max(0, round((x - base) / step))


def scale_sizes(image_hw: tuple[int, int], model: OverFeat, rule: str = "aspect") -> list[tuple[int, int]]:
    """The six input sizes (height, width) for an image of size image_hw.

    rule="paper": the paper's table as is (245x245 ... 461x569 for the accurate model),
        whatever the image's aspect: the image is stretched to each size.
    rule="aspect" (default; the paper leaves it open (?)): resize the shorter side to the
        paper's shorter side at that scale, keep the aspect ratio, then snap each side to the
        nearest window + stride*n (221 + 12n for the accurate model) so the fine map tiles the
        image exactly. Sides are never below one window.
    """
    if rule not in SCALE_RULES:
        raise ValueError(f"unknown scale rule {rule!r}; expected one of {SCALE_RULES}")
    # Sides snap to window + stride * n (the fine map tiles the image); a pyramid net (NanoDet)
    # declares its own grid instead: multiples of 32.
    base = getattr(model, "size_base", model.window)
    step = getattr(model, "size_step", model.prepool_stride)
    h, w = image_hw
    if h < 1 or w < 1:
        raise ValueError(f"image must have at least one pixel, got {h}x{w}")
    sizes = []
    for sh, sw in model.scales:
        if rule == "paper":
            sizes.append((max(sh, base), max(sw, base)))
            continue
        short = min(sh, sw)
        f = short / min(h, w)
        sizes.append((snap(h * f, base, step), snap(w * f, base, step)))
    return sizes


N_SCALES = 6  # the paper's six input sizes (Table 5)
ALL_SCALES = tuple(range(N_SCALES))  # their indices, 0 = the smallest


@dataclass
class Settings:
    """What to evaluate: the knobs the app exposes (paper §3.3, §4.3)."""

    scales: tuple[int, ...] = ALL_SCALES  # indices into the six scales
    flips: bool = True  # also evaluate the horizontally flipped image (doubles the views)
    fine: bool = True  # offset pooling (fine stride); False = the coarse map only
    rule: str = "aspect"  # how an image becomes each scale's size, see scale_sizes
    top_k: int = 1  # (a) of the merge: classes per scale whose boxes are kept
    min_score: float = 0.0  # boxes of windows below this class probability are dropped

    def __post_init__(self) -> None:
        self.scales = tuple(sorted(set(int(s) for s in self.scales)))
        if not self.scales:
            raise ValueError("choose at least one scale")
        if any(not 0 <= s < N_SCALES for s in self.scales):
            raise ValueError(f"scale indices must be in 0..{N_SCALES - 1}, got {self.scales}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")


@dataclass
class View:
    """One scale and flip of the dense evaluation. Maps are [C, H, W] for one image.

    Coordinates: the fine map's cell (r, c) sees the window whose top-left corner is
    (stride*c, stride*r) in the (flipped) resized image; windows and boxes are also given in
    original-image pixels, unflipped.
    """

    scale: int  # index into the six scales
    flip: bool
    size: tuple[int, int]  # resized (height, width)
    factor: tuple[float, float]  # (fy, fx): resized / original
    stride: int  # pixels between fine-map cells in the resized image (12 accurate, 36 coarse)
    features: Tensor | None  # [C, H, W] pre-pool map (last conv after ReLU)
    pooled: list[Tensor] | None  # k*k maps [C, h, w], ordered as offsets(k)
    class_maps: list[Tensor]  # k*k maps [K, h, w] of class probabilities
    fine: Tensor  # [K, Hf, Wf] interleaved class probabilities (== class_maps[0] if not fine)
    windows: Tensor  # [Hf, Wf, 4] window of each cell, original-image pixels
    boxes: Tensor  # [Hf, Wf, R, 4] regressed boxes, original pixels (R = 1 shared, else K_obj)
    # A pyramid net (NanoDet) gives one View per output level of each scale and flip: level 0
    # is the finest (stride 8), and the View's stride is that level's. 0 for the other nets.
    level: int = 0

    @property
    def coarse(self) -> Tensor:
        """The map without offsets: offset (0, 0)."""
        return self.class_maps[0]

    @property
    def spatial_max(self) -> Tensor:
        """[K] per-class maximum over the (fine) map: the scale's vote (paper §3.3)."""
        if self.fine.shape[-1] * self.fine.shape[-2] == 0:
            return self.fine.new_zeros(self.fine.shape[0])
        return self.fine.flatten(1).amax(dim=1)


def view_votes(views: list[View]) -> Tensor:
    """[V', K] the vote of each (scale, flip): its spatial maximum per class, the maximum over
    a pyramid's levels (a class seen at any level of one input counts once)."""
    groups: dict[tuple[int, bool], list[Tensor]] = {}
    for v in views:
        groups.setdefault((v.scale, v.flip), []).append(v.spatial_max)
    return torch.stack([torch.stack(g).amax(dim=0) for g in groups.values()])


@dataclass
class BoxTable:
    """Raw regressor boxes with provenance (paper §4.2): one row per (window, class) kept.

    boxes (Tensor[N, 4]) and windows (Tensor[N, 4]) are x1 y1 x2 y2 in original-image pixels.
    """

    boxes: Tensor
    scores: Tensor  # [N] class probability of the window
    labels: Tensor  # [N] class index
    scale: Tensor  # [N] scale index
    flip: Tensor  # [N] bool
    offset: Tensor  # [N] offset index into offsets(k), -1 when fine stride is off (or no offsets)
    row: Tensor  # [N] fine-map cell
    col: Tensor
    windows: Tensor
    level: Tensor  # [N] pyramid level (0 = stride 8 for NanoDet; always 0 for the other nets)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def select(self, mask: Tensor) -> "BoxTable":
        return BoxTable(**{k: v[mask] for k, v in self.__dict__.items()})

    @staticmethod
    def cat(tables: list["BoxTable"]) -> "BoxTable":
        if not tables:
            z = torch.zeros(0)
            return BoxTable(z.reshape(0, 4), z, z.long(), z.long(), z.bool(), z.long(), z.long(),
                            z.long(), z.reshape(0, 4), z.long())
        return BoxTable(**{k: torch.cat([getattr(t, k) for t in tables]) for k in tables[0].__dict__})


@dataclass
class Analysis:
    """Everything analyze() computed for one image."""

    image_size: tuple[int, int]  # original (height, width)
    class_names: tuple[str, ...]
    object_classes: list[int]  # class indices that are objects (background excluded)
    settings: Settings
    sizes: list[tuple[int, int]]  # the six scale sizes for this image (all six, even if unused)
    views: list[View]
    scale_scores: dict[int, Tensor]  # scale -> [K] spatial max averaged over that scale's flips
    scores: Tensor  # [K] final class scores: mean of the views' spatial maxima (paper §3.3)
    top_classes: dict[int, list[int]]  # scale -> C_s, the top-k object classes (merge step a)
    table: BoxTable  # merge steps (b)-(c): the union of B_s over scales
    k: int  # offset pool size
    window: int  # network input window (221 accurate)

    def top(self, n: int = 5) -> list[tuple[int, float]]:
        """The n best object classes by final score: [(class, score)]."""
        obj = torch.tensor(self.object_classes)
        s = self.scores[obj]
        order = torch.argsort(s, descending=True, stable=True)[:n]
        return [(int(obj[i]), float(s[i])) for i in order]

    def merge(self, score: str = "corrected", threshold: float | None = None,
              by_class: bool = True, average: str = DEFAULT_AVERAGE, stop=None) -> MergeResult:
        """The greedy merge of this analysis' raw boxes; its final boxes clipped to the image
        (a window's regressed box near the border can reach past it; the trace is not clipped).
        stop: see merge.merge."""
        t = self.table
        r = merge(t.boxes, t.scores, t.labels, score=score, threshold=threshold,
                  by_class=by_class, average=average, stop=stop)
        r.final = r.final.clip(self.image_size)
        r.final.score = view_score(t, r.final.members, self.n_views)
        return r

    @property
    def n_views(self) -> int:
        """The number of (scale, flip) inputs: what view_score averages over."""
        return len(self.settings.scales) * (2 if self.settings.flips else 1)


def view_score(table: "BoxTable", members: list[list[int]], n_views: int) -> Tensor:
    """[N] a probability-like score for each merged box (project choice; the paper ranks by the
    summed confidence, which grows with the number of views, windows and flips): for each
    (scale, flip) input, the best class probability among the box's member windows from it (0
    where none), averaged over the n_views inputs. 1.0: every view saw the object with
    certainty; 0.5: half the views saw it, or all of them half sure."""
    out = torch.zeros(len(members), dtype=torch.float64)
    if not members or n_views < 1:
        return out
    view = (table.scale * 2 + table.flip.long()).tolist()
    sc = table.scores.double().tolist()
    for i, m in enumerate(members):
        best: dict[int, float] = {}
        for j in m:
            best[view[j]] = max(best.get(view[j], 0.0), sc[j])
        out[i] = sum(best.values()) / n_views
    return out


def _resize(img: Tensor, size: tuple[int, int]) -> Tensor:
    """[3, H, W] 0..255 -> [3, h, w] with bilinear antialiased resampling."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    return F.interpolate(img[None], size=size, mode="bilinear", antialias=True,
                         align_corners=False)[0]


def _image_tensor(image: Image.Image | Tensor) -> Tensor:
    from .images import to_tensor

    if isinstance(image, Image.Image):
        return to_tensor(image)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an RGB image tensor [3, H, W], got {tuple(image.shape)}")
    return image.float()


@torch.no_grad()
def run_view(model: OverFeat, img: Tensor, size: tuple[int, int], flip: bool, fine: bool,
             keep_maps: bool = True) -> dict:
    """Dense evaluation of one resized (and maybe flipped) image: a dict of View fields in
    resized-image pixels (windows and boxes not yet mapped to the original image)."""
    return run_views(model, img, size, (flip,), fine, keep_maps)[0]


@torch.no_grad()
def run_views(model: OverFeat, img: Tensor, size: tuple[int, int], flips: tuple[bool, ...],
              fine: bool, keep_maps: bool = True) -> list[dict]:
    """run_view for several flips of one size at once: the flips go through the network as one
    batch (measured ~25% faster than one by one for the ImageNet net on this CPU)."""
    x = _resize(img, size)
    x = torch.stack([x.flip(-1) if f else x for f in flips])  # [F, 3, h, w]
    if getattr(model, "pyramid", False):
        return _pyramid_views(model, x, keep_maps)
    f = model.features(model.normalize(x))  # [F, C, H, W] pre-pool map
    k = model.k
    span = (k * (model.fc_kernel - 1) + 1) if fine else model.fc_kernel
    if fine:
        # Paper section 3.3 computed the fast way: pool with stride 1, then the heads with every
        # later spatial op dilated by k. Offset (dx, dy)'s pooled map and classifier map are
        # the slices [dy::k, dx::k] of these (tests check this against offset_pool + interleave).
        p1 = model.pool_fine(f)  # [F, C, H', W'] (H-k+1 for a max pool)
        dil, stride = k, model.prepool_stride
    else:
        p1 = model.pool(f)
        dil, stride = 1, model.stride
    if p1.shape[-2] < span or p1.shape[-1] < span:
        raise ValueError(f"input {size[0]}x{size[1]} is smaller than one {model.window}x"
                         f"{model.window} window")
    fine_maps = torch.softmax(model.classify(p1, dilation=dil), dim=1)  # [F, K, Hf, Wf]
    reg = model.regress(p1, dilation=dil)  # [F, 4R, Hf, Wf], or None: no regressor
    Hf, Wf = fine_maps.shape[-2:]
    rows = torch.arange(Hf, dtype=torch.float32)[:, None].expand(Hf, Wf)
    cols = torch.arange(Wf, dtype=torch.float32)[None, :].expand(Hf, Wf)
    win = torch.stack(cell_window(rows, cols, stride, model.window), dim=-1)  # [Hf,Wf,4]
    out = []
    for i in range(len(flips)):
        fm = fine_maps[i]
        if reg is None:
            bx = win.new_zeros(Hf, Wf, 0, 4)
        else:
            t = reg[i].permute(1, 2, 0).reshape(Hf, Wf, -1, 4)  # [Hf, Wf, R, 4]
            bx = box_ops.decode(t, win[:, :, None, :].expand_as(t))
            # An (untrained) regressor may swap edges; order them so every box is x1 <= x2, y1 <= y2.
            bx = torch.cat([torch.minimum(bx[..., :2], bx[..., 2:]),
                            torch.maximum(bx[..., :2], bx[..., 2:])], -1)
        if fine:
            pooled = deinterleave(p1[i], k) if keep_maps else None
            probs = deinterleave(fm, k)
        else:
            pooled = [p1[i]] if keep_maps else None
            probs = [fm]
        out.append({"features": f[i] if keep_maps else None, "pooled": pooled,
                    "class_maps": probs, "fine": fm, "windows": win, "boxes": bx,
                    "stride": stride})
    return out


def _pyramid_views(model, x: Tensor, keep_maps: bool) -> list[dict]:
    """A pyramid net's dense evaluation of [F, 3, h, w] (flips as a batch): one dict per flip
    and level, finest level first. No offsets: each level's map is already its finest (the
    neck reads the stride-8 map off an earlier layer instead). The class probabilities are the
    net's own sigmoids (one per class, not a softmax over classes: a cell may see no object)."""
    from .models.nanodet import decode, windows

    levels = model.dense(model.normalize(x))
    out = []
    for i in range(x.shape[0]):
        for level, ((probs, dist), s) in enumerate(zip(levels, model.strides)):
            h, w = probs.shape[-2:]
            out.append({"features": None, "pooled": None, "class_maps": [probs[i]],
                        "fine": probs[i], "windows": windows(h, w, s),
                        "boxes": decode(dist[i], s)[:, :, None, :], "stride": s,
                        "level": level, "flip_index": i})
    return out


def _to_original(b: Tensor, size: tuple[int, int], factor: tuple[float, float], flip: bool) -> Tensor:
    """[..., 4] boxes in (flipped) resized pixels -> original-image pixels."""
    x1, y1, x2, y2 = b.unbind(-1)
    if flip:  # mirror about the resized image's width
        x1, x2 = size[1] - x2, size[1] - x1
    fy, fx = factor
    return torch.stack([x1 / fx, y1 / fy, x2 / fx, y2 / fy], dim=-1)


@torch.no_grad()
def analyze(model: OverFeat, image: Image.Image | Tensor, settings: Settings | None = None,
            keep_maps: bool = True, stop=None) -> Analysis:
    """Multi-scale dense evaluation of one RGB image (PIL, or Tensor[3, H, W] in 0..255).
    stop: None, or a function asked before each scale; when it returns True, merge.Stopped is
    raised (the app's background work stops within one scale of a student's click)."""
    settings = settings or Settings()
    was_training = model.training
    model.eval()
    img = _image_tensor(image)
    H, W = img.shape[-2:]
    sizes = scale_sizes((H, W), model, settings.rule)
    views: list[View] = []
    try:
        for s in settings.scales:
            check_stop(stop)
            size = sizes[s]
            factor = (size[0] / H, size[1] / W)
            flips = (False, True) if settings.flips else (False,)
            for i, d in enumerate(run_views(model, img, size, flips, settings.fine, keep_maps)):
                flip = flips[d.get("flip_index", i)]
                views.append(View(
                    scale=s, flip=flip, size=size, factor=factor, stride=d["stride"],
                    features=d["features"], pooled=d["pooled"], class_maps=d["class_maps"],
                    fine=d["fine"], windows=_to_original(d["windows"], size, factor, flip),
                    boxes=_to_original(d["boxes"], size, factor, flip), level=d.get("level", 0)))
    finally:  # also when stop() ends it
        if was_training:
            model.train()

    return _assemble((int(H), int(W)), model.names, model.object_classes, settings, sizes, views,
                     model.k, model.window)


def _assemble(image_size: tuple[int, int], class_names: tuple[str, ...], object_classes: list[int],
              settings: Settings, sizes: list[tuple[int, int]], views: list[View], k: int,
              window: int) -> Analysis:
    """Scores, the top classes per scale and the boxes (merge steps (a)-(c)) from the views."""
    # paper §3.3: spatial max per class, averaged over scales and flips
    scores = view_votes(views).mean(dim=0)
    obj = torch.tensor(object_classes)
    per_class = bool(views[0].boxes.shape[2] > 1)
    has_boxes = bool(views[0].boxes.shape[2] > 0)
    scale_scores, top_classes, tables = {}, {}, []
    for s in settings.scales:
        vs = [v for v in views if v.scale == s]
        scale_scores[s] = view_votes(vs).mean(dim=0)
        kk = min(settings.top_k, len(obj))
        top = obj[torch.argsort(scale_scores[s][obj], descending=True, stable=True)[:kk]]
        top_classes[s] = [int(c) for c in top]
        for v in vs if has_boxes else ():
            tables.append(_view_boxes(v, top_classes[s], per_class, settings.fine, k,
                                      settings.min_score))
    return Analysis(
        image_size=image_size, class_names=class_names, object_classes=object_classes,
        settings=settings, sizes=sizes, views=views, scale_scores=scale_scores, scores=scores,
        top_classes=top_classes, table=BoxTable.cat(tables), k=k, window=window)


def derive(full: Analysis, settings: Settings) -> Analysis:
    """The Analysis analyze(model, image, settings) would return, cut out of `full` (an
    analysis of the same image and model at all scales with flips) without running the network.

    Scores, top classes and boxes are recomputed exactly as analyze() does from the views that
    the settings keep; fine stride and the scale rule change the views, so they must match.
    """
    fs = full.settings
    if settings.fine != fs.fine or settings.rule != fs.rule:
        raise ValueError(f"fine={settings.fine}, rule={settings.rule!r} differ from the full "
                         f"analysis (fine={fs.fine}, rule={fs.rule!r}); run analyze() again")
    views = [v for v in full.views if v.scale in settings.scales and (settings.flips or not v.flip)]
    missing = set(settings.scales) - {v.scale for v in views}
    if missing or (settings.flips and not fs.flips):
        raise ValueError(f"the full analysis lacks scales {sorted(missing)} or flips")
    return _assemble(full.image_size, full.class_names, full.object_classes, settings,
                     full.sizes, views, full.k, full.window)


def _view_boxes(v: View, classes: list[int], per_class: bool, fine: bool, k: int,
                min_score: float) -> BoxTable:
    """Merge step (b) for one view: the boxes of every window for each class in C_s."""
    Hf, Wf = v.fine.shape[-2:]
    rows = torch.arange(Hf)[:, None].expand(Hf, Wf).flatten()
    cols = torch.arange(Wf)[None, :].expand(Hf, Wf).flatten()
    off = (rows % k) * k + (cols % k) if fine and k > 1 else torch.full_like(rows, -1)
    # For a flipped view, offset and cell refer to the flipped image's grid (what the network
    # saw); windows and boxes are already mapped back to the unflipped original.
    parts = []
    for c in classes:
        sc = v.fine[c].flatten()
        r = c if per_class else 0
        bx = v.boxes[:, :, r, :].reshape(-1, 4)
        keep = sc >= min_score
        n = int(keep.sum())
        parts.append(BoxTable(
            boxes=bx[keep], scores=sc[keep], labels=torch.full((n,), c, dtype=torch.long),
            scale=torch.full((n,), v.scale, dtype=torch.long),
            flip=torch.full((n,), v.flip, dtype=torch.bool), offset=off[keep], row=rows[keep],
            col=cols[keep], windows=v.windows.reshape(-1, 4)[keep],
            level=torch.full((n,), v.level, dtype=torch.long)))
    return BoxTable.cat(parts)
