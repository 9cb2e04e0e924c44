"""The figure pages follow a pyramid net (the Objects model, NanoDet-g: three output maps per
input at strides 8, 16 and 32, no offset pooling, one class-agnostic box per cell).

First the package functions the pages call (figures, geometry, export), on a real analysis of
assets/photos/dog.jpg at two scales with flips (about 0.1 s), checked against the analysis
itself; then each page in AppTest with the Objects model (marked slow): no exception, the
expected one-line notes, and what the figures and tables hold.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from overfeat import geometry
from overfeat.app import export, figures
from overfeat.app import state as appstate
from overfeat.images import load_image
from overfeat.models import registry as zoo
from overfeat.multiscale import Settings, analyze
from overfeat.predict import detections

PHOTO = "assets/photos/dog.jpg"
SCALES = (0, 1)
STRIDES = (8, 16, 32)


@pytest.fixture(scope="module")
def net():
    return zoo.load("objects")


@pytest.fixture(scope="module")
def image():
    return load_image(PHOTO)


@pytest.fixture(scope="module")
def a(net, image):
    """The app's knobs for this model (min score 0.4, top-5), two scales with flips."""
    return analyze(net, image, Settings(scales=SCALES, flips=True, top_k=5, min_score=0.4))


@pytest.fixture(scope="module")
def bd(image):
    return figures.backdrop(image, figures.PANEL_SIDE)


@pytest.fixture(scope="module")
def cls(a):
    return a.top(1)[0][0]


def _heatmaps(fig) -> list:
    return [t for t in fig.data if t.type == "heatmap"]


def _titles(fig) -> list[str]:
    return [x.text for x in fig.layout.annotations]


# --- views and maps ---------------------------------------------------------------------------
def test_the_analysis_has_three_maps_per_input_at_the_model_strides(net, a):
    assert net.pyramid and tuple(net.strides) == STRIDES and net.k == 1
    assert figures.levels(a) == [0, 1, 2]
    assert figures.level_strides(a) == {0: 8, 1: 16, 2: 32}
    for s in SCALES:
        for flip in (False, True):
            views = figures.scale_views(a, s, flip)
            assert [v.level for v in views] == [0, 1, 2]  # the number of maps per scale: 3
            assert [v.stride for v in views] == list(STRIDES)
            assert all(v.scale == s and v.flip == flip for v in views)
    # select_views: one view per scale, of the level asked for, never three
    for level in (0, 1, 2):
        views = figures.select_views(a, flip=True, level=level)
        assert [(v.scale, v.level, v.flip) for v in views] == [(s, level, True) for s in SCALES]


def test_window_sides_are_five_strides(net, a):
    assert geometry.window_sides(net) == [5 * s for s in STRIDES] == [40, 80, 160]
    for v in a.views:
        ww, wh = figures.window_side(v)
        # the window is 5 x stride in the resized input, drawn in original pixels
        assert ww == pytest.approx(5 * v.stride / v.factor[1], rel=1e-5)
        assert wh == pytest.approx(5 * v.stride / v.factor[0], rel=1e-5)


def test_scale_maps_figure_draws_one_level_per_scale_and_names_its_stride(a, bd, cls):
    fig = figures.scale_maps_figure(a, bd, cls)
    assert len(_heatmaps(fig)) == len(SCALES)  # one panel per scale, not three
    for title, v in zip(_titles(fig), figures.select_views(a, level=0)):
        h, w = v.fine.shape[-2:]
        assert title.startswith(f"scale {v.scale + 1}, stride 8: {h}x{w} cells, max ")
        assert title.endswith(f"{float(v.fine[cls].max()):.3f}")
    fig = figures.scale_maps_figure(a, bd, cls, level=2)
    assert all(", stride 32: " in t for t in _titles(fig))
    for hm, v in zip(_heatmaps(fig), figures.select_views(a, level=2)):
        assert np.allclose(np.array(hm.z, dtype=float), figures.map_on_image(v, cls)[2].numpy(),
                           atol=1e-5)
        ww, wh = figures.window_side(v)
        assert "stride 32" in hm.hovertemplate and f"{ww:.0f}x{wh:.0f} px" in hm.hovertemplate


