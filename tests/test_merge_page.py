"""The Merge page (issues 27 and 28): the package functions it reads a merge with (the match
score taken apart, each step's pair, clusters, big changes, the jumps, why a side has no step),
each against a deliberately naive loop on random boxes; its figures; and the page in AppTest:
one main figure with the pair on top, the breakdown's numbers, the empty side's line, counts
that agree, the class filter, the jumps and the link."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from overfeat import merge
from overfeat.app import figures
from overfeat.boxes import box_iou


def random_boxes(seed: int, n: int = 60, classes: int = 3):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(4, 2, generator=g) * 300  # a few clusters, so merges chain
    c = centres[torch.randint(0, 4, (n,), generator=g)] + torch.randn(n, 2, generator=g) * 15
    wh = torch.rand(n, 2, generator=g) * 60 + 20
    boxes = torch.cat([c - wh / 2, c + wh / 2], 1).double()
    return boxes, torch.rand(n, generator=g).double() + 0.05, torch.randint(0, classes, (n,),
                                                                            generator=g)


RESULTS = [merge.merge(*random_boxes(s), score=k, threshold=t, average=avg)
           for s, (k, t, avg) in enumerate([("corrected", -0.2, "weighted"),
                                            ("corrected", 0.3, "plain"),
                                            ("literal", 2000.0, "weighted"),
                                            ("corrected", 0.5, "weighted")])]


# --- the match score taken apart -------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_score_parts_add_up_to_match_score(seed):
    rng = np.random.default_rng(seed)
    for _ in range(50):
        xy = rng.uniform(0, 200, (2, 2))
        wh = rng.uniform(0, 80, (2, 2)) * (rng.random() > 0.05)  # some degenerate boxes
        a, b = np.concatenate([xy[0], xy[0] + wh[0]]), np.concatenate([xy[1], xy[1] + wh[1]])
        p = merge.score_parts(a, b)
        for kind in merge.SCORES:
            assert p.score(kind) == pytest.approx(float(merge.match_score(a, b, kind)),
                                                  rel=1e-12, abs=1e-12)
        # The parts, each by hand: centres, sides, intersection, IoU (boxes.box_iou).
        ca, cb = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
        assert p.centre_distance == pytest.approx(np.hypot(*(ca - cb)))
        assert p.mean_side == pytest.approx((np.sqrt(np.prod(a[2:] - a[:2]))
                                             + np.sqrt(np.prod(b[2:] - b[:2]))) / 2)
        assert p.literal == pytest.approx(p.centre_distance + p.intersection)
        iou = float(box_iou(torch.tensor(a)[None], torch.tensor(b)[None])[0, 0])
        assert p.iou == pytest.approx(iou, abs=1e-12)


# --- each step's pair, clusters, big changes -------------------------------------------------
@pytest.mark.parametrize("r", RESULTS, ids=range(len(RESULTS)))
def test_step_members_are_the_replayed_pairs(r):
    assert r.n_steps > 5
    m = merge.step_members(r)
    for s in range(1, r.n_steps + 1):
        ms = r.step(s)
        before = r.state_at(s - 1)
        slots = before.slots.tolist()
        i, j = ms.pair
        assert np.allclose(m.b1[s - 1], ms.b1.numpy()) and np.allclose(m.b2[s - 1], ms.b2.numpy())
        assert m.c1[s - 1] == pytest.approx(float(before.confs[slots.index(i)]))
        assert m.c2[s - 1] == pytest.approx(float(before.confs[slots.index(j)]))


def _naive_final_of_step(r, s: int) -> int:
    """The index of the final box holding step s's merged box (its members)."""
    st_ = r.state_at(s)
    i = r.step(s).pair[0]
    members = set(st_.members[st_.slots.tolist().index(i)])
    hits = [k for k, fm in enumerate(r.final.members) if members <= set(fm)]
    assert len(hits) == 1
    return hits[0]


@pytest.mark.parametrize("r", RESULTS, ids=range(len(RESULTS)))
def test_step_clusters_name_the_final_box_each_merge_builds(r):
    fast = merge.step_clusters(r)
    naive = [_naive_final_of_step(r, s) for s in range(1, r.n_steps + 1)]
    # The same partition of the steps (fast names a slot, naive an index into final).
    pairs = {(int(f), n) for f, n in zip(fast, naive)}
    assert len(pairs) == len(set(fast.tolist())) == len(set(naive))
    assert len(set(naive)) >= 2  # the random scenes give several clusters


