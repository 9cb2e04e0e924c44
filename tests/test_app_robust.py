"""Issue 25: the app never breaks in class.

The teacher's sequence (Scales page, ImageNet model, three photos uploaded in a row) broke
every page: the class picker's display text, "ox (0.103)", reached the session key `cls`,
which holds a class index, and the link writer raised on it on every run. Why: Streamlit keeps
a selectbox's value as its *label*; when a run is interrupted (a new upload arrives before the
browser has the previous run's answer), the browser sends back a label from a run the server
no longer knows, and a label missing from the current options comes back as plain text. The
labels held the class score, which changes with every image, so any interrupted run did it.

These tests replay that with AppTest: `stale_label` makes the next run send a label from an
earlier run, as the browser does after an interrupted run. They also check the two layers
below the fix: the state table cleans every value before anything reads it, and an exception
inside a page stays on that page.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from apptest_helpers import APP, TIMEOUT, ctx, ok, page, tables
from overfeat.app import share
from random_walk import find, send_labels

PHOTOS = Path(__file__).resolve().parent.parent / "assets" / "photos"


def stale_label(at: AppTest, key: str, labels) -> None:
    """The next run sends `labels` (a str, or a list for pills and multiselects) as the
    widget's value, whatever the options of the last run were: what the browser sends when
    the run that would have updated the widget was interrupted."""
    send_labels(at, find(at, key), labels)


def upload(at: AppTest, name: str) -> AppTest:
    data = (PHOTOS / name).read_bytes()
    return at.file_uploader(key="img").set_value((name, data, "image/jpeg")).run()


def cls_label(at: AppTest) -> str:
    sb = at.selectbox(key="cls")
    return sb.options[sb.index]


@pytest.fixture(scope="module")
def scales_imagenet() -> AppTest:
    """The Scales page with the ImageNet model and two scales (quick)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in {"page": "scales", "model": "imagenet", "scales": "0,1", "flips": "0"}.items():
        at.query_params[k] = v
    return ok(at.run())


def test_three_uploads_in_a_row_with_an_interrupted_run(scales_imagenet):
    """The issue's sequence: three photos in a row on the Scales page, the third upload
    arriving while the browser still holds the first photo's class label."""
    at = scales_imagenet
    ok(upload(at, "dog.jpg"))
    first = cls_label(at)
    ok(upload(at, "person.jpg"))
    stale_label(at, "cls", first)  # the browser never saw the second photo's answer
    ok(upload(at, "coffee.jpg"))
    c = ctx(at)
    assert c.image_label == "upload coffee.jpg"
    assert isinstance(at.session_state["cls"], int)
    top = c.analysis().top(1)[0][0]
    assert at.selectbox(key="cls").value == top  # the new photo's own top class
    assert at.query_params["cls"] == str(top)
    # Every page still works afterwards, and so does the next upload.
    for p in ("overview", "offsets", "scales"):
        ok(page(at, p))
    ok(upload(at, "cat.jpg"))
    assert ctx(at).image_label == "upload cat.jpg"


def test_class_labels_are_fixed_for_a_model(scales_imagenet):
    """The cause, not only the symptom: a class's label is the same for every image."""
    at = scales_imagenet
    ok(upload(at, "dog.jpg"))
    sb = at.selectbox(key="cls")
    before = {o: sb.format_func(o) for o in range(1000)}
    ok(upload(at, "cat.jpg"))
    sb = at.selectbox(key="cls")
    assert {o: sb.format_func(o) for o in range(1000)} == before
    assert len(set(before.values())) == 1000  # unique: ImageNet's two cranes are told apart


