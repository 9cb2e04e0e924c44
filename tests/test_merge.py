"""The greedy merge (paper §4.3): the fast incremental merge against the literal loop."""

import math

import numpy as np
import pytest
import torch

from overfeat.merge import STOP_EVERY, Stopped, match_score, merge, merge_reference


def random_boxes(n: int, seed: int, classes: int = 3, clustered: bool = True):
    g = torch.Generator().manual_seed(seed)
    if clustered:  # boxes around a few objects, like regressor outputs
        centres = torch.rand(4, 2, generator=g) * 400
        which = torch.randint(0, 4, (n,), generator=g)
        c = centres[which] + torch.randn(n, 2, generator=g) * 15
        wh = 60 + torch.rand(n, 2, generator=g) * 80
    else:
        c = torch.rand(n, 2, generator=g) * 500
        wh = 5 + torch.rand(n, 2, generator=g) * 150
    boxes = torch.cat([c - wh / 2, c + wh / 2], dim=1)
    scores = torch.rand(n, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    return boxes, scores, labels


def py_score(a, b, kind):
    """Scalar formula written out in plain Python."""
    cax, cay = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    cbx, cby = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    d = math.hypot(cax - cbx, cay - cby)
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    if kind == "literal":
        return d + inter
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    iou = inter / (area_a + area_b - inter)
    return d / ((math.sqrt(area_a) + math.sqrt(area_b)) / 2) - iou


@pytest.mark.parametrize("kind", ["literal", "corrected"])
def test_match_score_formula(kind):
    b, _, _ = random_boxes(30, 1, clustered=False)
    b = b.double().numpy()
    m = match_score(b[:, None], b[None], kind)
    for i in range(30):
        for j in range(30):
            assert m[i, j] == pytest.approx(py_score(b[i], b[j], kind), rel=1e-12, abs=1e-9)
    assert np.array_equal(m, m.T)  # symmetric bit for bit


def test_corrected_score_of_empty_boxes_has_iou_zero():
    """A box of zero area (a line, a point) has IoU 0 with anything, itself included: the
    union is 0 only when the intersection is (no np.where guards the division)."""
    line, point = np.array([10.0, 10, 10, 50]), np.array([5.0, 5, 5, 5])
    box = np.array([0.0, 0, 20, 20])
    for a, b in ((line, line), (point, point), (line, box), (point, box), (line, point)):
        side = (math.sqrt((a[2] - a[0]) * (a[3] - a[1]))
                + math.sqrt((b[2] - b[0]) * (b[3] - b[1]))) / 2
        dist = math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
        want = dist / max(side, 1e-12)  # - IoU, which is 0
        assert float(match_score(a, b, "corrected")) == pytest.approx(want, rel=1e-12), (a, b)


def test_literal_score_prefers_disjoint_boxes():
    """The known flaw of the paper's text: overlapping boxes score higher (merge later)."""
    a = np.array([0.0, 0, 100, 100])
    overlapping = np.array([10.0, 10, 110, 110])
    far = np.array([300.0, 0, 400, 100])
    assert match_score(a, overlapping, "literal") > match_score(a, far, "literal")
    assert match_score(a, overlapping, "corrected") < match_score(a, far, "corrected")
    assert match_score(a, a, "corrected") == -1.0


CASES = [(n, seed, kind, t, by_class, average)
         for n, seed in [(2, 0), (7, 1), (40, 2), (120, 3)]
         for kind, t in [("corrected", 0.0), ("corrected", 0.8), ("literal", 60.0), ("literal", 1e5)]
         for by_class in (True, False)
         for average in ("weighted", "plain")]


@pytest.mark.parametrize("n,seed,kind,t,by_class,average", CASES)
def test_fast_merge_equals_literal_loop(n, seed, kind, t, by_class, average):
    boxes, scores, labels = random_boxes(n, seed, clustered=seed % 2 == 0)
    fast = merge(boxes, scores, labels, kind, t, by_class, average)
    ref = merge_reference(boxes, scores, labels, kind, t, by_class, average)
    assert fast.average == ref.average == average
    assert fast.n_steps == ref.n_steps
    assert torch.equal(fast.pairs, ref.pairs)
    assert torch.equal(fast.step_scores, ref.step_scores)
    assert torch.equal(fast.step_boxes, ref.step_boxes)
    assert torch.equal(fast.step_labels, ref.step_labels)
    assert torch.equal(fast.final.boxes, ref.final.boxes)
    assert torch.equal(fast.final.confs, ref.final.confs)
    assert fast.final.members == ref.final.members
    assert fast.stop_score == ref.stop_score
    # Every step merged a pair whose score was within the threshold; scores of merged pairs
    # are recorded, and the loop stopped because the best remaining pair was above t.
    assert all(s <= t for s in fast.step_scores.tolist())
    if fast.stop_score is not None:
        assert fast.stop_score > t


@pytest.mark.parametrize("average", ["weighted", "plain"])
def test_trace_replay_and_invariants(average):
    boxes, scores, labels = random_boxes(80, 7)
    r = merge(boxes, scores, labels, "corrected", 0.5, average=average)
    assert r.n_steps > 10
    total = float(scores.double().sum())
    for step in [0, 1, r.n_steps // 2, r.n_steps]:
        st = r.state_at(step)
        assert len(st.slots) == 80 - step
        # Confidence is the sum of member scores, so the total is conserved.
        assert float(st.confs.sum()) == pytest.approx(total)
        for conf, members in zip(st.confs, st.members):
            assert float(conf) == pytest.approx(float(scores[members].double().sum()))
        # by_class: members of one box share its label
        for lab, members in zip(st.labels, st.members):
            assert set(labels[members].tolist()) == {int(lab)}
    final = r.state_at(r.n_steps)
    order = torch.argsort(final.confs, descending=True, stable=True)
    torch.testing.assert_close(final.boxes[order], r.final.boxes)
    assert r.remaining[-1] == len(r.final.boxes)
    # Step s merges slots i < j that were both alive just before it.
    for s in range(r.n_steps):
        i, j = r.pairs[s].tolist()
        alive = set(r.state_at(s).slots.tolist())
        assert i < j and i in alive and j in alive
        before = r.state_at(s)
        bi = before.boxes[before.slots.tolist().index(i)]
        bj = before.boxes[before.slots.tolist().index(j)]
        ci = before.confs[before.slots.tolist().index(i)]
        cj = before.confs[before.slots.tolist().index(j)]
        want = (bi + bj) / 2 if average == "plain" else (bi * ci + bj * cj) / (ci + cj)
        torch.testing.assert_close(r.step_boxes[s], want)
    if average == "weighted":
        # A weighted merge's box is the score-weighted mean of every raw box behind it,
        # whatever order the pairs merged in.
        for box, members in zip(r.final.boxes, r.final.members):
            w = scores[members].double()
            torch.testing.assert_close(box, (boxes[members].double() * w[:, None]).sum(0) / w.sum())
    with pytest.raises(ValueError, match="step must be"):
        r.state_at(r.n_steps + 1)


def test_merge_edge_cases():
    z = torch.zeros(0)
    r = merge(z.reshape(0, 4), z, z.long())
    assert r.n_steps == 0 and len(r.final.boxes) == 0
    one = merge(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0.5]), torch.tensor([1]))
    assert one.n_steps == 0 and one.final.confs.tolist() == [0.5]
    # Identical boxes of different classes never merge with by_class=True.
    b = torch.tensor([[0.0, 0, 10, 10]] * 3)
    r = merge(b, torch.ones(3), torch.tensor([0, 1, 2]), "corrected", 10.0)
    assert r.n_steps == 0
    r = merge(b, torch.ones(3), torch.tensor([0, 1, 2]), "corrected", 10.0, by_class=False)
    assert r.n_steps == 2 and len(r.final.boxes) == 1 and float(r.final.confs[0]) == 3.0
    with pytest.raises(ValueError, match="match score"):
        merge(b, torch.ones(3), torch.zeros(3).long(), "nope")
    with pytest.raises(ValueError, match="box average"):
        merge(b, torch.ones(3), torch.zeros(3).long(), average="median")
    # Weighted: a confident box pulls the merged box towards it; zero scores fall back to plain.
    two = torch.tensor([[0.0, 0, 10, 10], [4.0, 0, 14, 10]])
    w = merge(two, torch.tensor([3.0, 1.0]), torch.zeros(2).long(), "corrected", 10.0)
    assert w.final.boxes[0].tolist() == [1.0, 0.0, 11.0, 10.0]
    p = merge(two, torch.tensor([3.0, 1.0]), torch.zeros(2).long(), "corrected", 10.0, average="plain")
    assert p.final.boxes[0].tolist() == [2.0, 0.0, 12.0, 10.0]
    z0 = merge(two, torch.zeros(2), torch.zeros(2).long(), "corrected", 10.0)
    assert z0.final.boxes[0].tolist() == [2.0, 0.0, 12.0, 10.0]
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        merge(torch.zeros(3, 5), torch.ones(3), torch.zeros(3).long())


