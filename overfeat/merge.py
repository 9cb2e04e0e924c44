"""The greedy merge of regressed boxes (paper §4.3).

    (d) repeat:
    (e)   (b1, b2) = the pair in B with the lowest match_score
    (f)   if match_score(b1, b2) > t: stop
    (g)   B = B - {b1, b2} + {box_merge(b1, b2)}

Choices the paper leaves open (?), made here and shown in the app:
- Boxes merge only within a class (by_class=True); across classes when by_class=False.
- box_merge (average="weighted", the default): the two boxes' coordinates averaged with their
  confidences as weights, so a merged box is the score-weighted mean of ALL the raw boxes behind
  it, whatever the order of the merges. average="plain" is the paper's plain average of the
  two boxes: a cluster of 300 boxes merging with a lone stray box moves halfway towards it, so
  one object's boxes end in several clusters (the demo model's det mAP@0.5 on the val split of
  its training folder: 0.39 plain against 0.49 weighted; see DEFAULT_THRESHOLD). The merged box
  takes b1's place (b1 = the lower index of the pair) and b2's place is freed. Ties of the score go to the pair
  with the lowest (index of b1, index of b2).
- A merged box's confidence is the sum of its members' class scores (paper: "the sum of the
  class scores of the windows behind it"); the merged label is b1's (with by_class=False, the
  label of the more confident of the two).

Final boxes are clipped to the image by multiscale.Analysis.merge (this module does not know
the image; a regressed box of a window at the border can reach past it): what the app, the CLI
and evaluate report lies inside the image. The step-by-step trace keeps the unclipped averages.

Two match scores:
- "literal": the paper's text, centre distance + intersection area. It adds pixels to squared
  pixels and makes overlapping boxes LESS likely to merge (a known flaw of the text).
- "corrected": centre distance divided by the mean box side (sqrt of area), minus IoU: 0 for
  far apart boxes at one box side, -1 for identical boxes, scale-free.

merge() keeps, for each box, the minimum score over its row and updates only the rows a merge
touches (O(N) per step when argmins are unaffected), instead of rebuilding the N x N matrix. It
runs one loop per class (boxes of two classes never merge) on that class's own arrays, packed as
boxes merge away, and interleaves the classes' steps in the order the single loop takes them;
merge_reference() is the literal loop of steps (d)-(g) used by the tests and the benchmark.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .boxes import Detections

SCORES = ("literal", "corrected")
AVERAGES = ("weighted", "plain")  # box_merge, see the module docstring
DEFAULT_AVERAGE = "weighted"
# Boxes one merge takes (per class when merging by class): the greedy loop is O(N^2) in time,
# so beyond this the merge would run for minutes. More boxes are refused with a ValueError that
# says how to get fewer (a higher minimum window score, a lower top-k).
MAX_MERGE_BOXES = 10_000
STOP_EVERY = 64  # merge(stop=...) asks stop() before a group and every this many steps
PACK_MIN = 32  # the fast merge packs its arrays at half the boxes left, down to this many
# Match scores per band of rows of the initial matrix: bounds memory, and keeps each of the
# score's ~24 temporaries at 512 KB, in the CPU's cache. Bands of 2 ** 21 scores (16 MB
# temporaries, fresh pages from the OS on a process's first merges) made the app's first merge
# of a scene 3x slower: 966 -> 317 ms on det scene 3000 (issue 27, docs/BENCHMARKS.md).
BAND_SCORES = 2 ** 16
# Defaults for t. corrected: chosen for the shipped demo model with the weighted box_merge on
# the val splits of its TRAINING folders (data/loc, data/det, seeds 1 and 2; scenes it never
# trained on), not on the reported val scenes (seeds 11, 12). On 120 + 120 of those scenes
# (min window score 0.5, top-5 classes per scale):
#     box_merge  t     localization error  det mAP@0.5
#     plain     -0.5   11.7%               0.385
#     weighted  -0.5   12.5%               0.457
#     weighted  -0.3   13.3%               0.493   <- default
#     weighted  -0.1   18.3%               0.495
# Rechecked for the per-class checkpoint (epochs 3,3,3) on 300 val scenes of the det training
# folder: det mAP@0.5 0.572 at t = -0.3, 0.574 at -0.2, so the default stays.
# t = -0.3 merges boxes whose centres are closer than about 0.7 of a box side minus their IoU;
# larger t merges one object's boxes better but also two objects of a class (localization's
# five guesses then lose their spread). literal: the paper's score adds squared pixels, so
# overlapping boxes almost never merge; 50 px lets near, hardly overlapping boxes merge (shown
# for comparison only).
DEFAULT_THRESHOLD = {"literal": 50.0, "corrected": -0.3}


def _parts(b: np.ndarray):
    """[..., 4] boxes -> centre x, centre y, sqrt(area), area."""
    w = np.maximum(b[..., 2] - b[..., 0], 0.0)
    h = np.maximum(b[..., 3] - b[..., 1], 0.0)
    area = w * h
    return (b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2, np.sqrt(area), area


def _all_parts(b: np.ndarray) -> tuple:
    """_parts, then the coordinates x1, y1, x2, y2 as arrays of their own (contiguous: the fast
    merge scores against them on every step, and a column of b is a strided view)."""
    return _parts(b) + tuple(b[..., k].copy() for k in range(4))


def match_score(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    """Match score of boxes a and b, broadcast over leading dimensions ([..., 4] float64).

    The same elementwise formula serves the full matrix and a block of rows, so the fast merge
    and the reference compute bit-identical scores.
    """
    return _pair_score(_all_parts(a), _all_parts(b), kind)


def _pair_score(ap: tuple, bp: tuple, kind: str) -> np.ndarray:
    """match_score from the boxes' _all_parts (the fast merge keeps them per box).

    The IoU is inter / max(union, 1e-12): union >= the larger area >= inter >= 0 (each step
    of its arithmetic rounds monotonically), so a union of 0 has inter 0 and the IoU 0, with
    no np.where (the merge's inner loop is bound by numpy's cost per call: issue 27)."""
    acx, acy, asz, aarea, ax1, ay1, ax2, ay2 = ap
    bcx, bcy, bsz, barea, bx1, by1, bx2, by2 = bp
    dist = np.sqrt((acx - bcx) ** 2 + (acy - bcy) ** 2)
    iw = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    if kind == "literal":
        return dist + inter
    if kind == "corrected":
        iou = inter / np.maximum(aarea + barea - inter, 1e-12)
        return dist / np.maximum((asz + bsz) / 2, 1e-12) - iou
    raise ValueError(f"unknown match score {kind!r}; expected one of {SCORES}")


class Stopped(Exception):
    """A long computation (merge, multiscale.analyze) stopped because its caller's stop()
    said so; it returns nothing. The app's background work passes stop(): a student's click
    then waits for one slice of it (one scale, STOP_EVERY merge steps), not for all of it."""


def check_stop(stop) -> None:
    """Raise Stopped when stop (None, or a function) says so."""
    if stop is not None and stop():
        raise Stopped("stopped by the caller")


@dataclass
class MergeState:
    """The boxes alive after some number of merges: slot indices and their current boxes,
    confidences, labels and members (indices into the input boxes)."""

    slots: Tensor  # [M] int64
    boxes: Tensor  # [M, 4] float64
    confs: Tensor  # [M] float64
    labels: Tensor  # [M] int64
    members: list[list[int]]


@dataclass
class MergeStep:
    """One step of the replay (step 0 = the raw boxes, nothing merged yet): what is alive after
    it and, for step >= 1, the pair it merged; at the last step, why the loop stopped."""

    step: int
    n_steps: int
    alive: MergeState
    remaining: int  # boxes left after this step
    pair: tuple[int, int] | None = None  # slots merged at this step
    b1: Tensor | None = None  # their boxes just before the merge
    b2: Tensor | None = None
    score: float | None = None  # their match score
    merged: Tensor | None = None  # the merged box (now in slot pair[0])
    conf: float | None = None  # its confidence: sum of its windows' class scores
    label: int | None = None
    stopped: str = ""  # why the loop ended, shown at the last step


@dataclass
class MergeResult:
    """The whole trace of one greedy merge, enough to replay any step.

    Input (N boxes): boxes (Tensor[N, 4], x1 y1 x2 y2), scores (Tensor[N]), labels (Tensor[N]).
    Step s (S steps): pairs[s] = (i, j) slots merged (i < j), step_scores[s] their match score,
    step_boxes[s] the merged box (stored in slot i), step_confs[s] its confidence, and
    step_labels[s] its label. remaining[s] = number of boxes after step s.
    final (boxes.Detections): boxes, confidences, labels and member lists of the surviving
    boxes, most confident first; members are indices into the input boxes.
    """

    boxes: Tensor
    scores: Tensor
    labels: Tensor
    pairs: Tensor  # [S, 2] int64
    step_scores: Tensor  # [S] float64
    step_boxes: Tensor  # [S, 4]
    step_confs: Tensor  # [S]
    step_labels: Tensor  # [S]
    final: Detections
    stop_score: float | None  # the lowest score left when the loop stopped (None: < 2 boxes)
    score_kind: str
    threshold: float
    average: str = DEFAULT_AVERAGE  # box_merge: "weighted" or "plain"

    # Read-only aliases of final's fields, for the callers not yet moved to .final
    # (overfeat/bench.py, tests/load_app.py). New code reads r.final.
    @property
    def final_boxes(self) -> Tensor:
        return self.final.boxes

    @property
    def final_confs(self) -> Tensor:
        return self.final.confs

    @property
    def final_members(self) -> list[list[int]]:
        return self.final.members

    @property
    def n_steps(self) -> int:
        return int(self.pairs.shape[0])

    @property
    def remaining(self) -> list[int]:
        n = int(self.boxes.shape[0])
        return [n - s - 1 for s in range(self.n_steps)]

    def state_at(self, step: int) -> MergeState:
        """Boxes alive after `step` merges (0 = the input), replayed from the trace."""
        if not 0 <= step <= self.n_steps:
            raise ValueError(f"step must be in 0..{self.n_steps}, got {step}")
        n = int(self.boxes.shape[0])
        boxes = self.boxes.clone().double()
        confs = self.scores.clone().double()
        labels = self.labels.clone()
        alive = torch.ones(n, dtype=torch.bool)
        members = [[i] for i in range(n)]
        for s in range(step):
            i, j = (int(v) for v in self.pairs[s])
            boxes[i] = self.step_boxes[s]
            confs[i] = self.step_confs[s]
            labels[i] = self.step_labels[s]
            members[i] = members[i] + members[j]
            alive[j] = False
        slots = torch.nonzero(alive).flatten()
        return MergeState(slots=slots, boxes=boxes[slots], confs=confs[slots],
                          labels=labels[slots], members=[sorted(members[int(k)]) for k in slots])

    def slot_box(self, slot: int, before: int) -> Tensor:
        """The box in `slot` just before step `before`: the last merge written there, or the
        input box."""
        written = torch.nonzero(self.pairs[:before, 0] == slot).flatten()
        if len(written):
            return self.step_boxes[int(written[-1])]
        return self.boxes[slot].double()

    def stop_reason(self) -> str:
        """Why the loop ended, in words."""
        n = int(self.boxes.shape[0])
        if n < 2:
            return f"nothing to merge ({n} box)"
        if self.stop_score is None:
            if n - self.n_steps <= 1:
                return "stopped: one box left"
            return "stopped: no two boxes may merge (different classes)"
        return (f"stopped: the lowest match score left, {self.stop_score:.4g}, is above "
                f"t = {self.threshold:g}")

    def step(self, step: int) -> MergeStep:
        """The replay at `step` (clamped to 0..n_steps): the state after it and, for step >= 1,
        the pair that step merged."""
        step = max(0, min(int(step), self.n_steps))
        alive = self.state_at(step)
        out = MergeStep(step=step, n_steps=self.n_steps, alive=alive,
                        remaining=len(alive.slots))
        if step >= 1:
            s = step - 1
            i, j = (int(v) for v in self.pairs[s])
            out.pair = (i, j)
            out.b1, out.b2 = self.slot_box(i, s), self.slot_box(j, s)
            out.score = float(self.step_scores[s])
            out.merged = self.step_boxes[s]
            out.conf = float(self.step_confs[s])
            out.label = int(self.step_labels[s])
        if step == self.n_steps:
            out.stopped = self.stop_reason()
        return out


def _check(boxes: Tensor, scores: Tensor, labels: Tensor, kind: str, average: str) -> None:
    if kind not in SCORES:
        raise ValueError(f"unknown match score {kind!r}; expected one of {SCORES}")
    if average not in AVERAGES:
        raise ValueError(f"unknown box average {average!r}; expected one of {AVERAGES}")
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be [N, 4], got {tuple(boxes.shape)}")
    n = boxes.shape[0]
    if scores.shape != (n,) or labels.shape != (n,):
        raise ValueError(f"scores and labels must be [{n}], got {tuple(scores.shape)} and "
                         f"{tuple(labels.shape)}")


def _result(boxes, scores, labels, steps, kind, t, stop_score, alive, cur_boxes, cur_confs,
            cur_labels, members, average) -> MergeResult:
    slots = np.nonzero(alive)[0]
    order = slots[np.argsort(-cur_confs[slots], kind="stable")]
    pairs = np.array([s[0] for s in steps], dtype=np.int64).reshape(-1, 2)
    return MergeResult(
        boxes=boxes, scores=scores, labels=labels,
        pairs=torch.from_numpy(pairs),
        step_scores=torch.tensor([s[1] for s in steps], dtype=torch.float64),
        step_boxes=torch.tensor(np.array([s[2] for s in steps]).reshape(-1, 4)),
        step_confs=torch.tensor([s[3] for s in steps], dtype=torch.float64),
        step_labels=torch.tensor([s[4] for s in steps], dtype=torch.int64),
        final=Detections(boxes=torch.from_numpy(cur_boxes[order].copy()),
                         confs=torch.from_numpy(cur_confs[order].copy()),
                         labels=torch.from_numpy(cur_labels[order].copy()),
                         members=[sorted(members[k]) for k in order]),
        stop_score=stop_score, score_kind=kind, threshold=t, average=average,
    )


def _merged(b, c, lab, i, j, by_class, average):
    if average == "plain":
        box = (b[i] + b[j]) / 2  # (g) box_merge: plain average of coordinates
    else:  # confidence-weighted: the score-weighted mean of every member box
        w = c[i] + c[j]
        box = (b[i] * c[i] + b[j] * c[j]) / w if w > 0 else (b[i] + b[j]) / 2
    conf = c[i] + c[j]
    label = lab[i] if by_class or c[i] >= c[j] else lab[j]
    return box, conf, label


def _start(boxes: Tensor, scores: Tensor, labels: Tensor, score: str, threshold: float | None,
           average: str):
    """The checked inputs as a merge's starting state: (t, boxes, scores, labels, alive,
    members), the arrays float64 and int64 numpy copies the merge overwrites (the caller's
    tensors stay as they are), every box alive and its own only member."""
    _check(boxes, scores, labels, score, average)
    t = DEFAULT_THRESHOLD[score] if threshold is None else float(threshold)
    b = boxes.detach().double().cpu().numpy().copy()
    c = scores.detach().double().cpu().numpy().copy()
    lab = labels.detach().cpu().numpy().astype(np.int64).copy()
    n = b.shape[0]
    return t, b, c, lab, np.ones(n, dtype=bool), [[i] for i in range(n)]


def _score_rows(rows: np.ndarray, parts: tuple, alive: np.ndarray, score: str) -> np.ndarray:
    """[len(rows), n] scores of the boxes in rows against every box of the group in one
    broadcast; inf where the pair may not merge (a box with itself, a merged-away box). parts:
    the boxes' _parts, kept up to date, so only the pairwise terms are computed here."""
    block = _pair_score(tuple(p[rows][:, None] for p in parts), parts, score)
    block[:, ~alive] = np.inf
    block[np.arange(len(rows)), rows] = np.inf
    return block


