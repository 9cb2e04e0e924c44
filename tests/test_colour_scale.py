"""Colours that mean what they say (issue 27): maps of probabilities are drawn on one absolute
0-1 scale by default, the same for every class and scale, or stretched to the class's own range
when asked, and the colour bar says which; maps that are not probabilities keep their own range
and name it. The Scales page draws the window of a picked cell. Package figures are checked
without a browser against naive recomputations; the AppTests flip the page's control and open
links.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from apptest_helpers import figures as page_figures
from apptest_helpers import ok, open_link, page, pictures, traces
from overfeat import activations
from overfeat.app import figures
from overfeat.app import state as appstate
from overfeat.app.figures import maps as figmaps
from overfeat.app.figures.base import drawn_once
from overfeat.multiscale import Settings, analyze
from overfeat.predict import load_model


@pytest.fixture(scope="module")
def model():
    return load_model()[0]


@pytest.fixture(scope="module")
def scene():
    return appstate.make_scene("det", 0, 0)[0]


@pytest.fixture(scope="module")
def a(model, scene):
    return analyze(model, scene, Settings(scales=(0, 2, 4), flips=True))


@pytest.fixture(scope="module")
def bd(scene):
    return figures.backdrop(scene, figures.PANEL_SIDE)


def naive_range(maps) -> tuple[float, float]:
    """min and max by walking every value (the reference for figmaps.map_range)."""
    vals = [float(x) for m in maps for x in m.flatten().tolist()]
    return min(vals), max(vals)


def strong_and_weak(a) -> tuple[int, int]:
    """The class with the highest and the one with the lowest peak over the drawn maps."""
    views = figures.select_views(a)
    peak = {c: max(float(v.fine[c].max()) for v in views) for c in range(len(a.class_names))}
    return max(peak, key=peak.get), min(peak, key=peak.get)


def bar(fig) -> str:
    return fig.layout.coloraxis.colorbar.title.text


# --- package figures -----------------------------------------------------------------------------
def test_range_text_keeps_the_two_ends_apart():
    torch.manual_seed(1)
    for _ in range(200):
        # ends at least 1e-5 apart relative to the larger (what 6 digits can tell apart)
        lo = float(torch.rand(1)) * 10 ** float(torch.randint(-6, 1, (1,)))
        hi = (lo + 1e-12) * (1 + 10 ** float(torch.empty(1).uniform_(-5, 0)))
        a_, b_ = figmaps.range_text(lo, hi).split(" to ")
        assert a_ != b_
        assert float(a_) == pytest.approx(lo, rel=5e-3, abs=1e-12)
        assert float(b_) == pytest.approx(hi, rel=5e-3, abs=1e-12)
    assert figmaps.range_text(0.0025, 0.0035) == "0.0025 to 0.0035"


def test_map_range_is_the_naive_min_and_max():
    torch.manual_seed(2)
    for _ in range(20):
        maps = [torch.rand(int(torch.randint(1, 6, (1,))), int(torch.randint(1, 6, (1,)))) - 0.3
                for _ in range(int(torch.randint(1, 5, (1,))))]
        assert figmaps.map_range(maps) == pytest.approx(naive_range(maps))
    assert figmaps.map_range([torch.zeros(0, 3)]) == (0.0, 0.0)


def test_scale_maps_are_absolute_by_default_for_a_strong_and_a_weak_class(a, bd):
    strong, weak = strong_and_weak(a)
    views = figures.select_views(a)
    hi_s = naive_range([v.fine[strong] for v in views])[1]
    hi_w = naive_range([v.fine[weak] for v in views])[1]
    assert hi_s - hi_w > 0.5  # two classes with very different maxima
    for c in (strong, weak):
        fig = figures.scale_maps_figure(a, bd, c)
        assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, 1.0)
        assert bar(fig) == f"p({a.class_names[c]}), 0 to 1"
        assert fig.layout.meta["colour"] == "absolute"
        # every heatmap of the figure uses that one axis
        assert {t.coloraxis for t in fig.data if t.type == "heatmap"} == {"coloraxis"}


@pytest.mark.parametrize("flip", [False, True])
def test_scale_maps_stretched_span_the_class_range_and_say_so(a, bd, flip):
    for c in strong_and_weak(a):
        views = figures.select_views(a, flip=flip)
        lo, hi = naive_range([v.fine[c] for v in views])
        fig = figures.scale_maps_figure(a, bd, c, flip=flip, stretch=True)
        assert fig.layout.coloraxis.cmin == pytest.approx(lo, rel=1e-6, abs=1e-12)
        assert fig.layout.coloraxis.cmax == pytest.approx(hi, rel=1e-6)
        name = a.class_names[c]
        assert bar(fig) == f"p({name}), stretched: {figmaps.range_text(lo, hi)}"
        assert fig.layout.meta["colour"] == "stretch"
        # the maps themselves do not change with the colour scale
        plain = figures.scale_maps_figure(a, bd, c, flip=flip)
        z = [t.z for t in fig.data if t.type == "heatmap"]
        assert z == [t.z for t in plain.data if t.type == "heatmap"]


def test_the_other_probability_figures_follow_the_choice(a, bd, model, scene):
    strong, weak = strong_and_weak(a)
    v = next(v for v in a.views if not v.flip and v.scale == 2)
    for c in (strong, weak):
        name = a.class_names[c]
        lo, hi = naive_range([v.fine[c], v.class_maps[0][c]])
        fc = figures.fine_coarse_figure(v, c, a.k, name)
        assert (fc.layout.coloraxis.cmin, fc.layout.coloraxis.cmax) == (0.0, 1.0)
        fc = figures.fine_coarse_figure(v, c, a.k, name, stretch=True)
        assert (fc.layout.coloraxis.cmin, fc.layout.coloraxis.cmax) == pytest.approx((lo, hi))
        assert bar(fc) == f"p({name}), stretched: {figmaps.range_text(lo, hi)}"

        maps = [m[c] for m in v.class_maps]
        g = figures.offset_grid_picture(maps, a.k, f"p({name})", prob_of=name)
        assert (g.cmin, g.cmax) == (0.0, 1.0) and g.colour == "absolute"
        assert g.bar_title == f"p({name}), 0 to 1"
        g = figures.offset_grid_picture(maps, a.k, f"p({name})", prob_of=name, stretch=True)
        assert (g.cmin, g.cmax) == pytest.approx(naive_range(maps)) and g.colour == "stretch"

        lv = figures.level_maps_figure(a, bd, c, 2)
        assert (lv.layout.coloraxis.cmin, lv.layout.coloraxis.cmax) == (0.0, 1.0)
        lv = figures.level_maps_figure(a, bd, c, 2, stretch=True)
        assert lv.layout.coloraxis.cmax == pytest.approx(float(v.fine[c].max()))

    acts = activations.compute(model, scene, 2)
    out = figures.output_maps_figure(acts)
    assert (out.layout.coloraxis.cmin, out.layout.coloraxis.cmax) == (0.0, 1.0)
    assert bar(out) == f"p({acts.class_name}), 0 to 1"
    probs = [torch.from_numpy(acts.layers[i].probs) for i in acts.outputs]
    out = figures.output_maps_figure(acts, stretch=True)
    assert (out.layout.coloraxis.cmin, out.layout.coloraxis.cmax) == pytest.approx(
        naive_range(probs))


def test_maps_that_are_not_probabilities_name_their_own_range(a):
    v = next(v for v in a.views if not v.flip and v.scale == 2)
    ch = appstate.strongest_channel(v)
    pooled = [p[ch] for p in v.pooled]
    g = figures.offset_grid_picture(pooled, a.k, f"channel {ch} activation", colorscale="Greys")
    lo, hi = naive_range(pooled)
    assert (g.cmin, g.cmax) == pytest.approx((lo, hi))
    assert g.bar_title == f"channel {ch} activation, own range: {figmaps.range_text(lo, hi)}"
    assert g.colour == "own"
    strip = activations.offset_strip(v, ch, a.k, a.k, True)
    s = figures.offset_strip_figure(strip)
    assert bar(s).startswith(f"channel {ch} activation, own range: ")


# --- the picked cell's window on the Scales page's maps --------------------------------------
@pytest.mark.parametrize("flip", [False, True])
def test_clickable_cells_carry_the_networks_cell_and_state_its_window(a, bd, flip):
    c = strong_and_weak(a)[0]
    fig = figures.scale_maps_figure(a, bd, c, flip=flip, clickable=True)
    views = figures.select_views(a, flip=flip)
    cells = [t for t in fig.data if t.type == "scatter" and (t.name or "").startswith("cells")]
    assert len(cells) == len(views)
    for trace, v in zip(cells, views):
        h, w = v.fine.shape[-2:]
        assert len(trace.customdata) == h * w
        ww, wh = figures.window_side(v)
        assert f"{ww:.0f}x{wh:.0f} px" in trace.hovertemplate
        for n in range(0, h * w, max(1, h * w // 23)):
            s, r, col = trace.customdata[n]
            assert s == v.scale
            assert float(trace.text[n]) == pytest.approx(float(v.fine[c, r, col]), abs=6e-4)
            x1, y1, x2, y2 = (float(q) for q in v.windows[r, col])
            # drawn at its window's centre, in the original image
            assert trace.x[n] == pytest.approx((x1 + x2) / 2, abs=0.051)
            assert trace.y[n] == pytest.approx((y1 + y2) / 2, abs=0.051)


def test_the_picked_cells_window_is_drawn_on_its_scales_panel(a, bd):
    c = strong_and_weak(a)[0]
    views = figures.select_views(a)
    for i, v in enumerate(views):
        r, col = v.fine.shape[-2] - 1, 0
        fig = figures.scale_maps_figure(a, bd, c, pick=(v.scale, r, col))
        (outline,) = [t for t in fig.data if t.name == "picked window"]
        x1, y1, x2, y2 = (float(q) for q in v.windows[r, col])
        xs = [q for q in outline.x if q is not None]
        ys = [q for q in outline.y if q is not None]
        assert (min(xs), max(xs)) == pytest.approx((x1, x2), abs=1e-3)
        assert (min(ys), max(ys)) == pytest.approx((y1, y2), abs=1e-3)
        assert outline.xaxis == ("x" if i == 0 else f"x{i + 1}")
    # a cell outside the map draws nothing
    fig = figures.scale_maps_figure(a, bd, c, pick=(views[0].scale, 999, 0))
    assert not [t for t in fig.data if t.name == "picked window"]


# --- the pages --------------------------------------------------------------------------------
LINK = {"page": "scales", "img": "gallery", "g": "0", "scales": "0,2", "flips": "0"}


def _axis(fig: dict) -> tuple[float, float, str]:
    ax = fig["layout"]["coloraxis"]
    return ax["cmin"], ax["cmax"], ax["colorbar"]["title"]["text"]


def test_the_colour_control_changes_the_maps_and_the_link():
    at = ok(open_link(LINK))
    c = at.session_state["_ctx"]
    a = c.analysis()
    cls = at.session_state["cls"]
    name = a.class_names[cls]
    assert at.button_group(key="colour_scale").value == "absolute"
    assert at.query_params["colour"] == "absolute"
    assert _axis(page_figures(at)["scales_maps"]) == (0.0, 1.0, f"p({name}), 0 to 1")
    assert "Colours are absolute" in at.info[0].value

    ok(at.button_group(key="colour_scale").set_value("stretch").run())
    lo, hi = naive_range([v.fine[cls] for v in figures.select_views(a)])
    cmin, cmax, title = _axis(page_figures(at)["scales_maps"])
    assert (cmin, cmax) == pytest.approx((lo, hi))
    assert title == f"p({name}), stretched: {figmaps.range_text(lo, hi)}"
    assert at.query_params["colour"] == "stretch"
    assert "Colours are stretched" in at.info[0].value

    # the same choice on the Offsets page (one session key), and back from there
    ok(page(at, "offsets"))
    assert at.button_group(key="colour_scale").value == "stretch"
    figs, pics = page_figures(at), pictures(at)
    assert "stretched" in _axis(figs["off_click"])[2]
    assert "stretched" in pics["off_classmaps"]["bar_title"]
    assert "own range" in pics["off_pooled"]["bar_title"]
    ok(at.button_group(key="colour_scale").set_value("absolute").run())
    figs, pics = page_figures(at), pictures(at)
    assert _axis(figs["off_click"])[:2] == (0.0, 1.0)
    assert (pics["off_classmaps"]["cmin"], pics["off_classmaps"]["cmax"]) == (0.0, 1.0)
    assert pics["off_classmaps"]["bar_title"].endswith(", 0 to 1")
    assert at.query_params["colour"] == "absolute"


def test_a_link_opens_the_stretched_maps_and_its_picked_cell():
    at = ok(open_link({**LINK, "colour": "stretch", "sat": "2", "srow": "1", "scol": "2"}))
    a = at.session_state["_ctx"].analysis()
    cls = at.session_state["cls"]
    fig = page_figures(at)["scales_maps"]
    assert "stretched" in _axis(fig)[2]
    v = next(v for v in figures.select_views(a) if v.scale == 2)
    (outline,) = [t for t in traces(fig) if t.get("name") == "picked window"]
    x1, y1, x2, y2 = (float(q) for q in v.windows[1, 2])
    xs = [q for q in outline["x"] if q is not None]
    assert (min(xs), max(xs)) == pytest.approx((x1, x2), abs=1e-3)
    text = "\n".join(m.value for m in at.markdown)
    assert re.search(rf"\*\*Picked cell\*\* \(1,2\) of scale 3: p\({re.escape(a.class_names[cls])}\)",
                     text)
    assert f"x {x1:.0f} to {x2:.0f}, y {y1:.0f} to {y2:.0f}" in text
    assert (at.query_params["sat"], at.query_params["srow"], at.query_params["scol"]) == (
        "2", "1", "2")
    # a new class starts again at that class's best cell, over the drawn maps
    views = figures.select_views(a)
    other = appstate.class_ranking(a)[1][0]
    ok(at.selectbox(key="cls").set_value(other).run())
    best = max(views, key=lambda v: float(v.fine[other].max()))
    r, c = appstate.best_cell(best, other)
    assert (at.session_state["scales_at"], at.session_state["scales_row"],
            at.session_state["scales_col"]) == (best.scale, r, c)
    assert float(best.fine[other, r, c]) == pytest.approx(
        max(float(v.fine[other].max()) for v in views))


# --- presenter mode and a phone (issue 27: the first screen) ----------------------------------
def _panels(fig, width: float) -> list[tuple[float, float, float, float]]:
    """Each subplot's plot area in screen px (x0, x1, y0 from the top, y1) for a figure drawn
    `width` px wide at its layout height, from its axes' domains and margins."""
    H = fig.layout.height
    m = fig.layout.margin
    pw, ph = width - (m.l or 0) - (m.r or 0), H - (m.t or 0) - (m.b or 0)
    out = []
    for name in sorted((k for k in fig.layout if k.startswith("xaxis")),
                       key=lambda k: int(k[5:] or 1)):
        xa = fig.layout[name]
        ya = fig.layout["yaxis" + name[5:]]
        out.append(((m.l or 0) + xa.domain[0] * pw, (m.l or 0) + xa.domain[1] * pw,
                    (m.t or 0) + (1 - ya.domain[1]) * ph, (m.t or 0) + (1 - ya.domain[0]) * ph))
    return out


