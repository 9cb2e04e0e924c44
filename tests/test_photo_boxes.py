"""Sanity checks for the hand-drawn ground-truth boxes in assets/photos/boxes.json."""
import json
from pathlib import Path

import pytest
from PIL import Image, ImageOps

PHOTOS = Path(__file__).resolve().parent.parent / "assets" / "photos"

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "stop sign", "parking meter", "bench",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
    "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup",
    "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)


def _boxes():
    return json.loads((PHOTOS / "boxes.json").read_text())


def test_coco_list_has_80_distinct_names():
    assert len(COCO_CLASSES) == 80 == len(set(COCO_CLASSES))


def test_covers_the_coco_photos():
    assert {"dog.jpg", "person.jpg"} <= set(_boxes())


@pytest.mark.parametrize("name", sorted(_boxes()))
def test_entry(name):
    entry = _boxes()[name]
    path = PHOTOS / name
    assert path.is_file(), f"{name} is missing"
    with Image.open(path) as im:
        w, h = ImageOps.exif_transpose(im).size
    assert (entry["width"], entry["height"]) == (w, h)
    assert isinstance(entry.get("note"), str) and entry["note"]
    assert entry["objects"], f"{name} has no objects"
    for obj in entry["objects"]:
        assert obj["class"] in COCO_CLASSES, obj
        x1, y1, x2, y2 = obj["box"]
        assert all(isinstance(v, (int, float)) for v in (x1, y1, x2, y2)), obj
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, obj