@pytest.mark.parametrize("r", RESULTS, ids=range(len(RESULTS)))
def test_big_changes_against_a_loop(r):
    fast = merge.big_changes(r)
    naive = []
    for s in range(1, r.n_steps + 1):
        ms = r.step(s)
        before = r.state_at(s - 1)
        slots = before.slots.tolist()
        c1, c2 = (float(before.confs[slots.index(k)]) for k in ms.pair)
        heavy = ms.b1 if c1 >= c2 else ms.b2
        iou = float(box_iou(ms.merged[None].double(), heavy[None].double())[0, 0])
        naive.append(iou < merge.BIG_CHANGE_IOU)
    assert fast.tolist() == naive


def _naive_next(mask, step, direction, count):
    marked = [s for s in range(1, len(mask) + 1) if mask[s - 1]]
    if direction > 0:
        ahead = [s for s in marked if s > step]
        return ahead[min(count, len(ahead)) - 1] if ahead else None
    if step == 0:
        return None
    behind = [0] + [s for s in marked if s < step]
    return behind[max(len(behind) - count, 0)]


def test_next_step_against_a_loop():
    rng = np.random.default_rng(0)
    for _ in range(300):
        mask = rng.random(int(rng.integers(0, 30))) < rng.random()
        step = int(rng.integers(0, len(mask) + 1))
        for direction in (1, -1):
            for count in (1, 2, 5):
                assert merge.next_step(mask, step, direction, count) == _naive_next(
                    mask, step, direction, count)


@pytest.mark.parametrize("r", RESULTS, ids=range(len(RESULTS)))
def test_jumps_against_a_loop(r):
    clusters = [_naive_final_of_step(r, s) for s in range(1, r.n_steps + 1)]
    big = merge.big_changes(r)
    cls = int(r.step_labels[0])
    for mask in (None, merge.steps_of_class(r, cls)):
        keep = [True] * r.n_steps if mask is None else mask.tolist()
        assert mask is None or keep == [int(v) == cls for v in r.step_labels]
        for step in range(0, r.n_steps + 1):
            want = next((t for t in range(step + 1, r.n_steps + 1) if keep[t - 1] and (
                step == 0 or clusters[t - 1] != clusters[step - 1])), None)
            assert merge.next_other_cluster(r, step, mask) == want
            want = next((t for t in range(step + 1, r.n_steps + 1)
                         if keep[t - 1] and big[t - 1]), None)
            assert merge.next_big_change(r, step, mask) == want


def test_no_steps_reason_says_why():
    boxes, scores, labels = random_boxes(3)
    assert merge.no_steps_reason(RESULTS[0]) is None
    r = merge.merge(boxes, scores, labels, score="literal", threshold=-1.0)
    assert r.n_steps == 0
    lowest = float(merge.merge(boxes, scores, labels, score="literal", threshold=1e12)
                   .step_scores[0])
    assert merge.no_steps_reason(r) == (f"no pair scores <= t = -1; the lowest match score is "
                                        f"{lowest:,.4g}")
    one = merge.merge(boxes[:1], scores[:1], labels[:1])
    assert merge.no_steps_reason(one) == "1 raw box: nothing to merge"
    apart = merge.merge(boxes[:3], scores[:3], torch.tensor([0, 1, 2]))
    assert merge.no_steps_reason(apart) == "no two raw boxes of the same class: nothing may merge"


# --- figures ---------------------------------------------------------------------------------
def _backdrop():
    from PIL import Image

    return figures.backdrop(Image.new("RGB", (400, 360), (90, 120, 150)))