def _across_the_top(fig, titles: bool = True) -> None:
    """The phone's colour bar: horizontal, over the full width, above the first plot area
    (and its panel title, if the panels have titles), under the modebar, its title under its
    tick labels (above the bar, Plotly drew it over the bar on short figures: the drawn figures
    are measured in tests/test_browser_legends.py)."""
    cb = fig.layout.coloraxis.colorbar
    assert cb.orientation == "h" and cb.yref == "container" and cb.title.side == "bottom"
    assert cb.len == 1.0 and cb.yanchor == "top"
    top_px = (1 - cb.y) * fig.layout.height
    assert top_px == pytest.approx(figures.MODEBAR, abs=1)
    # bar, ticks (11 px), title (12 px) under the modebar, then a panel title: all above the
    # first plot area
    assert top_px + 16 + cb.thickness + 16 + (20 if titles else 0) <= fig.layout.margin.t


def _same_maps(a_fig, b_fig) -> None:
    """The two figures draw the same values (a layout changes nothing drawn)."""
    # (the figures' own values: a builder may hold numpy arrays, which to_plotly_json encodes)
    ha = [t for t in a_fig.data if t.type == "heatmap"]
    hb = [t for t in b_fig.data if t.type == "heatmap"]
    assert len(ha) == len(hb) > 0
    for x, y in zip(ha, hb):
        za = np.array([[np.nan if v is None else v for v in r] for r in x.z], dtype=float)
        zb = np.array([[np.nan if v is None else v for v in r] for r in y.z], dtype=float)
        assert np.array_equal(za, zb, equal_nan=True)


