"""The metrics of the three tasks (overfeat.metrics): hand-computed cases, and the fast code
against deliberately naive references (pixel counting for IoU, Python's stable sort for ranks,
a plain loop over recall steps for AP)."""

import math
import random

import numpy as np
import pytest

from overfeat.metrics import (GroundTruth, average_precision, class_ap, iou,
                              localization_correct, match_class, mean_ap, rank_of, topk_error)

# --- IoU ------------------------------------------------------------------------------------------


def test_iou_hand_cases():
    a = (0.0, 0.0, 10.0, 10.0)
    assert iou(a, a) == 1.0
    assert iou(a, (20, 20, 30, 30)) == 0.0  # disjoint
    assert iou(a, (10, 0, 20, 10)) == 0.0  # touching along an edge
    assert iou(a, (10, 10, 20, 20)) == 0.0  # touching at a corner
    # Partial overlap: inter 2x3 = 6, areas 16 + 16, union 26.
    assert iou((0, 0, 4, 4), (2, 1, 6, 5)) == pytest.approx(6 / 26)
    assert iou((0, 0, 10, 10), (2, 2, 4, 4)) == pytest.approx(4 / 100)  # contained
    assert iou((0, 0, 10, 10), (0, 0, 5, 10)) == 0.5  # half: exactly 0.5, not 0.4999


@pytest.mark.parametrize("degenerate", [(5, 5, 5, 10), (5, 5, 10, 5), (8, 8, 2, 2), (3, 3, 3, 3)])
def test_iou_degenerate_box_is_zero_never_nan(degenerate):
    for other in [(0, 0, 10, 10), degenerate, (4, 4, 6, 6)]:
        v = iou(degenerate, other)
        assert v == 0.0 and not math.isnan(v)
        assert iou(other, degenerate) == 0.0


def test_iou_against_pixel_counting():
    """On integer boxes the IoU is the number of unit cells in both over those in either."""
    rng = random.Random(0)
    for _ in range(400):
        boxes = []
        for _ in range(2):
            x1, y1 = rng.randint(0, 15), rng.randint(0, 15)
            boxes.append((x1, y1, x1 + rng.randint(0, 8), y1 + rng.randint(0, 8)))
        masks = []
        for x1, y1, x2, y2 in boxes:
            m = np.zeros((30, 30), bool)
            m[y1:y2, x1:x2] = True
            masks.append(m)
        inter = int((masks[0] & masks[1]).sum())
        union = int((masks[0] | masks[1]).sum())
        want = inter / union if union and inter else 0.0
        assert iou(*boxes) == pytest.approx(want, abs=1e-12), boxes
        assert iou(boxes[1], boxes[0]) == pytest.approx(want, abs=1e-12)


# --- classification: ranks and top-k ------------------------------------------------------------


def naive_rank(scores, label, candidates):
    # Python's sort is stable: tied classes keep their index order.
    order = sorted(candidates, key=lambda c: -scores[c])
    return order.index(label)


def test_rank_of_ties_are_stable_by_class_index():
    s = [0.5, 0.5, 0.5, 0.1]
    assert [rank_of(s, c) for c in range(4)] == [0, 1, 2, 3]
    assert topk_error([s], [2], 1) == 1.0
    assert topk_error([s], [2], 2) == 1.0  # classes 0 and 1 come first
    assert topk_error([s], [2], 3) == 0.0
    assert topk_error([s, s], [0, 3], 1) == 0.5
    rng = random.Random(1)
    for _ in range(300):
        k = rng.randint(1, 8)
        scores = [rng.choice([0.0, 0.5, 1.0]) for _ in range(k)]  # many ties
        cand = sorted(rng.sample(range(k), rng.randint(1, k)))
        for label in cand:
            assert rank_of(scores, label, cand) == naive_rank(scores, label, cand)


def test_topk_against_naive_on_random_scores():
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 4, (200, 7)).astype(float)  # ties again
    labels = rng.integers(0, 6, 200)
    cand = list(range(6))  # class 6 plays the background
    for k in (1, 2, 5):
        wrong = sum(1 for row, y in zip(scores, labels) if naive_rank(row, y, cand) >= k)
        assert topk_error(scores, labels, k, cand) == wrong / 200


def test_background_is_never_a_guess():
    s = [0.1, 0.2, 0.3, 0.9]  # class 3 = background scores highest
    obj = [0, 1, 2]
    assert topk_error([s], [2], 1) == 1.0  # background counted: class 2 is second
    assert topk_error([s], [2], 1, obj) == 0.0  # background excluded: class 2 is first
    # A true label outside the candidates is wrong for every k, even k > len(candidates).
    for k in (1, 3, 5):
        assert topk_error([s], [3], k, obj) == 1.0
    assert topk_error([s], [7], 5) == 1.0  # a label beyond the score vector: wrong too