def test_stale_scale_pills_keep_the_choice():
    """The sidebar's scale pills: a label sent by an interrupted run is still a scale, and a
    label no run ever had is dropped, never reaching the analysis as text."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["scales"] = "0,1"
    ok(at.run())
    stale_label(at, "scales", ["1", "3"])  # labels are the scale numbers, for every image
    ok(at.run())
    assert at.session_state["scales"] == [0, 2]
    assert ctx(at).knobs.scales == (0, 2)
    stale_label(at, "scales", ["1: 221x257"])  # an old-style label: not an option any more
    ok(at.run())
    assert all(isinstance(s, int) for s in ctx(at).knobs.scales)


def test_a_bad_session_value_goes_back_to_its_default():
    """Whatever writes the state (a widget, a callback, a bug), a value the table does not
    accept never reaches a page or the link. (Set on the Overview, where none of these keys
    has a widget: AppTest itself cannot send a selectbox a value that is not an option.)"""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in {"scales": "0,1", "flips": "0"}.items():
        at.query_params[k] = v
    ok(at.run())
    at.session_state["cls"] = "ox (0.103)"
    at.session_state["merge_step"] = "zz"
    at.session_state["det_min_conf"] = float("nan")
    at.session_state["reg_classes"] = [3, "dog"]
    ok(at.run())
    assert "cls" not in at.session_state  # the page computes its default: the top class
    assert at.session_state["merge_step"] == 0
    assert at.session_state["det_min_conf"] == share.BY_KEY["det_min_conf"].default
    assert "reg_classes" not in at.session_state
    assert "cls" not in at.query_params and at.query_params["step"] == "0"
    ok(page(at, "scales"))
    assert at.query_params["cls"] == str(at.session_state["cls"])
    assert at.session_state["cls"] == ctx(at).analysis().top(1)[0][0]


def test_a_page_that_raises_stays_on_its_page(monkeypatch):
    """An exception inside a page's figure is one line on that page; the next page, the
    sidebar and a new image keep working."""
    from overfeat.app import figures

    def broken(*a, **kw):
        raise RuntimeError("figure exploded\nsecond line")

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in {"page": "scales", "scales": "0,1", "flips": "0"}.items():
        at.query_params[k] = v
    monkeypatch.setattr(figures, "scale_maps_figure", broken)
    at.run()
    assert not at.exception
    (err,) = at.error
    assert err.value.startswith("Sorry, something went wrong here: the Scales page failed")
    assert "RuntimeError: figure exploded second line" in err.value and "\n" not in err.value
    ok(page(at, "offsets"))  # another page works
    at.sidebar.radio(key="img_source").set_value("photo").run()
    ok(page(at, "overview"))
    assert ctx(at).image_key.startswith("photo:")


# --- failures the random walk found (tests/random_walk.py), each replayed ----------------------
def test_walk_faces_model_on_a_generated_scene_ranks_nothing():
    """Seed 101, step 35: Faces on a sample scene, Greedy vs NMS page: the scene's pictogram
    truth ('dog') was matched against the model's classes ('face') and the page raised."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in {"page": "compare", "img": "gallery", "g": "3", "scales": "0,1",
                 "flips": "0"}.items():
        at.query_params[k] = v
    ok(at.run())
    at.sidebar.radio(key="model_source").set_value("faces")
    ok(at.run())
    assert ctx(at).truth is None
    assert any("no ground truth to compare with" in i.value for i in at.info)
    ok(page(at, "detection"))
    ok(page(at, "compare"))


def test_walk_regressor_offsets_off_keeps_its_link():
    """Seed 104: with offsets off the Regressor's offset filter holds -1 ('none'), which the
    link table refused (the value was left out of the link and logged)."""
    p = share.BY_KEY["reg_offsets"]
    assert share.check(p, [-1]) == [-1]
    q = share.encode({"reg_offsets": [-1]})
    assert share.decode(q, 6)[0]["reg_offsets"] == [-1]