def test_map_panels_without_numbers_draw_no_tick_marks(a, bd):
    """The Scales and strides panels hide their axes' numbers; the house style's tick marks
    (drawn outside) went with them, not left as bare marks along each image."""
    c, _ = strong_and_weak(a)
    figs = [figures.scale_maps_figure(a, bd, c, clickable=True),
            figures.scale_maps_figure(a, bd, c, clickable=True, phone=True),
            figures.level_maps_figure(a, bd, c, 2)]
    for fig in map(drawn_once, figs):
        axes = [k for k in fig.layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]
        assert len(axes) >= 2
        for k in axes:
            ax = fig.layout[k]
            assert ax.showticklabels is False and ax.ticks == "", (k, ax.ticks)


def test_scale_maps_on_a_phone_are_one_column_of_full_width_panels(a, bd):
    c, _ = strong_and_weak(a)
    desk = figures.scale_maps_figure(a, bd, c, clickable=True)
    fig = figures.scale_maps_figure(a, bd, c, clickable=True, phone=True)
    _same_maps(desk, fig)
    _across_the_top(fig)
    W = figmaps.PHONE_WIDTH
    panels = _panels(fig, W)
    views = figures.select_views(a)
    assert len(panels) == len(views) == 3
    aspect = bd.height / bd.width
    for x0, x1, y0, y1 in panels:
        assert (x0, x1) == pytest.approx((0, W), abs=1)  # the whole width
        # the image at that width fits its panel: no band of empty space above and below
        assert W * aspect <= (y1 - y0) + 1 <= W * aspect + 45
    # stacked top to bottom, 30 px or more between two for the next one's title
    for (_, _, _, bottom), (_, _, top, _) in zip(panels, panels[1:]):
        assert top - bottom >= 30
    # each panel's title sits in its own gap: over its panel, under the one before
    titles = [an for an in fig.layout.annotations if an.text.startswith("scale ")]
    assert len(titles) == 3
    H, m = fig.layout.height, fig.layout.margin
    for i, t in enumerate(titles):
        y = m.t + (1 - t.y) * (H - m.t - m.b)  # the title's bottom, px from the top
        assert panels[i][2] - 5 <= y <= panels[i][2] + 1
        assert i == 0 or y - 14 >= panels[i - 1][3]
        assert len(t.text) * 7.5 <= W  # ~7.5 px a character at 14 px: no overlap, no cut
    # the clickable markers are sized for a panel the phone's width
    marks = [t for t in fig.data if (t.name or "").startswith("cells")]
    assert len(marks) == 3 and all(4 <= t.marker.size <= 16 for t in marks)


