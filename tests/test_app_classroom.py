"""The classroom features driven headless with AppTest (and their package functions):
training in the browser (a tiny real run, one run per server, stop), presenter mode, the view
in the URL's query parameters (round trip, bad values), the code expander on every page, the
PNG modebar button on every figure, and the analysis exported as JSON.

The sample scenes of the gallery are used (no upload), so a link can describe the image.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from apptest_helpers import CHEAP, PAGES, ctx, long_runs, ok, open_knobs, open_link
from overfeat.app import export, figures, jobs, share
from overfeat.app import state as appstate
from overfeat.checkpoint import load_checkpoint


OWNER = "_train_owner"  # the session key of the Training page's token (app_pages/training.py)
NOT_YOURS = "Started by another session: only that session or the teacher can stop it."


def title(at: AppTest) -> str:
    return at.title[0].value


def notes(at: AppTest) -> str:
    return "\n".join(i.value for i in at.info)


def qp(at: AppTest) -> dict[str, str]:
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}


# --- package functions --------------------------------------------------------------------
def test_share_encode_decode_round_trip():
    state = {"img_source": "generate", "scene_seed": 42, "scene_kind": "loc",
             "scales": [4, 0, 2], "flips": False, "fine": True, "rule": "paper", "top_k": 3,
             "min_score": 0.25, "score": "literal", "t_literal": 75.0, "t_corrected": 0.4,
             "by_class": False, "average": "plain", "det_min_conf": 50.0,
             "cmp_iou": 0.65, "presenter": True}
    q = share.encode(state, "merge")
    assert all(isinstance(v, str) for v in q.values())
    back, page, notes_ = share.decode(q, n_gallery=6)
    assert page == "merge" and notes_ == []
    assert back == {**state, "scales": [0, 2, 4]}


def test_share_decode_ignores_bad_values_with_a_note():
    bad = {"page": "nowhere", "img": "upload", "g": "17", "seed": "-3", "kind": "cat",
           "scales": "0,9", "flips": "maybe", "rule": "stretch", "topk": "two", "min": "nan",
           "score": "best", "tl": "1e99", "avg": "median", "dconf": "7", "iou": "0",
           "utm_source": "mail"}
    state, page, notes_ = share.decode(bad, n_gallery=6)
    assert state == {} and page is None
    named = [n.split("=")[0].removeprefix("link parameter ") for n in notes_]
    assert named == ["page", "img", "g", "seed", "kind", "scales", "flips", "rule", "topk",
                     "min", "score", "tl", "avg", "dconf", "iou"]
    # every bad one is named; the unknown utm_source is ignored silently
    good, _, none = share.decode({"g": ["1", "3"], "fine": "off"}, n_gallery=6)
    assert good == {"gallery": 3, "fine": False} and none == []  # a repeated name: the last
    snapped, _, _ = share.decode({"min": "0.333", "iou": "0.52"}, n_gallery=6)
    assert snapped == {"min_score": 0.33, "cmp_iou": 0.5}  # onto the sliders' grids


def test_export_round_trips_with_the_right_counts():
    from overfeat.multiscale import Settings, analyze
    from overfeat.predict import load_model

    model, _ = load_model()
    im, _ = appstate.make_scene("det", 7, 0)
    a = analyze(model, im, Settings(scales=(0, 1), flips=True, top_k=2))
    merges = {k: a.merge(score=k) for k in ("literal", "corrected")}
    d = json.loads(export.analysis_json(a, merges, image="det 7", model="m"))
    assert d["format"] == export.FORMAT and d["image"] == "det 7"
    assert len(d["views"]) == 4 and {(v["scale"], v["flip"]) for v in d["views"]} == \
        {(1, False), (1, True), (2, False), (2, True)}
    assert len(d["scale_sizes"]) == 6 and d["scale_sizes"][0] == list(a.sizes[0])
    assert len(d["raw_boxes"]) == len(a.table) > 0
    r0 = d["raw_boxes"][0]
    assert r0["scale"] == int(a.table.scale[0]) + 1 and r0["class"] == a.class_names[int(a.table.labels[0])]
    assert len(d["top_classes"]) == 5 and d["top_classes"][0]["class"] == a.class_names[a.top(1)[0][0]]
    assert all(len(cs) == 2 for cs in d["top_k_per_scale"].values())
    for k, r in merges.items():
        m = d["merges"][k]
        assert m["steps"] == r.n_steps and m["input_boxes"] == len(a.table)
        assert len(m["final_boxes"]) == len(r.final.confs) == len(a.table) - r.n_steps
        assert sum(b["members"] for b in m["final_boxes"]) == len(a.table)


# --- training in the browser --------------------------------------------------------------
def test_training_page_runs_a_tiny_job_whose_checkpoint_is_selectable(train_root):
    at = ok(open_link({**CHEAP, "page": "training"}))
    assert title(at) == "Training"
    at.number_input(key="train_scenes").set_value(6)
    at.select_slider(key="train_width").set_value(0.0625)
    assert at.button_group(key="train_stages").value == [1]
    assert "Trained in the app" not in at.radio(key="model_source").options
    next(b for b in at.button if b.label == "Start training").click()
    ok(at.run())
    job = jobs.current()
    assert job is not None and job.folder.parent == train_root
    assert job.spec == jobs.JobSpec(stages=(1,), epochs=1, n_scenes=6, kind="det", width=0.0625)
    t0 = time.monotonic()
    # The run trains at the lowest CPU priority (overfeat.app.jobs): on a machine kept busy
    # by other work it waits for a free core, hence the generous limit.
    assert job.wait(600), "the tiny run did not end within 600 s"
    s = job.snapshot()
    assert s["status"] == "done", s
    assert s["progress"] == 1.0 and len(s["losses"]) >= 1 and len(s["epochs"]) == 1
    ok(at.run())
    assert at.get("progress")[0].proto.value == 100
    fig = json.loads(next(e for e in at.get("plotly_chart") if e.key == "train_loss").proto.spec)
    assert [p for t in fig["data"] if t["name"].startswith("stage 1") for p in t["y"]][:len(s["losses"])] \
        == [r["loss"] for r in s["losses"]]
    assert any(s["id"] in m.value for m in at.success)
    # What a user can use: the run's name and a download, not the server's folder (issue 28).
    captions = " ".join(c.value for c in at.caption)
    assert s["id"] in captions and str(train_root) not in captions
    assert any(e.proto.label == "Download checkpoint" for e in at.get("download_button"))

    # The sidebar lists the run; choosing it loads that checkpoint.
    radio = at.radio(key="model_source")
    assert "Trained in the app" in radio.options
    radio.set_value("trained")
    ok(at.run())
    assert at.selectbox(key="app_ckpt").value == str(job.out)
    c = ctx(at)
    assert c.model_key.startswith(f"app:{job.out}")
    assert c.model.cfg.width == 0.0625 and "trained in the app" in c.model_desc
    ref, meta = load_checkpoint(job.out)
    assert meta["complete"] and meta["options"]["stages"] == [1]
    assert all((p == q).all() for p, q in zip(c.model.state_dict().values(),
                                               ref.state_dict().values()))
    print(f"tiny run: {s['seconds']:.1f} s, waited {time.monotonic() - t0:.1f} s")


def test_a_second_start_while_one_runs_says_so_and_stop_sets_the_flag(train_root, monkeypatch):
    at = ok(open_link({**CHEAP, "page": "training"}))
    busy = jobs.Job(id="run-busy", spec=jobs.JobSpec(), folder=train_root / "run-busy",
                    status="running", message="stage 1 epoch 1/1, step 3/9", progress=0.3,
                    owner=at.session_state[OWNER])  # started by this session
    busy.losses.extend({"stage": 1, "epoch": 0, "step": i + 1, "steps": 9, "x": i + 1,
                        "loss": 3.0 - 0.1 * i} for i in range(3))
    monkeypatch.setattr(jobs, "_CURRENT", busy)
    with pytest.raises(jobs.JobRunning, match="already running"):
        jobs.start(jobs.JobSpec())
    ok(at.run())
    assert at.get("progress")[0].proto.value == 30
    next(b for b in at.button if b.label == "Start training").click()
    ok(at.run())
    assert any("already running" in w.value and "run-busy" in w.value for w in at.warning)
    assert jobs.current() is busy  # nothing new started
    assert not list(train_root.iterdir())
    at.button(key="train_stop").click()
    ok(at.run())
    assert busy.snapshot()["stop_requested"]
    assert at.button(key="train_stop").disabled


def _long_runs(monkeypatch) -> threading.Event:
    """Runs that last until they are stopped and `release` is set (no training)."""
    return long_runs(monkeypatch)


def _start(at: AppTest) -> AppTest:
    next(b for b in at.button if b.label == "Start training").click()
    return ok(at.run())


def _stop_button(at: AppTest):
    return next((b for b in at.button if b.key == "train_stop"), None)


def test_only_the_session_that_started_a_run_or_the_teacher_can_stop_it(train_root,
                                                                          monkeypatch):
    """Two sessions of one server (two AppTests in one process share jobs' registry): B sees
    A's run and its progress, but gets a note instead of the Stop button and cannot stop it,
    not with a wrong teacher key either; A can. With the teacher key B can stop A's next run."""
    release = _long_runs(monkeypatch)
    monkeypatch.setattr(jobs, "TEACHER_KEY", "s3cret key")
    a = ok(open_link({**CHEAP, "page": "training"}))
    b = ok(open_link({**CHEAP, "page": "training"}))
    assert a.session_state[OWNER] != b.session_state[OWNER]
    _start(a)
    job = jobs.current()
    assert job is not None and job.alive and job.owner == a.session_state[OWNER]
    ok(b.run())
    assert job.id in b.get("progress")[0].proto.text  # B sees the run
    assert _stop_button(b) is None
    assert NOT_YOURS in [c.value for c in b.caption]
    with pytest.raises(jobs.NotYourRun, match="started by another session"):
        job.stop(by=b.session_state[OWNER])  # what B's button would do, had it one
    b.text_input(key="_train_key").set_value("not the key")
    ok(b.run())
    assert _stop_button(b) is None and any("not the teacher key" in w.value for w in b.warning)
    assert not job.snapshot()["stop_requested"]
    # A's Stop button stops it.
    assert NOT_YOURS not in [c.value for c in a.caption]
    _stop_button(a).click()
    ok(a.run())
    assert job.snapshot()["stop_requested"] and _stop_button(a).disabled
    release.set()
    assert job.wait(30)

    # A's next run; B types the teacher key: B's Stop button stops it.
    release.clear()
    _start(a)
    second = jobs.current()
    assert second is not job and second.alive and second.owner == a.session_state[OWNER]
    b.text_input(key="_train_key").set_value("s3cret key")
    ok(b.run())
    assert any("Teacher key accepted" in c.value for c in b.caption)
    _stop_button(b).click()
    ok(b.run())
    assert second.snapshot()["stop_requested"]
    release.set()
    assert second.wait(30)


def test_the_widgets_follow_the_cap_and_the_teacher_key_lifts_it(train_root, monkeypatch):
    monkeypatch.setattr(jobs, "TEACHER_KEY", None)
    at = ok(open_link({**CHEAP, "page": "training"}))
    assert not [w for w in at.text_input if w.key == "_train_key"]  # no key: no field
    cap = jobs.CAP
    assert at.number_input(key="train_scenes").max == cap.n_scenes
    assert at.number_input(key="train_epochs").max == cap.epochs
    assert max(float(o) for o in at.select_slider(key="train_width").options) == cap.width

    monkeypatch.setattr(jobs, "TEACHER_KEY", "s3cret key")
    ok(at.run())
    at.text_input(key="_train_key").set_value("s3cret key")
    ok(at.run())
    top = jobs.MAXIMA
    assert at.number_input(key="train_scenes").max == top.n_scenes
    assert at.number_input(key="train_epochs").max == top.epochs
    assert max(float(o) for o in at.select_slider(key="train_width").options) == top.width
    # A run over the cap, started with the key (a run that ends at once: no training).
    monkeypatch.setattr(jobs.Job, "_run", lambda self: self._finish("stopped", "not trained"))
    at.number_input(key="train_scenes").set_value(cap.n_scenes + 30)
    _start(at)
    assert jobs.current().spec.n_scenes == cap.n_scenes + 30
    # The key gone, a value chosen under it comes back within the cap.
    at.text_input(key="_train_key").set_value("")
    ok(at.run())
    assert at.number_input(key="train_scenes").max == cap.n_scenes
    assert at.number_input(key="train_scenes").value == cap.n_scenes


def test_the_job_callback_stops_the_run_when_asked():
    from overfeat.train import StopTraining

    job = jobs.Job(id="x", spec=jobs.JobSpec(stages=(1, 2)), folder=Path("unused"),
                   owner="token")
    job.callback({"event": "step", "stage": 2, "epoch": 0, "epochs": 1, "step": 1, "steps": 2,
                  "loss": 0.5})
    assert job.progress == pytest.approx(0.75)  # stage 2 of 2, half of its only epoch
    job.stop(by="token")
    with pytest.raises(StopTraining):
        job.callback({"event": "epoch", "stage": 2, "epoch": 0, "loss": 0.4})
    job.callback({"event": "done"})  # never raised from "done"


# --- presenter mode and shareable links ---------------------------------------------------
def test_presenter_mode_enlarges_text_and_hides_controls_keeping_their_values():
    at = ok(open_link({**CHEAP, "topk": "3", "score": "literal", "knobs": "1"}))
    assert at.slider(key="top_k").value == 3

    def css() -> str:
        return " ".join(h.proto.body for h in at.get("html"))

    assert "font-size: 21px" not in css()  # the narrow-screen rules only (sidebar.NARROW_CSS)
    at.toggle(key="presenter").set_value(True)
    ok(at.run())
    assert "font-size: 21px" in css()
    keys = {w.key for w in at.sidebar.get("slider") + at.sidebar.get("radio")
            + at.sidebar.get("file_uploader") + at.sidebar.get("number_input")}
    assert not keys & {"top_k", "min_score", "score", "model_source", "img", "t_literal"}
    assert at.pills(key="scales") is not None  # the knobs a class plays with stay
    k = ctx(at).knobs
    assert (k.top_k, k.score, k.scales, k.flips) == (3, "literal", (0, 1), False)
    assert qp(at)["present"] == "1"
    at.toggle(key="presenter").set_value(False)
    ok(at.run())
    assert at.slider(key="top_k").value == 3 and "font-size: 21px" not in css()


KNOB_KEYS = {"top_k", "min_score", "score", "t_literal", "t_corrected", "by_class", "average"}


def sidebar_widget_keys(at: AppTest) -> set:
    return {w.key for kind in ("slider", "radio", "number_input", "checkbox")
            for w in at.sidebar.get(kind)}


def test_the_window_and_merge_knobs_fold_and_keep_their_values():
    """Closed by default (seven widgets fewer on every page switch), the section's label names
    the values; opened, the seven widgets; closed again or on another page, their values stay
    the analysis's, and a link carries the section open."""
    at = ok(open_link(CHEAP))
    (box,) = [e for e in at.sidebar.expander if e.label.startswith("Windows and merge")]
    assert box.label.replace("\u00a0", " ") == (
        "Windows and merge (top-5 classes, p ≥ 0.50, corrected t = -0.3, weighted)")
    assert not sidebar_widget_keys(at) & KNOB_KEYS
    open_knobs(at)
    assert KNOB_KEYS <= sidebar_widget_keys(at)
    at.slider(key="top_k").set_value(2)
    at.radio(key="score").set_value("literal")
    at.checkbox(key="by_class").set_value(False)
    ok(at.run())
    (box,) = [e for e in at.sidebar.expander if e.label.startswith("Windows and merge")]
    assert box.label.replace("\u00a0", " ") == (
        "Windows and merge (top-2 classes, p ≥ 0.50, literal t = 50, weighted, across classes)")
    assert KNOB_KEYS <= sidebar_widget_keys(at)  # still open after its label changed
    assert qp(at)["knobs"] == "1" and qp(at)["topk"] == "2"
    at.session_state["knobs_open"] = False
    ok(at.run())
    assert not sidebar_widget_keys(at) & KNOB_KEYS
    ok(at.switch_page("app_pages/merge.py").run())
    k = ctx(at).knobs
    assert (k.top_k, k.score, k.by_class) == (2, "literal", False)
    again = ok(open_link({**qp(at), "knobs": "1"}))
    assert again.slider(key="top_k").value == 2 and again.radio(key="score").value == "literal"


def test_presenter_mode_keeps_an_uploaded_image():
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (260, 240), (200, 80, 60)).save(buf, format="PNG")
    at = ok(open_link(CHEAP))
    at.file_uploader(key="img").set_value(("red.png", buf.getvalue(), "image/png"))
    ok(at.run())
    key = ctx(at).image_key
    assert key.startswith("upload:")
    at.toggle(key="presenter").set_value(True)
    ok(at.run())
    ok(at.run())  # the hidden uploader's state is gone by now
    assert ctx(at).image_key == key and not at.sidebar.get("file_uploader")
    assert "img" not in qp(at) and "g" not in qp(at)  # an upload cannot travel in a link
    # Presenter mode off: the uploader is back, empty (Streamlit dropped its file while it was
    # hidden), and the uploaded image is still the image, on later runs and pages too (it was
    # the sample scene: the Detection page then analysed every sample scene, 1.4 s).
    at.toggle(key="presenter").set_value(False)
    ok(at.run())
    assert at.sidebar.get("file_uploader") and ctx(at).image_key == key
    ok(at.run())
    ok(at.switch_page("app_pages/detection.py").run())
    assert ctx(at).image_key == key and "red.png" in ctx(at).image_label
    # ... until another image is uploaded
    buf2 = io.BytesIO()
    Image.new("RGB", (200, 200), (20, 80, 200)).save(buf2, format="PNG")
    at.file_uploader(key="img").set_value(("blue.png", buf2.getvalue(), "image/png"))
    ok(at.run())
    assert ctx(at).image_key.startswith("upload:") and ctx(at).image_key != key
    at.radio(key="img_source").set_value("gallery")
    ok(at.run())
    assert ctx(at).image_key.startswith("scene:")


