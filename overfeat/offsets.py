"""Offset max pooling, the "fine stride" trick (paper §3.3, Fig. 3).

The last max pool (k x k, stride k) would make the output stride k times the pre-pool stride.
Pooling k*k times, once per offset (dx, dy), and running the classifier over each pooled map
gives k*k coarse maps that interleave into one map at the pre-pool stride:

    pooled[dy, dx] = maxpool_k(x[..., dy:, dx:])
    fine[k*j + dy, k*i + dx] = classifier(pooled[dy, dx])[j, i]

which equals max pooling with stride 1 followed by the classifier dilated by k. The paper trims
all offset maps to their smallest common size before interleaving; we keep every valid window
instead (the offset maps differ by at most one row/column, and the interleave below places each
cell exactly), so the fine map has H - k*K + 1 rows for a pre-pool map of H rows and a KxK first
FC layer: one row per window position at the pre-pool stride. (Project choice, documented.)
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def offsets(k: int) -> list[tuple[int, int]]:
    """The k*k offsets as (dx, dy), in row-major order of the offset grid (dy outer)."""
    return [(dx, dy) for dy in range(k) for dx in range(k)]


def offset_pool(x: Tensor, k: int) -> list[Tensor]:
    """Max-pool x once per offset.

    Args:
        x (Tensor[B, C, H, W]): the pre-pool feature map.
        k: pool size and stride.
    Returns:
        k*k tensors [B, C, (H - dy) // k, (W - dx) // k], in the order of offsets(k).
    """
    if k < 1:
        raise ValueError(f"pool size must be >= 1, got {k}")
    if x.shape[-2] < k or x.shape[-1] < k:
        raise ValueError(f"feature map {tuple(x.shape[-2:])} is smaller than the {k}x{k} pool")
    return [F.max_pool2d(x[..., dy:, dx:], kernel_size=k, stride=k) for dx, dy in offsets(k)]


def fine_size(coarse_sizes: list[tuple[int, int]], k: int) -> tuple[int, int]:
    """Size of the interleaved map, from the k*k coarse map sizes (ordered as offsets(k))."""
    h = sum(coarse_sizes[dy * k][0] for dy in range(k))  # column dx = 0
    w = sum(coarse_sizes[dx][1] for dx in range(k))  # row dy = 0
    return h, w


def interleave(maps: list[Tensor], k: int) -> Tensor:
    """Interleave k*k coarse maps into one fine map.

    Args:
        maps: k*k tensors [..., h_dy, w_dx] ordered as offsets(k); map (dx, dy) holds the
            cells fine[k*j + dy, k*i + dx].
    Returns:
        Tensor[..., H, W] with H = sum over dy of h_dy, W = sum over dx of w_dx.
    """
    if len(maps) != k * k:
        raise ValueError(f"expected {k * k} offset maps, got {len(maps)}")
    H, W = fine_size([tuple(m.shape[-2:]) for m in maps], k)
    out = maps[0].new_empty((*maps[0].shape[:-2], H, W))
    for (dx, dy), m in zip(offsets(k), maps):
        # Rows dy, dy+k, ... of the fine map: exactly ceil((H - dy) / k) of them.
        rows, cols = len(range(dy, H, k)), len(range(dx, W, k))
        if m.shape[-2] != rows or m.shape[-1] != cols:
            raise ValueError(
                f"offset map ({dx},{dy}) is {tuple(m.shape[-2:])}, expected {(rows, cols)}")
        out[..., dy::k, dx::k] = m
    return out


def deinterleave(fine: Tensor, k: int) -> list[Tensor]:
    """The inverse of interleave: the k*k coarse maps [..., h_dy, w_dx] of a fine map, as
    views (fine[..., dy::k, dx::k]), ordered as offsets(k)."""
    return [fine[..., dy::k, dx::k] for dx, dy in offsets(k)]


def fine_cell(dx: int, dy: int, j: int, i: int, k: int) -> tuple[int, int]:
    """(row, col) in the fine map of cell (j, i) of offset map (dx, dy)."""
    return k * j + dy, k * i + dx


def cell_window(row: Tensor | int, col: Tensor | int, stride: int, window: int):
    """Input window of fine-map cell (row, col): (x1, y1, x2, y2) in resized-image pixels.

    The fine map steps by the pre-pool stride (12 px accurate), and each cell sees a window of
    the network's input size (221 px accurate) whose top-left corner is (stride*col, stride*row).
    """
    x1 = col * stride
    y1 = row * stride
    return x1, y1, x1 + window, y1 + window