def test_level_maps_figure_holds_the_three_strides_of_one_scale(a, bd, cls):
    s = figures.best_scale(a, cls)
    assert float(a.scale_scores[s][cls]) == max(float(a.scale_scores[x][cls]) for x in SCALES)
    views = figures.scale_views(a, s)
    fig = figures.level_maps_figure(a, bd, cls, s)
    hms = _heatmaps(fig)
    assert len(hms) == 3
    for title, hm, v in zip(_titles(fig), hms, views):
        h, w = v.fine.shape[-2:]
        assert title == f"stride {v.stride}: {h}x{w} cells, max {float(v.fine[cls].max()):.3f}"
        assert np.allclose(np.array(hm.z, dtype=float), v.fine[cls].numpy(), atol=1e-5)
        # the hover gives the window: 5 strides, in original pixels
        ww, wh = figures.window_side(v)
        assert f"{ww:.0f}x{wh:.0f} px" in hm.hovertemplate
        # cells one stride apart (original pixels)
        assert np.diff(hm.x) == pytest.approx(v.stride / v.factor[1], rel=1e-5)
    assert fig.layout.meta["levels"] == [[v.level, v.stride, *v.fine.shape[-2:]] for v in views]
    # one colour scale for all three: 0 to 1 (issue 27), or stretched up to the scale's vote
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, 1.0)
    vote = max(float(v.fine[cls].max()) for v in views)
    stretched = figures.level_maps_figure(a, bd, cls, s, stretch=True)
    assert stretched.layout.coloraxis.cmax == pytest.approx(vote)


