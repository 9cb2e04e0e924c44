"""The greedy merge against non-maximum suppression, and detections against the ground truth.

The paper accumulates boxes (paper §4.3, §5) instead of suppressing them; this module
runs both on the SAME raw boxes (Analysis.table) so the app can show the difference:

- "greedy literal" and "greedy corrected": overfeat.merge.merge with each match score; a final
  box's confidence is the sum of its members' class scores.
- "nms": torchvision.ops.nms over all raw boxes, whatever their class (a box of one class may
  suppress a box of another); a kept box keeps its window's class score.
- "batched nms": torchvision.ops.batched_nms, suppression within a class only (the usual
  detector post-processing, the analogue of the merge's by_class=True).

Matching to the ground truth (match_truth) is the VOC rule of overfeat.metrics.match_class for
one image, all classes at once: detections, most confident first, each take the not yet taken
same-class truth with the highest IoU; IoU >= 0.5 makes a true positive, anything else
(including a second box on a taken truth) a false positive; truths never taken are missed.

How close a method comes to the truth (truth_score), in this order (a tuple, larger is better):
more truths found (true positives), then fewer false positives, then a higher mean IoU of the
true positives. Recall first because a method that finds nothing has no false positives.

Which final boxes count (compare_rows' min_support): every method leaves many weak boxes, so
a box counts when its SUPPORT reaches a threshold, one rule for all four methods. The methods'
own confidences cannot share a threshold: a greedy box's is the sum of its members' class
scores (up to thousands), an NMS box's is one window's score (at most 1), so "the 10 most
confident" or "confidence >= t" would compare different things (the top 10 of a one-object
scene gave every method 9 false positives). The support of a final box is the sum of the class
probabilities of the raw boxes behind it, Detections.members: the boxes merged into it (for the
greedy merge this is its confidence), or the kept box and those it suppressed (NMS). Every raw
box is behind exactly one final box in all four methods, so each spends the same total; the
threshold asks how many confident windows' worth of evidence a box gathers ("about that many
windows agree", as the Detection page's minimum confidence), and a method that leaves the
evidence of one object spread over many boxes (or, as the literal merge often does, merges
nothing) counts fewer. Measured on the three one-object gallery scenes with the shipped
checkpoint and the sidebar's defaults, at DEFAULT_MIN_SUPPORT = 30: greedy corrected 1 true
positive and 3, 2, 1 false positives, NMS 1 and 3, 1, 4, greedy literal none (its boxes stay
single windows).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .boxes import Detections, box_iou
from .merge import DEFAULT_AVERAGE, MergeResult, merge
from .metrics import GroundTruth, match_class
from .multiscale import BoxTable

METHODS = ("greedy literal", "greedy corrected", "nms", "batched nms")
DEFAULT_NMS_IOU = 0.5
MATCH_IOU = 0.5  # VOC / ILSVRC: a detection is right at IoU >= 0.5 with a same-class truth


def support_of(scores: Tensor, members: list[list[int]]) -> Tensor:
    """Per final box: the sum of its members' scores (Tensor[M], float64)."""
    s = scores.double()
    return torch.tensor([float(s[m].sum()) for m in members], dtype=torch.float64)


def from_merge(method: str, r: MergeResult) -> Detections:
    """A merge's final boxes (r.final) as one method's answer, with their support."""
    f = r.final
    members = [list(m) for m in f.members]
    return Detections(f.boxes, f.confs, f.labels, members, support_of(r.scores, members),
                      method=method, score=f.score)