def test_presenter_columns_put_the_scales_in_fewer_rows(a, bd):
    c, _ = strong_and_weak(a)
    desk = figures.scale_maps_figure(a, bd, c)
    two = figures.scale_maps_figure(a, bd, c, columns=2)
    wide = figures.scale_maps_figure(a, bd, c, columns=3)
    _same_maps(two, wide)
    rows = lambda f: len({round(p[2]) for p in _panels(f, 1070)})  # noqa: E731
    cols = lambda f: len({round(p[0]) for p in _panels(f, 1070)})  # noqa: E731
    # by default two a row for a landscape image, three for a portrait one
    assert desk.layout.meta["columns"] == (2 if bd.width >= bd.height else 3)
    assert (rows(two), cols(two)) == (2, 2)
    assert (rows(wide), cols(wide)) == (1, 3) and wide.layout.meta["columns"] == 3
    assert wide.layout.height < two.layout.height
    assert figures.scale_maps_figure(a, bd, c, columns=5).layout.meta["columns"] == 3  # n = 3


@pytest.mark.parametrize("pick", [(3, 6), (4, 5)])
def test_fine_and_coarse_maps_on_a_phone_stack_the_fine_one_first(a, pick):
    v = next(v for v in a.views if v.scale == 4 and not v.flip)
    c, _ = strong_and_weak(a)
    name = a.class_names[c]
    desk = figures.fine_coarse_figure(v, c, a.k, name, pick=pick)
    fig = figures.fine_coarse_figure(v, c, a.k, name, pick=pick, phone=True)
    _same_maps(desk, fig)
    _across_the_top(fig)
    coarse, fine = [t for t in fig.data if t.type == "heatmap"]
    assert (coarse.name, fine.name) == ("coarse", "fine")
    W = figmaps.PHONE_WIDTH
    (p1, p2) = _panels(fig, W)
    # the fine map (to click) on top, on axes x/y; the coarse one under it, on x2/y2
    assert (fine.xaxis, fine.yaxis, coarse.xaxis, coarse.yaxis) == ("x", "y", "x2", "y2")
    assert p1[3] + 40 <= p2[2]
    # the pick's outlines: the fine cell on the fine map, and at offset (0,0) its coarse cell
    outlines = [t for t in fig.data if t.type == "scatter" and t.mode == "lines"]
    assert outlines[0].xaxis == "x"
    on_coarse = [t for t in outlines if t.xaxis == "x2"]
    assert len(on_coarse) == (1 if pick[0] % a.k == 0 and pick[1] % a.k == 0 else 0)
    (cells,) = [t for t in fig.data if t.name == "cells"]
    assert cells.xaxis == "x"
    # each panel's px height follows its map's aspect at the phone's width (square pixels)
    Hf, Wf = v.fine[c].shape
    assert (W - 50) * (Hf + 1) / (Wf + 1) <= (p1[3] - p1[2]) + 1


