"""Box geometry: areas, IoU, the regressor's window-relative encoding (paper §4.2), and
Detections, the one type of a set of final boxes (what the merge, NMS, predict, the Detection
page and evaluate hand on).

All boxes are (x1, y1, x2, y2) in pixels, x2 > x1 and y2 > y1, as in torchvision.ops.
IoU is computed here only (box_iou); overfeat.metrics.iou is its scalar form on tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor


def box_area(boxes: Tensor) -> Tensor:
    """boxes (Tensor[N, 4]) -> areas (Tensor[N]); degenerate boxes have area 0."""
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU: a (Tensor[N, 4]), b (Tensor[M, 4]) -> Tensor[N, M].

    Pairs whose union is empty (two degenerate boxes) get IoU 0 rather than NaN.
    """
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])  # [N, M, 2]
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)  # [N, M]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def coverage(window: Tensor, box: Tensor) -> Tensor:
    """Fraction of each box's area that lies inside its window: window, box (Tensor[N, 4]) ->
    Tensor[N]. This is the overlap measure of the regressor's training rule (paper §4.2: windows
    overlapping the ground truth by less than 50% are not trained on; the paper does not define
    the measure (?); we use the part of the object the window sees, so that a window inside a
    large object still counts)."""
    lt = torch.maximum(window[:, :2], box[:, :2])
    rb = torch.minimum(window[:, 2:], box[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    return inter / box_area(box).clamp(min=1e-12)


def encode(boxes: Tensor, windows: Tensor) -> Tensor:
    """Regression target of a ground-truth box in the frame of its window (paper §4.2 (?)).

    Each edge is measured from the window's top-left corner in units of the window side:
    t = ((x1 - wx1) / s, (y1 - wy1) / s, (x2 - wx1) / s, (y2 - wy1) / s), s = window width.
    A box filling the window is (0, 0, 1, 1); boxes reaching outside it go below 0 or above 1.
    boxes, windows (Tensor[N, 4]) -> Tensor[N, 4].
    """
    s = (windows[:, 2] - windows[:, 0])[:, None]
    origin = windows[:, :2].repeat(1, 2)
    return (boxes - origin) / s


def decode(t: Tensor, windows: Tensor) -> Tensor:
    """Inverse of encode: t (Tensor[..., 4]) and windows (Tensor[..., 4]) -> boxes [..., 4]."""
    s = (windows[..., 2] - windows[..., 0])[..., None]
    origin = torch.cat([windows[..., :2], windows[..., :2]], dim=-1)
    return t * s + origin


def clip_boxes(boxes: Tensor, image_hw: tuple[int, int]) -> Tensor:
    """[N, 4] x1 y1 x2 y2 clipped to an image of (height, width): 0 <= x <= W, 0 <= y <= H."""
    h, w = image_hw
    out = boxes.clone()
    out[:, 0::2] = out[:, 0::2].clamp(0, w)
    out[:, 1::2] = out[:, 1::2].clamp(0, h)
    return out


# --- final boxes ----------------------------------------------------------------------------
@dataclass
class Detection:
    """One final box as a plain record (Detections.records): for JSON, the CLI and tables."""

    label: int
    name: str
    confidence: float  # sum of the member windows' class scores (paper §4.3)
    box: tuple[float, float, float, float]  # x1 y1 x2 y2, original-image pixels
    members: int  # raw boxes merged into this one
    score: float | None = None  # probability-like, in [0, 1] (Detections.score); None: unknown

    def to_dict(self) -> dict:
        d = {"class": self.name, "label": self.label, "confidence": round(self.confidence, 4),
             "box": [round(v, 1) for v in self.box], "members": self.members}
        if self.score is not None:
            d["score"] = round(self.score, 4)
        return d


@dataclass
class Detections:
    """A set of final boxes of one image, most confident first (the merge, NMS and every
    consumer of their answer use this one type).

    boxes (Tensor[N, 4] float64): x1 y1 x2 y2 in image pixels. confs (Tensor[N] float64): a
    merged box's confidence is the sum of its members' class scores, a kept NMS box its
    window's score. labels (Tensor[N] int64): class indices. members[i]: indices of the raw
    boxes behind box i ([] when unknown, e.g. boxes built by hand). support[i] (optional):
    the sum of the class probabilities of box i's members (overfeat.compare); None: the
    confidences stand in for it. method: which method left the boxes ("" when not said).
    score (optional Tensor[N] float64, in [0, 1]): a probability-like score beside the summed
    confidence (multiscale.view_score: the mean over the views of the best member window's
    class probability in each view, 0 for a view with no member).
    """

    boxes: Tensor
    confs: Tensor
    labels: Tensor
    members: list[list[int]] = field(default_factory=list)
    support: Tensor | None = None
    method: str = ""
    score: Tensor | None = None

    def __post_init__(self) -> None:
        b = torch.as_tensor(self.boxes).double()
        if b.numel() == 0:
            b = b.reshape(0, 4)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes must be [N, 4], got {tuple(b.shape)}")
        self.boxes = b
        self.confs = torch.as_tensor(self.confs).double()
        self.labels = torch.as_tensor(self.labels).long()
        n = int(self.boxes.shape[0])
        if self.confs.shape != (n,) or self.labels.shape != (n,):
            raise ValueError(f"expected confs and labels of shape [{n}], got "
                             f"{tuple(self.confs.shape)} and {tuple(self.labels.shape)}")
        if self.members and len(self.members) != n:
            raise ValueError(f"{len(self.members)} member lists for {n} boxes")
        if self.support is not None and tuple(self.support.shape) != (n,):
            raise ValueError(f"expected support of shape [{n}], got {tuple(self.support.shape)}")
        if self.score is not None:
            self.score = torch.as_tensor(self.score).double()
            if tuple(self.score.shape) != (n,):
                raise ValueError(f"expected score of shape [{n}], got {tuple(self.score.shape)}")

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def supports(self) -> Tensor:
        """support, or the confidences where there is none."""
        return self.confs if self.support is None else self.support

    def take(self, idx: Tensor | Sequence[int]) -> "Detections":
        """The boxes at idx (indices), in that order."""
        idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
        return Detections(self.boxes[idx], self.confs[idx], self.labels[idx],
                          [self.members[i] for i in idx.tolist()] if self.members else [],
                          None if self.support is None else self.support[idx], self.method,
                          None if self.score is None else self.score[idx])

    def top(self, n: int | None) -> "Detections":
        """The n most confident boxes (the first n; all of them for None)."""
        if n is None or n >= len(self):
            return self
        return self.take(torch.arange(max(int(n), 0)))

    def above(self, min_conf: float) -> "Detections":
        """The boxes whose confidence is at least min_conf, in their order."""
        return self.take(torch.nonzero(self.confs >= min_conf).flatten())

    def scored(self, min_score: float) -> "Detections":
        """The boxes whose score is at least min_score, highest score first (ties: in their
        order). Raises ValueError when the boxes have no score."""
        if self.score is None:
            raise ValueError("these boxes have no probability-like score")
        keep = torch.nonzero(self.score >= min_score).flatten()
        order = torch.argsort(-self.score[keep], stable=True)
        return self.take(keep[order])

    def supported(self, min_support: float | None) -> "Detections":
        """The boxes whose support is at least min_support, in their order (all for None)."""
        if min_support is None:
            return self
        return self.take(torch.nonzero(self.supports >= min_support).flatten())

    def clip(self, image_hw: tuple[int, int]) -> "Detections":
        """The same boxes clipped to an image of (height, width) (clip_boxes)."""
        return replace(self, boxes=clip_boxes(self.boxes, image_hw))

    def records(self, class_names: Sequence[str]) -> list[Detection]:
        """One Detection per box, in order (class names from the model)."""
        labels, confs, boxes = self.labels.tolist(), self.confs.tolist(), self.boxes.tolist()
        scores = self.score.tolist() if self.score is not None else [None] * len(labels)
        return [Detection(label=lab, name=class_names[lab], confidence=conf, box=tuple(box),
                          members=len(self.members[i]) if self.members else 0, score=sc)
                for i, (lab, conf, box, sc) in enumerate(zip(labels, confs, boxes, scores))]

    def as_tuples(self, confs: bool = True) -> list[tuple]:
        """The boxes as overfeat.metrics takes them: [(label, conf, box)] (mean_ap's detections
        of one image), or [(label, box)] with confs=False (localization_correct's guesses);
        box = (x1, y1, x2, y2) floats."""
        labels, boxes = self.labels.tolist(), [tuple(b) for b in self.boxes.tolist()]
        if not confs:
            return list(zip(labels, boxes))
        return list(zip(labels, self.confs.tolist(), boxes))