def nms_boxes(table: BoxTable, iou_threshold: float = DEFAULT_NMS_IOU,
              by_class: bool = True) -> Detections:
    """Non-maximum suppression of the raw boxes with torchvision.ops (batched_nms when
    by_class, else plain nms). A kept box's members: itself and the boxes it suppressed (the
    not yet suppressed boxes, less confident, with IoU > iou_threshold against it)."""
    from torchvision.ops import batched_nms, nms

    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"IoU threshold must be in [0, 1], got {iou_threshold}")
    boxes = table.boxes.float()
    scores = table.scores.float()
    labels = table.labels.long()
    method = "batched nms" if by_class else "nms"
    if len(table) == 0:
        return Detections(boxes, scores, labels, [], method=method)
    keep = (batched_nms(boxes, scores, labels, iou_threshold) if by_class
            else nms(boxes, scores, iou_threshold))  # indices, most confident first
    # Who each kept box suppressed, for the provenance shown in the app.
    iou = box_iou(boxes[keep], boxes)  # [M, N]
    same = (labels[keep][:, None] == labels[None, :] if by_class
            else torch.ones_like(iou, dtype=torch.bool))
    taken = torch.zeros(len(table), dtype=torch.bool)
    taken[keep] = True
    members = []
    for m, k in enumerate(keep.tolist()):
        sup = ((iou[m] > iou_threshold) & same[m] & ~taken).nonzero().flatten()
        taken[sup] = True
        members.append([k] + sup.tolist())
    return Detections(boxes[keep], scores[keep], labels[keep], members,
                      support_of(table.scores, members), method=method)


def run_methods(table: BoxTable, t_literal: float | None = None, t_corrected: float | None = None,
                iou_threshold: float = DEFAULT_NMS_IOU, by_class: bool = True,
                merges: dict[str, MergeResult] | None = None,
                average: str = DEFAULT_AVERAGE) -> dict[str, Detections]:
    """The four methods of METHODS on the same raw boxes: {method: Detections}.

    merges: greedy merges of this table already computed with these settings ({"literal": ...,
    "corrected": ...}, e.g. the app's cached ones); the others are computed here.
    """
    t, merges = table, dict(merges or {})
    for kind, th in (("literal", t_literal), ("corrected", t_corrected)):
        if kind not in merges:
            merges[kind] = merge(t.boxes, t.scores, t.labels, kind, th, by_class, average)
        assert int(merges[kind].boxes.shape[0]) == len(t), "a merge of another table"
    return {
        "greedy literal": from_merge("greedy literal", merges["literal"]),
        "greedy corrected": from_merge("greedy corrected", merges["corrected"]),
        "nms": nms_boxes(t, iou_threshold, by_class=False),
        "batched nms": nms_boxes(t, iou_threshold, by_class=True),
    }


@dataclass
class TruthMatch:
    """match_truth's answer for one image."""

    status: list[str]  # per detection (in input order): "TP", "FP", or "ignored" (on a difficult truth)
    truth_of: list[int | None]  # per detection: the truth it matched (TP), else None
    ious: list[float]  # per detection: its best IoU with a same-class truth (0 if none)
    missed: list[int]  # truths no detection matched

    @property
    def tp(self) -> int:
        return self.status.count("TP")

    @property
    def fp(self) -> int:
        return self.status.count("FP")

    @property
    def mean_iou(self) -> float:
        v = [o for o, s in zip(self.ious, self.status) if s == "TP"]
        return sum(v) / len(v) if v else 0.0


def match_truth(dets: Detections, truth: list[dict], class_names,
                iou_threshold: float = MATCH_IOU) -> TruthMatch:
    """VOC matching of one image's detections to its ground truth (see the module docstring):
    overfeat.metrics.match_class (the mAP code) for each class of the detections.

    dets: the image's final boxes; truth: [{"name": class name, "box": (x1, y1, x2, y2)}] (a
    generated scene's objects), optionally with "difficult": True (a photo's object too small
    or hidden to require: a detection on it is "ignored", and missing it is no miss). Ties of
    confidence: input order.
    """
    index = {n: i for i, n in enumerate(class_names)}
    unknown = [t["name"] for t in truth if t["name"] not in index]
    if unknown:
        raise ValueError(f"truth classes {unknown} are not among the model's classes")
    gt = GroundTruth(labels=[index[t["name"]] for t in truth],
                     boxes=[tuple(float(v) for v in t["box"]) for t in truth],
                     difficult=[bool(t.get("difficult", False)) for t in truth])
    d = len(dets)
    status, truth_of, ious = ["FP"] * d, [None] * d, [0.0] * d
    rows = dets.as_tuples()  # (label, conf, box), input order
    for c in sorted({lab for lab, _, _ in rows}):  # classes never compete for a truth
        idx = [i for i, (lab, _, _) in enumerate(rows) if lab == c]
        m = match_class([(0, rows[i][1], rows[i][2]) for i in idx], [gt], c, iou_threshold)
        rank = {k: r for r, k in enumerate(m.order)}
        for k, i in enumerate(idx):
            ious[i] = m.iou[k]  # the best same-class truth, taken or not (VOC)
            if m.truth[k] is not None:
                status[i], truth_of[i] = "TP", m.truth[k]
            elif not m.fp[rank[k]]:
                status[i] = "ignored"
    taken = {j for j in truth_of if j is not None}
    return TruthMatch(status, truth_of, ious, [j for j in range(len(truth))
                                               if j not in taken and not gt.difficult[j]])


