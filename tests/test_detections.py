"""overfeat.boxes.Detections (the one type of final boxes) and appstate's named cache keys."""

from __future__ import annotations

import pytest
import torch

from overfeat.app import state as appstate
from overfeat.boxes import Detections
from overfeat.merge import merge

NAMES = ("cat", "dog", "background")


def three() -> Detections:
    return Detections(torch.tensor([[-5, 0, 50, 40], [10, 10, 20, 20], [0, 0, 130, 90]]),
                      torch.tensor([9.0, 3.0, 1.0]), torch.tensor([1, 0, 1]),
                      [[0, 2], [1], [3]])


def test_dtypes_shapes_and_checks():
    d = three()
    assert (d.boxes.dtype, d.confs.dtype, d.labels.dtype) == (torch.float64, torch.float64,
                                                              torch.int64)
    assert len(d) == 3 and len(Detections(torch.zeros(0), torch.zeros(0), torch.zeros(0))) == 0
    with pytest.raises(ValueError, match="shape"):
        Detections(torch.zeros(2, 4), torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        Detections(torch.zeros(2, 3), torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="member lists"):
        Detections(torch.zeros(2, 4), torch.zeros(2), torch.zeros(2), [[0]])


def test_top_above_supported_clip():
    d = three()
    assert len(d.top(None)) == 3 and len(d.top(10)) == 3 and len(d.top(0)) == 0
    assert d.top(2).confs.tolist() == [9.0, 3.0] and d.top(2).members == [[0, 2], [1]]
    assert d.above(3.0).labels.tolist() == [1, 0]
    assert d.supported(None) is d and len(d.supported(2.0)) == 2  # no support: the confidences
    s = Detections(d.boxes, d.confs, d.labels, d.members, torch.tensor([0.5, 4.0, 2.0]))
    assert s.supported(2.0).confs.tolist() == [3.0, 1.0]
    c = d.clip((80, 100))
    assert c.boxes[0].tolist() == [0.0, 0.0, 50.0, 40.0] and c.boxes[2].tolist() == [0, 0, 100, 80]
    assert d.boxes[0, 0] == -5  # clip returns a new set


def test_records_and_tuples():
    d = three()
    r = d.records(NAMES)
    assert [x.name for x in r] == ["dog", "cat", "dog"] and [x.members for x in r] == [2, 1, 1]
    assert r[0].to_dict() == {"class": "dog", "label": 1, "confidence": 9.0,
                              "box": [-5.0, 0.0, 50.0, 40.0], "members": 2}
    assert d.as_tuples()[1] == (0, 3.0, (10.0, 10.0, 20.0, 20.0))
    assert d.as_tuples(confs=False)[1] == (0, (10.0, 10.0, 20.0, 20.0))


def test_merge_result_final_is_detections():
    b = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=torch.float64)
    r = merge(b, torch.tensor([1.0, 2.0, 0.5]), torch.tensor([0, 0, 0]))
    assert isinstance(r.final, Detections) and len(r.final) == 2
    assert r.final.confs.tolist() == [3.0, 0.5] and r.final.members == [[0, 1], [2]]


def test_cache_keys_are_named_and_hashable():
    kn = appstate.Knobs()
    a = kn.analysis_key()
    m = kn.merge_key("literal")
    assert m.analysis == a and m.score == "literal" and m.threshold == kn.t_literal
    assert a.top_k == kn.top_k and a.min_score == round(kn.min_score, 6)
    c = kn.compare_key(0.123456)
    assert c.iou == 0.1235 and c.analysis == a
    d = kn.detection_key(30.0)
    assert d.min_confidence == 30.0 and d.score == kn.score
    assert len({a, m, c, d, kn.merge_key("literal")}) == 4  # hashable, equal by value
