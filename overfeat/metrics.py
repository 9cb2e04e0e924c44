"""Evaluation metrics of the three tasks (paper §2), as pure functions.

- Classification: top-k error (ILSVRC: top-1 and top-5).
- Localization: the ILSVRC rule; up to 5 guesses (class, box), an image is right when one guess
  has the right class and a box with IoU >= 0.5 with a ground-truth box of that class.
- Detection: Pascal VOC average precision at IoU 0.5, all-point interpolated (the VOC 2010+
  devkit rule), per class and its mean; "difficult" objects are neither hits nor misses.

Boxes are (x1, y1, x2, y2) floats with x2 > x1, y2 > y1, in continuous pixel coordinates (the
VOC reader's convention, overfeat.data.voc: x1 = xmin - 1, x2 = xmax). The width of a box is
x2 - x1, which equals the devkit's (xmax - xmin + 1), so IoUs here equal the devkit's.
Plain Python and numpy on tuples, so tests can check them by hand; the IoU itself is
overfeat.boxes.box_iou (float64), the one place it is computed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .boxes import box_iou

Box = Sequence[float]  # (x1, y1, x2, y2)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (x1, y1, x2, y2): boxes.box_iou of the pair.

    Disjoint or touching boxes give 0; identical boxes 1; a degenerate box (zero or negative
    width or height) has area 0, so it gives 0 against anything (never NaN).
    """
    return float(pairwise_iou([a], [b])[0, 0])