@pytest.mark.parametrize("s", [0, 1, 4])
def test_merge_figure_draws_the_pair_on_top(s):
    r = RESULTS[0]
    ms = r.step(s)
    names = ["cat", "dog", "bird"]
    fig = figures.merge_figure(_backdrop(), ms, names, "t").to_dict()
    data = fig["data"]
    names_drawn = [t.get("name") for t in data]
    assert names_drawn[0] == "image"
    alive = [t for t in data[1:] if t.get("legendgroup", "").startswith("class")]
    # One trace per class and confidence band: every box left drawn, in few traces.
    n_rect = sum(t["x"].count(None) for t in alive)
    assert n_rect == ms.remaining and len(alive) <= 3 * len(names)
    for t in alive:
        if t.get("showlegend", True):
            c = names.index(t["name"].split(":")[0])
            assert t["name"] == f"{names[c]}: {int((ms.alive.labels == c).sum())} boxes left" \
                or t["name"] == f"{names[c]}: 1 box left"
    assert not any("drawn" in (n or "") for n in names_drawn)
    if s == 0:
        assert len(alive) == len(data) - 1  # nothing on top at the raw boxes
        return
    i, j = ms.pair
    top = names_drawn[-5:]
    assert top == ["merged box (dashed)", "halo", f"b1 = box #{i} (pair being merged)",
                   f"b2 = box #{j} (pair being merged)", "centres of the pair"]
    merged, _, b1, b2, centres = data[-5:]
    assert merged["line"]["dash"] == "dash" and b1["line"]["dash"] == "solid" \
        and b2["line"]["dash"] == "dot" and b1["line"]["color"] != b2["line"]["color"]
    assert np.allclose(b1["x"][:4], [ms.b1[0], ms.b1[2], ms.b1[2], ms.b1[0]], rtol=1e-6)
    assert np.allclose(b2["y"][:4], [ms.b2[1], ms.b2[1], ms.b2[3], ms.b2[3]], rtol=1e-6)
    assert np.allclose(merged["x"][:2], [ms.merged[0], ms.merged[2]], rtol=1e-6)
    assert np.allclose(centres["x"], [(ms.b1[0] + ms.b1[2]) / 2, (ms.b2[0] + ms.b2[2]) / 2],
                       rtol=1e-6)


def test_merge_scores_figure_draws_no_empty_panel():
    boxes, scores, labels = random_boxes(3)
    none = merge.merge(boxes, scores, labels, score="literal", threshold=-1.0)
    some = merge.merge(boxes, scores, labels, score="corrected")
    assert figures.merge_scores_figure({"literal": none}, 0) is None
    fig = figures.merge_scores_figure({"literal": none, "corrected": some}, 3).to_dict()
    assert [t["name"] for t in fig["data"]] == ["corrected"]
    assert fig["layout"]["xaxis"]["range"] == [0, some.n_steps]
    assert [a["text"] for a in fig["layout"]["annotations"]] == [
        f"corrected: {some.n_steps} merges, t = {some.threshold:g}"]


# --- the page (AppTest) ----------------------------------------------------------------------
from apptest_helpers import CHEAP, ctx, markdown, metrics, ok, open_link  # noqa: E402
from apptest_helpers import figures as page_figures  # noqa: E402

SCENE = {**CHEAP, "page": "merge", "img": "gallery", "g": "3"}  # det scene 1: three objects


def _merge_page(extra: dict | None = None):
    at = ok(open_link({**SCENE, **(extra or {})}))
    assert at.title[0].value == "Merge"
    return at


def _breakdown_rows(at) -> dict[str, str]:
    df = next(t.value for t in at.table if list(t.value.columns) == ["part", "value"])
    return dict(zip(df["part"], df["value"]))