def test_huge_threshold_merges_each_class_to_one_box():
    boxes, scores, labels = random_boxes(60, 11, classes=4)
    r = merge(boxes, scores, labels, "corrected", 1e9)
    assert sorted(r.final.labels.tolist()) == sorted(set(labels.tolist()))
    for lab in set(labels.tolist()):
        i = r.final.labels.tolist().index(lab)
        assert float(r.final.confs[i]) == pytest.approx(float(scores[labels == lab].double().sum()))


@pytest.mark.parametrize("by_class", [True, False])
def test_initial_matrix_in_bands_equals_literal_loop(monkeypatch, by_class):
    """The initial match scores are computed in bands of rows (bounded memory): with bands of
    a few rows the merge is still the reference's, step for step."""
    import overfeat.merge as m

    boxes, scores, labels = random_boxes(90, 5, clustered=True)
    monkeypatch.setattr(m, "BAND_SCORES", 7 * 90)  # 7 rows per band: 13 bands, the last short
    fast = merge(boxes, scores, labels, "corrected", 0.5, by_class)
    ref = merge_reference(boxes, scores, labels, "corrected", 0.5, by_class)
    assert fast.n_steps == ref.n_steps > 10
    assert torch.equal(fast.pairs, ref.pairs)
    assert torch.equal(fast.final.boxes, ref.final.boxes)


