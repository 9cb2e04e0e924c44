"""Issue 14, what a teacher hit preparing a lesson, checked in AppTest: the class follows a new
image, a bad upload keeps the last good one, a link carries every view setting, the defaults
are evaluate's, the merge draws confidence, Detection has one visible threshold, Offsets opens
where the maps are largest, the Overview shows the image and its boxes, final boxes are clipped
to the image."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from apptest_helpers import (APP, CHEAP, SAMPLE_NAME, TIMEOUT, ctx, encode, figures, ok, open_knobs,
                             open_link, page, pictures, sample_image, start, tables, traces)
from overfeat import detection
from overfeat.app import share
from overfeat.app import state as appstate
from overfeat.evaluate import EVAL_MIN_SCORE, EVAL_TOP_K
from overfeat.multiscale import Settings, analyze
from overfeat.predict import load_model


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    return at.file_uploader(key="img").set_value((name, data, "image/png")).run()


def other_picture() -> bytes:
    im = sample_image().transpose(Image.Transpose.FLIP_TOP_BOTTOM).rotate(90, expand=True)
    return encode(im)


# --- state -----------------------------------------------------------------------------------
def test_a_new_upload_starts_at_its_own_top_class_on_scales_and_offsets():
    at = ok(page(start(), "scales"))
    first = ctx(at).analysis()
    pick = appstate.class_ranking(first)[3][0]  # not the top class
    ok(at.selectbox(key="cls").set_value(pick).run())
    ok(page(at, "offsets"))
    assert at.selectbox(key="cls").value == pick  # the same image keeps the choice
    ok(upload(at, "second.png", other_picture()))
    second = ctx(at).analysis()
    top = second.top(1)[0][0]
    assert at.selectbox(key="cls").value == top
    ok(page(at, "scales"))
    assert at.selectbox(key="cls").value == top


def test_a_bad_upload_keeps_the_last_good_image_even_after_a_run_without_a_file():
    at = ok(start())
    good = ctx(at).image_key
    # Replacing a file in the browser runs the script once with no file, then the new one.
    ok(at.file_uploader(key="img").set_value(None).run())
    assert ctx(at).image_key != good  # no file: the sample scene meanwhile
    at = upload(at, "broken.png", b"not a png at all")
    assert len(at.error) == 1 and "broken.png" in at.error[0].value
    assert ctx(at).image_key == good
    assert any(f"Still showing the previous image: upload {SAMPLE_NAME}" in i.value
               for i in at.info)


def test_every_view_setting_round_trips_through_a_link():
    state = {"img_source": "gallery", "gallery": 3, "cls": 7, "scales_flip": True,
             "off_scale": 4, "off_flip": True, "off_channel": 12, "off_row": 5, "off_col": 9,
             "reg_scales": [1, 3], "reg_offsets": [0, 4, 8], "reg_classes": [2, 14],
             "reg_all": True, "reg_pick": 321, "merge_step": 2, "merge_jump": 20,
             "merge_all": True, "merge_n_final": 8, "det_min_conf": 50.0, "cmp_iou": 0.55,
             "min_score": 0.45, "top_k": 3}
    q = share.encode(state, "merge")
    back, pg, notes = share.decode(q, len(appstate.GALLERY))
    assert pg == "merge" and notes == [] and back == state
    # Each one is a key of the one table, which the app's link and persistence both use.
    assert set(state) - {"img_source"} <= {p.key for p in share.PARAMS}
    bad, _, notes = share.decode({"step": "-1", "jump": "7", "rscales": "9", "orow": "x"}, 6)
    assert bad == {} and len(notes) == 4


def test_one_state_table_sets_the_defaults_the_link_and_what_is_kept():
    d = share.defaults()
    kn = appstate.Knobs()
    # The sidebar's defaults are evaluate's settings, from the table, in a fresh session.
    assert (d["top_k"], d["min_score"]) == (EVAL_TOP_K, EVAL_MIN_SCORE)
    at = ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    for k in ("scales", "flips", "fine", "rule", "top_k", "min_score", "score", "t_literal",
              "t_corrected", "by_class", "average", "det_min_conf", "cmp_iou",
              "cmp_min_support", "presenter", "model_source", "img_source"):
        assert at.session_state[k] == d[k], k
    assert ctx(at).knobs == kn
    # Settings without a link name are kept across pages but never put in a link.
    local = {p.key for p in share.PARAMS if p.name is None}
    assert {"train_epochs", "exp_n", "preset"} <= local
    q = share.encode(d | {"train_epochs": 4, "exp_n": 50}, "training")
    back, _, notes = share.decode(q, len(appstate.GALLERY))
    assert notes == [] and not local & set(back)
    assert set(share.KEPT_KEYS) >= local | set(share.SHARED_KEYS)
    # The defaults a session gets are its own copies.
    d["scales"].append(99)
    assert 99 not in share.defaults()["scales"]


def test_a_link_opens_at_its_merge_step_class_cell_and_filters():
    link = {**CHEAP, "page": "merge", "img": "gallery", "g": "3", "step": "2", "jump": "5"}
    at = ok(open_link(link))
    assert at.title[0].value == "Merge"
    assert at.slider(key="merge_step").value == 2
    assert at.select_slider(key="merge_jump").value == 5
    step = at.query_params["step"]
    assert (step[-1] if isinstance(step, list) else step) == "2"  # the URL still says so

    a = analyze(load_model()[0], appstate.make_scene("det", 7, 0)[0],
                Settings(scales=(0, 1), flips=False))
    second = appstate.class_ranking(a)[1][0]
    at = ok(open_link({**CHEAP, "page": "offsets", "g": "3", "img": "gallery",
                       "cls": str(second), "oscale": "0", "orow": "1", "ocol": "2"}))
    assert at.selectbox(key="cls").value == second  # not reset to the top class
    assert at.selectbox(key="off_scale").value == 0
    assert (at.number_input(key="off_row").value, at.number_input(key="off_col").value) == (1, 2)

    at = ok(open_link({**CHEAP, "page": "regressor", "g": "3", "img": "gallery",
                       "rscales": "1", "rall": "1"}))
    assert at.session_state["reg_scales"] == [1] and at.session_state["reg_all"] is True


# --- defaults --------------------------------------------------------------------------------
def test_the_merge_opens_at_evaluates_settings_and_draws_confidence():
    at = ok(page(ok(open_link({"img": "gallery", "g": "0"})), "merge"))
    k = ctx(at).knobs
    assert (k.top_k, k.min_score) == (EVAL_TOP_K, EVAL_MIN_SCORE)
    a = ctx(at).analysis()
    assert float(a.table.scores.min()) >= EVAL_MIN_SCORE
    r = ctx(at).merge("corrected")
    all_boxes = appstate.derive(a, Settings(top_k=1, min_score=0.0))
    assert len(r.final.confs) < len(all_boxes.merge().final.confs)  # fewer boxes left
    # Line width and opacity follow confidence: the strong band is drawn wider and opaque.
    ok(at.slider(key="merge_step").set_value(r.n_steps // 2).run())
    items = pictures(at)["merge_fig_corrected"]["items"]  # issue 27: a raster picture
    widths = {tr["line"]["width"]: tr["opacity"] for tr in items if tr["name"].endswith(" left")}
    assert len(widths) >= 2 and widths[max(widths)] > widths[min(widths)]
    names = [tr["name"] for tr in items]
    # Issue 27: the pair being merged is drawn last (on top), the merged box just under it.
    pair = [i for i, n in enumerate(names) if n.startswith(("b1 = ", "b2 = "))]
    assert pair == [len(names) - 3, len(names) - 2] and names[-1] == "centres of the pair"
    assert names.index("merged box (dashed)") < pair[0]


def test_gallery_det_scenes_hold_several_objects():
    for kind, seed, index in appstate.GALLERY:
        objects = appstate.make_scene(kind, seed, index)[1]
        assert (len(objects) == 1) if kind == "loc" else (len(objects) >= 3)


def test_detection_has_one_window_threshold_and_a_final_confidence():
    at = ok(page(ok(open_link({"img": "gallery", "g": "3"})), "detection"))
    assert [s.key for s in at.slider] == [] or "det_min_score" not in [s.key for s in at.slider]
    c = ctx(at)
    r = detection.detect(c.analysis(), c.knobs.min_score, c.knobs.top_k, c.knobs.score,
                         c.knobs.threshold(c.knobs.score), c.knobs.by_class, truth=c.truth,
                         min_confidence=detection.DEFAULT_MIN_CONFIDENCE)
    everything = detection.detect(c.analysis(), c.knobs.min_score, c.knobs.top_k,
                                  c.knobs.score, c.knobs.threshold(c.knobs.score),
                                  c.knobs.by_class, truth=c.truth)
    assert at.select_slider(key="det_min_conf").value == detection.DEFAULT_MIN_CONFIDENCE
    m = {x.label: x.value for x in at.metric}
    assert m["detections"] == str(len(r.detections))
    assert m["false positives"] == str(r.match.fp)
    assert r.match.fp < everything.match.fp  # the threshold removes stray boxes
    assert r.match.tp == everything.match.tp  # ...and no found object on this scene
    table = tables(at)[0]
    assert list(table.columns[:5]) == ["rank", "class", "confidence", "windows", "mean p"]
    ok(open_knobs(at).sidebar.slider(key="min_score").set_value(0.3).run())
    assert ctx(at).knobs.min_score == 0.3  # the sidebar's value is the page's


# --- offsets, overview, clipping --------------------------------------------------------------
def test_offsets_open_at_the_largest_map_and_the_best_cell():
    at = ok(page(ok(open_link({"img": "gallery", "g": "0"})), "offsets"))
    a = ctx(at).analysis()
    s = at.selectbox(key="off_scale").value
    assert s == appstate.largest_scale(a) == 5
    cls = at.selectbox(key="cls").value
    view = next(v for v in a.views if v.scale == s and not v.flip)
    r, c = at.number_input(key="off_row").value, at.number_input(key="off_col").value
    assert float(view.fine[cls, r, c]) == float(view.fine[cls].max())
    ok(at.selectbox(key="off_scale").set_value(2).run())
    view = next(v for v in a.views if v.scale == 2 and not v.flip)
    r, c = at.number_input(key="off_row").value, at.number_input(key="off_col").value
    assert float(view.fine[cls, r, c]) == float(view.fine[cls].max()) > 0


def test_overview_shows_the_image_and_its_final_boxes():
    at = ok(open_link({"img": "gallery", "g": "3"}))
    fig = figures(at)["overview_boxes"]
    (im,) = fig["layout"]["images"]  # the image, under the boxes
    assert im["source"] == ctx(at).backdrop().uri and im["layer"] == "below"
    r = ctx(at).merge(ctx(at).knobs.score)
    n = appstate.n_confident(r, detection.DEFAULT_MIN_CONFIDENCE)
    boxes = [tr for tr in fig["data"] if tr.get("name", "")[:1].isdigit()]
    assert len(boxes) == n >= 1


def test_final_boxes_are_clipped_to_the_image():
    model = load_model()[0]
    im = Image.new("RGB", (240, 230), (230, 230, 230))
    im.paste(appstate.make_scene("loc", 7, 0)[0].resize((200, 200)), (-60, -50))
    a = analyze(model, im, Settings(top_k=1, min_score=0.0))
    raw = a.table.boxes
    assert bool((raw[:, 0] < 0).any() or (raw[:, 1] < 0).any() or (raw[:, 2] > 240).any()
                or (raw[:, 3] > 230).any()), "no raw box reaches past the image"
    r = a.merge()
    fb = r.final.boxes
    assert bool((fb[:, 0::2] >= 0).all() and (fb[:, 0::2] <= 240).all())
    assert bool((fb[:, 1::2] >= 0).all() and (fb[:, 1::2] <= 230).all())
    # Clipping is the only change: the unclipped merge clamped gives the same boxes.
    from overfeat.merge import merge

    t = a.table
    plain = merge(t.boxes, t.scores, t.labels).final.boxes
    clamped = torch.stack([plain[:, 0].clamp(0, 240), plain[:, 1].clamp(0, 230),
                           plain[:, 2].clamp(0, 240), plain[:, 3].clamp(0, 230)], 1)
    assert torch.equal(fb, clamped)
    assert np.isfinite(fb.numpy()).all()


def test_the_tabs_first_run_draws_each_lazily_loaded_element_once_hidden_and_disabled():
    """common.warm_elements (issue 27, speed): the session's first run ends with one metric,
    number input, multiselect, slider and image in a container its own style hides, every
    widget disabled (no one can change it, the random walks skip it); the next run has none."""
    from app_pages import common

    at = ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    keys = ("_warm_number", "_warm_multi", "_warm_slider")
    found = [at.number_input(key=keys[0]), at.multiselect(key=keys[1]), at.slider(key=keys[2])]
    assert all(w.proto.disabled for w in found)
    assert any(m.label == "warm-up" for m in at.metric)
    hide = f".st-key-{common.WARM_CONTAINER} {{ display: none; }}"
    assert any(hide in h.proto.body for h in at.get("html"))
    assert at.session_state[common.WARM_KEY] is True
    at.run()
    for kind, key in zip((at.number_input, at.multiselect, at.slider), keys):
        assert key not in [w.key for w in kind]
    assert not any(m.label == "warm-up" for m in at.metric)
    assert not any(hide in h.proto.body for h in at.get("html"))
