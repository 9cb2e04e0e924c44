"""overfeat.compare and overfeat.detection: NMS against a naive loop, the truth matching against
the VOC matching of overfeat.metrics and against hand-made cases, and the ranking measure."""

from __future__ import annotations

import pytest
import torch

from overfeat import compare, experiments
from overfeat.bench import clustered_boxes
from overfeat.boxes import Detections
from overfeat.metrics import GroundTruth, iou, match_class
from overfeat.multiscale import BoxTable

NAMES = ("cat", "dog", "bird", "background")


def table_of(boxes, scores, labels) -> BoxTable:
    n = len(scores)
    z = torch.zeros(n, dtype=torch.long)
    return BoxTable(boxes.float(), scores.float(), labels.long(), z, z.bool(), z, z, z,
                    boxes.float(), z)


def naive_nms(boxes, scores, labels, thr, by_class):
    """torchvision's rule, as a Python loop: visit boxes by decreasing score; keep a box unless
    a kept box (of its class, when by_class) overlaps it with IoU > thr."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    keep = []
    for i in order:
        if all(iou(boxes[i].tolist(), boxes[k].tolist()) <= thr
               for k in keep if not by_class or int(labels[k]) == int(labels[i])):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("by_class", [False, True])
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_nms_matches_naive_reference(seed, by_class, thr):
    b, s, l = clustered_boxes(120, seed=seed)
    r = compare.nms_boxes(table_of(b, s, l), thr, by_class=by_class)
    keep = naive_nms(b, s, l, thr, by_class)
    assert r.method == ("batched nms" if by_class else "nms")
    assert [m[0] for m in r.members] == keep  # the same boxes, in the same order
    assert torch.equal(r.boxes, b[keep].double()) and torch.equal(r.labels, l[keep])
    # Most confident first; every raw box is behind exactly one kept box.
    assert torch.all(r.confs[:-1] >= r.confs[1:])
    assert sorted(i for m in r.members for i in m) == list(range(len(s)))
    if by_class:
        assert all(len({int(l[i]) for i in m}) == 1 for m in r.members)


def test_nms_empty_and_bad_threshold():
    t = table_of(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert len(compare.nms_boxes(t)) == 0
    with pytest.raises(ValueError, match="IoU threshold"):
        compare.nms_boxes(t, 1.5)


def test_match_truth_by_hand():
    truth = [{"name": "cat", "box": (0, 0, 100, 100)}, {"name": "dog", "box": (200, 0, 300, 100)},
             {"name": "cat", "box": (0, 200, 100, 300)}]
    boxes = torch.tensor([[0, 0, 100, 100],  # TP on truth 0
                          [5, 5, 100, 100],  # duplicate on truth 0, less confident: FP
                          [200, 0, 300, 100],  # right place, wrong class (cat): FP
                          [0, 200, 40, 300],  # cat at truth 2 but IoU 0.4: FP
                          [210, 0, 300, 100]], dtype=torch.float64)  # dog: TP on truth 1
    confs = torch.tensor([3.0, 2.0, 1.0, 0.5, 0.7])
    labels = torch.tensor([0, 0, 0, 0, 1])
    m = compare.match_truth(Detections(boxes, confs, labels), truth, NAMES)
    assert m.status == ["TP", "FP", "FP", "FP", "TP"]
    assert m.truth_of == [0, None, None, None, 1]
    assert m.missed == [2]
    assert (m.tp, m.fp) == (2, 3)
    assert m.ious[3] == pytest.approx(0.4)
    assert m.mean_iou == pytest.approx((1.0 + 0.9) / 2)
    assert compare.truth_score(m) == (2, -3, pytest.approx(0.95))
    with pytest.raises(ValueError, match="not among"):
        compare.match_truth(Detections(boxes, confs, labels),
                            [{"name": "zebra", "box": (0, 0, 1, 1)}], NAMES)


@pytest.mark.parametrize("seed", range(5))
def test_match_truth_agrees_with_voc_matching(seed):
    """Per class, the TP/FP marks are overfeat.metrics.match_class's (the mAP code)."""
    g = torch.Generator().manual_seed(seed)
    n_t, n_d = 6, 25
    tb = torch.rand(n_t, 2, generator=g) * 300
    truth_boxes = torch.cat([tb, tb + 40 + torch.rand(n_t, 2, generator=g) * 80], 1)
    t_labels = torch.randint(0, 3, (n_t,), generator=g)
    pick = torch.randint(0, n_t, (n_d,), generator=g)
    boxes = truth_boxes[pick] + torch.randn(n_d, 4, generator=g) * 12
    boxes = torch.cat([torch.minimum(boxes[:, :2], boxes[:, 2:]),
                       torch.maximum(boxes[:, :2], boxes[:, 2:])], 1).double()
    labels = torch.where(torch.rand(n_d, generator=g) < 0.8, t_labels[pick],
                         torch.randint(0, 3, (n_d,), generator=g))
    confs = torch.rand(n_d, generator=g).double()
    truth = [{"name": NAMES[int(c)], "box": tuple(b.tolist())} for c, b in zip(t_labels, truth_boxes)]
    m = compare.match_truth(Detections(boxes, confs, labels), truth, NAMES)
    gt = GroundTruth(labels=t_labels.tolist(), boxes=[tuple(b) for b in truth_boxes.tolist()],
                     difficult=[False] * n_t)
    for c in range(3):
        idx = [i for i in range(n_d) if int(labels[i]) == c]
        dets = [(0, float(confs[i]), tuple(boxes[i].tolist())) for i in idx]
        tp, fp, n_pos = match_class(dets, [gt], c)
        ranked = sorted(idx, key=lambda i: -float(confs[i]))
        assert [m.status[i] for i in ranked] == ["TP" if t else "FP" for t in tp]
        assert n_pos - int(tp.sum()) == sum(1 for j in m.missed if int(t_labels[j]) == c)
    assert m.tp + len(m.missed) == n_t


