"""Issue 28, Greedy vs NMS and Regressor: the methods drawn large enough to compare (right and
wrong boxes, missed objects, the boxes some other method lacks), no empty picture (a method
that counts no box gets one line saying why), one-line captions with the details in expanders,
jargon explained where it first appears, and a "What to notice" box after the main figure.
"""

from __future__ import annotations

import random

import pytest
import torch

from apptest_helpers import ctx, figures, ok, page, start, traces
from overfeat import compare
from overfeat.app import figures as figs
from overfeat.app import state as appstate
from overfeat.app.tables import TABLE_CLASS
from overfeat.boxes import Detections
from test_detection_page import main_order, naive_iou

MAX_CAPTION = 240  # characters: about two lines of a caption in the 1000 px main column
LOC_SEED = 3  # a one-object loc scene (tests/test_lesson_pages.py's LOC_SEEDS)


# --- package --------------------------------------------------------------------------------
def naive_counterparts(counted: dict[str, Detections], thr: float = 0.5):
    """For each method's box, the other methods (with boxes) without a box for it: VOC
    matching written out with loops (most confident first, the best same-class box, each
    box of the other method taken once; ties: input order)."""
    out = {}
    others = [n for n, d in counted.items() if len(d)]
    for m, d in counted.items():
        lacking = [[] for _ in range(len(d))]
        for n in others:
            if n == m:
                continue
            ref = counted[n]
            order = sorted(range(len(d)), key=lambda i: -float(d.confs[i]))
            taken = set()
            for i in order:
                best, bj = -1.0, -1
                for j in range(len(ref)):
                    if int(ref.labels[j]) != int(d.labels[i]):
                        continue
                    o = naive_iou(d.boxes[i].tolist(), ref.boxes[j].tolist())
                    if o > best:
                        best, bj = o, j
                if bj >= 0 and best >= thr and bj not in taken:
                    taken.add(bj)
                else:
                    lacking[i].append(n)
        out[m] = lacking
    return out


def random_dets(rng: random.Random, centres, name: str) -> Detections:
    boxes, confs, labels = [], [], []
    for _ in range(rng.randint(0, 6)):
        x, y = rng.choice(centres) if rng.random() < 0.7 else (rng.uniform(0, 100), rng.uniform(0, 100))
        w, h = rng.uniform(10, 30), rng.uniform(10, 30)
        x, y = x + rng.uniform(-4, 4), y + rng.uniform(-4, 4)
        boxes.append((x, y, x + w, y + h))
        confs.append(round(rng.uniform(0, 5), 1))
        labels.append(rng.randrange(2))
    return Detections(torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4), confs, labels,
                      method=name)


@pytest.mark.parametrize("seed", range(25))
def test_counterparts_equal_a_naive_loop(seed):
    rng = random.Random(seed)
    centres = [(rng.uniform(0, 80), rng.uniform(0, 80)) for _ in range(3)]
    counted = {m: random_dets(rng, centres, m) for m in compare.METHODS}
    got = compare.counterparts(counted, ["a", "b"])
    want = naive_counterparts(counted)
    assert got == want
    # A method's box lacks in itself never; a method with no box is never named.
    for m, lack in got.items():
        assert all(m not in x for x in lack)
        assert all(len(counted[n]) for x in lack for n in x)


def test_nothing_counted_says_the_rule_and_the_best_reached():
    d = Detections(torch.tensor([[0, 0, 10, 10], [5, 5, 20, 20.0]]), [0.4, 0.9], [0, 0],
                   support=torch.tensor([0.4, 0.9], dtype=torch.float64),
                   score=torch.tensor([0.2, 0.3], dtype=torch.float64))
    assert compare.nothing_counted(d, 30.0) == (
        "no box has support >= 30: the best of its 2 final boxes has support 0.90")
    assert compare.nothing_counted(d, min_score=0.5) == (
        "no box has score >= 0.5: the best of its 2 final boxes scores 0.30")
    empty = d.take([])
    assert compare.nothing_counted(empty, 30.0) == "no box has support >= 30: it leaves no final box"


