"""The objects model (NanoDet-g) run the OverFeat way: pyramid views, provenance, the
probability-like score, the answer, the CLI and the check against hand-drawn boxes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from overfeat import photos
from overfeat.boxes import Detections
from overfeat.compare import match_truth
from overfeat.detection import answer_boxes
from overfeat.images import load_image, to_tensor
from overfeat.models import registry
from overfeat.models.nanodet import decode
from overfeat.multiscale import (BoxTable, Settings, _resize, analyze, derive, scale_sizes,
                                 view_score, view_votes)

ROOT = Path(__file__).resolve().parent.parent
PHOTO_DIR = ROOT / "assets" / "photos"


@pytest.fixture(scope="module")
def model():
    return registry.load("objects")


@pytest.fixture(scope="module")
def dog(model):
    """dog.jpg at scales 1 and 3 with flips (all maps kept)."""
    return analyze(model, load_image(PHOTO_DIR / "dog.jpg"),
                   Settings(scales=(0, 2), flips=True, top_k=3, min_score=0.3))


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def test_scale_sizes_are_multiples_of_32_and_keep_the_aspect(model):
    for hw in ((480, 640), (424, 640), (336, 336), (1000, 300)):
        sizes = scale_sizes(hw, model)
        assert len(sizes) == 6
        shorts = [min(s) for s in sizes]
        assert shorts == sorted(shorts) and len(set(shorts)) == 6
        for h, w in sizes:
            assert h % 32 == 0 and w % 32 == 0
            assert abs((w / h) - hw[1] / hw[0]) <= 32 / min(h, w) * (hw[1] / hw[0]) + 1e-9


def test_three_maps_per_view_with_their_strides(dog, model):
    assert dog.n_views == 4 and len(dog.views) == 12
    for v in dog.views:
        h, w = v.size
        assert v.stride == model.strides[v.level]
        assert tuple(v.fine.shape) == (80, h // v.stride, w // v.stride)
        # nominal windows: 5 x stride squares (in original pixels: divided by the resize factor)
        win = v.windows.reshape(-1, 4)
        assert torch.allclose(win[:, 2] - win[:, 0], torch.full((len(win),), 5 * v.stride / v.factor[1]))


def test_vote_is_the_max_over_levels_then_the_mean_over_views(dog):
    naive = {}
    for v in dog.views:
        key = (v.scale, v.flip)
        m = v.fine.flatten(1).max(dim=1).values
        naive[key] = m if key not in naive else torch.maximum(naive[key], m)
    expect = torch.stack(list(naive.values())).mean(0)
    assert torch.allclose(dog.scores, expect)
    assert torch.allclose(view_votes(dog.views).mean(0), expect)


def test_raw_boxes_carry_their_provenance(dog, model):
    """Each raw box is the decoded distances of its (scale, flip, level, cell), recomputed here
    from a plain forward pass of that resized, flipped image."""
    t = dog.table
    assert len(t) > 0 and set(t.offset.tolist()) == {-1}
    img = to_tensor(load_image(PHOTO_DIR / "dog.jpg"))
    H, W = img.shape[-2:]
    checked = 0
    for i in torch.linspace(0, len(t) - 1, 12).long().tolist():
        s, f, lev = int(t.scale[i]), bool(t.flip[i]), int(t.level[i])
        h, w = dog.sizes[s]
        x = _resize(img, (h, w))
        x = x.flip(-1) if f else x
        with torch.no_grad():
            probs, dist = model.dense(model.normalize(x[None]))[lev]
        r, c = int(t.row[i]), int(t.col[i])
        box = decode(dist[0], model.strides[lev])[r, c]
        x1, y1, x2, y2 = box.tolist()
        if f:
            x1, x2 = w - x2, w - x1
        expect = [x1 * W / w, y1 * H / h, x2 * W / w, y2 * H / h]
        assert torch.allclose(t.boxes[i], torch.tensor(expect), atol=1e-3)
        assert abs(float(probs[0, int(t.labels[i]), r, c]) - float(t.scores[i])) < 1e-6
        checked += 1
    assert checked == 12


def test_derive_equals_a_fresh_analysis(model, dog):
    sub = Settings(scales=(2,), flips=False, top_k=2, min_score=0.4)
    fresh = analyze(model, load_image(PHOTO_DIR / "dog.jpg"), sub)
    cut = derive(dog, sub)
    assert torch.allclose(fresh.scores, cut.scores)
    assert torch.equal(fresh.table.labels, cut.table.labels)
    assert torch.allclose(fresh.table.boxes, cut.table.boxes)


def test_view_score_equals_a_naive_loop():
    g = torch.Generator().manual_seed(3)
    n = 60
    t = BoxTable(boxes=torch.rand(n, 4, generator=g), scores=torch.rand(n, generator=g),
                 labels=torch.zeros(n, dtype=torch.long),
                 scale=torch.randint(0, 3, (n,), generator=g),
                 flip=torch.randint(0, 2, (n,), generator=g).bool(),
                 offset=torch.full((n,), -1), row=torch.zeros(n, dtype=torch.long),
                 col=torch.zeros(n, dtype=torch.long), windows=torch.rand(n, 4, generator=g),
                 level=torch.randint(0, 3, (n,), generator=g))
    members = [torch.randperm(n, generator=g)[:k].tolist() for k in (1, 5, 20, 60)]
    got = view_score(t, members, 6)
    for i, m in enumerate(members):
        total = 0.0
        for s in range(3):
            for f in (False, True):
                vals = [float(t.scores[j]) for j in m if int(t.scale[j]) == s and bool(t.flip[j]) == f]
                total += max(vals) if vals else 0.0
        assert abs(float(got[i]) - total / 6) < 1e-9
        assert 0.0 <= float(got[i]) <= 1.0


def test_scored_orders_by_score_and_filters():
    d = Detections(torch.rand(4, 4).sort(dim=1).values, [9.0, 5.0, 7.0, 1.0], [0, 1, 2, 3],
                   score=[0.2, 0.9, 0.5, 0.5])
    s = d.scored(0.5)
    assert s.labels.tolist() == [1, 2, 3]  # highest first, ties in their order
    assert answer_boxes(d, None, 6.0).labels.tolist() == [0, 2]  # by summed confidence
    with pytest.raises(ValueError):
        Detections(torch.zeros(1, 4), [1.0], [0]).scored(0.1)


def test_difficult_truth_is_neither_found_nor_missed():
    dets = Detections(torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60]]), [2.0, 1.0], [0, 0])
    truth = [{"name": "a", "box": (0, 0, 10, 10)},
             {"name": "a", "box": (50, 50, 60, 60), "difficult": True},
             {"name": "a", "box": (80, 80, 90, 90), "difficult": True}]
    m = match_truth(dets, truth, ("a",))
    assert m.status == ["TP", "ignored"] and m.missed == [] and m.fp == 0


def test_every_answer_box_is_scored_inside_the_photo(model):
    image = load_image(PHOTO_DIR / "person.jpg")
    dets, names = photos.app_answer(model, image)
    assert len(dets) >= 1 and dets.score is not None
    assert all(0.35 <= s <= 1.0 for s in dets.score.tolist())
    assert dets.score.tolist() == sorted(dets.score.tolist(), reverse=True)
    w, h = image.size
    assert float(dets.boxes[:, 0::2].min()) >= 0 and float(dets.boxes[:, 2].max()) <= w
    assert float(dets.boxes[:, 1::2].min()) >= 0 and float(dets.boxes[:, 3].max()) <= h
    # the hand-drawn person, dog and horse are each found with the right class
    truth = photos.load_truth()["person.jpg"]["objects"]
    got = dets.records(names)
    for obj in truth:
        assert any(d.name == obj["class"] and iou(d.box, obj["box"]) >= 0.5 for d in got), obj


def test_quality_on_the_photos_with_hand_drawn_boxes(model):
    """docs/OBJECTS.md's table: at most one wrong box per photo; at least 3 in 4 of the
    required objects found (the issue asks for all: not met, see the doc)."""
    res = photos.evaluate_photos(model, photos.app_answer)
    assert len(res) >= 5
    for r in res:
        assert len(r.wrong) <= 1, (r.photo, r.wrong)
        assert r.found + len(r.missed) == r.objects
    assert sum(r.found for r in res) >= 0.75 * sum(r.objects for r in res)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "overfeat", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_predict_json_holds_the_app_answer(model, tmp_path):
    out = tmp_path / "dog.png"
    p = run_cli("predict", str(PHOTO_DIR / "dog.jpg"), "--model", "objects", "--json",
                "--out", str(out))
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)["detections"]
    dets, names = photos.app_answer(model, load_image(PHOTO_DIR / "dog.jpg"))
    want = dets.records(names)
    assert [d["class"] for d in got] == [d.name for d in want]
    for g, w in zip(got, want):
        assert 0.0 <= g["score"] <= 1.0 and abs(g["score"] - w.score) < 1e-3
        assert g["confidence"] > g["score"]  # a sum over many windows
        assert all(abs(a - b) < 0.1 for a, b in zip(g["box"], w.box))
    assert out.exists() and out.stat().st_size > 1000
    table = run_cli("predict", str(PHOTO_DIR / "dog.jpg"), "--model", "objects")
    assert table.returncode == 0 and "score" in table.stdout and "views" in table.stdout


def test_predict_objects_refuses_a_file_that_is_not_an_image(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    p = run_cli("predict", str(bad), "--model", "objects")
    assert p.returncode != 0
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in p.stderr


def test_photo_eval_rejects_a_malformed_boxes_file(tmp_path):
    bad = tmp_path / "boxes.json"
    bad.write_text(json.dumps({"dog.jpg": {"objects": [{"class": "dog", "box": [5, 5, 1, 1]}]}}))
    with pytest.raises(ValueError, match="malformed object"):
        photos.load_truth(bad)
    p = run_cli("photo-eval", "--boxes", str(bad))
    assert p.returncode != 0 and p.stderr.strip().startswith("error:")
