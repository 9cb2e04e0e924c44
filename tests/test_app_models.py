"""The sidebar's model choice in AppTest: the ImageNet, Faces and Objects nets on every page, the
pages that need boxes saying so in one line with a button to a model that has them, sample
photos, the class picker starting at each image's top class, the suggestion of the Objects
(then ImageNet) model for a photo, and the Objects model's answer, link and pages."""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from apptest_helpers import (APP, CHEAP, PAGES, TIMEOUT, ctx, figures, ok, open_link, page,
                             pictures, tables)
from overfeat import detection
from overfeat.app import share
from overfeat.app import state as appstate
from overfeat.boxes import box_iou
from overfeat.models import registry as zoo
from overfeat.multiscale import Settings, analyze

BOX_PAGES = ("regressor", "merge", "detection", "compare")
PHOTO = {name: i for i, (name, _) in enumerate(appstate.PHOTOS)}
ASTRONAUT_FACE = (180.0, 62.0, 268.0, 170.0)


def start_with(model: str, photo: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    ok(at.run())
    at.sidebar.radio(key="img_source").set_value("photo").run()
    at.sidebar.selectbox(key="photo").set_value(PHOTO[photo]).run()
    at.sidebar.radio(key="model_source").set_value(model)
    return ok(at.run())


def info(at: AppTest) -> str:
    return "\n".join(i.value for i in at.info)


def test_photo_list_matches_the_link_validation():
    assert share.N_PHOTOS == len(appstate.PHOTOS)
    for name, _ in appstate.PHOTOS:
        assert (appstate.PHOTO_DIR / name).stat().st_size < 120_000  # the repo stays lean


def test_imagenet_model_on_every_page():
    at = start_with("imagenet", "cat.jpg")
    c = ctx(at)
    assert c.model.name == "imagenet" and c.image_key == f"photo:{PHOTO['cat.jpg']}"
    top = c.analysis().top(1)[0][0]
    assert c.model.names[top] in {"Egyptian cat", "tiger cat", "tabby"}
    for p in PAGES:
        ok(page(at, p))
        if p in BOX_PAGES:
            assert "no box regressor" in info(at) and "Faces" in info(at), p
            assert at.button(key="use_box_model").label == "Use Objects"
            assert not figures(at) and not pictures(at), p  # the page stopped after its one line
        elif p == "overview":  # intro and pipeline name nothing it lacks (the page guide
            # names the box pages, "needs a model with boxes")
            # the intro, then the pipeline picture's text (drawn for every model since the
            # picture follows the model's capabilities)
            text = " ".join(m.value for m in at.markdown[:1]) + " ".join(
                n["text"] for f in figures(at).values()
                for n in f["layout"].get("annotations", [])).replace("<br>", " ")
            for word in ("Regressor", "raw boxes", "Greedy merge", "greedy merge"):
                assert word not in text, word
            # Its offset trick runs on a stride-2 convolution (k = 2), not on a max pool.
            assert "no box regressor" in text and "Offsets on a strided convolution" in text
            assert "max pool" not in text
            assert at.button(key="use_box_model_overview").label == "Use Objects"
        elif p in ("training", "experiments"):
            assert "pictogram" in info(at), p
        else:
            assert figures(at) or tables(at), p
    ok(page(at, "scales"))
    sb = at.selectbox(key="cls")
    assert sb.value == top  # starts at the image's top class
    assert "type to search" in sb.label and len(sb.options) == 1000
    ok(page(at, "offsets"))
    assert "k = 2" in info(at) and "subsampling layer (2x2, stride 2)" in at.markdown[0].value


def test_class_picker_follows_a_new_image():
    at = start_with("imagenet", "cat.jpg")
    ok(page(at, "scales"))
    other = appstate.class_ranking(ctx(at).analysis())[3][0]  # the 4th best class
    at.selectbox(key="cls").set_value(other).run()
    assert ctx(at).image_key.startswith("photo")
    ok(at.run())
    assert at.selectbox(key="cls").value == other  # kept for the same image
    at.sidebar.selectbox(key="photo").set_value(PHOTO["coffee.jpg"]).run()
    ok(at)
    a = ctx(at).analysis()
    assert at.selectbox(key="cls").value == a.top(1)[0][0]  # the new image's own top class
    assert a.class_names[a.top(1)[0][0]] == "espresso"


def test_faces_model_merges_real_boxes():
    at = start_with("faces", "astronaut.jpg")
    c = ctx(at)
    assert c.model.name == "faces"
    assert c.knobs.min_score == pytest.approx(0.6) and c.knobs.top_k == 1  # its own knobs
    for p in PAGES:
        ok(page(at, p))
    ok(page(at, "merge"))
    r = ctx(at).merge("corrected")
    assert r.n_steps > 100
    iou = float(box_iou(r.final.boxes[:1], torch.tensor([ASTRONAUT_FACE]))[0, 0])
    assert iou >= 0.5


SUGGESTION = "A photo of things?"
PICTOGRAMS_ONLY = "this model knows only pictograms"  # app.py's header note beside it


def suggested(at: AppTest) -> list[str]:
    """The keys of the suggestion's buttons on the page ([] when there is no suggestion)."""
    keys = [b.key for b in at.button if (b.key or "").startswith("use_")
            and not b.key.startswith("use_box_model")]
    assert bool(keys) == (SUGGESTION in info(at)), (keys, info(at))
    return keys


def test_upload_suggests_the_objects_then_the_imagenet_model():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    ok(at.run())
    assert suggested(at) == []  # a sample scene: no suggestion
    data = (appstate.PHOTO_DIR / "coffee.jpg").read_bytes()
    ok(at.sidebar.file_uploader(key="img").set_value(("cup.jpg", data, "image/jpeg")).run())
    assert suggested(at) == ["use_objects", "use_imagenet"]  # Objects first
    assert zoo.CARDS["objects"].label in info(at) and "1000" in info(at)
    ok(at.button(key="use_imagenet").click().run())
    assert ctx(at).model.name == "imagenet"
    assert ctx(at).analysis().class_names[ctx(at).analysis().top(1)[0][0]] == "espresso"
    assert suggested(at) == []


def test_no_suggestion_after_a_rejected_file():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    ok(at.run())
    up = at.sidebar.file_uploader(key="img")
    at = up.set_value(("notes.jpg", b"my lecture notes, not a picture" * 20, "image/jpeg")).run()
    assert not at.exception and len(at.error) == 1 and "notes.jpg" in at.error[0].value
    assert suggested(at) == []
    # A good photo brings it; a rejected file after it takes it away (on that run and the next).
    data = (appstate.PHOTO_DIR / "dog.jpg").read_bytes()
    ok(at.sidebar.file_uploader(key="img").set_value(("dog.jpg", data, "image/jpeg")).run())
    assert suggested(at) == ["use_objects", "use_imagenet"]
    at = at.sidebar.file_uploader(key="img").set_value(
        ("half.jpg", data[: len(data) // 3], "image/jpeg")).run()
    assert len(at.error) == 1 and "half.jpg" in at.error[0].value
    assert suggested(at) == []
    at.run()
    assert suggested(at) == []


def test_a_sample_photo_suggests_the_objects_model():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in {"img": "photo", "p": str(PHOTO["giraffe.jpg"]), **CHEAP}.items():
        at.query_params[k] = v
    ok(at.run())
    assert suggested(at) == ["use_objects", "use_imagenet"]
    ok(at.button(key="use_objects").click().run())
    c = ctx(at)
    assert c.model_key == "zoo:objects" and suggested(at) == []
    assert at.query_params["model"] == "objects"
    assert (c.knobs.min_score, c.knobs.top_k, c.knobs.by_class) == (0.4, 5, False)


def header(at: AppTest) -> str:
    """The header line above every page: the model and the image."""
    return at.caption[0].value


def test_keep_pictograms_puts_the_suggestion_away_for_that_image():
    at = open_link({"img": "photo", "p": str(PHOTO["cat.jpg"]), **CHEAP})
    ok(at)
    assert suggested(at) == ["use_objects", "use_imagenet"]
    assert PICTOGRAMS_ONLY in header(at)
    ok(at.button(key="suggest_keep").click().run())
    assert ctx(at).model_key.startswith("default")  # the model stays
    assert suggested(at) == [] and PICTOGRAMS_ONLY not in header(at)
    for p in ("merge", "scales"):  # on every page
        ok(page(at, p))
        assert suggested(at) == [] and "suggest_keep" not in [b.key for b in at.button], p
    at.sidebar.selectbox(key="photo").set_value(PHOTO["dog.jpg"]).run()  # another photo
    assert suggested(at) == ["use_objects", "use_imagenet"]
    at.sidebar.selectbox(key="photo").set_value(PHOTO["cat.jpg"]).run()  # the kept one
    assert suggested(at) == []


def test_presenter_mode_suggests_on_the_overview_only_in_one_short_line():
    """Presenter mode (and a phone): the suggestion is one short line on the Overview, the
    other pages end their header with PICTOGRAMS_ONLY, so each page's figure stays on the
    first screen (tests/test_browser_lesson.py measures it); a desktop has the whole notice
    on every page."""
    at = open_link({"img": "photo", "p": str(PHOTO["cat.jpg"]), "present": "1", **CHEAP})
    ok(at)
    assert at.sidebar.toggle(key="presenter").value
    assert suggested(at) == ["use_objects", "use_imagenet"]
    # One line, without what each model knows (that is in each button's tooltip).
    line = [i.value for i in at.info if i.value.startswith(SUGGESTION)]
    assert len(line) == 1 and "\n" not in line[0] and len(line[0]) < 80, line
    assert zoo.CARDS["objects"].label not in line[0]
    assert zoo.CARDS["objects"].knows in at.button(key="use_objects").help  # its tooltip
    for p in ("scales", "merge"):
        ok(page(at, p))
        assert suggested(at) == [] and PICTOGRAMS_ONLY in header(at), p
    ok(at.sidebar.toggle(key="presenter").set_value(False).run())
    assert suggested(at) == ["use_objects", "use_imagenet"]  # a desktop: on every page, whole
    assert zoo.CARDS["objects"].label in info(at)


def test_link_carries_model_and_photo():
    assert set(share.MODELS[1:]) == set(zoo.MODEL_NAMES) - {"pictogram"}
    q = share.encode({"img_source": "photo", "photo": 2, "model_source": "faces"}, "merge")
    assert q["model"] == "faces" and q["p"] == "2" and q["img"] == "photo"
    state, pg, notes = share.decode(q, len(appstate.GALLERY))
    assert state["model_source"] == "faces" and state["photo"] == 2 and pg == "merge"
    state, _, notes = share.decode({"model": "alexnet", "p": "9"}, len(appstate.GALLERY))
    assert "model_source" not in state and "photo" not in state and len(notes) == 2


# --- the Objects model (NanoDet-g, COCO) --------------------------------------------------------
def answer_of_the_package(photo: str):
    """What `predict PHOTO --model objects` prints, from the package: analyze at the model's
    own knobs (MODEL_KNOBS), the corrected greedy merge, detection.answer_boxes by its card."""
    knobs = appstate.MODEL_KNOBS["objects"]
    model = zoo.load("objects")
    a = analyze(model, appstate.load_photo(PHOTO[photo]),
                Settings(top_k=knobs["top_k"], min_score=knobs["min_score"]))
    final = a.merge(by_class=knobs["by_class"]).final
    return detection.answer_boxes(final, zoo.CARDS["objects"].min_box_score).records(
        a.class_names)


@pytest.fixture(scope="module")
def objects_at() -> AppTest:
    """The Objects model chosen in the sidebar on the horses photo (Overview)."""
    return start_with("objects", "horses.jpg")


def test_objects_model_answers_with_the_packages_boxes(objects_at):
    at = ok(page(objects_at, "overview"))
    c = ctx(at)
    assert c.model_key == "zoo:objects" and c.image_key == f"photo:{PHOTO['horses.jpg']}"
    want = answer_of_the_package("horses.jpg")
    assert len(want) >= 3 and {d.name for d in want} == {"horse"}
    rows = tables(at)[0].to_dict("records")
    assert [(r["class"], r["score"], r["box"]) for r in rows] == [
        (d.name, round(d.score, 3), "(" + ", ".join(f"{v:.0f}" for v in d.box) + ")")
        for d in want]
    assert [r["confidence"] for r in rows] == [round(d.confidence, 2) for d in want]
    fig = figures(at)["overview_boxes"]
    drawn = [t for t in fig["data"] if t.get("name") == "horse"]
    assert len(drawn) == len(want)
    assert fig["layout"]["title"]["text"] == f"{len(want)} final boxes, score >= 0.35"
    caps = " ".join(x.value for x in at.caption)
    assert f"mean over the {c.analysis().n_views} views of the best window probability" in caps
    assert "the paper's sum of window probabilities" in caps
    assert "averaged over 12 views (6 scales x 2 flips)" in caps and "36 maps" in caps
    # The sidebar says what it set for this model, and why.
    assert any(x.value.startswith(f"Set for {zoo.CARDS['objects'].label}: min score of a "
                                  "window 0.4, top-k 5, merging across classes (")
               for x in at.sidebar.caption)
    # The Overview never mentions what this model lacks (offset pooling, a window size).
    text = " ".join(m.value for m in at.markdown) + " ".join(
        n["text"] for f in figures(at).values() for n in f["layout"].get("annotations", []))
    assert "Offset max pool" not in text and "40x40" not in text
    assert "feature pyramid" in text and "strides 8, 16, 32 px" in text


def test_objects_model_link_reopens_it(objects_at):
    q = {k: (v[-1] if isinstance(v, list) else v) for k, v in objects_at.query_params.items()}
    assert q["model"] == "objects" and q["img"] == "photo" and q["p"] == str(PHOTO["horses.jpg"])
    assert q["bscore"] == "0.35"
    at = ok(open_link(q))
    c = ctx(at)
    assert c.model_key == "zoo:objects" and c.image_key == f"photo:{PHOTO['horses.jpg']}"
    assert (c.knobs.min_score, c.knobs.top_k, c.knobs.by_class) == (0.4, 5, False)
    assert at.sidebar.radio(key="model_source").value == "objects"


def test_objects_model_detection_page_scores_and_marks_the_photo(objects_at):
    at = ok(page(objects_at, "detection"))
    sl = at.select_slider(key="min_box_score")
    assert sl.value == 0.35 and "score" in sl.label
    want = answer_of_the_package("horses.jpg")
    rows = tables(at)[0].to_dict("records")
    assert [r["score"] for r in rows] == [round(d.score, 3) for d in want]
    assert [r["mark"] for r in rows] == ["TP"] * len(want)  # hand-drawn boxes: all right
    assert any("objects found" in x.value and "hand-drawn" in x.value for x in at.caption)
    at = ok(at.select_slider(key="min_box_score").set_value(0.5).run())
    rows = tables(at)[0].to_dict("records")
    assert [r["score"] for r in rows] == [round(d.score, 3) for d in want if d.score >= 0.5]
    assert at.query_params["bscore"] == "0.5"
    # Greedy vs NMS counts by the same score, with no empty plot.
    at = ok(page(at, "compare"))
    assert at.select_slider(key="min_box_score").value == 0.5
    got = {r["method"]: r for r in tables(at)[0].to_dict("records")}
    assert got["greedy corrected"]["counted"] == len([d for d in want if d.score >= 0.5])
    assert any("counts when its **score** is at least 0.5" in x.value for x in at.caption)
    for key, fig in figures(at).items():
        assert [t for t in fig["data"] if t.get("type") == "scatter"], key
    at.select_slider(key="min_box_score").set_value(0.35).run()


def test_a_box_page_switches_to_the_objects_model_in_one_click():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in {"page": "merge", "img": "photo", "p": str(PHOTO["giraffe.jpg"]),
                 "model": "imagenet", **CHEAP}.items():
        at.query_params[k] = v
    ok(at.run())
    assert "no box regressor" in info(at) and not figures(at) and not pictures(at)
    ok(at.button(key="use_box_model").click().run())
    c = ctx(at)
    assert c.model_key == "zoo:objects" and at.query_params["model"] == "objects"
    # the Merge page itself (its step and final boxes are pictures, issue 27)
    assert pictures(at) and "no box regressor" not in info(at)
    assert c.knobs.min_score == 0.4 and c.knobs.by_class is False
    # Back to the pictogram checkpoint: the knobs the Objects model set go back too.
    at.sidebar.radio(key="model_source").set_value("default")
    c = ctx(ok(at.run()))
    d = share.defaults()
    assert (c.knobs.min_score, c.knobs.top_k, c.knobs.by_class) == (
        d["min_score"], d["top_k"], d["by_class"])


def test_a_tiny_upload_is_refused_and_the_last_image_kept():
    """Issue 28: a 5x5 upload was accepted and blown up about 50 times (the Merge page then
    said 0 raw boxes but 5 classes in the merge). Now: one line naming the file and the rule,
    the last good image kept, no suggestion."""
    import io

    from PIL import Image

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    ok(at.run())
    data = (appstate.PHOTO_DIR / "dog.jpg").read_bytes()
    ok(at.sidebar.file_uploader(key="img").set_value(("dog.jpg", data, "image/jpeg")).run())
    good = ctx(at).image_key
    buf = io.BytesIO()
    Image.new("RGB", (5, 5), (0, 128, 0)).save(buf, "PNG")
    at = at.sidebar.file_uploader(key="img").set_value(("tiny.png", buf.getvalue(), "image/png")).run()
    assert not at.exception and len(at.error) == 1
    msg = at.error[0].value
    assert msg.startswith("tiny.png: image too small (5x5)") and "16 px" in msg and "\n" not in msg
    assert ctx(at).image_key == good  # the last good image stays
    assert suggested(at) == []