def test_method_marks_figure_draws_each_box_once_and_marks_the_differences():
    bd = figs.backdrop(appstate.make_scene("det", 0)[0])
    d = Detections(torch.tensor([[10, 10, 60, 60], [70, 20, 120, 80], [12, 12, 58, 61.0]]),
                   [9.0, 5.0, 2.0], [0, 1, 0])
    truth = [{"name": "a", "box": (10, 10, 60, 60)}, {"name": "b", "box": (150, 150, 200, 200)}]
    status, missed = ["TP", "FP", "FP"], [1]
    lacking = [[], ["nms"], ["nms", "batched nms"]]
    fig = figs.method_marks_figure(bd, d, ["a", "b"], status, truth, missed, lacking,
                                   title="x").to_plotly_json()
    boxes = [t for t in fig["data"] if t.get("meta") is not None]
    assert sorted(i for t in boxes for i in t["meta"]) == [0, 1, 2]  # each box once
    for t in boxes:
        kinds = {status[i] for i in t["meta"]}
        assert len(kinds) == 1
        differs = {bool(lacking[i]) for i in t["meta"]}
        assert len(differs) == 1
        assert t["line"]["width"] == (4.5 if differs.pop() else 2)
        assert t["line"]["color"] == figs.MARK_COLORS[kinds.pop()]
        assert sum(1 for v in t["x"] if v is None) == len(t["meta"])  # one rectangle each
    halos = [t for t in fig["data"] if t.get("name") == "halo"]
    assert len(halos) == 1  # one trace of the two FP boxes some method lacks
    texts = [x for t in fig["data"] if t.get("mode") == "text" for x in t["text"]]
    assert texts.count("missed: b") == 1 and "a" in texts
    assert ["#2 b", "#3 a"] == [x for x in texts if x.startswith("#")]  # the differing ones
    hover = next(t for t in fig["data"] if t.get("name") == "box labels")["hovertext"]
    assert hover[2].endswith("no such box in nms, batched nms") and "every other" in hover[0]


# --- the page -------------------------------------------------------------------------------
def top_captions(at) -> list[str]:
    """The captions of the page's main area outside expanders (the sidebar, the header and
    the package code's names left out)."""
    inner = {id(c) for e in at.main.expander for c in e.caption}
    return [c.value for c in at.main.caption if id(c) not in inner]


@pytest.fixture(scope="module")
def loc_at():
    at = start(None, all_windows=False)
    ok(at.sidebar.radio(key="img_source").set_value("generate").run())
    at.sidebar.radio(key="scene_kind").set_value("loc")
    ok(at.sidebar.number_input(key="scene_seed").set_value(LOC_SEED).run())
    return ok(page(at, "compare"))


@pytest.mark.slow
def test_no_empty_plot_a_line_says_why(loc_at):
    """(Changed deliberately, issue 28: a method that counts no box had an image with no box
    on it, "greedy literal: 0 boxes counted"; now one line gives its rule and its best.)"""
    at = loc_at
    c = ctx(at)
    a, kn = c.analysis(), c.knobs
    t = at.select_slider(key="cmp_min_support").value
    res = compare.run_methods(a.table, kn.t_literal, kn.t_corrected, at.slider(key="cmp_iou").value,
                              kn.by_class)
    counted = {m: r.supported(t) for m, r in res.items()}
    empty = [m for m in compare.METHODS if not len(counted[m])]
    assert empty, "the literal merge counts no box on this scene (its boxes stay single windows)"
    fig = figures(at)
    assert sorted(fig) == sorted(f"cmp_fig_{i}" for i, m in enumerate(compare.METHODS)
                                 if len(counted[m]))
    for m in empty:
        line = f"**{m}** counts no box: {compare.nothing_counted(res[m], t)}."
        assert line in top_captions(at)
    for i, m in enumerate(compare.METHODS):
        if m in empty:
            continue
        f = fig[f"cmp_fig_{i}"]
        assert f["layout"]["title"]["text"] == f"{m}: {len(counted[m])} boxes counted"
        drawn = sorted(j for tr in traces(f) if tr.get("meta") is not None for j in tr["meta"])
        assert drawn == list(range(min(len(counted[m]), figs.DEFAULT_MAX_BOXES)))
        # Marked against the scene's object as match_truth marks them.
        mt = compare.match_truth(counted[m], c.truth, a.class_names)
        for tr in traces(f):
            if tr.get("meta") is not None:
                assert {mt.status[j] for j in tr["meta"]} == {
                    next(s for s, n in figs.MARK_NAMES.items() if tr["name"].startswith(n))}


@pytest.mark.slow
def test_notice_after_the_figures_with_the_counts(loc_at):
    at = loc_at
    c = ctx(at)
    a, kn = c.analysis(), c.knobs
    t = at.select_slider(key="cmp_min_support").value
    res = compare.run_methods(a.table, kn.t_literal, kn.t_corrected, at.slider(key="cmp_iou").value,
                              kn.by_class)
    order = main_order(at)
    last_fig = max(i for i, (k, _) in enumerate(order) if k == "plotly_chart")
    text = order[last_fig + 1][1]
    assert text.startswith("**What to notice**")
    assert (f"Boxes counted (support >= {t:g}): "
            + ", ".join(f"{m} {int((res[m].support >= t).sum())}" for m in compare.METHODS)) in text
    rights = ", ".join(f"{m} {compare.match_truth(res[m].supported(t), c.truth, a.class_names).tp}"
                       f" / {compare.match_truth(res[m].supported(t), c.truth, a.class_names).fp}"
                       for m in compare.METHODS)
    assert rights in text