def pairwise_iou(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """IoU of every box of a against every box of b: [len(a), len(b)] float64 (box_iou)."""
    ta = torch.tensor([[float(v) for v in x] for x in a], dtype=torch.float64).reshape(-1, 4)
    tb = torch.tensor([[float(v) for v in x] for x in b], dtype=torch.float64).reshape(-1, 4)
    return box_iou(ta, tb).numpy()


def rank_of(scores: Sequence[float], label: int, candidates: Sequence[int] | None = None) -> int:
    """0-based rank of class `label` when the candidate classes are sorted by score, best first.

    Tie rule: classes with equal scores keep their index order (a stable descending sort, the
    order of overfeat.multiscale.Analysis.top). So the rank is the number of candidates scoring
    strictly higher, plus the number of tied candidates with a lower class index.
    candidates: the classes that may be guessed (e.g. the object classes, background excluded);
    None = all. A label outside the candidates can never be guessed: rank = len(candidates).
    """
    cand = list(range(len(scores))) if candidates is None else list(candidates)
    if label not in cand:
        return len(cand)
    s = scores[label]
    return sum(1 for c in cand if scores[c] > s or (scores[c] == s and c < label))


def topk_error(scores: Sequence[Sequence[float]] | np.ndarray, labels: Sequence[int], k: int,
               candidates: Sequence[int] | None = None) -> float:
    """Fraction of images whose true label is not among the k best-scored candidate classes.

    Args:
        scores: [N, K] class scores, one row per image. labels: [N] true class per image.
        k: 1 for top-1, 5 for top-5. candidates: classes that may be guessed (None = all).
    Ties: see rank_of (stable by class index). A label outside the candidates is always an
    error, even when k >= len(candidates) (its rank, len(candidates), would then be < k).
    No images: NaN.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    scores = np.asarray(scores, dtype=np.float64)
    if len(labels) != len(scores):
        raise ValueError(f"{len(scores)} score rows for {len(labels)} labels")
    if len(labels) == 0:
        return math.nan
    allowed = set(range(scores.shape[1])) if candidates is None else {int(c) for c in candidates}
    wrong = sum(1 for row, y in zip(scores, labels)
                if int(y) not in allowed or rank_of(row, int(y), candidates) >= k)
    return wrong / len(labels)


def localization_correct(guesses: Sequence[tuple[int, Box]], truths: Sequence[tuple[int, Box]],
                         max_guesses: int = 5, iou_threshold: float = 0.5) -> bool:
    """ILSVRC localization rule for one image.

    Args:
        guesses: [(class, box)], best first; only the first max_guesses count.
        truths: [(class, box)] ground truth. ILSVRC scores one class per image but any of its
            instances: a guess is right when its class equals a truth's class and its box has
            IoU >= iou_threshold with that truth's box.
    Returns True when at least one of the counted guesses is right.
    """
    for c, box in list(guesses)[:max_guesses]:
        for tc, tbox in truths:
            if c == tc and iou(box, tbox) >= iou_threshold:
                return True
    return False


def average_precision(recall: Sequence[float], precision: Sequence[float]) -> float:
    """All-point interpolated AP (VOC 2010+ devkit, VOCevaldet's "VOCap").

    recall, precision: the cumulative values after each detection, ranked by confidence.
    The precision envelope is made monotone (p(r) = max precision at recall >= r) and
    integrated over every recall step:  AP = sum_i (r_i - r_{i-1}) * p_interp(r_i).
    Empty input (no detections) gives 0.
    """
    r = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    idx = np.nonzero(r[1:] != r[:-1])[0] + 1
    return float(np.sum((r[idx] - r[idx - 1]) * p[idx]))


def precision_envelope(recall: Sequence[float], precision: Sequence[float]) -> tuple[list, list]:
    """The step curve average_precision integrates, as points to draw: from recall 0, the
    monotone envelope p_interp(r_i) = max precision at recall >= r_i held over each recall step
    (r_{i-1}, r_i] (a "vh" step line through the points). Its area is the AP."""
    r = np.asarray(recall, dtype=np.float64)
    p = np.asarray(precision, dtype=np.float64).copy()
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    xs, ys = [0.0], [float(p[0]) if len(p) else 0.0]
    for ri, pi in zip(r.tolist(), p.tolist()):
        xs.append(ri)
        ys.append(pi)
    return xs, ys


@dataclass
class GroundTruth:
    """One image's ground truth for detection."""

    labels: list[int]
    boxes: list[Box]
    difficult: list[bool]


@dataclass
class ClassAP:
    ap: float  # NaN when the class has no (non-difficult) ground truth
    n_positives: int  # non-difficult ground-truth objects
    n_detections: int
    true_positives: int


@dataclass
class ClassMatch:
    """match_class's answer. Unpacks as (tp, fp, n_positives), ranked like tp and fp.

    tp, fp ([D], ranked by confidence): 1 where the detection at that rank is a true / false
    positive (both 0: ignored, its truth is difficult). order[r]: the input index of the
    detection at rank r. Per detection in INPUT order: truth[i], the index (into its image's
    GroundTruth) of the truth it took as a true positive, else None; iou[i], its best IoU with
    a truth of its image and class (0.0 when there is none).
    """

    tp: np.ndarray
    fp: np.ndarray
    n_positives: int
    order: list[int]
    truth: list[int | None]
    iou: list[float]

    def __iter__(self):
        return iter((self.tp, self.fp, self.n_positives))


def match_class(detections: Sequence[tuple[int, float, Box]], truths: Sequence[GroundTruth],
                cls: int, iou_threshold: float = 0.5) -> ClassMatch:
    """VOC matching for one class: (tp [D], fp [D], n_positives), detections ranked (a
    ClassMatch, which also says which truth each detection took and its best IoU).

    detections: [(image index, confidence, box)] of this class, any order; they are ranked by
    confidence, highest first (ties: input order). Each detection takes the ground truth of its
    image and class with the highest IoU (ties: the first); with IoU >= threshold it is a true
    positive if that truth is not difficult and not yet taken, a false positive if already
    taken (a duplicate), and ignored (neither) if the truth is difficult. Below the threshold
    (or with no truth of its class in its image) it is a false positive.
    """
    n_pos = sum(1 for g in truths for lab, d in zip(g.labels, g.difficult) if lab == cls and not d)
    order = sorted(range(len(detections)), key=lambda i: -detections[i][1])
    # Each detection's best truth of its image and class: one box_iou per image.
    best_iou, best_j = [0.0] * len(detections), [-1] * len(detections)
    by_image: dict[int, list[int]] = {}
    for i, (img, _, _) in enumerate(detections):
        by_image.setdefault(img, []).append(i)
    for img, idx in by_image.items():
        g = truths[img]
        js = [j for j, lab in enumerate(g.labels) if lab == cls]
        if not js:
            continue
        o = pairwise_iou([detections[i][2] for i in idx], [g.boxes[j] for j in js])
        for r, i in enumerate(idx):
            k = int(np.argmax(o[r]))  # the first of equal IoUs
            best_iou[i], best_j[i] = float(o[r, k]), js[k]
    taken: set[tuple[int, int]] = set()
    tp = np.zeros(len(order))
    fp = np.zeros(len(order))
    truth: list[int | None] = [None] * len(detections)
    for rank, i in enumerate(order):
        img, j = detections[i][0], best_j[i]
        if j >= 0 and best_iou[i] >= iou_threshold:
            if truths[img].difficult[j]:
                continue  # ignored: neither a hit nor a miss
            if (img, j) not in taken:
                tp[rank] = 1
                taken.add((img, j))
                truth[i] = j
            else:
                fp[rank] = 1
        else:
            fp[rank] = 1
    return ClassMatch(tp, fp, n_pos, order, truth, best_iou)


@dataclass
class PRCurve:
    """One class's precision-recall curve over a set of images: after each ranked detection
    (most confident first; detections on a difficult truth left out), the recall and the
    precision so far, and that detection's confidence. class_ap's AP is the area under this
    curve's upper envelope (average_precision). Empty arrays: no detection of the class."""

    recall: np.ndarray
    precision: np.ndarray
    confidence: np.ndarray
    tp: np.ndarray  # 1 where the detection at that rank is a true positive
    n_positives: int


def precision_recall(detections: Sequence[tuple[int, float, Box]], truths: Sequence[GroundTruth],
                     cls: int, iou_threshold: float = 0.5) -> PRCurve:
    """The precision-recall curve of one class (match_class's ranking); with no
    (non-difficult) ground truth the recall is NaN."""
    m = match_class(detections, truths, cls, iou_threshold)
    tp, fp, n_pos = m
    keep = (tp + fp) > 0  # difficult matches are dropped from the ranking altogether
    tp, fp = tp[keep], fp[keep]
    conf = np.array([float(detections[i][1]) for i in m.order], dtype=np.float64)[keep]
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    recall = ctp / n_pos if n_pos else np.full(len(tp), math.nan)
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    return PRCurve(recall, precision, conf, tp, n_pos)


def class_ap(detections: Sequence[tuple[int, float, Box]], truths: Sequence[GroundTruth],
             cls: int, iou_threshold: float = 0.5) -> ClassAP:
    """AP of one class over a set of images (see precision_recall and average_precision)."""
    c = precision_recall(detections, truths, cls, iou_threshold)
    if c.n_positives == 0:
        return ClassAP(math.nan, 0, int(len(c.tp)), 0)
    return ClassAP(average_precision(c.recall, c.precision), c.n_positives, int(len(c.tp)),
                   int(c.tp.sum()))


def mean_ap(detections: Sequence[Sequence[tuple[int, float, Box]]], truths: Sequence[GroundTruth],
            classes: Sequence[int], iou_threshold: float = 0.5) -> tuple[float, dict[int, ClassAP]]:
    """Mean AP over classes, VOC style.

    Args:
        detections: per image, [(class, confidence, box)]. truths: per image, GroundTruth.
        classes: the classes to score (object classes, background excluded).
    Returns:
        (mAP, {class: ClassAP}). Classes with no non-difficult ground truth in the set get AP
        NaN and are left out of the mean (the mean of no classes is NaN).
    """
    if len(detections) != len(truths):
        raise ValueError(f"{len(detections)} detection lists for {len(truths)} images")
    per_class: dict[int, ClassAP] = {}
    for c in classes:
        dets = [(i, float(conf), box) for i, ds in enumerate(detections)
                for lab, conf, box in ds if lab == c]
        per_class[c] = class_ap(dets, truths, c, iou_threshold)
    aps = [v.ap for v in per_class.values() if not math.isnan(v.ap)]
    return (float(np.mean(aps)) if aps else math.nan), per_class
