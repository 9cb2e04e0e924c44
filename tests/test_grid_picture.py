"""figures.grids.offset_grid_picture: the Offsets page's grids of k*k maps drawn as PNGs (issue
27). Every cell's colour in the decoded picture is checked against a deliberately naive
reference (plotly.colors.sample_colorscale, one cell at a time, at the centre of where the
cell should be), on random maps of random sizes (seeded), for the three colour choices; the
gaps, the colour bar's ends, the labels (inside the picture, none over another) and the sizes
the page relies on."""

from __future__ import annotations

import io
import random

import numpy as np
import plotly.colors as pcolors
import pytest
import torch
from PIL import Image

from overfeat.app.figures import grids
from overfeat.app.figures.grids import nice_ticks, offset_grid_picture, tick_text
from overfeat.app.figures.grids import GRID_GAPS
from overfeat.offsets import offsets


def naive_rgb(v: float, cmin: float, cmax: float, scale: str) -> tuple[float, ...]:
    t = min(max((v - cmin) / (cmax - cmin), 0.0), 1.0)
    (c,) = pcolors.sample_colorscale(pcolors.get_colorscale(scale), [t], colortype="tuple")
    return tuple(255 * x for x in c) if max(c) <= 1.0 else tuple(c)


def gaps_rgb() -> tuple[int, ...]:
    return tuple(int(GRID_GAPS[i:i + 2], 16) for i in (1, 3, 5))


def random_maps(rng: random.Random, k: int) -> list[torch.Tensor]:
    h, w = rng.randint(1, 30), rng.randint(1, 40)
    # an offset's map can be a row or a column shorter than offset (0,0)'s
    maps = [torch.rand(h - (rng.random() < 0.3 and h > 1), w - (rng.random() < 0.3 and w > 1))
            for _ in range(k * k)]
    maps[0] = torch.rand(h, w)
    lo, hi = rng.choice([(0.0, 1.0), (0.002, 0.004), (-3.0, 7.0)])
    return [lo + (hi - lo) * m for m in maps]


def decoded(pic) -> np.ndarray:
    im = Image.open(io.BytesIO(pic.png()))
    assert im.format == "PNG" and im.size == pic.image.size
    return np.asarray(im.convert("RGB")).astype(int)


CASES = [dict(prob_of="dog"), dict(prob_of="dog", stretch=True),
         dict(colorscale="Greys"), dict(phone=True, prob_of="dog"),
         dict(presenter=True, font_px=20, heading="9 pooled maps, channel 3", colorscale="Greys")]