@pytest.mark.slow
@pytest.mark.parametrize("name", ["compare", "regressor"])
def test_captions_are_short_with_the_rest_in_expanders(loc_at, name):
    at = ok(page(loc_at, name))
    long = [x for x in top_captions(at) if len(x) > MAX_CAPTION]
    assert not long, long
    md = [m.value for m in at.main.markdown if len(m.value) > MAX_CAPTION]
    assert not md, md
    assert len(at.main.expander) >= 2  # the details, besides the package code
    # The details are there, one click away.
    inner = " ".join(c.value for e in at.main.expander for c in e.caption)
    if name == "compare":
        assert "one rule for all four methods" in inner and "torchvision.ops.nms" in inner
    else:
        assert "window sides" in inner and "mirrored image" in inner


@pytest.mark.slow
def test_jargon_is_explained_where_it_first_appears(loc_at):
    from overfeat import glossary

    at = ok(page(loc_at, "compare"))
    helps = " ".join(x.proto.help for x in list(at.main.markdown) + list(at.main.caption)
                     if getattr(x.proto, "help", ""))
    helps += " ".join(w.help or "" for w in [at.slider(key="cmp_iou"),
                                             at.select_slider(key="cmp_min_support")])
    for t in ("NMS", "raw box", "IoU", "support"):
        assert glossary.help_for(t) in helps, t
    at = ok(page(at, "regressor"))
    helps = " ".join(x.proto.help for x in list(at.main.markdown) + list(at.main.caption)
                     if getattr(x.proto, "help", ""))
    helps += " ".join(str(getattr(w.proto, "help", "")) for w in list(at.main.button_group)
                      + list(at.main.multiselect) + list(at.main.metric))
    for t in ("raw box", "top-k", "min score of a window", "views", "slot", "offset"):
        assert glossary.help_for(t) in helps, t


@pytest.mark.slow
def test_regressor_notice_after_its_figure(loc_at):
    at = ok(page(loc_at, "regressor"))
    order = main_order(at)
    i = order.index(("plotly_chart", "reg_click"))
    j = next(j for j in range(i + 1, len(order)) if order[j][1].startswith("**What to notice**"))
    assert j - i <= 4, ("right after the figure and its three metrics", order[i:j + 1])
    text = order[j][1]
    c = ctx(at)
    t = c.analysis().table
    assert f"{len(t):,} of {len(t):,} raw boxes match the filters" in text
    per = {s: int((t.scale == s).sum()) for s in c.analysis().settings.scales}
    most = max(per, key=lambda s: (per[s], -s))
    assert f"Scale {most + 1} gives the most ({per[most]:,})" in text
    pick = at.selectbox(key="reg_pick").value
    assert appstate.box_label(t, pick, c.analysis().class_names) in text


@pytest.mark.parametrize("present", [False, True])
def test_no_method_counts_a_box_one_line_after_the_table(present):
    """Two scales, no flips: no box of any method reaches support 30. One line gives every
    method's reason (no four lines and a legend for pictures that are not drawn), and it
    comes after the table, which stays the first thing under the title in presenter mode too
    (the presenter walk found the table 585 px down, under four lines and a legend)."""
    from apptest_helpers import CHEAP, open_link

    at = ok(open_link({**CHEAP, "page": "compare", **({"present": "1"} if present else {})}))
    c = ctx(at)
    a, kn = c.analysis(), c.knobs
    t = at.select_slider(key="cmp_min_support").value
    res = compare.run_methods(a.table, kn.t_literal, kn.t_corrected,
                              at.slider(key="cmp_iou").value, kn.by_class)
    assert all(not len(r.supported(t)) for r in res.values())  # the case under test
    assert figures(at) == {}
    lines = [x for x in top_captions(at) if x.startswith("No picture: no method counts a box")]
    assert len(lines) == 1
    for m in compare.METHODS:
        assert f"**{m}**: {compare.nothing_counted(res[m], t)}" in lines[0]
    assert not any("counts no box" in x or "counted boxes" in x for x in top_captions(at))
    def is_table(el) -> bool:  # (app_pages/common.table: one st.html element)
        return getattr(el, "type", "") == "html" and f'class="{TABLE_CLASS}"' in el.value

    order = ["table" if is_table(el) else "caption" for el in at.main
             if is_table(el) or getattr(el, "value", None) == lines[0]]
    assert order == ["table", "caption"], order