def truth_score(m: TruthMatch) -> tuple[int, int, float]:
    """How close to the truth (larger is better): (true positives, -false positives, mean IoU)."""
    return (m.tp, -m.fp, round(m.mean_iou, 6))


# The app's default minimum support (module docstring): about 30 confident windows' worth, the
# Detection page's default minimum confidence too. SUPPORT_STEPS: the page's choices.
DEFAULT_MIN_SUPPORT = 30.0
SUPPORT_STEPS = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 200.0, 500.0)


def compare_rows(results: dict[str, Detections], raw: int, truth: list[dict] | None,
                 class_names, min_support: float | None = None) -> list[dict]:
    """One table row per method: boxes left, boxes counted (support >= min_support; None: all)
    and, with a truth, the counted boxes' TP, FP, missed, mean IoU and the rank by
    truth_score (1 = closest)."""
    rows = []
    for name, r in results.items():
        r_all, r = r, r.supported(min_support)
        row = {"method": name, "raw boxes": raw, "final boxes": len(r_all), "counted": len(r)}
        if truth is not None:
            m = match_truth(r, truth, class_names)
            row.update({"true positives": m.tp, "false positives": m.fp,
                        "missed": len(m.missed), "mean IoU of matches": round(m.mean_iou, 3),
                        "_score": truth_score(m)})
        rows.append(row)
    if truth is not None:  # rank 1 = closest; equal scores share a rank
        for r in rows:
            r["rank"] = 1 + sum(1 for o in rows if o["_score"] > r["_score"])
        for r in rows:
            del r["_score"]
    return rows


def counterparts(counted: dict[str, Detections], class_names,
                 iou_threshold: float = MATCH_IOU) -> dict[str, list[list[str]]]:
    """Where the methods differ: for each method's counted boxes, per box (in order), the
    other methods that have no box for it. Box i of method m has a box in method n when the VOC
    matching of m's boxes (most confident first) to n's boxes as if they were the truth
    (match_truth: same class, IoU >= iou_threshold, each of n's boxes taken once) gives it one;
    so a second box of m on one object of n is lacking in n. Methods that count no box are left
    out (every box would lack there; the page says why they count none)."""
    out: dict[str, list[list[str]]] = {}
    others = [n for n, d in counted.items() if len(d)]
    for m, d in counted.items():
        lacking: list[list[str]] = [[] for _ in range(len(d))]
        for n in others:
            if n == m or not len(d):
                continue
            ref = counted[n]
            as_truth = [{"name": class_names[int(c)], "box": tuple(b)}
                        for c, b in zip(ref.labels.tolist(), ref.boxes.tolist())]
            match = match_truth(d, as_truth, class_names, iou_threshold)
            for i, s in enumerate(match.status):
                if s != "TP":
                    lacking[i].append(n)
        out[m] = lacking
    return out


def nothing_counted(d: Detections, min_support: float | None = None,
                    min_score: float | None = None) -> str:
    """Why a method counts no box, in one line (the Greedy vs NMS page writes it instead of an
    empty picture): its rule, and the best its final boxes reach. min_score: counted by the
    probability-like score (Detections.score) instead of the support."""
    n = len(d)
    rule = (f"score >= {min_score:g}" if min_score is not None else
            f"support >= {min_support:g}")
    if n == 0:
        return f"no box has {rule}: it leaves no final box"
    if min_score is not None:
        best = float(d.score.max()) if d.score is not None else 0.0
        return f"no box has {rule}: the best of its {n:,} final boxes scores {best:.2f}"
    best = float(d.supports.max())
    return f"no box has {rule}: the best of its {n:,} final boxes has support {best:.2f}"
