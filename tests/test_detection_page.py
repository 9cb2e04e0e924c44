"""Issue 28, Detection: the precision-recall curves and per-class AP of the current scene set
(the package functions against naive references on random inputs; the page's numbers against
`evaluate`'s own pipeline run on the same scenes), every true object's class on the image, a
"What to notice" box right after the main figure, and one line where there is no curve.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from apptest_helpers import (captions, ctx, figures, ok, open_knobs, page, start, tables,
                             traces)
from overfeat import evaluate, metrics
from overfeat.app import figures as figs
from overfeat.app import state as appstate
from overfeat.app.figures import MARK_NAMES


# --- naive references ------------------------------------------------------------------------
def naive_iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def naive_curve(dets, truths, cls, thr=0.5):
    """VOC matching written out with loops: (recall, precision, confidences, tp) after each
    ranked detection, difficult matches left out."""
    order = sorted(range(len(dets)), key=lambda i: -dets[i][1])  # stable: input order on ties
    n_pos = sum(1 for g in truths for lab, d in zip(g.labels, g.difficult) if lab == cls and not d)
    taken, tps, confs = set(), [], []
    for i in order:
        img, conf, box = dets[i]
        g = truths[img]
        best, best_j = -1.0, -1
        for j, (lab, tb) in enumerate(zip(g.labels, g.boxes)):
            if lab != cls:
                continue
            o = naive_iou(box, tb)
            if o > best:
                best, best_j = o, j
        if best_j >= 0 and best >= thr:
            if g.difficult[best_j]:
                continue
            if (img, best_j) in taken:
                tps.append(0)
            else:
                taken.add((img, best_j))
                tps.append(1)
        else:
            tps.append(0)
        confs.append(conf)
    ctp = np.cumsum(tps)
    k = np.arange(1, len(tps) + 1)
    return (ctp / n_pos if n_pos else np.full(len(tps), np.nan)), ctp / np.maximum(k, 1), confs, tps


def random_set(rng: random.Random, n_images=4, n_classes=3):
    truths, dets = [], []
    for img in range(n_images):
        labels, boxes, diff = [], [], []
        for _ in range(rng.randint(0, 4)):
            x, y = rng.uniform(0, 80), rng.uniform(0, 80)
            labels.append(rng.randrange(n_classes))
            boxes.append((x, y, x + rng.uniform(5, 40), y + rng.uniform(5, 40)))
            diff.append(rng.random() < 0.15)
        truths.append(metrics.GroundTruth(labels, boxes, diff))
        for _ in range(rng.randint(0, 8)):
            if boxes and rng.random() < 0.6:  # near a true box
                j = rng.randrange(len(boxes))
                b = [v + rng.uniform(-6, 6) for v in boxes[j]]
                b = (min(b[0], b[2] - 1), min(b[1], b[3] - 1), max(b[2], b[0] + 1), max(b[3], b[1] + 1))
                lab = labels[j] if rng.random() < 0.8 else rng.randrange(n_classes)
            else:
                x, y = rng.uniform(0, 80), rng.uniform(0, 80)
                b, lab = (x, y, x + rng.uniform(5, 40), y + rng.uniform(5, 40)), rng.randrange(n_classes)
            dets.append((img, lab, round(rng.uniform(0, 3), 1), b))  # ties on purpose
    return truths, dets


@pytest.mark.parametrize("seed", range(30))
def test_precision_recall_equals_a_naive_loop(seed):
    rng = random.Random(seed)
    truths, dets = random_set(rng)
    for c in range(3):
        mine = [(img, conf, box) for img, lab, conf, box in dets if lab == c]
        got = metrics.precision_recall(mine, truths, c)
        r, p, conf, tp = naive_curve(mine, truths, c)
        assert np.allclose(got.recall, r, equal_nan=True)
        assert np.allclose(got.precision, p)
        assert np.allclose(got.confidence, conf) and list(got.tp) == tp
        # class_ap (what mean_ap and evaluate report) is the area under this curve's envelope:
        # a Riemann sum of p_interp(r) = max precision at recall >= r, written out.
        ap = metrics.class_ap(mine, truths, c).ap
        if got.n_positives == 0:
            assert math.isnan(ap)
            continue
        grid = (np.arange(20000) + 0.5) / 20000
        riemann = np.mean([max([pp for rr, pp in zip(r, p) if rr >= x], default=0.0) for x in grid])
        assert ap == pytest.approx(riemann, abs=2e-4)
        ex, ey = metrics.precision_envelope(got.recall, got.precision)
        area = sum((ex[i] - ex[i - 1]) * ey[i] for i in range(1, len(ex)))
        assert area == pytest.approx(ap, abs=1e-12)


def test_detection_curves_and_report_agree_with_mean_ap():
    rng = random.Random(7)
    truths, dets = random_set(rng, n_images=6)
    per_image = [[(lab, conf, box) for img, lab, conf, box in dets if img == i] for i in range(6)]
    names = ("a", "b", "c")
    report = evaluate.detection_report(per_image, truths, names, [0, 1, 2])
    m_ap, per_class = metrics.mean_ap(per_image, truths, [0, 1, 2])
    assert report["mAP"] == pytest.approx(round(m_ap, 5))
    curves = evaluate.detection_curves(per_image, truths, [0, 1, 2])
    assert set(curves) == {c for c, v in per_class.items() if v.n_positives}
    for c, cv in curves.items():
        assert report["per_class"][names[c]]["ap"] == pytest.approx(
            round(metrics.average_precision(cv.recall, cv.precision), 5))
        assert len(cv.tp) == per_class[c].n_detections


def test_pr_curve_figure_draws_the_curves():
    rng = random.Random(3)
    truths, dets = random_set(rng, n_images=5)
    per_image = [[(lab, conf, box) for img, lab, conf, box in dets if img == i] for i in range(5)]
    curves = evaluate.detection_curves(per_image, truths, [0, 1, 2])
    aps = {c: metrics.average_precision(cv.recall, cv.precision) for c, cv in curves.items()}
    fig = figs.pr_curve_figure(curves, aps, ["a", "b", "c"], title="t").to_plotly_json()
    solid = [t for t in fig["data"] if t.get("mode") == "lines+markers"]
    dashed = [t for t in fig["data"] if t["line"].get("dash") == "dash"]
    assert len(solid) == len(dashed) == len(curves)
    for t, e, (c, cv) in zip(solid, dashed, curves.items()):
        assert np.allclose(t["x"], cv.recall) and np.allclose(t["y"], cv.precision)
        assert t["name"] == f"{'abc'[c]}: AP {aps[c]:.2f}"
        ex, ey = e["x"], e["y"]
        assert sum((ex[i] - ex[i - 1]) * ey[i] for i in range(1, len(ex))) == pytest.approx(aps[c])


def test_every_true_object_is_labelled_on_the_detection_figure():
    from overfeat.boxes import Detection

    bd = figs.backdrop(appstate.make_scene("det", 0)[0])
    truth = [{"name": "cat", "box": (10, 10, 50, 60)}, {"name": "dog", "box": (60, 20, 120, 90)},
             {"name": "cow", "box": (5, 100, 40, 150), "difficult": True}]
    dets = [Detection(label=0, name="cat", confidence=5.0, box=(11, 11, 50, 58), members=3)]
    fig = figs.labelled_marks_figure(bd, dets, ["TP"], truth, [1]).to_plotly_json()
    texts = [x for t in fig["data"] if t.get("mode") == "text" for x in t["text"]]
    assert "missed: dog" in texts  # below the missed box
    assert "cat" in texts and "cow (difficult)" in texts  # the others inside theirs
    assert "dog" not in texts  # a missed object is named once
    assert "#1 cat" in texts
    # Names on a photo stay readable on light and dark parts (a dark halo under the letters).
    for t in fig["data"]:
        if t.get("mode") == "text" and not t["text"][0].startswith("#"):
            assert t["textfont"]["shadow"] == figs.evaluation.SHADOW


# --- the page ------------------------------------------------------------------------------
def main_order(at) -> list[tuple[str, str]]:
    """The page's main elements in order: (type, key or text)."""
    out = []
    for el in at.main:
        kind = getattr(el, "type", "")
        if kind == "plotly_chart":
            out.append((kind, el.key))
        elif kind in ("alert", "caption", "info") or hasattr(el, "value") and isinstance(
                getattr(el, "value", None), str):
            out.append((kind, el.value))
    return out


