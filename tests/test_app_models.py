"""The sidebar's model choice in AppTest: the ImageNet and Faces nets on every page, the pages
that need what a model lacks saying so in one line, sample photos, the class picker starting at
each image's top class, and the suggestion to use the ImageNet model for a photo."""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from apptest_helpers import APP, PAGES, TIMEOUT, ctx, figures, ok, page
from overfeat.app import share
from overfeat.app import state as appstate
from overfeat.boxes import box_iou

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
            assert not figures(at), p  # the page stopped after its one line
        elif p in ("training", "experiments"):
            assert "pictogram" in info(at), p
        else:
            assert figures(at) or at.table, p
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


def test_upload_suggests_the_imagenet_model():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    ok(at.run())
    data = (appstate.PHOTO_DIR / "coffee.jpg").read_bytes()
    ok(at.sidebar.file_uploader(key="img").set_value(("cup.jpg", data, "image/jpeg")).run())
    assert "ImageNet model knows 1000" in info(at)
    ok(at.button(key="use_imagenet").click().run())
    assert ctx(at).model.name == "imagenet"
    assert ctx(at).analysis().class_names[ctx(at).analysis().top(1)[0][0]] == "espresso"
    assert "ImageNet model knows 1000" not in info(at)


def test_link_carries_model_and_photo():
    q = share.encode({"img_source": "photo", "photo": 2, "model_source": "faces"}, "merge")
    assert q["model"] == "faces" and q["p"] == "2" and q["img"] == "photo"
    state, pg, notes = share.decode(q, len(appstate.GALLERY))
    assert state["model_source"] == "faces" and state["photo"] == 2 and pg == "merge"
    state, _, notes = share.decode({"model": "alexnet", "p": "9"}, len(appstate.GALLERY))
    assert "model_source" not in state and "photo" not in state and len(notes) == 2
