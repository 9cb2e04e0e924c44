"""Box geometry: areas, IoU, and the regressor's window-relative encoding (paper §4.2).

All boxes are (x1, y1, x2, y2) in pixels, x2 > x1 and y2 > y1, as in torchvision.ops.
"""

from __future__ import annotations

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
