"""The Streamlit app driven headless with AppTest: every page, the sidebar knobs, the merge
stepper, choices that persist across pages, and bad uploads (images and checkpoints).

The checks read what a page shows (captions, metrics, tables, the data of its Plotly figures)
and compare it with the package functions run on the same model and image, taken from the
run's Context (st.session_state["_ctx"]). Nothing depends on which classes the model predicts,
so the tests pass with the shipped checkpoint and with the random stand-in used before it exists.

Streamlit's caches live in the process, so the sample image is analysed once for all tests.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from apptest_helpers import (SAMPLE, SAMPLE_NAME, bar_charts, bomb_png, captions, ctx, encode, figures,
                             grid_blocks, pictures,
                             header, markdown, metrics, ok, open_knobs, page, rect_x, sample_image, start,
                             tables, traces, xs)
from overfeat.app import state as appstate
from overfeat.checkpoint import FORMAT
from overfeat.config import PRESETS, ModelConfig, preset
from overfeat.models.overfeat import OverFeat
from overfeat.multiscale import Settings, analyze, scale_sizes
from overfeat.offsets import offsets


# --- pages -----------------------------------------------------------------------------------
def test_overview_after_upload():
    at = ok(start())
    assert at.title[0].value == "OverFeat, step by step"
    assert f"Image: **upload {SAMPLE_NAME}** (300 wide x 260 high)" in header(at)
    c = ctx(at)
    assert c.image.size == (300, 260) and c.image_key.startswith("upload:")
    a = c.analysis()
    assert len(a.views) == 12

    fig = figures(at)["pipeline"]
    text = " ".join(n["text"] for n in fig["layout"]["annotations"])
    windows = sum(int(v.fine[0].numel()) for v in a.views)
    assert "300 px wide<br>x 260 px high" in text
    assert "Six scales" in text
    assert f"{windows} windows<br>in 12 views" in text
    assert f"{len(a.table)} raw boxes" in text
    assert f"stride {c.model.prepool_stride} px<br>(not {c.model.stride})" in text

    ranking = appstate.class_ranking(a, 5)
    table = tables(at)[0]
    assert list(table["class"]) == [n for _, n, _ in ranking]
    assert np.allclose(table["score"], [round(s, 4) for _, _, s in ranking])
    assert any("averaged over 12 views (6 scales x 2 flips)" in cap.value for cap in at.caption)
    # An upload with the shipped checkpoint: a note that it learned pictograms, not photos;
    # not on a sample scene.
    assert any("learned the 20 Pascal VOC classes from pictogram scenes" in i.value
               for i in at.info)
    ok(at.sidebar.radio(key="img_source").set_value("gallery").run())
    assert not any("pictogram scenes" in i.value for i in at.info)


def test_architecture_tables_follow_image_and_rule():
    at = ok(page(start(), "architecture"))
    c = ctx(at)
    cfg = c.arch_cfg
    sizes = scale_sizes((260, 300), OverFeat(cfg), "aspect")
    # The tables and the cost chart are drawn only while their expander is open (issue 27: a
    # page switch drew them below the fold every time); the four numbers are always there.
    assert not tables(at) and "arch_costs" not in figures(at)
    assert metrics(at)["window (network input)"] == f"{c.model.window} px"
    at.session_state["arch_sizes_open"] = True
    ok(at.run())
    assert [s.value for s in at.subheader][0] == "Map sizes at the six scales for this image (260x300)"

    per_scale = tables(at)[0]
    assert list(per_scale["scale"]) == [1, 2, 3, 4, 5, 6]
    assert list(per_scale["input"]) == [f"{h}x{w}" for h, w in sizes]
    assert per_scale.to_dict("records") == appstate.scale_rows(cfg, (260, 300), "aspect")
    # The fine map's cells are the windows: at window + stride * n, (n + 1) cells a side.
    win, step = c.model.window, c.model.prepool_stride
    for (h, w), fine, n in zip(sizes, per_scale["fine map"], per_scale["windows"]):
        fh, fw = ((h - win) // step + 1, (w - win) // step + 1)
        assert fine == f"{fh}x{fw}" and n == fh * fw

    by_layer = tables(at)[1]
    assert list(by_layer.columns) == ["layer"] + [f"scale {s}" for s in range(1, 7)]
    assert by_layer["layer"].iloc[0] == "conv1"

    layers = tables(at)[2]
    rows = appstate.layer_rows(cfg)
    assert list(layers["layer"]) == [r["layer"] for r in rows]
    assert list(layers["receptive field"]) == [r["receptive field"] for r in rows]
    assert list(layers["jump (px)"])[-1] == c.model.stride  # the total stride (36 accurate)
    assert list(layers["parameters"]) == [r["parameters"] for r in rows]
    assert list(layers["multiply-adds"]) == [r["multiply-adds"] for r in rows]
    m = metrics(at)
    # Issue 14: one number for the whole network (the table lists the regressor's layers too).
    assert sum(r["parameters"] for r in rows) == sum(p.numel() for p in c.model.parameters())
    assert m["parameters (whole network)"] == f"{sum(r['parameters'] for r in rows) / 1e6:.1f} M"
    assert m["receptive field of the output"] == f"{rows[-1]['receptive field']} px"
    assert m["window (network input)"] == f"{win} px"

    costs = figures(at)["arch_costs"]
    bars = traces(costs, "bar")
    assert [b["name"] for b in bars] == ["parameters", "multiply-adds"]
    assert bars[0]["x"] == [r["layer"] for r in rows if r["kind"] != "pool"]

    # The scale rule in the sidebar: "paper" stretches to the paper's six sizes.
    ok(at.sidebar.selectbox(key="rule").set_value("paper").run())
    paper = [f"{max(h, win)}x{max(w, win)}" for h, w in cfg.geo.scales]
    assert list(tables(at)[0]["input"]) == paper
    if cfg.geometry == "accurate":  # the paper's table
        assert paper == ["245x245", "281x317", "317x389", "389x461", "425x497", "461x569"]


def test_scales_maps_scores_and_knobs_change_the_prediction():
    at = ok(page(start(), "scales"))
    c = ctx(at)
    a = c.analysis()
    ranking = appstate.class_ranking(a)
    assert at.selectbox(key="cls").value == ranking[0][0]  # the top class is preselected

    maps = figures(at)["scales_maps"]
    heat = traces(maps, "heatmap")
    assert [h["name"] for h in heat] == [f"scale {s}" for s in range(1, 7)]
    cls = ranking[0][0]
    for h, v in zip(heat, [v for v in a.views if not v.flip]):
        assert np.array(h["z"]).shape == tuple(v.fine.shape[-2:])
        assert np.isclose(np.max(h["z"]), float(v.fine[cls].max()))
    titles = [t["text"] for t in maps["layout"]["annotations"]]
    v0 = next(v for v in a.views if not v.flip)
    assert titles[0] == f"scale 1 ({a.sizes[0][0]}x{a.sizes[0][1]}): max {float(v0.fine[cls].max()):.3f}"
    assert maps["layout"]["coloraxis"]["colorbar"]["title"]["text"] == f"p({ranking[0][1]}), 0 to 1"

    (bars,) = bar_charts(at)
    names = [f"scale {s}" for s in range(1, 7)] + ["final (mean of views)"]
    assert list(bars["series"]) == names and bars["legend"] == names
    top5 = [c_ for c_, _, _ in ranking[:5]]
    assert bars["groups"] == [a.class_names[k] for k in top5]
    assert np.allclose(bars["series"][names[-1]], [float(a.scores[k]) for k in top5])
    assert np.allclose(bars["series"]["scale 1"], [float(a.scale_scores[0][k]) for k in top5])
    # an absolute axis: a bar's height is its probability (0 to 1), for every class alike
    assert np.allclose(bars["heights"]["scale 1"],
                       [100 * float(a.scale_scores[0][k]) for k in top5], atol=0.0051)

    before = tables(at)[0]
    assert "**Your choice**: scales 1, 2, 3, 4, 5, 6, flips on (12 views)" in markdown(at)

    # Two scales, no flips: the page shows what the package computes for those settings.
    at.sidebar.button_group(key="scales").set_value([0, 2])
    ok(at.sidebar.checkbox(key="flips").uncheck().run())
    assert "**Your choice**: scales 1, 3, flips off (2 views)" in markdown(at)
    assert [h["name"] for h in traces(figures(at)["scales_maps"], "heatmap")] == ["scale 1", "scale 3"]
    assert list(bar_charts(at)[0]["series"]) == ["scale 1", "scale 3", "final (mean of views)"]
    fresh = analyze(c.model, c.image, Settings(scales=(0, 2), flips=False))
    now = tables(at)[0]
    assert list(now["class"]) == [n for _, n, _ in appstate.class_ranking(fresh, 5)]
    assert np.allclose(now["score"], [round(s, 4) for _, _, s in appstate.class_ranking(fresh, 5)])
    assert not np.allclose(now["score"], before["score"])  # the prediction changed
    assert tables(at)[1].equals(before)  # the reference column: all scales with flips
    assert at.toggle(key="scales_flip").disabled

    # Flips back on, and the flipped views' maps drawn (mapped back onto the image).
    ok(at.sidebar.checkbox(key="flips").check().run())
    ok(at.toggle(key="scales_flip").set_value(True).run())
    heat = traces(figures(at)["scales_maps"], "heatmap")
    assert len(heat) == 2 and all("flipped" in h["hovertemplate"] for h in heat)

    # Another class: the maps are its maps.
    other = ranking[3]
    ok(at.selectbox(key="cls").set_value(other[0]).run())
    maps = figures(at)["scales_maps"]
    assert maps["layout"]["coloraxis"]["colorbar"]["title"]["text"] == f"p({other[1]}), 0 to 1"


def test_offsets_maps_interleave_and_picked_window():
    at = ok(page(start(), "offsets"))
    c = ctx(at)
    a = c.analysis()
    k = a.k
    s = ctx(at).model.prepool_stride  # 12 px for the accurate model
    cls = at.selectbox(key="cls").value
    s0 = at.selectbox(key="off_scale").value  # the page opens at the largest map
    assert s0 == appstate.largest_scale(a)
    view = next(v for v in a.views if v.scale == s0 and not v.flip)
    figs = figures(at)

    pics = pictures(at)  # the two grids are pictures (figures.grids), their values recorded
    ch = at.number_input(key="off_channel").value
    pooled = grid_blocks(pics["off_pooled"])
    assert list(pooled) == list(offsets(k))
    for p, m in zip(pooled.values(), view.pooled):
        assert np.allclose(p, m[ch].numpy(), atol=1e-5)
    class_maps = list(grid_blocks(pics["off_classmaps"]).values())
    assert len(class_maps) == k * k
    for p, m in zip(class_maps, view.class_maps):
        assert np.allclose(p, m[cls].numpy(), atol=1e-6)

    # The fine map interleaves the k*k classifier maps: fine[k*j + dy, k*i + dx] = map(dx,dy)[j,i].
    fc = {t["name"]: np.array(t["z"]) for t in traces(figs["off_click"], "heatmap")}
    fine, coarse = fc["fine"], fc["coarse"]
    assert fine.shape == tuple(view.fine.shape[-2:])
    assert np.allclose(coarse, class_maps[0])
    for (dx, dy), z in zip(offsets(k), class_maps):
        assert np.allclose(fine[dy::k, dx::k][: z.shape[0], : z.shape[1]], z)

    # Pick a cell: the window figure shows that cell's window and the box predicted from it.
    r, col = 1, 2
    at.number_input(key="off_row").set_value(r)
    ok(at.number_input(key="off_col").set_value(col).run())
    win_fig = figures(at)["off_window"]
    title = win_fig["layout"]["title"]["text"]
    assert title.startswith(f"cell ({r},{col}) = offset ({col % k},{r % k}), cell ({r // k},{col // k})")
    window = next(t for t in win_fig["data"] if t.get("name") == "window (network input)")
    assert np.allclose(xs(window), rect_x(view.windows[r, col]))
    box = next(t for t in win_fig["data"] if t.get("name") == "predicted box")
    per_class = view.boxes.shape[2] > 1
    assert np.allclose(xs(box), rect_x(view.boxes[r, col, cls if per_class else 0]))
    assert f"top-left ({s * col}, {s * r}), side {a.window} px" in markdown(at)
    picked = next(t for t in figures(at)["off_click"]["data"] if t.get("name") == "picked")
    assert np.allclose(xs(picked), rect_x([s * col - s / 2, 0, s * col + s / 2, 0]))
    # ... and the classifier maps outline it in the map it comes from, where the caption says
    pics = pictures(at)
    assert pics["off_classmaps"]["pick"] == [col % k, r % k, r // k, col // k]
    assert (f"the red square is the picked cell ({r},{col}) of the fine map below: map "
            f"({col % k},{r % k}), cell ({r // k},{col // k})") in captions(at)
    assert pics["off_pooled"]["pick"] is None  # a pooled cell is not a classifier cell
    ok(at.number_input(key="off_row").set_value(4).run())  # another row: it follows
    assert pictures(at)["off_classmaps"]["pick"] == [col % k, 4 % k, 4 // k, col // k]

    # Another scale: its pre-pool map; offsets off: one map, the coarse stride.
    ok(at.selectbox(key="off_scale").set_value(3).run())
    big = next(v for v in ctx(at).analysis().views if v.scale == 3 and not v.flip)
    assert f"(pre-pool map {big.features.shape[1]}x{big.features.shape[2]})" in markdown(at)
    ok(at.sidebar.checkbox(key="fine").uncheck().run())
    assert any("Offsets are off" in w.value for w in at.warning)
    figs = figures(at)
    assert set(figs) == {"off_click", "off_window"}
    fc = {t["name"]: np.array(t["z"]) for t in traces(figs["off_click"], "heatmap")}
    assert fc["fine"].shape == fc["coarse"].shape
    assert f"stride {ctx(at).model.stride} px" in " ".join(n["text"] for n in figs["off_click"]["layout"]["annotations"])


def test_offsets_channel_is_preset_for_each_view_and_kept_while_it_stays():
    """The channel input says "preset: the one that fires most here": a new image, scale or
    flip presets it again; a channel typed in stays while the view does (across pages)."""
    def strongest(at):
        a = ctx(at).analysis()
        s, flip = at.selectbox(key="off_scale").value, at.toggle(key="off_flip").value
        view = next(v for v in a.views if v.scale == s and v.flip == flip and v.level == 0)
        return appstate.strongest_channel(view), int(view.features.shape[0])

    at = ok(page(start(None, all_windows=False), "offsets"))
    first, n_ch = strongest(at)
    assert at.number_input(key="off_channel").value == first
    typed = 0 if first != 0 else 1
    ok(at.number_input(key="off_channel").set_value(typed).run())
    ok(page(at, "overview"))
    ok(page(at, "offsets"))
    assert at.number_input(key="off_channel").value == typed  # the same view: it stays

    ok(at.sidebar.selectbox(key="gallery").set_value(4).run())  # another sample scene
    preset, _ = strongest(at)
    assert preset != typed and at.number_input(key="off_channel").value == preset
    ok(at.number_input(key="off_channel").set_value(typed).run())
    other = next(s for s in at.selectbox(key="off_scale").options
                 if s != at.selectbox(key="off_scale").value)
    ok(at.selectbox(key="off_scale").set_value(int(other.split()[-1]) - 1).run())  # another scale
    preset, _ = strongest(at)
    assert at.number_input(key="off_channel").value == preset
    assert grid_blocks(pictures(at)["off_pooled"])  # drawn for that channel


def test_regressor_filters_and_picked_box():
    at = ok(page(start(), "regressor"))
    a = ctx(at).analysis()
    t = a.table
    m = metrics(at)
    assert m["raw boxes (all filters)"] == str(len(t)) and m["views"] == "12"
    fig = figures(at)["reg_click"]
    lines = [tr for tr in fig["data"] if tr.get("name", "").startswith("scale ")]
    drawn = sum(int(re.search(r"\((\d+)\)", tr["name"]).group(1)) for tr in lines)
    assert drawn == min(len(t), 300) == int(m["drawn"])
    assert fig["layout"]["title"]["text"].startswith(f"{len(t)} of {len(t)} raw boxes")

    # Filter by scale, then by offset: the counts are the table's.
    ok(at.button_group(key="reg_scales").set_value([1]).run())
    want = int((t.scale == 1).sum())
    assert metrics(at)["raw boxes (all filters)"] == str(want)
    names = [tr["name"] for tr in figures(at)["reg_click"]["data"] if tr.get("name", "").startswith("scale ")]
    assert names == [f"scale 2 ({min(want, 300)})"]
    ok(at.button_group(key="reg_offsets").set_value([0, 4]).run())
    want = int(((t.scale == 1) & torch.isin(t.offset, torch.tensor([0, 4]))).sum())
    assert metrics(at)["raw boxes (all filters)"] == str(want)

    # Pick a box: its provenance row, its window (dashed) and its box in the figure.
    # The list offers the boxes drawn (the most confident 300 of the filters) and the pick.
    drawn = [tr for tr in figures(at)["reg_click"]["data"] if tr.get("customdata")]
    ids = at.selectbox(key="reg_pick").options
    assert sorted(int(i.split(":")[0][1:]) for i in ids) == sorted(
        {i for tr in drawn for i in tr["customdata"]} | {at.session_state["reg_pick"]})
    assert len(drawn[0]["customdata"]) == min(want, 300)
    pick = int(((t.scale == 1) & (t.offset == 4)).nonzero()[0])
    ok(at.selectbox(key="reg_pick").set_value(pick).run())
    row = tables(at)[0].iloc[0]
    assert row["box #"] == pick and row["scale"] == 2 and row["offset"] == "(1,1)"
    top = tables(at)[1]  # the 25 most confident boxes of the filters, best first
    assert len(top) == min(want, 25) and list(top["score"]) == sorted(top["score"], reverse=True)
    fig = figures(at)["reg_click"]
    window = next(tr for tr in fig["data"] if tr.get("name") == f"window of box #{pick}")
    box = next(tr for tr in fig["data"] if tr.get("name") == f"box #{pick}")
    assert np.allclose(xs(window), rect_x(t.windows[pick]))
    assert np.allclose(xs(box), rect_x(t.boxes[pick]))


def _step_of(at: AppTest, kind: str) -> tuple[int, int, str]:
    """(step, boxes left, the step's text) from the Merge page's text for one match score."""
    text = next(m.value for m in at.markdown if m.value.startswith(f"**{kind}**: step"))
    step, left = re.search(r"step (\d+) of \d+, \*\*(\d+) boxes left", text).groups()
    return int(step), int(left), text


def _highlight(at: AppTest, kind: str) -> dict[str, dict]:
    """The pair and the merged box as the Merge page's step picture drew them (issue 27: a
    raster picture, its drawn items read like traces), {} where that score's picture is not
    shown (the page draws the sidebar's score; "both" draws the two)."""
    pic = pictures(at).get(f"merge_fig_{kind}")
    return {} if pic is None else {tr["name"].split(" ")[0]: tr for tr in pic["items"]
                                   if tr["name"].startswith(("b1", "b2", "merged"))}


def test_box_merge_knob_switches_to_the_papers_plain_average():
    at = ok(page(start(), "merge"))
    assert "box_merge is the confidence-weighted average" in " ".join(c.value for c in at.caption)
    weighted = ctx(at).merge("corrected")
    ok(at.sidebar.radio(key="average").set_value("plain").run())
    c = ctx(at)
    plain = c.merge("corrected")
    assert c.knobs.average == "plain" and (weighted.average, plain.average) == ("weighted", "plain")
    assert "box_merge is the plain average" in " ".join(c.value for c in at.caption)
    ok(at.button(key="merge_next").click().run())
    hl = _highlight(at, "corrected")
    assert np.allclose((xs(hl["b1"]) + xs(hl["b2"])) / 2, xs(hl["merged"]))
    # The same raw boxes merge differently (the sample image gives merges of unequal clusters).
    assert (weighted.final.boxes.shape != plain.final.boxes.shape
            or not torch.equal(weighted.final.boxes, plain.final.boxes))
    ok(page(at, "scales"))
    assert ctx(at).knobs.average == "plain"  # kept across pages


def test_merge_stepper_forward_and_back():
    at = ok(page(start(), "merge"))
    # Issue 27: one main figure by default (the sidebar's score); "both" draws the two merges
    # side by side, as this test reads them, and the chart of every step's score is a switch.
    assert [k for k in pictures(at) if k.startswith("merge_fig_")] == ["merge_fig_corrected"]
    ok(at.button_group(key="merge_view").set_value("both").run())
    ok(at.toggle(key="merge_chart").set_value(True).run())
    c = ctx(at)
    res = {kind: c.merge(kind) for kind in ("literal", "corrected")}
    n_raw = len(c.analysis().table)
    m = metrics(at)
    assert m["raw boxes"] == str(n_raw)
    assert m["literal: steps"] == str(res["literal"].n_steps)
    assert m["corrected: steps"] == str(res["corrected"].n_steps)
    n = max(r.n_steps for r in res.values())
    # The longer merge sets the stepper's range; the other stays at its last step. (With a
    # trained regressor the literal score may merge little: overlapping boxes score high.)
    assert n >= 12, "the sample image should give merges"
    longest = max(res, key=lambda k: res[k].n_steps)
    assert _step_of(at, "literal")[:2] == (0, n_raw)
    assert _highlight(at, "literal") == {}  # step 0: the raw boxes, nothing highlighted

    seen = []
    for expect in (1, 2):
        ok(at.button(key="merge_next").click().run())
        assert at.slider(key="merge_step").value == expect
        for kind, r in res.items():
            at_step = min(expect, r.n_steps)
            step, left, text = _step_of(at, kind)
            assert (step, left) == (at_step, n_raw - at_step)
            hl = _highlight(at, kind)
            if at_step == 0:
                assert hl == {} and "nothing merged yet" in text
                continue
            i, j = (int(v) for v in r.pairs[at_step - 1])
            assert f"merged pair ({i}, {j})" in text
            assert f"match score **{float(r.step_scores[at_step - 1]):.4g}**" in text
            assert hl["b1"]["name"] == f"b1 = box #{i} (pair being merged)"
            assert hl["b2"]["name"] == f"b2 = box #{j} (pair being merged)"
            assert np.allclose(xs(hl["merged"]), rect_x(r.step_boxes[at_step - 1]))
            # The merged box is the pair's average weighted by their confidences (box_merge,
            # the app's default; the plain average is tested below).
            before = r.state_at(at_step - 1)
            slots = before.slots.tolist()
            ci, cj = (float(before.confs[slots.index(s)]) for s in (i, j))
            b1, b2 = xs(hl["b1"]), xs(hl["b2"])
            assert np.allclose((b1 * ci + b2 * cj) / (ci + cj), xs(hl["merged"]))
        hl = _highlight(at, longest)
        seen.append((hl["b1"]["name"], hl["b2"]["name"], list(xs(hl["merged"]))))
    assert seen[0] != seen[1]  # the highlighted pair moved on
    scores = figures(at)["merge_scores"]
    for tr, (kind, r) in zip(traces(scores), res.items()):
        assert tr["name"] == kind and np.allclose(tr["y"], r.step_scores.tolist())
        assert tr["customdata"][:2] == [n_raw - 1, n_raw - 2][: r.n_steps]  # boxes left
    shapes = scores["layout"]["shapes"]
    assert sorted(sh["x0"] for sh in shapes if sh["line"]["dash"] == "dot") == sorted(
        min(2, r.n_steps) for r in res.values())
    assert sorted(sh["y0"] for sh in shapes if sh["line"]["dash"] == "dash") == sorted(
        r.threshold for r in res.values())

    ok(at.button(key="merge_prev").click().run())
    assert _step_of(at, longest)[:2] == (1, n_raw - 1)
    ok(at.slider(key="merge_step").set_value(7).run())
    for kind, r in res.items():
        assert _step_of(at, kind)[0] == min(7, r.n_steps)

    # Bigger jumps; Last shows why the loop stopped; First goes back to the raw boxes.
    at.select_slider(key="merge_jump").set_value(5)
    ok(at.button(key="merge_next").click().run())
    assert at.slider(key="merge_step").value == 12
    ok(at.button(key="merge_last").click().run())
    assert at.slider(key="merge_step").value == n
    assert "stopped" in _step_of(at, longest)[2]
    ok(at.button(key="merge_first").click().run())
    assert _step_of(at, "literal")[:2] == (0, n_raw)

    # The Play switch advances one jump per run while on; off stops.
    ok(at.toggle(key="merge_playing").set_value(True).run())
    assert at.toggle(key="merge_playing").value is True
    assert at.slider(key="merge_step").value == 5
    ok(at.toggle(key="merge_playing").set_value(False).run())
    assert at.toggle(key="merge_playing").value is False
    assert at.slider(key="merge_step").value == 5
    # At the last step the run that finds no step left switches it off; playing from the
    # last step starts over.
    ok(at.button(key="merge_last").click().run())
    ok(at.toggle(key="merge_playing").set_value(True).run())
    assert at.slider(key="merge_step").value == 5 and at.toggle(key="merge_playing").value
    ok(at.slider(key="merge_step").set_value(n).run())
    assert at.toggle(key="merge_playing").value is False
    assert at.slider(key="merge_step").value == n

    # Final boxes, literal beside corrected, most confident first.
    for kind, r in res.items():
        title = pictures(at)[f"merge_final_{kind}"]["title"]
        assert title == f"{kind}: {len(r.final.confs)} boxes after {r.n_steps} merges"
    ok(at.number_input(key="merge_n_final").set_value(3).run())
    for table, r in zip(tables(at)[-2:], res.values()):
        assert len(table) == min(3, len(r.final.confs))
        # The merge's probability-like score beside the summed confidence (Analysis.merge sets
        # MergeResult.final.score for every model).
        assert list(table.columns) == ["rank", "class", "confidence", "score", "windows",
                                       "mean p", "box"]
        assert np.allclose(table["confidence"], [round(float(v), 2) for v in r.final.confs[:3]])
        assert np.allclose(table["score"], [round(float(v), 3) for v in r.final.score[:3]])
        assert list(table["windows"]) == [len(m) for m in r.final.members[:3]]
        assert np.allclose(table["mean p"], table["confidence"] / table["windows"], atol=6e-3)
        assert list(table["confidence"]) == sorted(table["confidence"], reverse=True)


def test_regressor_class_filter_starts_from_all_classes_of_each_new_image():
    """The class filter is the image's: narrowed, it stays while the image does; a new image
    (or model) starts from all of its classes, and a filter that was all of them stays all
    when top-k changes the set. (It was kept as the old image's classes that the new one
    shares: boxes went missing on the next photo.)"""
    def classes(at):
        a = ctx(at).analysis()
        return {c for cs in a.top_classes.values() for c in cs}

    at = ok(page(start(None, all_windows=False), "regressor"))  # sample scene 1, the defaults
    first = classes(at)
    assert set(at.session_state["reg_classes"]) == first and len(first) > 1
    one = min(first)
    ok(at.multiselect(key="reg_classes").set_value([one]).run())
    assert at.session_state["reg_classes"] == [one]
    ok(page(at, "overview"))
    ok(page(at, "regressor"))
    assert at.session_state["reg_classes"] == [one]  # the same image: the choice stays
    lines = [tr for tr in figures(at)["reg_click"]["data"] if tr.get("name", "").startswith("scale ")]
    want = int((ctx(at).analysis().table.labels == one).sum())
    assert sum(int(re.search(r"\((\d+)\)", tr["name"]).group(1)) for tr in lines) == min(want, 300)

    # The picked box: another one of this image stays while the image does.
    t = ctx(at).analysis().table
    ids = at.selectbox(key="reg_pick").options
    other_pick = min(int(i.split(":")[0][1:]) for i in ids
                     if int(i.split(":")[0][1:]) != at.session_state["reg_pick"])
    ok(at.selectbox(key="reg_pick").set_value(other_pick).run())
    ok(page(at, "overview"))
    ok(page(at, "regressor"))
    assert at.session_state["reg_pick"] == other_pick

    # Another sample scene (det scene 2; the app opens on det scene 1): all of its classes,
    # and its most confident box picked (the old box number names another box here).
    assert at.session_state["gallery"] != 4
    ok(at.sidebar.selectbox(key="gallery").set_value(4).run())
    new = classes(at)
    assert new != {one} and set(at.session_state["reg_classes"]) == new
    t = ctx(at).analysis().table
    assert int(metrics(at)["raw boxes (all filters)"]) == len(t)
    drawn = [i for tr in figures(at)["reg_click"]["data"] if tr.get("customdata") for i in tr["customdata"]]
    best = max(drawn, key=lambda i: (float(t.scores[i]), -i))
    assert other_pick < len(t) and at.session_state["reg_pick"] == best != other_pick
    # Filters that leave out the picked box and fewer than 300 boxes (drawn in the table's
    # order, not by score): again the most confident of them.
    s = next(s for s in range(6) if s != int(t.scale[best]) and 0 < (t.scale == s).sum() <= 300)
    ok(at.button_group(key="reg_scales").set_value([s]).run())
    drawn = [i for tr in figures(at)["reg_click"]["data"] if tr.get("customdata") for i in tr["customdata"]]
    assert len(drawn) == int((t.scale == s).sum())
    assert at.session_state["reg_pick"] == max(drawn, key=lambda i: (float(t.scores[i]), -i))

    # All of the classes stay all of them when top-k changes the set.
    open_knobs(at)
    ok(at.sidebar.slider(key="top_k").set_value(1).run())
    assert set(at.session_state["reg_classes"]) == classes(at)
    ok(at.sidebar.slider(key="top_k").set_value(5).run())
    assert set(at.session_state["reg_classes"]) == classes(at) == new


def test_choices_persist_across_pages():
    at = ok(page(start(), "scales"))
    third = appstate.class_ranking(ctx(at).analysis())[2][0]
    ok(at.selectbox(key="cls").set_value(third).run())
    ok(at.sidebar.radio(key="score").set_value("literal").run())
    ok(page(at, "offsets"))
    assert at.selectbox(key="cls").value == third
    ok(at.selectbox(key="off_scale").set_value(2).run())
    ok(page(at, "regressor"))
    ok(at.button_group(key="reg_scales").set_value([0, 5]).run())
    ok(page(at, "merge"))
    ok(at.button(key="merge_next").click().run())
    ok(at.button(key="merge_next").click().run())
    ok(page(at, "overview"))
    ok(page(at, "merge"))
    assert at.slider(key="merge_step").value == 2
    ok(page(at, "regressor"))
    assert at.button_group(key="reg_scales").value == [0, 5]
    ok(page(at, "offsets"))
    assert at.selectbox(key="off_scale").value == 2
    ok(page(at, "scales"))
    assert at.selectbox(key="cls").value == third
    assert at.sidebar.radio(key="score").value == "literal"
    assert ctx(at).knobs.score == "literal"


# --- bad input -------------------------------------------------------------------------------
BAD_IMAGES = {
    "not_an_image.png": (b"this is a text file, not a picture\n" * 40, "not an image file"),
    "truncated.png": (SAMPLE[: len(SAMPLE) // 3], "corrupt or truncated"),
    "truncated.jpg": (encode(sample_image(), "JPEG")[:400], "corrupt or truncated"),
    "bomb.png": (bomb_png(30000, 30000), "too large"),
    "empty.png": (b"", "empty file"),
    "sliver.png": (encode(Image.new("RGB", (900, 60))), "aspect ratio"),
}


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_bad_image_upload_shows_an_error_and_the_app_keeps_working(name):
    data, words = BAD_IMAGES[name]
    at = start()  # a good upload first: the app keeps showing it
    at.file_uploader(key="img").set_value((name, data, "image/png")).run()
    assert not at.exception
    assert len(at.error) == 1 and name in at.error[0].value and words in at.error[0].value
    assert any(f"Still showing the previous image: upload {SAMPLE_NAME}" in i.value for i in at.info)
    assert at.title[0].value == "OverFeat, step by step"
    assert ctx(at).image.size == (300, 260)
    page(at, "merge")
    assert not at.exception and at.metric[0].value == str(len(ctx(at).analysis().table))
    # A good file replaces the bad one: the error goes away.
    ok(at.file_uploader(key="img").set_value(("again.png", SAMPLE, "image/png")).run())
    assert "upload again.png" in header(at)


def test_bad_first_upload_falls_back_to_the_sample_scene():
    at = start(b"GIF89a" + b"\x00" * 10, "broken.gif", "image/gif")
    assert not at.exception and "broken.gif" in at.error[0].value
    assert "Image: **upload" not in header(at)  # the sample scene (or a drawn picture) instead
    assert at.title[0].value == "OverFeat, step by step"


def _gradient(h=200, w=260, hi=255) -> np.ndarray:
    return np.linspace(0, hi, h * w).reshape(h, w)


def _exif_rotated() -> bytes:
    """A JPEG stored 300 wide x 200 high whose EXIF says: rotate 90 degrees clockwise."""
    im = Image.new("RGB", (300, 200), (220, 30, 30))
    ImageDraw.Draw(im).rectangle((150, 0, 300, 200), fill=(30, 30, 220))  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(im, "JPEG", exif=exif, quality=95)


ODD_IMAGES = {
    # name: (bytes, expected RGB size (w, h))
    "gray.png": (encode(Image.fromarray(_gradient().astype(np.uint8), "L")), (260, 200)),
    "rgba.png": (encode(Image.new("RGBA", (260, 240), (255, 0, 0, 0))), (260, 240)),
    "sixteen.png": (encode(Image.fromarray(_gradient(hi=65535).astype(np.uint16))), (260, 200)),
    "rotated.jpg": (_exif_rotated(), (200, 300)),
    "big.jpg": (encode(sample_image(2000, 1500), "JPEG"), (1229, 922)),
}


def test_odd_but_valid_images_are_converted():
    at = start(None)
    # No window passes min score 1: zero boxes, so each new image costs only its analysis.
    ok(at.sidebar.slider(key="min_score").set_value(1.0).run())
    for name, (data, size) in ODD_IMAGES.items():
        ok(at.file_uploader(key="img").set_value((name, data, "image/png")).run())
        im = ctx(at).image
        assert im.mode == "RGB" and im.size == size, name
        assert f"Image: **upload {name}** ({size[0]} wide x {size[1]} high)" in header(at)
        a = np.asarray(im)
        if name == "sixteen.png":  # 16 bits rescaled to the full 8-bit range, not clipped
            assert a.min() <= 1 and a.max() >= 254
        if name == "rgba.png":  # transparent pixels become white
            assert (a == 255).all()
        if name == "rotated.jpg":  # upright: red on top, blue below
            assert a[20, 100, 0] > 150 and a[280, 100, 2] > 150
        if name == "big.jpg":
            assert any("shrunk from 2000x1500 to 1229x922" in i.value for i in at.info)
    # No boxes (unless a trained model is certain to float precision somewhere): the pages that
    # show boxes say so instead of failing.
    n_boxes = len(ctx(at).analysis().table)
    ok(page(at, "regressor"))
    assert any("No boxes" in w.value for w in at.warning) == (n_boxes == 0)
    ok(page(at, "merge"))
    assert metrics(at)["raw boxes"] == str(n_boxes)
    if n_boxes == 0:
        assert at.button(key="merge_next").disabled
        assert "0 raw boxes: nothing to merge" in _step_of(at, "literal")[2]


def _checkpoint(cfg_dict: dict, state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "config": cfg_dict, "state_dict": state, "meta": {}}, buf)
    return buf.getvalue()


def _demo_state() -> dict:
    return OverFeat(preset("demo")).state_dict()


def _small_fast() -> ModelConfig:
    return ModelConfig(geometry="fast", width=0.0625, num_classes=4, background=True,
                       class_names=("cat", "dog", "car", "background"),
                       regressor_channels=(256, 64))


def _upload_checkpoint(at: AppTest, name: str, data: bytes) -> AppTest:
    at.sidebar.radio(key="model_source").set_value("upload").run()
    return at.file_uploader(key="ckpt").set_value((name, data, "application/octet-stream")).run()


def _not_a_zip() -> bytes:
    return b"PK\x03\x04 definitely not a checkpoint" * 10


BAD_CHECKPOINTS = {
    "text.pt": (lambda: b"hello" * 100, "not a PyTorch checkpoint file"),
    "broken_zip.pt": (_not_a_zip, "not a"),
    "other_dict.pt": (lambda: _checkpoint_raw({"weights": torch.zeros(3)}),
                      "not an OverFeat teaching checkpoint"),
    "unknown_geometry.pt": (lambda: _checkpoint({**preset("demo").to_dict(), "geometry": "vgg16"},
                                                _demo_state()), "unknown geometry 'vgg16'"),
    "wrong_geometry.pt": (lambda: _checkpoint({**preset("demo").to_dict(), "geometry": "fast"},
                                              _demo_state()), "do not fit its fast config"),
}


def _checkpoint_raw(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(BAD_CHECKPOINTS))
def test_bad_checkpoint_upload_shows_an_error_and_keeps_the_model(name):
    make, words = BAD_CHECKPOINTS[name]
    at = start()
    default_desc = ctx(at).model_desc
    _upload_checkpoint(at, name, make())
    assert not at.exception
    assert len(at.error) == 1, [e.value for e in at.error]
    msg = at.error[0].value
    assert name in msg and words in msg and "instead" in msg
    assert ctx(at).model_desc == default_desc
    for p in ("architecture", "merge"):
        page(at, p)
        assert not at.exception and len(at.error) == 1


def test_uploaded_checkpoint_of_the_fast_geometry_runs_on_every_page(tmp_path):
    from overfeat.checkpoint import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path / "fast_small.pt"
    save_checkpoint(path, OverFeat(_small_fast()).eval())
    at = start()
    ok(_upload_checkpoint(at, path.name, path.read_bytes()))
    c = ctx(at)
    assert c.model_desc == "uploaded checkpoint fast_small.pt" and c.model.k == 2
    # The model's caption (the last sidebar caption is the scales' input sizes).
    assert any("fast geometry" in c.value for c in at.sidebar.caption)
    ok(page(at, "architecture"))
    assert metrics(at)["window (network input)"] == "231 px"
    ok(page(at, "offsets"))
    assert len(grid_blocks(pictures(at)["off_pooled"])) == 4  # 2x2 offsets
    ok(page(at, "regressor"))
    ok(page(at, "merge"))
    assert metrics(at)["raw boxes"] == str(len(ctx(at).analysis().table))


def test_full_width_preset_is_shown_but_not_run():
    at = start()
    at.session_state["preset"] = "accurate"  # chosen before the preset box is first drawn
    ok(at.sidebar.radio(key="model_source").set_value("preset").run())
    assert at.sidebar.selectbox(key="preset").value == "accurate"
    assert any("shown on the Architecture page only" in i.value for i in at.info)
    assert ctx(at).model_key.startswith("default:")  # the pages run the small model
    ok(page(at, "architecture"))
    assert f"{appstate.n_params(PRESETS['accurate']) / 1e6:.1f}M parameters" in markdown(at)
    assert "width x1" in markdown(at)
    ok(page(at, "scales"))
