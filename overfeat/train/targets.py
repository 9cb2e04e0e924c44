"""The windows of a dense view and what stages 2 and 3 train them on (paper §3.3, §4.2, §5).

view_windows lists every window of one image view at the fine stride (12 px), exactly those of
the dense evaluation. A window is trained on when its field of view overlaps a ground-truth
box by at least 50% (POSITIVE_OVERLAP), the overlap being
    overlap(window, box) = max(coverage(window, box), coverage(box, window))
with overfeat.boxes.coverage (the part of the box inside the window): the larger of "the part
of the object the window sees" and "the part of the window the object fills", i.e.
intersection / min(area of box, area of window). The second term keeps windows that lie inside
an object larger than the window (such objects occur at the larger scales, and the dense
evaluation regresses boxes from those windows too). Its regression target is the box of the
object whose visible area in the window is largest (assign_windows); a per-class regressor
gets one target per class the window overlaps (regression_pairs). Stage 3 labels a window
background when its overlap with every object, difficult ones included, is below 0.2
(BACKGROUND_OVERLAP); between the two thresholds a window is unused.

(The stage-1 crops have their own coverage thresholds, overfeat.data.loader.POSITIVE_COVERAGE
and BACKGROUND_COVERAGE, used where the crops are drawn.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import boxes as box_ops
from ..models.overfeat import OverFeat
from ..offsets import deinterleave, offsets

# Window labels in the dense stages (see the module docstring).
POSITIVE_OVERLAP = 0.5
BACKGROUND_OVERLAP = 0.2


@dataclass
class ViewWindows:
    """All windows of one image view at the fine stride: for each window, which offset map
    and which cell of it, and the window box in the view's pixels."""

    pooled: list[Tensor]  # k*k maps [C, h, w] (ordered as offsets(k)), no gradient
    offset: Tensor  # [N] index into pooled
    j: Tensor  # [N] coarse row of the window's top-left cell in its offset map
    i: Tensor  # [N] coarse column
    boxes: Tensor  # [N, 4] window x1 y1 x2 y2 in the view's pixels
    pooled1: Tensor  # the stride-1 max pooled map [C, H'-k+1, W'-k+1]; pooled are its slices


def view_windows(model: OverFeat, x: Tensor) -> ViewWindows:
    """Trunk (no gradient) on one normalised image [3, H, W], offset max pooling, and the list
    of every window (paper §3.3, Fig. 3: window (dx, dy, j, i) has its top-left corner at
    prepool_stride * (k*i + dx, k*j + dy)). As at inference (multiscale.run_view), the k*k
    offset maps are the slices [dy::k, dx::k] of one max pooling with stride 1 (the same
    values as offset_pool)."""
    with torch.no_grad():
        f = model.features(x[None])  # [1, C, H', W']
        pooled1 = F.max_pool2d(f, kernel_size=model.k, stride=1)[0]
    pooled = deinterleave(pooled1, model.k)  # k*k x [C, h, w]
    K, k, s, win = model.fc_kernel, model.k, model.prepool_stride, model.window
    offs, js, is_ = [], [], []
    for o, (dx, dy) in enumerate(offsets(k)):
        h, w = pooled[o].shape[-2:]
        if h < K or w < K:
            continue
        jj, ii = torch.meshgrid(torch.arange(h - K + 1), torch.arange(w - K + 1), indexing="ij")
        offs.append(torch.full((jj.numel(),), o))
        js.append(jj.flatten())
        is_.append(ii.flatten())
    if not offs:
        z = torch.zeros(0, dtype=torch.long)
        return ViewWindows(pooled, z, z, z, torch.zeros(0, 4), pooled1)
    off, j, i = torch.cat(offs), torch.cat(js), torch.cat(is_)
    dxs = torch.tensor([dx for dx, _ in offsets(k)])[off]
    dys = torch.tensor([dy for _, dy in offsets(k)])[off]
    x1 = (s * (k * i + dxs)).float()
    y1 = (s * (k * j + dys)).float()
    return ViewWindows(pooled, off, j, i, torch.stack([x1, y1, x1 + win, y1 + win], dim=1), pooled1)