def test_too_many_boxes_is_a_clear_error(monkeypatch):
    import overfeat.merge as m

    boxes, scores, labels = random_boxes(50, 6, clustered=False)
    monkeypatch.setattr(m, "MAX_MERGE_BOXES", 20)
    biggest = int(torch.bincount(labels).max())
    assert biggest > 20
    with pytest.raises(ValueError, match=rf"^{biggest} boxes to merge in one class, more than "
                                         r"the 20 .*raise the minimum window score"):
        merge(boxes, scores, labels, "corrected", 0.5, by_class=True)
    with pytest.raises(ValueError, match=r"^50 boxes to merge, more than the 20"):
        merge(boxes, scores, labels, "corrected", 0.5, by_class=False)


def test_step_replays_the_pair_and_the_state_from_the_trace():
    """MergeResult.step(s): the pair merged at s with their boxes just before (replayed
    against a literal re-run of the first s-1 merges), and why it stopped at the last step."""
    boxes, scores, labels = random_boxes(30, 8, clustered=True)
    r = merge(boxes, scores, labels, "corrected", 0.3)
    assert r.n_steps >= 5
    first = r.step(0)
    assert first.pair is None and first.remaining == 30 and torch.equal(first.alive.slots,
                                                                        torch.arange(30))
    for s in (1, 3, r.n_steps):
        ms = r.step(s)
        before = r.state_at(s - 1)
        i, j = ms.pair
        slots = before.slots.tolist()
        assert torch.equal(ms.b1, before.boxes[slots.index(i)])
        assert torch.equal(ms.b2, before.boxes[slots.index(j)])
        assert ms.conf == pytest.approx(float(before.confs[slots.index(i)]
                                              + before.confs[slots.index(j)]))
        assert ms.remaining == 30 - s and len(ms.alive.members) == 30 - s
    assert r.step(r.n_steps + 5).step == r.n_steps  # clamped
    assert r.step(r.n_steps).stopped.startswith("stopped: the lowest match score left")
    assert r.step(1).stopped == ""


@pytest.mark.parametrize("by_class", [True, False])
@pytest.mark.parametrize("grid", [False, True])
def test_per_class_loops_packing_and_ties_equal_literal_loop(monkeypatch, by_class, grid):
    """The fast merge runs one loop per class on arrays it packs as boxes merge away, then
    interleaves the classes' steps. Packed often (PACK_MIN 2) and on boxes snapped to a coarse
    grid (many equal scores, within and across classes), it takes the reference's steps in the
    reference's order."""
    import overfeat.merge as m

    boxes, scores, labels = random_boxes(160, 12, classes=4, clustered=True)
    if grid:
        boxes = (boxes / 20).round() * 20
        scores = (scores * 4).round() / 4
    monkeypatch.setattr(m, "PACK_MIN", 2)
    for kind, t in [("corrected", 0.3), ("literal", 1e5)]:
        fast = merge(boxes, scores, labels, kind, t, by_class)
        ref = merge_reference(boxes, scores, labels, kind, t, by_class)
        assert fast.n_steps == ref.n_steps > 60
        assert torch.equal(fast.pairs, ref.pairs)
        assert torch.equal(fast.step_scores, ref.step_scores)
        assert torch.equal(fast.step_labels, ref.step_labels)
        assert torch.equal(fast.final.boxes, ref.final.boxes)
        assert fast.final.members == ref.final.members
        assert fast.stop_score == ref.stop_score
    if grid:  # the case is only a test of ties if there are ties
        s = ref.step_scores
        assert len(torch.unique(s)) < len(s)


@pytest.mark.parametrize("by_class", [True, False])
def test_a_stop_that_never_fires_changes_nothing_and_one_that_fires_stops(by_class):
    """merge(stop=...) (the app's background work): asked before each group and every
    STOP_EVERY steps; a stop that never fires gives the same merge, one that fires raises
    Stopped."""
    boxes, scores, labels = random_boxes(300, 5, clustered=True)
    plain = merge(boxes, scores, labels, "corrected", 1e9, by_class)
    asked = []
    quiet = merge(boxes, scores, labels, "corrected", 1e9, by_class,
                  stop=lambda: asked.append(1) and False)
    assert torch.equal(quiet.pairs, plain.pairs)
    assert torch.equal(quiet.final.boxes, plain.final.boxes)
    groups = int(labels.unique().numel()) if by_class else 1
    # a huge threshold: each group of n boxes merges to one in n - 1 steps
    sizes = ([int((labels == g).sum()) for g in labels.unique()] if by_class else [len(labels)])
    assert len(asked) == groups + sum((n - 1) // STOP_EVERY for n in sizes)
    for n in (1, len(asked)):
        count = []
        with pytest.raises(Stopped):
            merge(boxes, scores, labels, "corrected", 1e9, by_class,
                  stop=lambda: count.append(1) or len(count) >= n)
        assert len(count) == n