def _in_order(node, out=None, folded=False, box=None) -> list[tuple[str, str | None, bool]]:
    """The page's elements in the order they are drawn: (type, key or an expander's label,
    inside an expander). A picture (st.image, which has no key) is named by the keyed
    container it is drawn in (common.picture), as pictures() names it."""
    out = [] if out is None else out
    t = getattr(node, "type", None)
    pid = getattr(getattr(node, "proto", None), "id", "") or ""
    if t in ("container", "vertical", "flex_container") and isinstance(pid, str) and "-" in pid:
        box = pid.rsplit("-", 1)[-1]
    folded = folded or t == "expander"
    if t and t not in ("main", "vertical", "horizontal", "column", "container", "flex_container"):
        key = (getattr(node, "label", None) if t == "expander"
               else box if t == "image" else getattr(node, "key", None))
        out.append((t, key, folded))
    for child in getattr(node, "children", {}).values():
        _in_order(child, out, folded, box)
    return out


WIDGETS = {"selectbox", "number_input", "toggle", "button_group", "multiselect", "slider",
           "radio", "checkbox"}
PICTO = {"img": "gallery", "g": "0", "scales": "0,2", "flips": "0"}
PYRAMID = {"img": "photo", "p": "3", "model": "objects", "scales": "0,1", "flips": "0"}


