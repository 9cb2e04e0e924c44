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
from overfeat.app import figures, share
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
    (im,) = fig["layout"]["images"]  # the image, under every box
    assert im["layer"] == "below"
    alive = [t for t in data if t.get("legendgroup", "").startswith("class")]
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
        assert len(alive) == len(data)  # nothing on top at the raw boxes
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


# --- the step picture (figures.raster: what the page shows) -------------------------------------
from overfeat.app.figures import raster  # noqa: E402


def _canvas(h: int = 300):
    from PIL import Image

    return raster.canvas(Image.new("RGB", (400, 360), (90, 120, 150)), h)


@pytest.mark.parametrize("s", [0, 1, 4, 30])
@pytest.mark.parametrize("max_boxes", [None, 10])
def test_merge_picture_draws_every_box_by_band_and_the_pair_on_top(s, max_boxes):
    r = RESULTS[0]
    ms = r.step(s)
    names = ["cat", "dog", "bird"]
    pic = raster.merge_picture(_canvas(), ms, names, "t", max_boxes)
    items = pic.items()
    alive = [it for it in items if ":" in it["name"] and "left" in it["name"]]
    # Every box left is drawn once (the most confident max_boxes), in the band of its
    # confidence: the band's line width and opacity (naive: each box looked up on its own).
    order = torch.argsort(ms.alive.confs, descending=True, stable=True)
    keep = order if max_boxes is None else order[:max_boxes]
    assert sum(it["x"].count(None) for it in alive) == len(keep)
    want = {}
    for k in keep.tolist():
        conf, c = float(ms.alive.confs[k]), int(ms.alive.labels[k])
        lo, width, opacity = next(b for b in raster.BANDS if conf >= b[0])
        want.setdefault((c, width, opacity), []).append(ms.alive.boxes[k].tolist())
    got = {}
    for it in alive:
        c = names.index(it["name"].split(":")[0])
        n_c = int((ms.alive.labels == c).sum())
        assert it["name"] == f"{names[c]}: {n_c} box{'' if n_c == 1 else 'es'} left"
        xs = [v for v in it["x"] if v is not None]
        ys = [v for v in it["y"] if v is not None]
        boxes = [[xs[5 * b], ys[5 * b], xs[5 * b + 1], ys[5 * b + 2]] for b in range(len(xs) // 5)]
        got.setdefault((c, it["line"]["width"], it["opacity"]), []).extend(boxes)
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}
    # The faint bands under the strong ones.
    widths = [it["line"]["width"] for it in alive]
    assert widths == sorted(widths)
    if s == 0:
        assert len(alive) == len(items)
        return
    i, j = ms.pair
    assert [it["name"] for it in items[-5:]] == [
        "merged box (dashed)", "halo", f"b1 = box #{i} (pair being merged)",
        f"b2 = box #{j} (pair being merged)", "centres of the pair"]
    merged, halo, b1, b2, _ = items[-5:]
    assert (merged["line"]["dash"], b1["line"]["dash"], b2["line"]["dash"]) == ("dash", "solid",
                                                                              "dot")
    assert b1["line"]["color"] != b2["line"]["color"]
    assert np.allclose(b1["x"][:4], [ms.b1[0], ms.b1[2], ms.b1[2], ms.b1[0]])
    assert np.allclose(b2["y"][:4], [ms.b2[1], ms.b2[1], ms.b2[3], ms.b2[3]])
    assert np.allclose(merged["x"][:2], [ms.merged[0], ms.merged[2]])
    # On top in the pixels too: b2's outline was drawn last, so the middle of its first dot
    # on its top edge has b2's colour whatever lies under it (picture px: the canvas sits
    # under a title line).
    im = np.asarray(pic.image)
    x0, y0, x1, _ = (float(v) * pic.scale + o for v, o in zip(ms.b2, pic.origin * 2))
    seg = raster.segments(x0, y0, x1, y0, "dot")[0]
    x, y = round((seg[0] + seg[2]) / 2), round(y0) + round(pic.font_size * 1.6)
    colour = tuple(int(b2["line"]["color"][k:k + 2], 16) for k in (1, 3, 5))
    assert tuple(int(v) for v in im[y, x]) == colour


def _naive_outline(size, box, width):
    """A plain loop: the pixels of a solid outline `width` px wide centred on the integer box's
    edges (odd widths)."""
    w, h = size
    x0, y0, x1, y1 = box
    k = (width - 1) // 2
    out = np.zeros((h, w), dtype=bool)
    for y in range(h):
        for x in range(w):
            outer = x0 - k <= x <= x1 + k and y0 - k <= y <= y1 + k
            inner = x0 + k < x < x1 - k and y0 + k < y < y1 - k
            out[y, x] = outer and not inner
    return out


@pytest.mark.parametrize("seed", range(4))
def test_outline_pixels_against_a_plain_loop(seed):
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for _ in range(5):
        x0, y0 = (int(v) for v in rng.integers(4, 30, 2))
        box = (x0, y0, x0 + int(rng.integers(8, 30)), y0 + int(rng.integers(8, 30)))
        width = int(rng.choice([1, 3, 5]))
        im = Image.new("L", (70, 70), 0)
        raster.outline(ImageDraw.Draw(im), box, 255, width)
        assert np.array_equal(np.asarray(im) > 0, _naive_outline((70, 70), box, width)), \
            (box, width)


@pytest.mark.parametrize("dash", ["dash", "dot"])
def test_dash_segments_against_a_walk_along_the_line(dash):
    rng = np.random.default_rng(7)
    on, off = raster.DASH if dash == "dash" else raster.DOT
    for _ in range(20):
        x0, y0, x1, y1 = rng.uniform(0, 200, 4)
        segs = raster.segments(x0, y0, x1, y1, dash)
        length = np.hypot(x1 - x0, y1 - y0)
        for t in np.arange(0.25, length, 0.5):  # naive: on where t mod (on + off) < on
            p = np.array([x0, y0]) + (np.array([x1, y1]) - [x0, y0]) * t / length
            inside = any(np.hypot(*(p - [a, b])) + np.hypot(*(p - [c, d]))
                         <= np.hypot(c - a, d - b) + 1e-6 for a, b, c, d in segs)
            assert inside == ((t % (on + off)) < on), (t, dash)


def test_final_boxes_picture_ranks_the_final_boxes_over_the_truth():
    r = RESULTS[3]
    names = ["cat", "dog", "bird"]
    truth = [{"name": "dog", "box": [10.0, 20.0, 120.0, 140.0]}]
    from PIL import Image

    base = raster.canvas(Image.new("RGB", (400, 360)), 300, 0.03, 1.0)
    pic = raster.final_boxes_picture(base, r, names, 3, truth, title="t")
    items = pic.items()
    assert items[0]["name"] == "truth: dog" and items[0]["line"]["dash"] == "dot"
    f = r.final
    assert [it["name"] for it in items[1:]] == [
        f"{k + 1}. {names[int(f.labels[k])]} {float(f.confs[k]):.2f}" for k in range(3)]
    assert [it["line"]["width"] for it in items[1:]] == [4, 2, 2]
    for k, it in enumerate(items[1:]):
        assert np.allclose(it["x"][:2], [f.boxes[k][0], f.boxes[k][2]])


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
from apptest_helpers import CHEAP, ctx, markdown, metrics, ok, open_link, pictures  # noqa: E402
from apptest_helpers import figures as page_figures  # noqa: E402

SCENE = {**CHEAP, "page": "merge", "img": "gallery", "g": "3"}  # det scene 1: three objects


def _merge_page(extra: dict | None = None):
    at = ok(open_link({**SCENE, **(extra or {})}))
    assert at.title[0].value == "Merge"
    return at


def _breakdown_rows(at) -> dict[str, str]:
    """The breakdown's table (Markdown, under the main score's step line)."""
    text = next(m for m in markdown(at).split("\n\n") if "| part | value |" in m) \
        if "| part | value |" in markdown(at) else ""
    rows = [line.strip("| ").split(" | ") for line in text.splitlines()[2:] if line.startswith("|")]
    return {a: b for a, b in rows}


@pytest.mark.slow
def test_page_one_figure_pair_on_top_breakdown_and_the_link():
    at = _merge_page()
    c = ctx(at)
    kind = c.knobs.score
    r = c.merge(kind)
    assert r.n_steps >= 3
    figs = [k for k in pictures(at) if k.startswith("merge_fig_")]
    assert figs == [f"merge_fig_{kind}"]  # one main picture: the sidebar's score
    assert not [k for k in page_figures(at) if k.startswith("merge_fig_")]  # no Plotly figure
    for n in (1, 2, 3):
        ok(at.button(key="merge_next").click().run())
        assert at.slider(key="merge_step").value == n
        assert at.query_params["step"] == str(n)  # the link follows the fragment's step
    ms = r.step(3)
    names = [t["name"] for t in pictures(at)[f"merge_fig_{kind}"]["items"]]
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
    assert [k for k in pictures(at) if k.startswith("merge_fig_")] == [f"merge_fig_{other}"]
    assert at.query_params["mview"] == other
    ok(at.button_group(key="merge_view").set_value("both").run())
    assert sorted(k for k in pictures(at) if k.startswith("merge_fig_")) == [
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
def test_a_new_image_starts_its_merge_at_step_0_with_every_class():
    """The step and class filter belong to one image's merge: kept while the image stays (and
    across pages), back to step 0 and every class for another image."""
    at = _merge_page()
    c = ctx(at)
    r = c.merge(c.knobs.score)
    cls = int(r.step_labels[0])
    ok(at.selectbox(key="merge_class").set_value(cls).run())
    for _ in range(2):
        ok(at.button(key="merge_next").click().run())
    step = at.slider(key="merge_step").value
    assert step >= 2 and at.query_params["step"] == str(step)
    ok(at.switch_page("app_pages/overview.py").run())
    ok(at.switch_page("app_pages/merge.py").run())
    assert (at.slider(key="merge_step").value, at.selectbox(key="merge_class").value) == (step, cls)

    g = at.session_state["gallery"]
    ok(at.sidebar.selectbox(key="gallery").set_value(4 if g != 4 else 3).run())
    assert at.slider(key="merge_step").value == 0
    every = share.BY_KEY["merge_class"].default  # the filter's "every class"
    assert at.session_state["merge_class"] == every
    assert (at.query_params["step"], at.query_params["mcls"]) == ("0", str(every))


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


def test_bench_merge_rows_name_the_pictures_bytes_and_chromium_cpu():
    from overfeat.bench import browser_rows

    row = {"interaction": "merge step: Next (Merge)", "median_s": 0.12, "max_s": 0.2,
           "target_s": 0.5, "n": 6, "ws_kb_median": 7.0, "img_kb_median": 56.4,
           "browser_cpu_median_s": 0.214, "server_median_s": 0.03,
           "after_server_median_s": 0.05}
    other = {**row, "interaction": "page switch: Overview", "img_kb_median": 0.0}
    (_, merge_text, _), (_, other_text, _) = browser_rows({"rows": [row, other]})
    assert "7 kB sent + 56 kB of pictures, Chromium CPU 0.21 s" in merge_text
    assert "pictures" not in other_text and "Chromium CPU" not in other_text


def test_final_box_labels_take_the_first_free_place():
    """raster.label_spots against a plain re-reading of its rule on random boxes: each label,
    most confident first, takes the first of its candidate places that stays on the picture and
    overlaps no label placed before it (its first candidate when none is free); so labels that
    found a free place never overlap."""
    rng = np.random.default_rng(7)
    width, height = 420, 320
    moved = 0
    for _ in range(300):
        n = int(rng.integers(1, 9))
        xy = rng.uniform(0, 300, (n, 2))
        boxes = np.concatenate([xy, np.minimum(xy + rng.uniform(20, 160, (n, 2)),
                                               [width, height])], 1)
        sizes = [(int(rng.integers(40, 130)), int(rng.integers(14, 22))) for _ in range(n)]
        spots = raster.label_spots(boxes, sizes, (width, height))
        rects = []
        for i in range(n):
            w, h = sizes[i]
            cands = raster.label_candidates(boxes[i], (w, h))
            free = []
            for x, y in cands:
                r = (x, y, x + w, y + h)
                on = r[0] >= 0 and r[1] >= 0 and r[2] <= width and r[3] <= height
                clear = all(not (r[0] < q[2] and q[0] < r[2] and r[1] < q[3] and q[1] < r[3])
                            for q in rects)
                if on and clear:
                    free.append((x, y))
            assert spots[i] == (free[0] if free else cands[0])
            moved += bool(free) and free[0] != cands[0]
            rects.append((spots[i][0], spots[i][1], spots[i][0] + w, spots[i][1] + h))
    assert moved > 50  # the rule was exercised: many labels left their first place


def test_final_boxes_picture_labels_boxes_with_a_shared_corner_apart():
    """Two final boxes with the same top-left corner (a busy picture): the second label moves
    (below the first box's label it would hide), and the picture records where each went."""
    from types import SimpleNamespace

    from PIL import Image

    from overfeat.boxes import Detections

    boxes = torch.tensor([[40.0, 40.0, 300.0, 260.0], [40.0, 40.0, 200.0, 180.0]])
    final = Detections(boxes=boxes, confs=torch.tensor([40.0, 12.0]),
                       labels=torch.tensor([1, 0]), members=[[0], [1]], method="greedy")
    result = SimpleNamespace(final=final)  # what final_boxes_picture reads of a MergeResult
    base = raster.canvas(Image.new("RGB", (400, 360)), 300, 0.03, 1.0)
    pic = raster.final_boxes_picture(base, result, ["cat", "dog", "bird"], 2)
    (t1, a), (t2, b) = pic.labels
    assert t1.startswith("1. ") and t2.startswith("2. ")
    assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
    ox, oy = base[2]
    first = np.asarray(boxes[0], dtype=np.float64) * base[1] + [ox, oy, ox, oy]
    assert np.allclose(a[:2], raster.label_candidates(first, (a[2] - a[0], a[3] - a[1]))[0])
    assert not np.allclose(b[:2], raster.label_candidates(
        np.asarray(boxes[1], dtype=np.float64) * base[1] + [ox, oy, ox, oy],
        (b[2] - b[0], b[3] - b[1]))[0])  # the second moved from its first place