@pytest.mark.parametrize("seed", range(10))
def test_every_cell_is_painted_its_value_colour(seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    k = rng.choice([2, 3])
    maps = random_maps(rng, k)
    kw = dict(CASES[seed % len(CASES)])
    scale = kw.get("colorscale", "Viridis")
    pic = offset_grid_picture(maps, k, "activation", **kw)
    px = decoded(pic)
    # the colour range, computed plainly
    vals = [float(v) for m in maps for v in m.flatten()]
    if kw.get("prob_of") and not kw.get("stretch"):
        cmin, cmax = 0.0, 1.0
        assert pic.colour == "absolute" and pic.bar_title == "p(dog), 0 to 1"
    else:
        cmin, cmax = min(vals), max(vals)
        assert pic.colour == ("stretch" if kw.get("stretch") else "own")
    assert (pic.cmin, pic.cmax) == pytest.approx((cmin, cmax))
    # every cell, one by one: where offset (dx, dy)'s cell (j, i) should be, its colour
    bh, bw = max(m.shape[0] for m in maps), max(m.shape[1] for m in maps)
    x0, y0 = pic.origin
    c = pic.cell
    inset = (c - min(grids.SCALE, c // 3)) // 2 if max(bh, bw) <= grids.GAP_MAX_BLOCK else c // 2
    for (dx, dy), m in zip(offsets(k), maps):
        for j in range(bh):
            for i in range(bw):
                r, col = dy * (bh + 1) + j, dx * (bw + 1) + i
                got = px[y0 + r * c + inset, x0 + col * c + inset]
                if j < m.shape[0] and i < m.shape[1]:
                    want = naive_rgb(float(m[j, i]), cmin, cmax, scale)
                    assert np.abs(got - np.array(want)).max() <= 1.5, (dx, dy, j, i)
                else:  # a missing last row or column of a shorter map: a gap
                    assert tuple(got) == gaps_rgb()
    # between blocks: a whole cell of gap
    if k > 1:
        assert tuple(px[y0 + bh * c + c // 2, x0 + c // 2]) == gaps_rgb()
        assert tuple(px[y0 + c // 2, x0 + bw * c + c // 2]) == gaps_rgb()
    # the record the page keeps is what was drawn
    rec = pic.record()
    assert rec["blocks"] == [[dx, dy, dy * (bh + 1), dx * (bw + 1), m.shape[0], m.shape[1]]
                             for (dx, dy), m in zip(offsets(k), maps)]


@pytest.mark.parametrize("kw", CASES)
def test_the_colour_bar_runs_from_cmin_to_cmax(kw):
    torch.manual_seed(0)
    maps = [0.3 + 0.5 * torch.rand(8, 11) for _ in range(9)]
    pic = offset_grid_picture(maps, 3, "activation", **kw)
    px = decoded(pic)
    bx0, by0, bx1, by1 = pic.bar
    scale = kw.get("colorscale", "Viridis")
    lo = naive_rgb(pic.cmin, pic.cmin, pic.cmax, scale)
    hi = naive_rgb(pic.cmax, pic.cmin, pic.cmax, scale)
    if kw.get("phone"):  # across the top: cmin at the left end, cmax at the right
        ends = px[(by0 + by1) // 2, bx0 + 1], px[(by0 + by1) // 2, bx1 - 2]
    else:  # at the right: cmax at the top
        ends = px[by1 - 2, (bx0 + bx1) // 2], px[by0 + 1, (bx0 + bx1) // 2]
    assert np.abs(ends[0] - np.array(lo)).max() <= 8
    assert np.abs(ends[1] - np.array(hi)).max() <= 8
    if kw.get("phone"):
        assert by1 < pic.origin[1]  # above the grid
    else:
        assert bx0 > pic.origin[0] + pic.cell * pic.z.shape[1]  # right of the grid


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("kw", CASES)
@pytest.mark.parametrize("k,h,w", [(2, 5, 5), (3, 12, 15), (3, 35, 44), (3, 1, 1), (2, 40, 8),
                                   (3, 3, 60)])
def test_labels_sit_inside_the_picture_and_apart(kw, k, h, w):
    """The dx/dy labels, the ticks, the colour bar's title (a long one: a stretched range of a
    long class name) and the heading: inside the picture, none over another or over the grid;
    the picture the width the page shows it at, and no taller than the page's room for it."""
    maps = [torch.rand(h, w) * 0.001 for _ in range(k * k)]
    kw = {**kw, "prob_of": "diningtable"} if kw.get("prob_of") else kw
    pic = offset_grid_picture(maps, k, "channel 211 activation", **kw)
    W, H = pic.image.size
    boxes = [b for _, b in pic.labels]
    x0, y0 = pic.origin
    grid = (x0, y0, x0 + pic.cell * pic.z.shape[1], y0 + pic.cell * pic.z.shape[0])
    for i, b in enumerate(boxes):
        assert 0 <= b[0] and 0 <= b[1] and b[2] <= W and b[3] <= H, (pic.labels[i], W, H)
        assert not _overlap(b, grid), pic.labels[i]
        assert not _overlap(b, pic.bar), pic.labels[i]
        for j in range(i):
            assert not _overlap(b, boxes[j]), (pic.labels[i], pic.labels[j])
    css = (grids.PHONE_WIDTH if kw.get("phone") else grids.PRESENTER_WIDTH
           if kw.get("presenter") else grids.DESK_WIDTH)
    if w / h < 10:
        assert W == css * grids.SCALE
    else:  # a map 20 times wider than high: its rows at least a label apart, the picture wider
        assert W > css * grids.SCALE and pic.cell * (h + 1) >= 14 * grids.SCALE
    if not kw.get("phone"):
        room = grids.PRESENTER_HEIGHT if kw.get("presenter") else grids.DESK_HEIGHT
        assert H <= room * grids.SCALE
    assert any(t == pic.bar_title for t, _ in pic.labels)
    if kw.get("heading"):
        assert any(t == kw["heading"] for t, _ in pic.labels)


@pytest.mark.parametrize("seed", range(200))
def test_nice_ticks_are_round_and_inside_the_range(seed):
    rng = random.Random(seed)
    lo = rng.uniform(-5, 5) * 10 ** rng.randint(-5, 3)
    # a colour range is at least a millionth of its values' size (float64 spaces ticks of a
    # narrower one unevenly)
    hi = lo + max(rng.uniform(1e-3, 10) * 10 ** rng.randint(-5, 3), 1e-6 * abs(lo))
    ticks = nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 6
    assert all(lo - 1e-9 * abs(hi - lo) <= t <= hi + 1e-9 * abs(hi - lo) for t in ticks)
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0], rtol=1e-6)
    mant = steps[0] / 10 ** np.floor(np.log10(steps[0]))
    assert min(abs(mant - m) for m in (1, 2, 5, 10)) < 1e-6
    texts = [tick_text(t, ticks) for t in ticks]
    assert len(set(texts)) == len(texts)  # enough decimals that no two read the same


def test_every_screen_draws_the_same_grid():
    """A phone, presenter mode (with its heading) and a desktop draw the same maps in the
    same blocks with the same colours; only the layout differs."""
    torch.manual_seed(1)
    maps = [torch.rand(9, 13) for _ in range(9)]
    desk = offset_grid_picture(maps, 3, "p(cat)", prob_of="cat")
    others = [offset_grid_picture(maps, 3, "p(cat)", prob_of="cat", phone=True),
              offset_grid_picture(maps, 3, "p(cat)", prob_of="cat", presenter=True, font_px=20,
                                  heading="9 classifier maps, p(cat)")]
    for pic in others:
        assert np.array_equal(pic.z, desk.z, equal_nan=True) and pic.blocks == desk.blocks
        assert (pic.cmin, pic.cmax, pic.bar_title) == (desk.cmin, desk.cmax, desk.bar_title)
    assert others[0].image.width < desk.image.width < others[1].image.width
    assert desk.heading is None and others[1].heading == "9 classifier maps, p(cat)"


@pytest.mark.parametrize("seed", range(6))
def test_the_picked_cell_is_outlined_in_red_around_its_own_colour(seed):
    """pick=(dx, dy, j, i): a red line just outside that cell (the cell keeps its colour), in
    the block of offset (dx, dy); a cell its map does not have is not outlined."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    k = rng.choice([2, 3])
    maps = random_maps(rng, k)
    dx, dy = rng.randrange(k), rng.randrange(k)
    m = maps[offsets(k).index((dx, dy))]
    j, i = rng.randrange(m.shape[0]), rng.randrange(m.shape[1])
    pic = offset_grid_picture(maps, k, "p(dog)", prob_of="dog", pick=(dx, dy, j, i))
    px = decoded(pic)
    bh, bw = max(q.shape[0] for q in maps), max(q.shape[1] for q in maps)
    x0, y0 = pic.origin
    c = pic.cell
    # where the naive layout puts the cell
    x, y = x0 + (dx * (bw + 1) + i) * c, y0 + (dy * (bh + 1) + j) * c
    assert pic.picked[:2] == (x, y) and pic.pick == (dx, dy, j, i)
    x1, y1 = pic.picked[2:]
    mid = ((y + y1) // 2, (x + x1) // 2)
    want = naive_rgb(float(m[j, i]), 0.0, 1.0, "Viridis")
    assert np.abs(px[mid] - np.array(want)).max() <= 1.5  # the cell's own colour
    red = np.array([255, 0, 0])
    for yy, xx in ((y - 1, mid[1]), (y1, mid[1]), (mid[0], x - 1), (mid[0], x1)):
        assert (px[yy, xx] == red).all(), (yy, xx, px[yy, xx])  # the outline on all 4 sides
    assert pic.record()["pick"] == [dx, dy, j, i]
    # a map a row shorter has no such row: nothing outlined
    short = [q[:-1] if n == 1 and q.shape[0] > 1 else q for n, q in enumerate(maps)]
    if short[1].shape[0] < bh:
        sdx, sdy = offsets(k)[1]
        none = offset_grid_picture(short, k, "p(dog)", prob_of="dog", pick=(sdx, sdy, bh - 1, 0))
        assert none.pick is None and none.picked is None
        assert not (decoded(none) == red).all(axis=-1).any()