def test_walk_use_imagenet_on_a_box_page_writes_the_model_into_the_link():
    """Seed 1, step 26: "Use ImageNet" on the Regressor page: the page stops (no regressor)
    and the link written after the page was lost, so the URL kept the pictogram model."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in {"page": "regressor", "scales": "0,1", "flips": "0"}.items():
        at.query_params[k] = v
    ok(at.run())
    ok(upload(at, "dog.jpg"))
    at.button(key="use_imagenet").click()
    ok(at.run())
    assert ctx(at).model_key == "zoo:imagenet"
    assert at.query_params["model"] == "imagenet" and at.query_params["page"] == "regressor"


def test_walk_experiments_recompute_needs_the_pictogram_classes():
    """Browser walk, seed 21, step 32: Faces model, Experiments page, "Recompute with the
    current model": evaluate() raised AttributeError ('ZooConfig' object has no attribute
    'names'). The scenes' truths are pictogram classes: the button is off for a model that
    lacks them, and the package refuses in one line."""
    from overfeat import experiments
    from overfeat.models import registry as zoo

    with pytest.raises(ValueError, match="expected a model of the 20 pictogram classes, got "
                                         "one of face, background"):
        experiments.recompute(zoo.load("faces"), 2)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in {"page": "experiments", "model": "faces"}.items():
        at.query_params[k] = v
    ok(at.run())
    assert at.button(key="exp_run").proto.disabled
    assert any("does not know the pictogram classes" in c.value for c in at.caption)
    at.sidebar.radio(key="model_source").set_value("default")
    ok(at.run())
    assert not at.button(key="exp_run").proto.disabled


# --- the Objects model (NanoDet-g): paths a walk takes that no page test does ------------------
def test_objects_model_on_sample_scenes_marks_only_what_it_can_name():
    """A pictogram scene is truth for the Objects model only when COCO names all its objects:
    'dog' (sample scene 1) is marked right or wrong; 'pottedplant' (VOC's name, COCO says
    'potted plant', scene 2) gives the one-line note and no marks. Detection and Greedy vs NMS
    then count by the score, and a stale or garbage bscore never reaches them."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in {"page": "detection", "img": "gallery", "g": "0", "model": "objects",
                 "scales": "0,1", "flips": "0", "bscore": "0.33"}.items():
        at.query_params[k] = v
    ok(at.run())
    c = ctx(at)
    assert c.model_key == "zoo:objects" and [t["name"] for t in c.truth] == ["dog"]
    assert any("bscore='0.33' ignored" in i.value for i in at.info)  # a step it does not have
    assert at.select_slider(key="min_box_score").value == 0.35  # the card's default instead
    assert any("objects found" in x.value for x in at.caption)
    ok(page(at, "compare"))
    assert "rank" in tables(at)[0].columns
    at.sidebar.selectbox(key="gallery").set_value(1)
    ok(at.run())
    assert ctx(at).truth is None
    assert any("are not among" in i.value and "pottedplant" in i.value for i in at.info)
    assert "rank" not in tables(at)[0].columns
    # An interrupted run sends the score slider's label of another run: the state table keeps
    # it only if it is one of the steps.
    stale_label(at, "min_box_score", ["0.33"])
    ok(at.run())
    assert at.session_state["min_box_score"] in share.BOX_SCORE_STEPS
    ok(page(at, "detection"))


def test_walk_seed_3_follows_a_lesson_view_to_another_page():
    """AppTest walk, seed 3 (`--seeds 1-3 --steps 120`), steps 44-54: a view saved on the
    Overview, opened in presenter mode from the Experiments page (the sidebar's Lesson views).
    The app switched to the Overview and wrote its link; the walk still expected Experiments
    (it failed at step 51), and AppTest's next run asked for Experiments again (step 54: a
    browser asks for the page in its address bar). The walk now follows the app's own switch
    (random_walk.opened_page, follow)."""
    from random_walk import Session, follow, opened_page

    s = Session("A", {"present": "1", "scales": "0,1", "flips": "0"})
    ok(s.at.run())
    ok(s.at.button(key="link_save").click().run())  # a view of the Overview
    s.page = "experiments"
    ok(page(s.at, "experiments"))
    assert s.at.query_params["page"] == "experiments"
    el = s.at.sidebar.button(key="lesson_open_0")
    opens = opened_page(s, el)
    assert opens == "overview"
    ok(el.click().run())
    assert s.at.query_params["page"] == "overview"  # the app switched, and wrote its link
    follow(s, opens)
    ok(s.at.run())  # the walk's next action: a rerun
    assert s.page == "overview" and s.at.query_params["page"] == "overview"
    assert s.at.session_state["presenter"]
    assert opened_page(s, s.at.sidebar.button(key="lesson_drop_0")) is None  # not a view