def test_topk_bad_arguments():
    with pytest.raises(ValueError, match="k must be >= 1"):
        topk_error([[0.1, 0.2]], [0], 0)
    with pytest.raises(ValueError, match="2 score rows for 1 labels"):
        topk_error([[0.1, 0.2], [0.3, 0.1]], [0], 1)
    assert math.isnan(topk_error(np.zeros((0, 3)), [], 1))


# --- localization -------------------------------------------------------------------------------


def test_localization_rule():
    truth = [(3, (10.0, 10.0, 50.0, 50.0))]
    right_box, wrong_box = (10, 10, 50, 50), (60, 60, 100, 100)
    assert localization_correct([(3, right_box)], truth)
    assert not localization_correct([(3, wrong_box)], truth)  # right class, wrong box
    assert not localization_correct([(4, right_box)], truth)  # wrong class, right box
    assert not localization_correct([], truth)
    five_wrong = [(c, wrong_box) for c in range(5)]
    assert not localization_correct(five_wrong + [(3, right_box)], truth)  # 6th guess ignored
    assert localization_correct(five_wrong[:4] + [(3, right_box)], truth)  # 5th counts
    assert localization_correct(five_wrong + [(3, right_box)], truth, max_guesses=6)
    # Threshold: IoU exactly 0.5 is right, just below is not.
    assert localization_correct([(3, (10, 10, 30, 50))], truth)  # half the box: IoU 0.5
    assert not localization_correct([(3, (10, 10, 29.9, 50))], truth)
    # Any instance of the class counts.
    two = truth + [(3, (100.0, 100.0, 140.0, 140.0))]
    assert localization_correct([(3, (100, 100, 140, 140))], two)


# --- detection: AP ----------------------------------------------------------------------------


def naive_ap(tp_seq, n_pos):
    """All-point AP written as the definition reads: after each detection compute precision and
    recall; at every rank where recall rises, add (rise) x (best precision at any rank whose
    recall is at least this one)."""
    prec, rec, tp = [], [], 0
    for i, t in enumerate(tp_seq, start=1):
        tp += t
        prec.append(tp / i)
        rec.append(tp / n_pos)
    ap, prev = 0.0, 0.0
    for i in range(len(rec)):
        if rec[i] > prev:
            p_interp = max(prec[j] for j in range(len(rec)) if rec[j] >= rec[i])
            ap += (rec[i] - prev) * p_interp
            prev = rec[i]
    return ap


def curve(tp_seq, n_pos):
    ctp = np.cumsum(tp_seq)
    return ctp / n_pos, ctp / np.arange(1, len(tp_seq) + 1)


def test_average_precision_hand_cases():
    # TP FP TP FP TP, 3 positives: recall steps of 1/3 at precisions 1, 2/3, 3/5 (the envelope
    # lifts nothing here): AP = (1 + 2/3 + 3/5) / 3 = 34/45.
    assert average_precision(*curve([1, 0, 1, 0, 1], 3)) == pytest.approx(34 / 45)
    # FP TP TP, 4 positives: the envelope lifts the first step to 2/3; recall stops at 1/2.
    assert average_precision(*curve([0, 1, 1], 4)) == pytest.approx(2 / 3 * 1 / 2)
    assert average_precision(*curve([1, 1], 2)) == pytest.approx(1.0)
    assert average_precision(*curve([0, 0, 0], 2)) == 0.0
    assert average_precision([], []) == 0.0


def test_average_precision_against_naive_loop():
    rng = random.Random(3)
    for _ in range(300):
        n_pos = rng.randint(1, 12)
        n_det = rng.randint(1, 25)
        seq = [0] * n_det
        for i in rng.sample(range(n_det), min(n_det, rng.randint(0, n_pos))):
            seq[i] = 1
        assert average_precision(*curve(seq, n_pos)) == pytest.approx(naive_ap(seq, n_pos), abs=1e-12)


def gt(labels, boxes, difficult=None):
    return GroundTruth(labels=list(labels), boxes=list(boxes),
                       difficult=list(difficult or [False] * len(labels)))


def test_voc_duplicates_are_false_positives():
    A, B, C = (0, 0, 10, 10), (100, 0, 110, 10), (200, 0, 210, 10)
    truths = [gt([0, 0, 0], [A, B, C])]
    far = (500, 500, 510, 510)
    dets = [(0, 0.9, A), (0, 0.8, far), (0, 0.7, B), (0, 0.6, A), (0, 0.5, C)]  # A twice
    tp, fp, n_pos = match_class(dets, truths, 0)
    assert tp.tolist() == [1, 0, 1, 0, 1] and fp.tolist() == [0, 1, 0, 1, 0] and n_pos == 3
    r = class_ap(dets, truths, 0)
    assert r.ap == pytest.approx(34 / 45)  # the sequence TP FP TP FP TP above
    assert (r.n_positives, r.n_detections, r.true_positives) == (3, 5, 3)
    # Input order does not matter, only confidence.
    assert class_ap(dets[::-1], truths, 0).ap == pytest.approx(34 / 45)