def offset_class_probs(model: OverFeat, vw: ViewWindows) -> list[Tensor]:
    """Class probabilities [K, h', w'] of the view's k*k offset maps (no gradient), computed
    as at inference (multiscale.run_view, paper §3.3, Fig. 3): the classifier over the stride-1 pooled map
    with its first layer dilated by k, one call instead of k*k; offset (dx, dy)'s map is the
    slice [dy::k, dx::k]. For the demo model on a 461x569 view on this 2-core CPU:
    13 ms against 25 ms for the k*k separate calls (stage 3 scores every view this way)."""
    with torch.no_grad():
        probs = torch.softmax(model.classify(vw.pooled1[None], dilation=model.k), dim=1)[0]
    return deinterleave(probs, model.k)


def gather_patches(vw: ViewWindows, sel: Tensor, K: int) -> Tensor:
    """The KxK pooled patches of the selected windows: [len(sel), C, K, K] (what the first FC
    layer, a KxK convolution, sees for each window)."""
    out = []
    for n in sel.tolist():
        o, j, i = int(vw.offset[n]), int(vw.j[n]), int(vw.i[n])
        out.append(vw.pooled[o][:, j:j + K, i:i + K])
    return torch.stack(out) if out else vw.pooled[0].new_zeros(0, vw.pooled[0].shape[0], K, K)


def overlap(windows: Tensor, boxes: Tensor) -> Tensor:
    """Pairwise overlap [N, M] = max(coverage(window, box), coverage(box, window)), i.e.
    intersection / min(box area, window area) (see the module docstring)."""
    n, m = len(windows), len(boxes)
    if n == 0 or m == 0:
        return windows.new_zeros(n, m)
    w = windows[:, None, :].expand(n, m, 4).reshape(-1, 4)
    b = boxes[None, :, :].expand(n, m, 4).reshape(-1, 4)
    return torch.maximum(box_ops.coverage(w, b), box_ops.coverage(b, w)).reshape(n, m)