def test_compare_rows_rank_by_truth():
    truth = [{"name": "cat", "box": (0, 0, 100, 100)}]
    def fb(name, boxes):
        b = torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4)
        return Detections(b, torch.arange(len(b), 0, -1).double(),
                          torch.zeros(len(b), dtype=torch.long), method=name)
    res = {"a": fb("a", [[0, 0, 100, 100], [300, 300, 350, 350]]),  # 1 TP, 1 FP
           "b": fb("b", [[2, 2, 100, 100]]),  # 1 TP, IoU 0.96
           "c": fb("c", [[0, 0, 100, 100]]),  # 1 TP, IoU 1
           "d": fb("d", [])}
    rows = {r["method"]: r for r in compare.compare_rows(res, 9, truth, NAMES)}
    assert [rows[k]["rank"] for k in "abcd"] == [3, 2, 1, 4]
    assert rows["a"]["false positives"] == 1 and rows["d"]["missed"] == 1
    assert all(r["raw boxes"] == 9 for r in rows.values())
    assert "rank" not in compare.compare_rows(res, 9, None, NAMES)[0]


def test_run_methods_reuses_given_merges():
    b, s, l = clustered_boxes(80, seed=3)
    t = table_of(b, s, l)
    fresh = compare.run_methods(t, 50.0, 0.0, 0.5)
    again = compare.run_methods(t, 50.0, 0.0, 0.5, merges={"literal": compare.merge(
        t.boxes, t.scores, t.labels, "literal", 50.0)})
    assert list(fresh) == list(compare.METHODS)
    for k in fresh:
        assert torch.equal(fresh[k].boxes, again[k].boxes)


@pytest.mark.slow  # the shipped model evaluated on two generated scenes (~6 s CPU)
def test_recompute_callback_and_rows(tmp_path):
    from overfeat.predict import load_model

    model, _ = load_model()
    events = []
    res = experiments.recompute(model, 2, callback=events.append, workdir=tmp_path)
    assert [(e["done"], e["total"]) for e in events] == [(1, 2), (2, 2)]
    d = res["datasets"][0]
    assert d["images"] == 2 and "seed 3" in d["folder"]
    rows = experiments.table_rows(d)
    assert [r["approach"] for r in rows] == [r["approach"] for r in d["table2"]]
    assert [r["top-5 error %"] for r in rows] == [round(100 * r["top5_error"], 2) for r in d["table2"]]
    assert list(tmp_path.iterdir()) == []  # the scenes are gone


def test_load_eval(tmp_path):
    assert experiments.load_eval(tmp_path / "none.json") is None
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not readable"):
        experiments.load_eval(tmp_path / "bad.json")
    (tmp_path / "odd.json").write_text("[]")
    with pytest.raises(ValueError, match="datasets"):
        experiments.load_eval(tmp_path / "odd.json")
    assert [p["top5_error"] for p in experiments.PAPER_TABLE2] == [17.12, 16.97, 16.39, 16.27]


def test_detect_threshold_and_background():
    from PIL import Image

    from overfeat import detection
    from overfeat.multiscale import Settings, analyze
    from overfeat.predict import load_model

    model, _ = load_model()
    a = analyze(model, Image.new("RGB", (260, 240), (90, 140, 200)), Settings(scales=(0, 1)),
                keep_maps=False)
    assert detection.background_class(a) == model.cfg.num_classes - 1
    raw = [len(detection.detect(a, t, 2).analysis.table) for t in (0.0, 0.05, 0.1, 0.5, 1.0)]
    assert raw == sorted(raw, reverse=True) and raw[0] > 0
    r = detection.detect(a, 0.0, 2, truth=[])
    assert r.match.status == ["FP"] * len(r.detections) and r.match.missed == []
    assert [d.confidence for d in r.detections] == r.merged.final.confs.tolist()
    with pytest.raises(ValueError, match="min_score"):
        detection.detect(a, 1.5)

    # A merge the caller already has (the app's cached one) gives the same detections; a merge
    # of other boxes or another score is refused.
    own = detection.detect(a, 0.1, 2, truth=[], min_confidence=0.5)
    m = own.merged
    given = detection.detect(a, 0.1, 2, truth=[], min_confidence=0.5, merged=m)
    assert given.merged is m and given.detections == own.detections
    assert given.below == own.below and given.match.status == own.match.status
    with pytest.raises(ValueError, match="not the literal merge"):
        detection.detect(a, 0.1, 2, score="literal", merged=m)
    with pytest.raises(ValueError, match="merge of"):
        detection.detect(a, 0.0, 2, merged=m)  # more boxes at min score 0