@pytest.mark.parametrize("flip", [False, True])
def test_a_clicked_cell_names_the_cell_the_network_gave(a, bd, cls, flip):
    """customdata [level, row, col] of the clickable markers: the map the net gave (a flipped
    view's columns mirrored), at the drawn position of that cell's value."""
    s = SCALES[-1]
    fig = figures.level_maps_figure(a, bd, cls, s, flip=flip, clickable=True)
    views = figures.scale_views(a, s, flip)
    cells = [t for t in fig.data if t.type == "scatter" and t.customdata is not None]
    assert len(cells) == 3
    for trace, hm, v in zip(cells, _heatmaps(fig), views):
        h, w = v.fine.shape[-2:]
        assert len(trace.customdata) == h * w
        # cell centres, to the tenth of a pixel the figure sends them with
        xs = [round((hm.x[j] + hm.x[j + 1]) / 2, 1) for j in range(w)]
        ys = [round((hm.y[j] + hm.y[j + 1]) / 2, 1) for j in range(h)]
        for n in (0, w - 1, h * w // 2 + 3, h * w - 1):
            level, r, c = trace.customdata[n]
            assert level == v.level
            j, i = ys.index(trace.y[n]), xs.index(trace.x[n])  # drawn row and column
            assert hm.z[j][i] == pytest.approx(float(v.fine[cls, r, c]), abs=1e-5)
            # the drawn cell is the centre of that cell's window
            win = v.windows[r, c]
            assert trace.x[n] == pytest.approx(float(win[0] + win[2]) / 2, abs=0.051)
            assert trace.y[n] == pytest.approx(float(win[1] + win[3]) / 2, abs=0.051)


def test_the_picked_cell_window_is_outlined_on_its_stride_panel(a, bd, cls):
    s = SCALES[0]
    views = figures.scale_views(a, s)
    i, r, c = figures.best_level_cell(views, cls)
    best = max(float(v.fine[cls].max()) for v in views)
    assert float(views[i].fine[cls, r, c]) == best
    fig = figures.level_maps_figure(a, bd, cls, s, pick=(views[i].level, r, c))
    (outline,) = [t for t in fig.data if t.name == "picked window"]
    x1, y1, x2, y2 = views[i].windows[r, c].tolist()
    assert min(v for v in outline.x if v is not None) == pytest.approx(x1, abs=1e-3)
    assert max(v for v in outline.y if v is not None) == pytest.approx(y2, abs=1e-3)
    assert outline.xaxis == ("x" if i == 0 else f"x{i + 1}")  # on its own stride's panel


def test_a_net_with_one_map_per_input_keeps_one_panel_per_scale():
    from overfeat.predict import load_model

    model, _ = load_model()
    from overfeat.app.state import make_scene

    im, _ = make_scene("det", 7, 0)
    b = analyze(model, im, Settings(scales=(0, 2), flips=False))
    bd = figures.backdrop(im, figures.PANEL_SIDE)
    c = b.top(1)[0][0]
    fig = figures.scale_maps_figure(b, bd, c)
    assert len(_heatmaps(fig)) == 2 and all("stride" not in t for t in _titles(fig))
    assert _titles(fig)[0].startswith("scale 1 (") and figures.levels(b) == [0]
    one = figures.level_maps_figure(b, bd, c, 2)
    assert len(_heatmaps(one)) == 1 and _titles(one)[0].startswith(f"stride {model.prepool_stride}: ")


# --- geometry -----------------------------------------------------------------------------------
def test_scale_geometry_lists_the_levels_the_network_gives(net, a):
    m = geometry.meta_model(zoo.config("objects"))
    for s in SCALES:
        g = geometry.scale_geometry(m, a.sizes[s])
        got = [tuple(v.fine.shape[-2:]) for v in figures.scale_views(a, s)]
        assert g.levels == got
        assert g.fine == got[0] and g.windows == sum(h * w for h, w in got)


def test_layer_table_lists_backbone_neck_and_heads_with_every_parameter(net):
    cfg = zoo.config("objects")
    rows = geometry.layer_table(cfg, head="both")
    assert sum(r.params for r in rows) == sum(p.numel() for p in net.parameters())
    names = [r.name for r in rows]
    assert names[:len(net.layers())] == [x[0] for x in net.layers()]  # the backbone first
    assert sum(n.startswith("neck lateral") for n in names) == 3
    assert sum(r.kind == "resize" for r in rows) == 4  # two top-down, two bottom-up
    reg = [r for r in rows if r.name.endswith(" (regressor)")]
    assert [r.jump for r in reg] == list(STRIDES) and all(r.channels == 44 for r in reg)
    assert not any(r.name.endswith(" (regressor)") for r in geometry.layer_table(cfg))
    # at one stride-32 window (160 px): each head's map is 160 / stride cells wide
    for r in rows:
        if r.name.startswith("head "):
            assert r.out_size == (160 // r.jump,) * 2
    # every level's output at a scale's size is the analysis' map
    fields = geometry.output_fields(cfg)
    assert [s for s, _ in fields] == list(STRIDES)
    assert all(rf > 5 * s for s, rf in fields)  # far larger than the nominal window
    assert [rf for _, rf in fields] == sorted(rf for _, rf in fields)


def test_layer_sizes_at_a_scale_match_the_views(a):
    cfg = zoo.config("objects")
    rows = geometry.layer_table(cfg, a.sizes[1])
    heads = [r for r in rows if r.name.endswith(" class scores")]
    assert [r.out_size for r in heads] == [tuple(v.fine.shape[-2:]) for v in figures.scale_views(a, 1)]


def test_cost_rows_count_every_level_and_crop_at_each_level_window(a):
    cfg = zoo.config("objects")
    rows = geometry.cost_rows(cfg, a.image_size, SCALES)
    for r, s in zip(rows, SCALES):
        views = figures.scale_views(a, s)
        counts = [int(v.fine[0].numel()) for v in views]
        assert r["windows"] == sum(counts)
        assert r["windows per stride (8/16/32)"] == " + ".join(f"{n:,}" for n in counts)
        assert r["crop multiply-adds"] == sum(geometry.crop_macs(cfg, n, lv)
                                              for lv, n in enumerate(counts))
        assert r["dense multiply-adds"] == geometry.dense_macs(cfg, a.sizes[s])
        assert r["crop multiply-adds"] > r["dense multiply-adds"]
    # a crop of a coarser level's window costs more (a larger crop through the whole net)
    assert geometry.crop_macs(cfg, 1, 0) < geometry.crop_macs(cfg, 1, 1) < geometry.crop_macs(cfg, 1, 2)
    # the headline's windows (flips on) are every map's cells of every view
    assert 2 * sum(r["windows"] for r in rows) == sum(int(v.fine[0].numel()) for v in a.views)


def test_cost_rows_equal_the_app_state_rows_for_the_other_nets():
    from overfeat.predict import load_model

    for cfg in (load_model()[0].cfg, zoo.config("faces"), zoo.config("imagenet")):
        for fine in (True, False):
            assert geometry.cost_rows(cfg, (480, 640), (0, 3), "aspect", fine) == \
                appstate.cost_rows(cfg, (480, 640), (0, 3), "aspect", fine)


def test_pyramid_scale_rows(a):
    rows = geometry.pyramid_scale_rows(zoo.config("objects"), a.image_size)
    assert len(rows) == 6
    for s in SCALES:
        r = rows[s]
        assert r["input"] == f"{a.sizes[s][0]}x{a.sizes[s][1]}"
        for v in figures.scale_views(a, s):
            h, w = v.fine.shape[-2:]
            assert r[f"stride {v.stride} map"] == f"{h}x{w}"
            assert r[f"stride {v.stride} window (px, original)"] == \
                round(5 * v.stride / min(v.factor))
        assert r["windows (all strides)"] == sum(int(v.fine[0].numel())
                                                 for v in figures.scale_views(a, s))


def test_offset_layer_follows_each_model():
    from overfeat.predict import load_model

    assert geometry.offset_layer(zoo.config("objects")) is None  # k = 1: no offsets
    pool = geometry.offset_layer(load_model()[0].cfg)
    assert pool.kind == "pool" and pool.kernel == pool.stride == 3
    assert geometry.offset_layer(zoo.config("faces")).kind == "pool"
    sub = geometry.offset_layer(zoo.config("imagenet"))
    assert sub.kind == "subsample" and (sub.kernel, sub.stride) == (5, 2)


# --- provenance, export -------------------------------------------------------------------------
def test_box_rows_give_the_stride_of_each_raw_box(a):
    t = a.table
    assert len(t) > 0 and set(t.offset.tolist()) == {-1}
    strides = export.level_strides(a)
    idx = list(range(len(t)))
    rows = export.box_rows(t, idx, a.class_names, a.k, strides)
    assert all("offset" not in r for r in rows)
    assert list(rows[0]) == ["box #", "class", "score", "scale", "flip", "stride", "cell",
                             "window", "box"]
    for i, r in zip(idx, rows):
        assert r["box #"] == i
        assert r["stride"] == STRIDES[int(t.level[i])]
        assert r["scale"] == int(t.scale[i]) + 1 and r["flip"] == bool(t.flip[i])
        assert r["cell"] == f"({int(t.row[i])},{int(t.col[i])})"
        assert r["class"] == a.class_names[int(t.labels[i])]
        # the row's window is its cell's window in the view it came from
        (v,) = [v for v in a.views if v.scale == int(t.scale[i]) and v.flip == bool(t.flip[i])
                and v.level == int(t.level[i])]
        assert torch.allclose(v.windows[int(t.row[i]), int(t.col[i])], t.windows[i])
    assert {r["stride"] for r in rows} <= set(STRIDES)
    # filtering by stride keeps exactly that level's rows
    kept = export.keep_levels(t, torch.arange(len(t)), [1])
    assert kept.tolist() == [i for i in idx if int(t.level[i]) == 1]
    # a net with one map per input: the same rows as the app's state (offsets)
    assert export.box_rows(t, idx[:3], a.class_names, a.k, {0: 8}) == \
        appstate.box_rows(t, idx[:3], a.class_names, a.k)


def test_boxes_figure_hover_names_the_stride(a, bd):
    t = a.table
    fig = figures.boxes_figure(bd, t, torch.arange(len(t)), a.class_names, a.k,
                               strides=export.level_strides(a))
    texts = [h for tr in fig.data if tr.hovertext is not None for h in tr.hovertext]
    assert len(texts) == len(t)
    assert all(", stride " in h and "offset" not in h for h in texts)


def test_export_gives_level_stride_and_score(a):
    merges = {k: a.merge(score=k, by_class=False) for k in ("literal", "corrected")}
    d = json.loads(export.analysis_json(a, merges, image="dog.jpg", model="objects"))
    assert len(d["views"]) == len(a.views) == 3 * d["inputs"] == 3 * 2 * len(SCALES)
    assert d["strides"] == list(STRIDES)
    for v, jv in zip(a.views, d["views"]):
        assert (jv["level"], jv["stride"]) == (v.level, v.stride)
        assert jv["fine_map"] == list(v.fine.shape[-2:])
    assert len(d["raw_boxes"]) == len(a.table)
    for i, b in enumerate(d["raw_boxes"]):
        assert b["level"] == int(a.table.level[i]) and b["stride"] == STRIDES[b["level"]]
        assert b["offset"] == "none"
    for kind, r in merges.items():
        fb = d["merges"][kind]["final_boxes"]
        assert len(fb) == len(r.final)
        assert [b["score"] for b in fb] == [round(float(x), 4) for x in r.final.score]


def test_final_box_rows_put_the_score_beside_the_confidence(a):
    r = a.merge(by_class=False)
    dets = detections(a, r, 5)
    rows = export.final_box_rows(dets)
    assert list(rows[0])[:5] == ["rank", "class", "confidence", "score", "windows"]
    for d, row in zip(dets, rows):
        assert row["score"] == round(d.score, 3) and row["confidence"] == round(d.confidence, 2)
    assert rows[0]["score"] == pytest.approx(float(r.final.score[0]), abs=1e-3)
    # without a score: the app's state rows as they are
    for d in dets:
        d.score = None
    assert export.final_box_rows(dets) == appstate.detection_rows(dets)


# --- the pages in AppTest -----------------------------------------------------------------------
LINK = {"model": "objects", "img": "photo", "p": str(dict((n, i) for i, (n, _) in
                                                        enumerate(appstate.PHOTOS))["dog.jpg"]),
        "scales": "0,1"}


def _open(name: str, **extra: str):
    from apptest_helpers import ok, open_link

    from overfeat.app import share

    if "objects" not in share.MODELS:
        pytest.skip("the sidebar does not offer the Objects model yet")
    at = ok(open_link({**LINK, **extra, "page": name}))
    assert at.session_state["_ctx"].model.name == "objects"
    return at


def _infos(at) -> str:
    return "\n".join(i.value for i in at.info)


@pytest.mark.slow
def test_scales_page_shows_one_scale_at_its_three_strides():
    from apptest_helpers import captions, ctx, figures as page_figures, markdown, ok

    at = _open("scales")
    a = ctx(at).analysis()
    fig = page_figures(at)["scales_levels"]
    titles = [x["text"] for x in fig["layout"]["annotations"]]
    assert [t.split(":")[0] for t in titles] == ["stride 8", "stride 16", "stride 32"]
    cls = at.session_state["cls"]
    s = at.session_state["scales_scale"]
    assert s == figures.best_scale(a, cls)  # opens where the class is seen best
    text = markdown(at)
    assert "a scale's 3 maps is that scale's vote" in text and "Not the paper's recipe" in text
    assert "The scale's vote is the largest value of all 3 panels" in captions(at)
    # another scale: its three maps
    other = next(x for x in SCALES if x != s)
    ok(at.selectbox(key="scales_scale").set_value(other).run())
    fig = page_figures(at)["scales_levels"]
    v = figures.scale_views(a, other)[0]
    assert fig["layout"]["annotations"][0]["text"].startswith(
        f"stride 8: {v.fine.shape[-2]}x{v.fine.shape[-1]} cells")
    ok(at.toggle(key="scales_flip").set_value(True).run())
    assert "scales_levels" in page_figures(at)


@pytest.mark.slow
def test_offsets_page_says_what_the_trick_became_and_draws_no_offset_figure():
    from apptest_helpers import ctx, figures as page_figures, markdown, ok, page, pictures

    at = _open("offsets")
    assert ("No offset pooling in this net (k = 1). What the offset trick became: finer output "
            "maps read off earlier layers: strides 8/16/32.") in _infos(at)
    figs = page_figures(at)
    assert "off_click" not in figs
    assert "off_pooled" not in pictures(at) and "off_classmaps" not in pictures(at)
    titles = [x["text"] for x in figs["off_levels"]["layout"]["annotations"]]
    assert len(titles) == 3 and titles[0].startswith("stride 8: ")
    # it opens at the most confident cell of the scale's three maps
    a = ctx(at).analysis()
    views = figures.scale_views(a, at.session_state["off_scale"])
    i, r, c = figures.best_level_cell(views, at.session_state["cls"])
    assert (at.session_state["off_level"], at.session_state["off_row"],
            at.session_state["off_col"]) == (views[i].level, r, c)
    assert "40x40 px square" in markdown(at) or "80x80 px square" in markdown(at) \
        or "160x160 px square" in markdown(at)
    # another stride: the cell stays inside its map, the window follows
    ok(at.selectbox(key="off_level").set_value(2).run())
    v = views[2]
    assert at.session_state["off_row"] < v.fine.shape[-2]
    assert at.session_state["off_col"] < v.fine.shape[-1]
    assert "160x160 px square" in markdown(at)
    # the stride is kept across pages
    ok(page(at, "scales"))
    ok(page(at, "offsets"))
    assert at.session_state["off_level"] == 2


@pytest.mark.slow
def test_architecture_page_lists_the_pyramid():
    from apptest_helpers import metrics, tables

    at = _open("architecture", asizes="1")  # the tables' expander open (a link can say so)
    scale_table = tables(at)[0]
    assert list(scale_table.columns[:3]) == ["scale", "input", "stride 8 map"]
    layers = tables(at)[2]
    net = zoo.load("objects")
    assert int(layers["parameters"].sum()) == sum(p.numel() for p in net.parameters())
    names = list(layers["layer"])
    assert any(n.startswith("neck top-down") for n in names)
    assert sum(n.endswith("(regressor)") for n in names) == 3
    m = metrics(at)
    assert m["windows (nominal)"] == "40 / 80 / 160 px"
    rfs = [rf for _, rf in geometry.output_fields(zoo.config("objects"))]
    assert m["receptive field of the outputs"] == f"{min(rfs)}-{max(rfs)} px"
    assert zoo.CARDS["objects"].differs in _infos(at)


@pytest.mark.slow
def test_efficiency_page_counts_every_level_with_the_model_window():
    from apptest_helpers import ctx, markdown, metrics, tables

    at = _open("efficiency")
    c = ctx(at)
    text = markdown(at)
    assert "40, 80 and 160 px at strides 8, 16 and 32 px" in text and "221x221" not in text
    windows = sum(int(v.fine[0].numel()) for v in c.analysis().views)  # flips: both views
    assert metrics(at)["windows"] == f"{windows:,}"
    table = tables(at)[0].to_dict("records")
    assert [t["windows per stride (8/16/32)"] for t in table] == [
        " + ".join(f"{int(v.fine[0].numel()):,}" for v in figures.scale_views(c.analysis(), s))
        for s in SCALES]
    assert not [b for b in at.button if b.key == "eff_run"]  # not timed: said why
    assert any("Timing is not available" in x.value for x in at.caption)


@pytest.mark.slow
def test_regressor_page_filters_by_stride_and_gives_provenance():
    from apptest_helpers import ctx, markdown, metrics, ok, tables

    at = _open("regressor")
    a = ctx(at).analysis()
    assert "one box for all classes" in markdown(at)
    assert not any(b.key == "reg_offsets" for b in at.button_group)  # no offsets to filter
    assert any("No offset filter: this model has no offset pooling" in x.value for x in at.caption)
    rows = tables(at)[1].to_dict("records")
    assert "stride" in rows[0] and "offset" not in rows[0]
    for r in rows:
        i = r["box #"]
        assert r["stride"] == STRIDES[int(a.table.level[i])]
    assert int(metrics(at)["raw boxes (all filters)"]) == len(a.table)
    ok(at.button_group(key="reg_levels").set_value([1]).run())
    n = int((a.table.level == 1).sum())
    assert 0 < n < len(a.table) and int(metrics(at)["raw boxes (all filters)"]) == n
    assert all(r["stride"] == 16 for r in tables(at)[-1].to_dict("records"))


@pytest.mark.slow
def test_merge_page_shows_score_beside_confidence():
    from apptest_helpers import captions, ctx, ok, tables

    at = _open("merge")
    c = ctx(at)
    assert c.knobs.by_class is False  # the model's own knob: its boxes merge across classes
    r = c.merge(c.knobs.score)
    final = tables(at)[-1].to_dict("records")
    assert "score" in final[0] and "confidence" in final[0]
    assert final[0]["score"] == pytest.approx(float(r.final.score[0]), abs=1e-3)
    assert "score: for each of the 4 inputs (scales x flips)" in captions(at)
    ok(at.button(key="merge_next").click().run())


def test_cost_charts_write_counts_as_the_tables_do(a):
    """One unit system: the log axes' labels are geometry.human_count's (1.0 G, not 1B)."""
    rows = geometry.cost_rows(zoo.config("objects"), a.image_size, SCALES)
    fig = figures.efficiency_figure(rows)
    ax = fig.layout.yaxis
    assert list(ax.ticktext) == [geometry.human_count(v) for v in ax.tickvals]
    ys = [y for t in fig.data for y in t.y]
    assert min(ax.tickvals) <= min(ys) and max(ax.tickvals) >= max(ys)
    assert all(t[-1] in "KMGT" or t.isdigit() for t in ax.ticktext)
    layer = figures.layer_cost_figure(appstate.layer_rows(zoo.config("objects")),
                                      at="one 160x160 input")
    assert [x.text for x in layer.layout.annotations] == ["parameters",
                                                          "multiply-adds (one 160x160 input)"]
    for axis in (layer.layout.yaxis, layer.layout.yaxis2):
        assert list(axis.ticktext) == [geometry.human_count(v) for v in axis.tickvals]
    names = list(layer.data[0].x)
    assert not any(n.startswith("neck top-down") for n in names)  # resizes: nothing to count


@pytest.mark.slow
def test_architecture_page_shows_inside_the_pyramid():
    """Inside the network for the Objects model: the backbone stages, the neck's three maps and
    each level's class scores in the strip; three output maps to click; a stride-32 cell's
    nominal window (160 px, centred on the cell) on the photo."""
    from apptest_helpers import captions, ctx, figures as page_figures, markdown, ok

    from overfeat import activations

    at = _open("architecture", atrace="1")  # the traced cell's section open (a link can say so)
    c = ctx(at)
    want = activations.compute(c.model, c.image, at.session_state["arch_scale"], c.knobs.rule)
    names = [m[0] for m in page_figures(at)["arch_strip"]["layout"]["meta"]["layers"]]
    assert names == [lv.name for lv in want.layers]
    assert names[-6:] == ["neck P3, stride 8", "neck P4, stride 16", "neck P5, stride 32",
                          "class scores, stride 8", "class scores, stride 16",
                          "class scores, stride 32"]
    assert names[0] == "stem conv" and any(n.startswith("stage4") for n in names)
    outs = page_figures(at)["arch_out_click"]
    assert [t["name"] for t in outs["data"] if t["type"] == "heatmap"] == names[-3:]
    assert "The class score maps of" in markdown(at)
    # the stride-32 map, its last cell
    last = want.outputs[-1]
    ok(at.selectbox(key="arch_out").set_value(last).run())
    h, w = want.layers[last].shape[1:]
    at.number_input(key="arch_row").set_value(h - 1)
    ok(at.number_input(key="arch_col").set_value(w - 1).run())
    t = activations.trace_cell(want, last, h - 1, w - 1)
    assert t.side == 160 and t.nominal
    fig = page_figures(at)["arch_trace"]
    (win,) = [x for x in fig["data"] if x.get("name", "").startswith("nominal window (160x160")]
    x1, _, x2, _ = t.original
    xs = [v for v in win["x"] if v is not None]
    assert np.allclose(xs, [x1, x2, x2, x1, x1], atol=1e-3)
    assert f"centred on the cell's centre ({(w - 0.5) * 32:.0f}, {(h - 0.5) * 32:.0f})" \
        in markdown(at)
    assert "The window is nominal" in captions(at)
    # a neck map chosen: its channels
    neck = names.index("neck P4, stride 16")
    ok(at.selectbox(key="arch_layer").set_value(neck).run())
    grid = page_figures(at)["arch_channels"]["layout"]["meta"]
    assert grid["channels"] == list(want.layers[neck].channels)
    assert "**neck P4, stride 16**: 128 channels" in markdown(at)


def test_level_maps_on_a_phone_are_one_column_of_the_three_strides(a, bd, cls):
    """A phone (issue 27): the three strides one under another, each the screen's width and
    the image's aspect, the same maps as the desktop's row of three, the colour bar across
    the top."""
    from overfeat.app.figures import maps as figmaps

    s = figures.best_scale(a, cls)
    views = figures.scale_views(a, s)
    desk = figures.level_maps_figure(a, bd, cls, s, clickable=True)
    fig = figures.level_maps_figure(a, bd, cls, s, clickable=True, phone=True)
    for x, y in zip(_heatmaps(desk), _heatmaps(fig)):
        assert np.array_equal(np.array(x.z, dtype=float), np.array(y.z, dtype=float))
    assert _titles(fig) == _titles(desk)
    assert fig.layout.meta["levels"] == desk.layout.meta["levels"]
    H, t = fig.layout.height, fig.layout.margin.t
    W = figmaps.PHONE_WIDTH
    spans = []
    for i in range(len(views)):
        sfx = i + 1 if i else ""
        assert tuple(fig.layout[f"xaxis{sfx}"].domain) == (0.0, 1.0)
        y0, y1 = fig.layout[f"yaxis{sfx}"].domain
        spans.append(((1 - y1) * (H - t) + t, (1 - y0) * (H - t) + t))
    for top, bottom in spans:  # the image at the phone's width fills its panel's height
        assert W * bd.height / bd.width <= bottom - top + 1 <= W * bd.height / bd.width + 45
    for (_, b), (tp, _) in zip(spans, spans[1:]):
        assert tp - b >= 30  # room for the next panel's title
    assert fig.layout.coloraxis.colorbar.orientation == "h"