@pytest.fixture(scope="module")
def det_at():
    """A sample det scene with the app's defaults (evaluate's settings)."""
    at = start(None, all_windows=False)
    ok(at.sidebar.radio(key="img_source").set_value("gallery").run())
    g = next(i for i, x in enumerate(appstate.GALLERY) if x[0] == "det")
    ok(at.sidebar.selectbox(key="gallery").set_value(g).run())
    return ok(page(at, "detection"))


def evaluate_pipeline(model, kind: str):
    """`python -m overfeat evaluate`'s detection, step by step (evaluate_folder's loop), on the
    app's sample scenes of `kind` held in memory."""
    from overfeat.multiscale import Settings, analyze

    dets, truths, names = [], [], None
    for g in appstate.GALLERY:
        if g[0] != kind:
            continue
        im, objects = appstate.make_scene(*g)
        full = analyze(model, im, Settings(top_k=evaluate.EVAL_TOP_K,
                                           min_score=evaluate.EVAL_MIN_SCORE), keep_maps=False)
        names = full.class_names
        dets.append(evaluate.image_detections(full, evaluate.merge_args("detection")))
        truths.append(metrics.GroundTruth([names.index(o["name"]) for o in objects],
                                          [o["box"] for o in objects], [False] * len(objects)))
    obj = list(range(len(model.cfg.object_classes)))
    return evaluate.detection_report(dets, truths, names, obj), names


