"""Deliberately naive references the tests compare the package with: literal Python loops over
every cell, written from the paper's definitions and sharing no code with overfeat/.

A plain module, not a test file (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import torch


def interleave_loops(maps: list[torch.Tensor], k: int) -> torch.Tensor:
    """The fine map of k*k offset maps, cell by cell: offset map (dx, dy) (the list in row-major
    order of the offset grid, dy outer: maps[dy * k + dx]) cell (j, i) goes to fine cell
    (k*j + dy, k*i + dx). Cells no map fills stay NaN."""
    H = sum(maps[dy * k].shape[-2] for dy in range(k))
    W = sum(maps[dx].shape[-1] for dx in range(k))
    out = torch.full((*maps[0].shape[:-2], H, W), float("nan"), dtype=maps[0].dtype)
    for dy in range(k):
        for dx in range(k):
            m = maps[dy * k + dx]
            for j in range(m.shape[-2]):
                for i in range(m.shape[-1]):
                    out[..., k * j + dy, k * i + dx] = m[..., j, i]
    return out