@pytest.mark.slow
@pytest.mark.parametrize("where,link,main,after", [
    ("architecture", PICTO, "arch_strip", ()),
    ("scales", PICTO, "scales_maps", ()),
    ("offsets", PICTO, "off_pooled", ()),
    ("scales", PYRAMID, "scales_levels", ()),
    ("offsets", PYRAMID, "off_levels", ("off_level", "off_row", "off_col")),
])
def test_presenter_mode_puts_the_main_figure_right_after_the_title(where, link, main, after):
    """Issue 27: in presenter mode nothing but closed boxes (the page's explanation, its
    settings) stands between a page's title and its main figure: no widget outside them, no
    heading; controls that sat between them come under the figure. On a desktop the page
    keeps its controls in view."""
    at = ok(open_link({"page": where, "present": "1", **link}))
    items = _in_order(at.main)
    keys = [k for _, k, _ in items]
    title = [t for t, _, _ in items].index("title")
    fig = keys.index(main)
    between = items[title + 1:fig]
    assert not [x for x in between if x[0] in WIDGETS and not x[2]], between
    assert not [x for x in between if x[0] in ("header", "subheader")], between
    assert [x for x in between if x[0] == "expander"]  # the settings are there, folded
    for k in after:  # the picked cell's inputs under the figure they pick in
        assert keys.index(k) > fig
    desk = _in_order(ok(open_link({"page": where, **link})).main)
    dkeys = [k for _, k, _ in desk]
    dtitle = [t for t, _, _ in desk].index("title")
    # a desktop: a widget in view above the figure (the scale, the channel or the cell) or,
    # on the Architecture page, its section heading
    above = desk[dtitle + 1:dkeys.index(main)]
    assert [x for x in above if (x[0] in WIDGETS or x[0] == "header") and not x[2]]


@pytest.mark.parametrize("title", [
    "cell (0,9) = offset (0,0), cell (0,3) of its map: p(sheep) > 0.999",
    "stride 8, cell (12,40): p(bicycle) = 0.315 (flipped view)", "short"])
def test_window_figure_wraps_its_title_on_a_phone(bd, title):
    w = torch.tensor([10.0, 20.0, 120.0, 140.0])
    desk = figures.window_figure(bd, w, None, title)
    fig = figures.window_figure(bd, w, None, title, phone=True)
    assert desk.layout.title.text == title
    lines = fig.layout.title.text.split("<br>")
    assert " ".join(lines) == title  # every word kept, in order
    assert all(len(x) * 7.5 <= figmaps.PHONE_WIDTH for x in lines)  # none cut at 370 px
    # the lines under the modebar, above the image
    assert fig.layout.margin.t >= figures.MODEBAR + 18 * len(lines)
    assert [t.x for t in fig.data if t.type == "scatter"] == \
        [t.x for t in desk.data if t.type == "scatter"]