@pytest.mark.slow
def test_pr_curve_and_ap_are_evaluates(det_at):
    at = det_at
    c = ctx(at)
    assert c.knobs == appstate.Knobs()  # the app opens at evaluate's settings
    want, names = evaluate_pipeline(c.model, "det")
    fig = figures(at)["det_pr"]
    assert f"mAP {want['mAP']:.3f}" in fig["layout"]["title"]["text"]
    assert "the 3 sample det scenes" in fig["layout"]["title"]["text"]
    rows = {r["class"]: r for r in tables(at)[-1].to_dict("records")}
    assert rows, "a per-class AP table"
    for name, v in want["per_class"].items():
        if not v["positives"]:  # no AP: its boxes (all wrong) are named in a line
            assert name not in rows
            assert (f"{name} {v['detections']}" in captions(at)) == bool(v["detections"])
            continue
        r = rows[name]
        assert (r["objects"], r["boxes"], r["right boxes"]) == (
            v["positives"], v["detections"], v["true_positives"])
        assert r["AP"] == pytest.approx(round(v["ap"], 3))
    # One curve per class with objects, named with its AP.
    legend = sorted(t["name"] for t in traces(fig) if t.get("mode") == "lines+markers")
    assert legend == sorted(f"{n}: AP {v['ap']:.2f}" for n, v in want["per_class"].items()
                            if v["positives"])
    assert "`python -m overfeat evaluate`'s **AP** at its own settings" in captions(at)


@pytest.mark.slow
def test_notice_follows_the_main_figure_with_this_images_numbers(det_at):
    at = det_at
    order = main_order(at)
    i = order.index(("plotly_chart", "det_fig"))
    kind, text = order[i + 1]
    assert text.startswith("**What to notice**")
    c = ctx(at)
    r = next(x for x in at.metric if x.label == "true positives")
    assert f"{r.value} of " in text and "objects found" in text
    want, _ = evaluate_pipeline(c.model, "det")
    assert f"mAP {want['mAP']:.3f}" in text


@pytest.mark.slow
def test_missed_and_true_objects_carry_their_class(det_at):
    at = det_at
    c = ctx(at)
    fig = figures(at)["det_fig"]
    missed = [t["text"] for t in traces(fig) if t.get("legendgroup") == "missed"]
    texts = [x for t in traces(fig) if t.get("mode") == "text" for x in t["text"]]
    r_missed = [x[len("missed: "):] for x in missed]
    for name in r_missed:
        assert f"missed: {name}" in texts
    # Every true object is named on the image: the missed ones below their box, the others in it.
    named = sorted([x[len("missed: "):] for x in texts if x.startswith("missed: ")]
                   + [x for x in texts if not x.startswith(("missed: ", "#"))])
    assert named == sorted(t["name"] for t in c.truth)
    assert MARK_NAMES["missed"] in {t.get("name") for t in traces(fig)} or not missed