def test_a_shared_link_reopens_the_same_view():
    at = ok(open_link({**CHEAP, "knobs": "1"}))
    at.selectbox(key="gallery").set_value(4)
    at.slider(key="top_k").set_value(2)
    at.radio(key="score").set_value("literal")
    at.checkbox(key="fine").set_value(False)
    ok(at.run())
    ok(at.switch_page("app_pages/scales.py").run())
    link = qp(at)
    assert link["page"] == "scales" and link["g"] == "4" and link["topk"] == "2"
    assert link["fine"] == "0" and link["scales"] == "0,1"

    again = ok(open_link(link))
    assert title(again) == "Scales"
    a, b = ctx(at), ctx(again)
    assert (b.image_key, b.image_label, b.knobs) == (a.image_key, a.image_label, a.knobs)
    assert again.selectbox(key="gallery").value == 4
    assert qp(again) == link  # and the URL still says so


def test_bad_link_values_are_ignored_with_a_note():
    at = ok(open_link({"page": "nowhere", "g": "99", "scales": "x", "score": "best",
                       "flips": "0", "scales_extra": "1"}))
    assert title(at) == "OverFeat, step by step"
    text = notes(at)
    # Four bad values: one note naming them (sidebar.link_notes), not four boxes.
    assert ("4 values of this link were not understood and were ignored (page, g, scales, "
            "score); the rest of the link was applied.") in text
    assert "link parameter" not in text
    one = ok(open_link({"g": "99", "flips": "0"}))  # one or two: each with its reason
    assert "link parameter g='99' ignored: expected 0..5" in notes(one)
    k = ctx(at).knobs
    assert k.scales == appstate.ALL_SCALES and k.score == "corrected" and k.flips is False
    assert at.selectbox(key="gallery").value == share.BY_KEY["gallery"].default  # g was bad
    ok(at.run())
    assert "link parameter" not in notes(at)  # said once, not on every rerun