def test_detection_matches_best_truth_and_only_its_class():
    P, Q = (0, 0, 10, 10), (5, 0, 15, 10)
    truths = [gt([0, 0, 1], [P, Q, (40, 0, 50, 10)])]
    # IoU with P = 60/140, with Q = 90/110: the detection takes Q, so the exact P stays free.
    dets = [(0, 0.9, (4, 0, 14, 10)), (0, 0.8, P), (0, 0.7, (40, 0, 50, 10))]
    tp, fp, _ = match_class(dets, truths, 0)
    assert tp.tolist() == [1, 1, 0] and fp.tolist() == [0, 0, 1]  # class-1 box is no match
    # Detections in another image never match this image's truth.
    truths2 = [gt([0], [P]), gt([], [])]
    tp, fp, n_pos = match_class([(1, 0.9, P), (0, 0.5, P)], truths2, 0)
    assert tp.tolist() == [0, 1] and fp.tolist() == [1, 0] and n_pos == 1


def test_difficult_objects_are_ignored():
    D, E = (0, 0, 10, 10), (50, 50, 60, 60)
    truths = [gt([0, 0], [D, E], [True, False])]
    dets = [(0, 0.9, D), (0, 0.8, D), (0, 0.7, E)]  # both hits on the difficult one ignored
    r = class_ap(dets, truths, 0)
    assert r.ap == 1.0 and r.n_positives == 1 and r.n_detections == 1 and r.true_positives == 1
    # Without the difficult flag the same detections are TP, FP(duplicate), TP out of 2.
    r2 = class_ap(dets, [gt([0, 0], [D, E])], 0)
    assert r2.ap == pytest.approx(naive_ap([1, 0, 1], 2)) and r2.ap < 1.0
    # A difficult object that nobody detects costs nothing either.
    r3 = class_ap([(0, 0.5, E)], truths, 0)
    assert r3.ap == 1.0


def test_class_ap_against_naive_on_random_detections():
    """Objects on a grid (so a copy of one box overlaps no other by 0.5); detections are copies
    (a hit, or a duplicate when that object was already found) or boxes off the grid (misses).
    The expected TP sequence is then known without any IoU."""
    rng = random.Random(4)
    for trial in range(100):
        n_img = rng.randint(1, 4)
        truths, objects = [], []
        for i in range(n_img):
            k = rng.randint(0, 4)
            boxes = [(100 * j, 0, 100 * j + 40, 40) for j in range(k)]
            truths.append(gt([0] * k, boxes))
            objects += [(i, b) for b in boxes]
        if not objects:
            continue
        dets = []
        for _ in range(rng.randint(1, 15)):
            if rng.random() < 0.6:
                img, box = rng.choice(objects)
            else:
                img, box = rng.randrange(n_img), (1000, 1000, 1040, 1040)
            dets.append((img, rng.random(), box))
        seen, seq = set(), []
        for img, _, box in sorted(dets, key=lambda d: -d[1]):
            hit = box[0] < 1000 and (img, box) not in seen
            seq.append(int(hit))
            seen.add((img, box))
        r = class_ap(dets, truths, 0)
        assert r.true_positives == sum(seq)
        assert r.ap == pytest.approx(naive_ap(seq, len(objects)), abs=1e-12), trial


def test_mean_ap_skips_classes_without_positives():
    A, B = (0, 0, 10, 10), (50, 0, 60, 10)
    truths = [gt([0, 2], [A, B]), gt([], [])]
    dets = [[(0, 0.9, A), (1, 0.8, B)], [(1, 0.7, A)]]  # class 1 has detections, no truth
    m, per = mean_ap(dets, truths, [0, 1, 2])
    assert per[0].ap == 1.0 and per[2].ap == 0.0  # class 2: one positive, never detected
    assert math.isnan(per[1].ap) and per[1].n_positives == 0 and per[1].n_detections == 2
    assert m == pytest.approx(0.5)  # (1 + 0) / 2: class 1 is left out, not counted as 0
    m, per = mean_ap([[], []], [gt([], []), gt([], [])], [0, 1])
    assert math.isnan(m)
    with pytest.raises(ValueError, match="1 detection lists for 2 images"):
        mean_ap([[]], truths, [0])