@pytest.mark.slow
def test_other_settings_are_named_and_the_numbers_follow():
    at = start(None, all_windows=False)
    ok(at.sidebar.radio(key="img_source").set_value("generate").run())
    at.sidebar.radio(key="scene_kind").set_value("loc")
    ok(at.sidebar.number_input(key="scene_seed").set_value(5).run())
    ok(open_knobs(at).sidebar.slider(key="min_score").set_value(0.3).run())
    at = ok(page(at, "detection"))
    c = ctx(at)
    assert c.knobs.min_score == 0.3
    assert "at the sidebar's settings (min score 0.3; evaluate's differ)" in captions(at)
    # The same numbers from the package, on the three loc samples at these settings.
    dets, truths = [], []
    for g in appstate.GALLERY:
        if g[0] != "loc":
            continue
        im, objects = appstate.make_scene(*g)
        from overfeat.multiscale import analyze

        a = analyze(c.model, im, c.knobs.settings(), keep_maps=False)
        dets.append(evaluate.image_detections(a, evaluate.merge_args("detection")))
        truths.append(evaluate.scene_truth(objects, a.class_names))
    want = evaluate.detection_report(dets, truths, a.class_names, a.object_classes)
    assert f"mAP {want['mAP']:.3f}" in figures(at)["det_pr"]["layout"]["title"]["text"]
    assert "the 3 sample loc scenes" in figures(at)["det_pr"]["layout"]["title"]["text"]


@pytest.mark.slow
def test_no_curve_for_an_upload_says_why_in_one_line():
    at = ok(page(start(), "detection"))
    assert "det_pr" not in figures(at)
    line = [x.value for x in at.caption if x.value.startswith("No precision-recall curve")]
    assert line == ["No precision-recall curve: an uploaded photo has no known objects to rank "
                    "boxes against."]


@pytest.mark.slow
def test_objects_model_on_a_sample_photo_ranks_the_photo_set():
    """A sample photo with the Objects model: the curve of the sample photos with hand-drawn
    boxes (assets/photos/boxes.json), at the model's own settings."""
    from apptest_helpers import open_link
    from overfeat.photos import load_truth, truth_of
    from overfeat.multiscale import analyze

    horses = next(i for i, (n, _) in enumerate(appstate.PHOTOS) if n == "horses.jpg")
    at = ok(open_link({"page": "detection", "img": "photo", "p": str(horses), "model": "objects"}))
    c = ctx(at)
    assert c.model_key == "zoo:objects" and c.photo_truth is not None
    kn, entries = c.knobs, load_truth()
    dets, truths = [], []
    for i, (name, _) in enumerate(appstate.PHOTOS):
        if name not in entries:
            continue
        a = analyze(c.model, appstate.load_photo(i), kn.settings(), keep_maps=False)
        dets.append(a.merge(score=kn.score, threshold=kn.threshold(kn.score), by_class=kn.by_class,
                            average=kn.average).final.as_tuples())
        truth = truth_of(entries[name])
        truths.append(metrics.GroundTruth([a.class_names.index(t["name"]) for t in truth],
                                          [t["box"] for t in truth],
                                          [t["difficult"] for t in truth]))
    m_ap, per_class = metrics.mean_ap(dets, truths, a.object_classes)
    fig = figures(at)["det_pr"]
    assert fig["layout"]["title"]["text"] == (
        f"the sample photos with hand-drawn boxes: mAP {round(m_ap, 5):.3f}")
    rows = {r["class"]: r for r in tables(at)[-1].to_dict("records")}
    for cls, v in per_class.items():
        if v.n_positives:
            assert rows[a.class_names[cls]]["AP"] == pytest.approx(round(v.ap, 3))
    assert "evaluate's differ" in captions(at)  # the model's own knobs (min score 0.4, ...)


@pytest.mark.slow
def test_a_model_that_does_not_know_the_scenes_says_so_in_one_line():
    from apptest_helpers import open_link

    det = next(i for i, x in enumerate(appstate.GALLERY) if x[0] == "det")
    at = ok(open_link({"page": "detection", "img": "gallery", "g": str(det), "model": "objects"}))
    assert ctx(at).model_key == "zoo:objects"
    assert "det_pr" not in figures(at)
    line = [x.value for x in at.caption if x.value.startswith("No precision-recall curve")]
    assert len(line) == 1 and "does not know the sample scenes' classes" in line[0]