def _positive_visible(windows: Tensor, boxes: Tensor, ov: Tensor) -> Tensor:
    """[N, M] area of each box visible in each window where their overlap ov is >=
    POSITIVE_OVERLAP, -1 elsewhere (the ranking both target rules below use)."""
    lt = torch.maximum(windows[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(windows[:, None, 2:], boxes[None, :, 2:])
    visible = (rb - lt).clamp(min=0).prod(dim=2)
    return torch.where(ov >= POSITIVE_OVERLAP, visible, torch.full_like(visible, -1.0))


def assign_windows(windows: Tensor, boxes: Tensor, ignore: Tensor) -> tuple[Tensor, Tensor]:
    """(target [N] index into boxes or -1, background [N] bool) for each window.

    target: among the objects the window overlaps by >= POSITIVE_OVERLAP, the one with the
    largest visible area in the window. background: overlap < BACKGROUND_OVERLAP with every
    object, difficult ("ignore") ones included.
    """
    n = len(windows)
    allb = torch.cat([boxes, ignore])
    ov_all = overlap(windows, allb)
    background = (ov_all < BACKGROUND_OVERLAP).all(dim=1) if len(allb) else torch.ones(n, dtype=torch.bool)
    if len(boxes) == 0:
        return torch.full((n,), -1, dtype=torch.long), background
    visible = _positive_visible(windows, boxes, ov_all[:, :len(boxes)])
    best_v, best = visible.max(dim=1)
    target = torch.where(best_v >= 0, best, torch.full_like(best, -1))
    return target, background


def regression_pairs(windows: Tensor, boxes: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """The (window, object) pairs a per-class regressor trains on: (window index [P], object
    index [P]), sorted by window.

    For every window and every class, the object of that class with the largest visible area
    in the window among those it overlaps by >= POSITIVE_OVERLAP (assign_windows' rule, applied
    to each class's own 4 outputs). A window that sees a cow and a dog thus teaches the cow
    outputs the cow's box and the dog outputs the dog's box, where a shared regressor learns
    only the larger of the two.
    """
    n = len(windows)
    z = torch.zeros(0, dtype=torch.long)
    if n == 0 or len(boxes) == 0:
        return z, z
    visible = _positive_visible(windows, boxes, overlap(windows, boxes))
    wins, objs = [], []
    for c in torch.unique(labels).tolist():
        cols = torch.nonzero(labels == c).flatten()
        best_v, best = visible[:, cols].max(dim=1)
        keep = torch.nonzero(best_v >= 0).flatten()
        wins.append(keep)
        objs.append(cols[best[keep]])
    w, o = torch.cat(wins), torch.cat(objs)
    order = torch.argsort(w, stable=True)
    return w[order], o[order]


def _window_scores(probs: list[Tensor], vw: ViewWindows, n_obj: int) -> Tensor:
    """Highest object-class probability of every window [N] (probs: k*k maps [K, h', w']).
    The window list lives on the CPU (view_windows), the maps on the training device."""
    out = torch.empty(len(vw.boxes))
    best = [p[:n_obj].amax(dim=0).cpu() for p in probs]  # k*k x [h', w']
    for o in range(len(probs)):
        m = vw.offset == o
        if m.any():
            out[m] = best[o][vw.j[m], vw.i[m]]
    return out


def regression_rows(model: OverFeat, views: list,
                    windows_per_image: int) -> tuple[Tensor, Tensor, Tensor] | None:
    """Stage 2's training rows (pooled patches [R, C, K, K], encoded targets [R, 4], labels
    [R]) of one step's image views ((x, boxes, ignore, labels, generator) as Trainer._views
    yields them): up to windows_per_image positive windows per view, each with the target of
    the object with the largest visible area, or, for a per-class regressor, one row per class
    it overlaps (regression_pairs). None when no view has a positive window."""
    K = model.fc_kernel
    per_class = model.cfg.regressor == "per_class"
    patches, rows, targets, labels, n_rows = [], [], [], [], 0
    for x, boxes, ignore, labs, gen in views:
        vw = view_windows(model, x)
        tgt, _ = assign_windows(vw.boxes, boxes, ignore)
        valid = torch.nonzero(tgt >= 0).flatten()
        if len(valid) > windows_per_image:
            valid = valid[torch.randperm(len(valid), generator=gen)[:windows_per_image]]
        if len(valid) == 0:
            continue
        if per_class:  # every class the window overlaps trains its own outputs
            w, obj = regression_pairs(vw.boxes[valid], boxes, labs)
        else:  # the object with the largest visible area
            w, obj = torch.arange(len(valid)), tgt[valid]
        patches.append(gather_patches(vw, valid, K))
        rows.append(w + n_rows)
        n_rows += len(valid)
        targets.append(box_ops.encode(boxes[obj], vw.boxes[valid][w]))
        labels.append(labs[obj])
    if not patches:
        return None
    return torch.cat(patches)[torch.cat(rows)], torch.cat(targets), torch.cat(labels)


def detection_windows(model: OverFeat, x: Tensor, boxes: Tensor, ignore: Tensor, labs: Tensor,
                      gen: torch.Generator, positives: int,
                      negatives: int) -> tuple[Tensor, Tensor] | None:
    """(pooled patches, labels) stage 3 learns from in one view (paper §5): up to `positives`
    object windows, the `negatives` background windows the current classifier scores worst
    (highest object probability; dropout off, no gradient: the model in eval mode) and one
    random background window, labelled with the background class (the config's last). None
    when the view gives none."""
    K, bg = model.fc_kernel, model.cfg.num_classes - 1
    vw = view_windows(model, x)
    if len(vw.boxes) == 0:
        return None
    tgt, is_bg = assign_windows(vw.boxes, boxes, ignore)
    # Score every window with the current classifier (dropout off, no gradient).
    n_obj = len(model.cfg.object_classes)
    obj_score = _window_scores(offset_class_probs(model, vw), vw, n_obj)  # [N]
    pos = torch.nonzero(tgt >= 0).flatten()
    if len(pos) > positives:
        pos = pos[torch.randperm(len(pos), generator=gen)[:positives]]
    neg = torch.nonzero(is_bg).flatten()
    hard = neg[torch.argsort(obj_score[neg], descending=True, stable=True)[:negatives]]
    rand = neg[torch.randperm(len(neg), generator=gen)[:1]] if len(neg) else neg
    sel = torch.cat([pos, hard, rand])
    if len(sel) == 0:
        return None
    y = torch.cat([labs[tgt[pos]], torch.full((len(hard) + len(rand),), bg)])
    return gather_patches(vw, sel, K), y