def _too_many(groups: list[np.ndarray], by_class: bool) -> None:
    biggest = max((len(g) for g in groups), default=0)
    if biggest > MAX_MERGE_BOXES:
        raise ValueError(f"{biggest:,} boxes to merge{' in one class' if by_class else ''}, "
                         f"more than the {MAX_MERGE_BOXES:,} the greedy merge takes in reasonable "
                         f"time: raise the minimum window score or lower top-k")


def _initial_minima(b: np.ndarray, parts: tuple, score: str) -> tuple[np.ndarray, np.ndarray]:
    """(row_min, row_arg) of one group: row_min[i] / row_arg[i] is the best partner of box i
    (lowest index among ties). A pair (i, j) appears in rows i and j; argmin over row_min then
    picks the lowest (score, i, j) like the reference. The matrix is scored in bands of rows
    (BAND_SCORES scores each), so memory stays bounded at any N."""
    n = b.shape[0]
    row_arg = np.zeros(n, dtype=np.int64)
    row_min = np.full(n, np.inf)
    alive = np.ones(n, dtype=bool)
    band = max(1, BAND_SCORES // max(n, 1))
    for lo in range(0, n, band):
        rows = np.arange(lo, min(n, lo + band))
        block = _score_rows(rows, parts, alive, score)
        row_arg[rows] = np.argmin(block, axis=1)
        row_min[rows] = block[np.arange(len(rows)), row_arg[rows]]
    return row_min, row_arg


def _update_minima(i: int, j: int, b: np.ndarray, parts: tuple, alive: np.ndarray,
                   row_min: np.ndarray, row_arg: np.ndarray, score: str) -> None:
    """After box j merged into slot i: update row_min and row_arg in place.

    Row i changed entirely, and the rows whose best partner was i or j must be scored again:
    one block for all of them. The other rows only compare with the new box in slot i (a
    changed value in column i may now win, or tie and win on the lower index)."""
    row_min[j], row_arg[j] = np.inf, 0
    stale = np.nonzero(alive & ((row_arg == i) | (row_arg == j)))[0]
    rows = np.concatenate(([i], stale[stale != i]))
    block = _score_rows(rows, parts, alive, score)
    row_arg[rows] = np.argmin(block, axis=1)
    row_min[rows] = block[np.arange(len(rows)), row_arg[rows]]
    ri = block[0]  # column i is symmetric: score(r, i) == score(i, r)
    others = alive.copy()
    others[rows] = False
    better = others & ((ri < row_min) | ((ri == row_min) & (i < row_arg)))
    row_min[better] = ri[better]
    row_arg[better] = i


def _merge_group(idx: np.ndarray, b: np.ndarray, c: np.ndarray, lab: np.ndarray,
                 members: list, score: str, t: float, by_class: bool,
                 average: str, stop=None) -> tuple[list, float, np.ndarray]:
    """The greedy loop on one group of boxes (one class when merging by class), in its own
    compact arrays: (steps in the input's indices, the lowest score left at the end (inf when
    fewer than 2 boxes are left), the input indices of the boxes left). Writes those boxes
    back into b, c, lab and members.

    Every time half of the boxes have merged away, the arrays are packed to the boxes left
    (in their order, so ties still go to the lowest index): the rows scored per step shrink
    with the boxes left instead of staying at the group's size."""
    gb, gc, gl = b[idx], c[idx], lab[idx]
    parts = tuple(np.ascontiguousarray(p) for p in _all_parts(gb))
    alive = np.ones(len(idx), dtype=bool)
    row_min, row_arg = _initial_minima(gb, parts, score)
    steps: list = []
    left = len(idx)
    best = np.inf
    while left >= 2:
        if len(steps) % STOP_EVERY == STOP_EVERY - 1:
            check_stop(stop)
        i = int(np.argmin(row_min))  # (e) lowest score; ties -> lowest i, then lowest j
        best = row_min[i]
        if not best <= t:  # (f), also when no pair is left (inf)
            break
        j = int(row_arg[i])
        box, conf, label = _merged(gb, gc, gl, i, j, by_class, average)  # (g)
        steps.append(((int(idx[i]), int(idx[j])), float(best), box.copy(), float(conf),
                      int(label)))
        gb[i], gc[i], gl[i] = box, conf, label
        for p, v in zip(parts, _all_parts(box)):
            p[i] = v
        members[idx[i]] = members[idx[i]] + members[idx[j]]
        alive[j] = False
        left -= 1
        best = np.inf
        _update_minima(i, j, gb, parts, alive, row_min, row_arg, score)
        if left >= PACK_MIN and 2 * left <= len(alive):
            keep = np.nonzero(alive)[0]
            pos = np.zeros(len(alive), dtype=np.int64)
            pos[keep] = np.arange(len(keep))
            idx, gb, gc, gl = idx[keep], gb[keep], gc[keep], gl[keep]
            parts = tuple(p[keep] for p in parts)
            row_min, row_arg = row_min[keep], pos[row_arg[keep]]
            alive = np.ones(len(keep), dtype=bool)
    idx = idx[alive]
    b[idx], c[idx], lab[idx] = gb[alive], gc[alive], gl[alive]
    return steps, float(best), idx


def merge(boxes: Tensor, scores: Tensor, labels: Tensor, score: str = "corrected",
          threshold: float | None = None, by_class: bool = True,
          average: str = DEFAULT_AVERAGE, stop=None) -> MergeResult:
    """Greedy merge with per-row minima, updated incrementally (see module docstring).

    Boxes of different classes never merge (by_class), so each class runs its own loop on its
    own small arrays; the steps are then interleaved exactly as the one global loop takes them:
    always the class whose next pair has the lowest (score, i, j).

    Args:
        boxes (Tensor[N, 4]): x1 y1 x2 y2 in pixels. scores (Tensor[N]): class scores.
        labels (Tensor[N]): class indices. score: "literal" or "corrected". threshold: t
        (None = DEFAULT_THRESHOLD[score]). by_class: merge only boxes of the same label.
        average: box_merge, "weighted" (by confidence) or "plain" (the paper's average).
        stop: None, or a function asked before each group and every STOP_EVERY steps; when it
        returns True the merge raises Stopped (the app's background work, see Stopped).
    """
    t, b, c, lab, alive, members = _start(boxes, scores, labels, score, threshold, average)
    n = b.shape[0]
    groups = [np.nonzero(lab == g)[0] for g in np.unique(lab)] if by_class else [np.arange(n)]
    _too_many(groups, by_class)
    runs, stops = [], []
    for idx in groups:
        check_stop(stop)
        steps, low, left = _merge_group(idx, b, c, lab, members, score, t, by_class, average,
                                        stop)
        alive[idx] = False
        alive[left] = True
        runs.append(steps)
        stops.append(low)
    # The global loop's order: heads of the classes' runs, lowest (score, i, j) first.
    heap = [(r[0][1], r[0][0], g, 0) for g, r in enumerate(runs) if r]
    heapq.heapify(heap)
    steps = []
    while heap:
        _, _, g, k = heapq.heappop(heap)
        steps.append(runs[g][k])
        if k + 1 < len(runs[g]):
            nxt = runs[g][k + 1]
            heapq.heappush(heap, (nxt[1], nxt[0], g, k + 1))
    stop = min(stops, default=np.inf)
    stop_score = stop if np.isfinite(stop) and alive.sum() >= 2 else None
    return _result(boxes, scores, labels, steps, score, t, stop_score, alive, b, c, lab, members,
                   average)


def merge_reference(boxes: Tensor, scores: Tensor, labels: Tensor, score: str = "corrected",
                    threshold: float | None = None, by_class: bool = True,
                    average: str = DEFAULT_AVERAGE) -> MergeResult:
    """The paper's steps (d)-(g) literally: every iteration scores every pair again.

    Deliberately naive (O(N^3)); it is the reference the fast merge() is tested against.
    """
    t, b, c, lab, alive, members = _start(boxes, scores, labels, score, threshold, average)
    steps: list = []
    stop_score = None
    while alive.sum() >= 2:  # (d)
        idx = np.nonzero(alive)[0]
        m = match_score(b[idx][:, None, :], b[idx][None, :, :], score)  # all pairs, again
        ok = np.triu(np.ones_like(m, dtype=bool), k=1)
        if by_class:
            ok &= lab[idx][:, None] == lab[idx][None, :]
        m[~ok] = np.inf
        flat = int(np.argmin(m))  # (e) first minimum in row-major order: lowest (i, j)
        a, bb = divmod(flat, len(idx))
        if not np.isfinite(m[a, bb]):
            break
        i, j = int(idx[a]), int(idx[bb])
        stop_score = float(m[a, bb])
        if m[a, bb] > t:  # (f)
            break
        box, conf, label = _merged(b, c, lab, i, j, by_class, average)  # (g)
        steps.append(((i, j), float(m[a, bb]), box.copy(), float(conf), int(label)))
        b[i], c[i], lab[i] = box, conf, label
        members[i] = members[i] + members[j]
        alive[j] = False
        stop_score = None
    if alive.sum() < 2:
        stop_score = None
    return _result(boxes, scores, labels, steps, score, t, stop_score, alive, b, c, lab, members,
                   average)


# --- reading a merge step by step (the Merge page) ---------------------------------------------
# "A merge that changes a box a lot" (project choice, the Merge page's jump): the merged box's
# IoU with the heavier member of its pair (the one with the larger confidence, that is the more
# windows' worth of weight; b1 on a tie) is below this. With the confidence-weighted box_merge a
# cluster of hundreds of windows that swallows one stray box barely moves (IoU ~ 1); two clusters
# of similar weight, or the paper's plain average, move it, and those are the steps worth seeing.
BIG_CHANGE_IOU = 0.7


@dataclass(frozen=True)
class ScoreParts:
    """The match score of two boxes taken apart (pixels, squared pixels)."""

    centre_distance: float  # px between the boxes' centres
    side_a: float  # sqrt(area) of each box, px
    side_b: float
    mean_side: float  # (side_a + side_b) / 2
    intersection: float  # px^2
    union: float  # px^2
    iou: float  # intersection / union (0 when the union is empty)
    literal: float  # centre_distance + intersection
    corrected: float  # centre_distance / mean_side - iou

    def score(self, kind: str) -> float:
        if kind not in SCORES:
            raise ValueError(f"unknown match score {kind!r}; expected one of {SCORES}")
        return self.literal if kind == "literal" else self.corrected


def score_parts(a, b) -> ScoreParts:
    """The parts of match_score(a, b) for two [4] boxes (x1 y1 x2 y2): the same arithmetic
    as _pair_score, written out one term at a time, so that the page can show how the parts
    add up to the literal and the corrected score."""
    a = np.asarray(a, dtype=np.float64).reshape(4)
    b = np.asarray(b, dtype=np.float64).reshape(4)
    acx, acy, asz, aarea = (float(v) for v in _parts(a))
    bcx, bcy, bsz, barea = (float(v) for v in _parts(b))
    dist = float(np.sqrt((acx - bcx) ** 2 + (acy - bcy) ** 2))
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    inter = float(max(iw, 0.0) * max(ih, 0.0))
    union = aarea + barea - inter
    iou = inter / max(union, 1e-12) if union > 0 else 0.0
    mean_side = (asz + bsz) / 2
    return ScoreParts(centre_distance=dist, side_a=asz, side_b=bsz, mean_side=mean_side,
                      intersection=inter, union=union, iou=iou, literal=dist + inter,
                      corrected=dist / max(mean_side, 1e-12) - iou)


@dataclass(frozen=True)
class StepMembers:
    """For every step s (0-based: the merge of step s + 1), the pair as it was just before the
    merge: boxes b1[s], b2[s] ([S, 4] float64) and confidences c1[s], c2[s] ([S])."""

    b1: np.ndarray
    b2: np.ndarray
    c1: np.ndarray
    c2: np.ndarray


def step_members(r: MergeResult) -> StepMembers:
    """The pair of every step in one pass over the trace (MergeResult.step(s) replays the
    whole state for one step; this keeps each slot's current box and confidence instead)."""
    boxes = r.boxes.detach().double().cpu().numpy().copy()
    confs = r.scores.detach().double().cpu().numpy().copy()
    pairs = r.pairs.numpy()
    out_boxes = r.step_boxes.detach().double().cpu().numpy()
    out_confs = r.step_confs.detach().double().cpu().numpy()
    s_n = len(pairs)
    b1, b2 = np.zeros((s_n, 4)), np.zeros((s_n, 4))
    c1, c2 = np.zeros(s_n), np.zeros(s_n)
    for s, (i, j) in enumerate(pairs):
        b1[s], b2[s], c1[s], c2[s] = boxes[i], boxes[j], confs[i], confs[j]
        boxes[i], confs[i] = out_boxes[s], out_confs[s]
    return StepMembers(b1=b1, b2=b2, c1=c1, c2=c2)


def step_clusters(r: MergeResult) -> np.ndarray:
    """[S] for every step (0-based), the slot of the box its merged box ends in when the
    merge stops: the steps that build one final box share a number. Project choice for the
    page's "next merge of another cluster": a cluster is the set of raw boxes that end in one
    final box (a merged box stays in its pair's first slot; a later merge that takes it as the
    second box moves it into that pair's first slot)."""
    pairs = r.pairs.numpy()
    dest = np.arange(int(r.boxes.shape[0]))  # where the box now in a slot ends, walking back
    out = np.zeros(len(pairs), dtype=np.int64)
    for s in range(len(pairs) - 1, -1, -1):
        i, j = pairs[s]
        out[s] = dest[i]
        dest[j] = dest[i]  # before step s, slot j's box ends where slot i's merged box ends
    return out


def big_changes(r: MergeResult, below: float = BIG_CHANGE_IOU) -> np.ndarray:
    """[S] bool: the steps whose merged box has IoU < below with the heavier member of its
    pair (BIG_CHANGE_IOU: the project's "changes a box a lot")."""
    from .boxes import box_area

    m = step_members(r)
    if len(m.c1) == 0:
        return np.zeros(0, dtype=bool)
    heavy = torch.from_numpy(np.where((m.c1 >= m.c2)[:, None], m.b1, m.b2))
    merged = r.step_boxes.detach().double()
    # Row against row (box_iou's formula, O(S)), not the diagonal of box_iou's S x S matrix:
    # that took 0.4 s at 2,800 steps, on every rerun of the Merge page's stepper.
    lt = torch.maximum(merged[:, :2], heavy[:, :2])
    rb = torch.minimum(merged[:, 2:], heavy[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    union = box_area(merged) + box_area(heavy) - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))
    return iou.numpy() < below


def steps_of_class(r: MergeResult, cls: int | None) -> np.ndarray:
    """[S] bool: the steps that merged boxes of class cls (all steps for None)."""
    labels = r.step_labels.numpy()
    return np.ones(len(labels), dtype=bool) if cls is None else labels == int(cls)


def next_step(mask: np.ndarray, step: int, direction: int = 1, count: int = 1) -> int | None:
    """The step (1-based, as the page counts: step s = s merges done) `count` marked steps after
    (direction 1) or before (-1) `step`, where mask[s - 1] marks step s; the last (first)
    marked one when fewer are left; None when none is. Step 0 (the raw boxes) counts as
    marked going back, so Previous always reaches the start."""
    marked = np.nonzero(mask)[0] + 1
    if direction > 0:
        ahead = marked[marked > step]
        return int(ahead[min(count, len(ahead)) - 1]) if len(ahead) else None
    behind = np.concatenate(([0], marked[marked < step]))
    return int(behind[max(len(behind) - count, 0)]) if step > 0 else None


def next_other_cluster(r: MergeResult, step: int, mask: np.ndarray | None = None) -> int | None:
    """The first step after `step` (among mask's steps) whose merge builds another final box
    than step `step`'s (step_clusters); from step 0, the first step. None when none is left."""
    clusters = step_clusters(r)
    ok = np.ones(len(clusters), dtype=bool) if mask is None else mask.copy()
    if 1 <= step <= len(clusters):
        ok &= clusters != clusters[step - 1]
    return next_step(ok, step)


def next_big_change(r: MergeResult, step: int, mask: np.ndarray | None = None,
                    below: float = BIG_CHANGE_IOU) -> int | None:
    """The first step after `step` (among mask's steps) that changes a box a lot
    (big_changes); None when none is left."""
    big = big_changes(r, below)
    return next_step(big if mask is None else big & mask, step)


def no_steps_reason(r: MergeResult) -> str | None:
    """One line saying why a merge made no step (None when it made some): no two boxes, no
    two of one class, or every pair above t with the lowest score named."""
    if r.n_steps:
        return None
    n = int(r.boxes.shape[0])
    if n < 2:
        return f"{n} raw box{'' if n == 1 else 'es'}: nothing to merge"
    if r.stop_score is None:
        return "no two raw boxes of the same class: nothing may merge"
    return (f"no pair scores <= t = {r.threshold:g}; the lowest match score is "
            f"{r.stop_score:,.4g}")