# --- code, PNG export, JSON export ---------------------------------------------------------
def _resolve(qualname: str):
    mod, _, rest = qualname.partition(".")
    obj = __import__(mod)
    parts = qualname.split(".")[1:]
    for i, p in enumerate(parts):
        obj = getattr(obj, p, None)
        if obj is None:  # a submodule not imported as an attribute
            obj = __import__(".".join(qualname.split(".")[:i + 2]), fromlist=["x"])
    return obj.fget if isinstance(obj, property) else obj


def test_every_page_shows_the_package_code_it_ran_and_lets_figures_be_saved_as_png(train_root):
    at = ok(open_link(CHEAP))
    for name in PAGES:
        ok(at.switch_page(f"app_pages/{name}.py").run())
        exp = [e for e in at.expander if e.label.startswith("The package code")]
        assert len(exp) == 1, name
        # Closed, the expander is empty (its code and captions were ~0.1 s of the browser's
        # work of a page switch); opened, it holds the code, highlighted as Python.
        assert exp[0].get("code") == [] and exp[0].get("caption") == [], name
        (key,) = [k for k in at.session_state if str(k).startswith("code_")
                  and at.session_state[k] is False]
        at.session_state[key] = True
        ok(at.run())
        exp = [e for e in at.expander if e.label.startswith("The package code")]
        shown = [c.value for c in exp[0].get("code")]
        names = [c.value for c in exp[0].get("caption")]
        assert shown and len(shown) == len(names), name
        for qual, code in zip(names, shown):
            assert qual.startswith("overfeat."), (name, qual)
            assert code.strip() == inspect.getsource(_resolve(qual)).strip(), (name, qual)
        assert {c.language for c in exp[0].get("code")} == {"python"}, name
        at.session_state[key] = False
        charts = at.get("plotly_chart")
        # No run yet: no loss curve; no evaluation file yet: no Table 2 figure; the Glossary
        # is a table; Merge draws its step and final boxes as pictures (issue 27).
        # Greedy vs NMS at two scales without flips: no method reaches the support rule, one
        # line each instead of an empty picture (issue 28).
        nothing = name == "compare" and any(c.value.startswith("No picture: no method counts")
                                            for c in at.caption)
        assert charts or nothing or name in ("training", "experiments", "glossary", "merge"), name
        for el in charts:
            cfg = json.loads(el.proto.config)
            assert cfg == figures.PLOTLY_CONFIG, (name, el.key)
            assert cfg["displayModeBar"] is True and cfg["toImageButtonOptions"]["format"] == "png"
            assert "toImage" not in cfg.get("modeBarButtonsToRemove", [])


def test_overview_offers_the_analysis_as_json_and_explains_the_png_button():
    at = ok(open_link(CHEAP))
    how = "\n".join(m.value for m in at.markdown)
    assert "Download plot as a PNG" in how and "Presenter mode" in how
    btn = at.get("download_button")
    assert len(btn) == 1 and btn[0].proto.label == "Download the analysis (JSON)"
    c = ctx(at)
    a = c.analysis()
    assert f"{len(a.views)} views, {len(a.table)} raw boxes" in btn[0].proto.help
    d = json.loads(export.analysis_json(a, {k: c.merge(k) for k in ("literal", "corrected")}))
    assert len(d["views"]) == 2 and len(d["raw_boxes"]) == len(a.table)