@pytest.mark.slow
def test_page_one_figure_pair_on_top_breakdown_and_the_link():
    at = _merge_page()
    c = ctx(at)
    kind = c.knobs.score
    r = c.merge(kind)
    assert r.n_steps >= 3
    figs = [k for k in page_figures(at) if k.startswith("merge_fig_")]
    assert figs == [f"merge_fig_{kind}"]  # one main figure: the sidebar's score
    for n in (1, 2, 3):
        ok(at.button(key="merge_next").click().run())
        assert at.slider(key="merge_step").value == n
        assert at.query_params["step"] == str(n)  # the link follows the fragment's step
    ms = r.step(3)
    names = [t.get("name") for t in page_figures(at)[f"merge_fig_{kind}"]["data"]]
    i, j = ms.pair
    assert names[-3:] == [f"b1 = box #{i} (pair being merged)",
                          f"b2 = box #{j} (pair being merged)", "centres of the pair"]
    p = merge.score_parts(ms.b1.numpy(), ms.b2.numpy())
    assert p.score(kind) == pytest.approx(ms.score, rel=1e-9, abs=1e-12)
    rows = _breakdown_rows(at)
    assert rows["centre distance"] == f"{p.centre_distance:,.2f} px"
    assert rows["IoU"] == f"{p.iou:.3f}"
    assert rows["intersection"] == f"{p.intersection:,.0f} px²"
    text = markdown(at)
    assert f"corrected = {p.centre_distance:,.2f} / {p.mean_side:,.1f} − {p.iou:.3f} = " \
           f"**{p.corrected:.4g}**" in text
    assert f"literal = {p.centre_distance:,.2f} + {p.intersection:,.0f} = **{p.literal:,.4g}**" \
        in text
    # The jumps land where the package functions say; the link follows them too.
    want = merge.next_other_cluster(r, 3)
    ok(at.button(key="merge_next_cluster").click().run())
    got = at.slider(key="merge_step").value
    assert got == (want if want is not None else 3) and at.query_params["step"] == str(got)
    want = merge.next_big_change(r, got)
    ok(at.button(key="merge_next_big").click().run())
    assert at.slider(key="merge_step").value == (want if want is not None else got)
    ok(at.button(key="merge_last").click().run())
    assert at.query_params["step"] == str(r.n_steps)
    # The other score, then both: the view is in the link.
    other = next(k for k in merge.SCORES if k != kind)
    ok(at.button_group(key="merge_view").set_value(other).run())
    assert [k for k in page_figures(at) if k.startswith("merge_fig_")] == [f"merge_fig_{other}"]
    assert at.query_params["mview"] == other
    ok(at.button_group(key="merge_view").set_value("both").run())
    assert sorted(k for k in page_figures(at) if k.startswith("merge_fig_")) == [
        "merge_fig_corrected", "merge_fig_literal"]


@pytest.mark.slow
def test_class_filter_steps_through_one_class():
    at = _merge_page()
    c = ctx(at)
    r = c.merge(c.knobs.score)
    labels = r.step_labels.tolist()
    cls = max(set(labels), key=lambda k: (labels.index(k) > 0, labels.count(k)))
    ok(at.selectbox(key="merge_class").set_value(cls).run())
    assert at.query_params["mcls"] == str(cls)
    mask = merge.steps_of_class(r, cls)
    want = [s for s in range(1, r.n_steps + 1) if mask[s - 1]][:2]
    for w in want:
        ok(at.button(key="merge_next").click().run())
        step = at.slider(key="merge_step").value
        assert step == w and int(r.step_labels[step - 1]) == cls
    ok(at.button(key="merge_prev").click().run())
    assert at.slider(key="merge_step").value == (want[0] if len(want) == 2 else 0)


@pytest.mark.slow
def test_an_empty_side_says_why_and_draws_nothing():
    at = _merge_page({"tl": "-1", "mview": "both", "mchart": "1"})
    c = ctx(at)
    lit, cor = c.merge("literal"), c.merge("corrected")
    assert lit.n_steps == 0 and cor.n_steps > 0
    why = merge.no_steps_reason(lit)
    assert why.startswith("no pair scores <= t = -1; the lowest match score is ")
    assert f"**literal**: step 0 of 0, **{len(c.analysis().table)} boxes left**  \n{why}" \
        in [m.value for m in at.markdown]
    scores = page_figures(at)["merge_scores"]
    assert [t["name"] for t in scores["data"]] == ["corrected"]  # no literal panel at all
    assert all("literal" not in a["text"] for a in scores["layout"]["annotations"])


@pytest.mark.slow
@pytest.mark.parametrize("link", [{}, {"min": "1.0"}, {"min": "0.9", "topk": "1"}])
def test_counts_agree(link):
    at = _merge_page(link)
    a = ctx(at).analysis()
    m = metrics(at)
    n_raw = len(a.table)
    assert m["raw boxes"] == str(n_raw)
    classes = len(set(a.table.labels.tolist()))
    assert m["classes in the merge"] == str(classes)
    assert (classes == 0) == (n_raw == 0)  # issue 28: never 0 raw boxes but 5 classes
    for kind in merge.SCORES:
        assert m[f"{kind}: steps"] == str(ctx(at).merge(kind).n_steps)
