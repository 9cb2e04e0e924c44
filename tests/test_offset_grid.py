"""figures.offset_grid_figure's one heatmap of the k*k offset maps: every cell's hover data
(customdata: the offset (dx, dy) and the cell (row, column) in its own map), filled with array
slices, against a deliberately naive loop over the cells; the gaps between blocks (and an
offset map's missing last row or column) carry -1 and no hover. Random map sizes, seeded.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from overfeat.app.figures import offset_grid_figure
from overfeat.offsets import offsets


def naive_customdata(maps: list[torch.Tensor], k: int) -> list[list[list[int]]]:
    """Cell by cell: [dx, dy, j, i] where offset (dx, dy)'s map has cell (j, i), else -1s."""
    bh = max(m.shape[0] for m in maps)
    bw = max(m.shape[1] for m in maps)
    rows, cols = k * bh + k - 1, k * bw + k - 1
    out = [[[-1, -1, -1, -1] for _ in range(cols)] for _ in range(rows)]
    for (dx, dy), m in zip(offsets(k), maps):
        for j in range(m.shape[0]):
            for i in range(m.shape[1]):
                out[dy * (bh + 1) + j][dx * (bw + 1) + i] = [dx, dy, j, i]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_every_cell_hovers_its_offset_and_cell(seed):
    rng = random.Random(seed)
    k = rng.choice([2, 3])
    h, w = rng.randint(1, 40), rng.randint(1, 50)
    # an offset's map can be a row or a column shorter than offset (0,0)'s
    maps = [torch.rand(h - (rng.random() < 0.3 and h > 1), w - (rng.random() < 0.3 and w > 1))
            for _ in range(k * k)]
    maps[0] = torch.rand(h, w)
    fig = offset_grid_figure(maps, k, "activation", colorscale="Greys")
    (hm,) = fig.data
    cd = np.asarray(hm.customdata)
    assert cd.tolist() == naive_customdata(maps, k)
    # the gaps: no value, no hover
    z = np.asarray(hm.z, dtype=float)
    assert (np.isnan(z) == (cd[..., 0] == -1)).all()
    assert hm.hoverongaps is False
    assert "%{customdata[0]}" in hm.hovertemplate and "%{customdata[3]}" in hm.hovertemplate
