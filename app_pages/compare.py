"""Merge vs NMS: the greedy merge (literal and corrected) against torchvision's non-maximum
suppression, on the same raw boxes."""

import streamlit as st

from overfeat import compare
from overfeat.app import figures
from overfeat.app import state as appstate
from overfeat.multiscale import Analysis
from app_pages.common import (box_score_ui, chart, compact, context, explain, is_phone, notice,
                              require_boxes, settings_box, show_code, table, term, terms)

ctx = context()
require_boxes(ctx, "Greedy vs NMS")


@st.cache_resource(max_entries=32, show_spinner="Merging and suppressing...")
def methods(model_key: str, image_key: str, key: appstate.CompareKey, _analysis: Analysis,
            _merges: dict):
    return compare.run_methods(_analysis.table, key.t_literal, key.t_corrected, key.iou,
                               key.by_class, merges=_merges, average=key.average)


SUPPORT_KEY = "cmp_min_support"
# The page states its counting rule in one sentence (the reasons: overfeat.compare's docstring).
SUPPORT_RULE = (
    "A final box counts when its **support**, the summed class probability of the raw boxes "
    "behind it, is at least {t}: the boxes merged into it (for the greedy merge this is its "
    "confidence) or the kept box and those it suppressed (NMS), one rule for all four methods, "
    "since a merged box's summed confidence and a kept window's score (at most 1) are on "
    "different scales.")


def support_ui(col) -> float:
    """The page's counting threshold (compare.compare_rows' min_support; kept across pages and
    in the link like every setting of overfeat.app.share.PARAMS)."""
    t = float(col.select_slider(
        "Minimum support of a counted box (windows' worth of class probability)",
        compare.SUPPORT_STEPS, key=SUPPORT_KEY,
        help="About how many confident windows must stand behind a final box for it to count "
             "(and be drawn). 0 counts every final box.\n\n**support**: " + term("support")))
    return t


SCORE_RULE = (
    "A final box counts when its **score** is at least {t}: the mean over the {n} views of the "
    "best window probability in each, in [0, 1] (this model's answer, detection.answer_boxes), "
    "for all four methods: an NMS box's score comes from the kept box and those it suppressed. "
    "This model's summed confidences grow with the number of views and windows, so they are "
    "not counted on.")


@st.cache_resource(max_entries=32, show_spinner=False)
def marks(model_key: str, image_key: str, key: appstate.CompareKey, rule: tuple,
          truth_key: str | None, _counted: dict, _names, _truth):
    """Per method: the counted boxes' matches to the truth (compare.match_truth, None without
    one) and, per box, the other methods that lack it (compare.counterparts). rule: (by score,
    threshold) of the counting; truth_key: which truth _truth is."""
    lacking = compare.counterparts(_counted, _names)
    matched = {name: None if _truth is None else compare.match_truth(d, _truth, _names)
               for name, d in _counted.items()}
    return matched, lacking


def render() -> None:
    st.title("Greedy vs NMS")
    intro_box = explain()
    intro_box.markdown("The paper **accumulates** boxes (greedy merge, section 4.3) where most "
                "detectors **suppress** them (NMS): all four methods below run on the same "
                "raw boxes.", help=terms("NMS", "raw box"))
    kn = ctx.knobs
    # In presenter mode and on a phone the methods' settings join the folded explanation.
    with intro_box if compact() else st.expander("The four methods and their settings"):
        st.caption("Non-maximum suppression keeps the most confident box and drops those "
                   "overlapping it by more than an IoU threshold; the greedy merge joins "
                   "boxes into one instead. The raw boxes are the sidebar's (its scales, "
                   "top-k and min score of a window).")
        st.caption(f"greedy: t = {kn.t_literal:g} (literal), {kn.t_corrected:g} (corrected), "
                   f"{'within a class' if kn.by_class else 'across classes'}, {kn.average} "
                   "average of the boxes; confidence = sum of the members' scores. nms: all "
                   "classes together (torchvision.ops.nms); batched nms: within a class "
                   "(torchvision.ops.batched_nms); confidence = the kept window's score.")
    c1, c2 = settings_box("NMS IoU and the counting rule").columns([3, 2])
    iou = c1.slider("NMS IoU threshold (boxes overlapping a kept one by more are dropped)",
                    0.05, 0.95, step=0.05, key="cmp_iou", help=term("IoU"))
    card = ctx.card
    by_score = card.min_box_score is not None
    if by_score:  # the Detection page's setting (one session key, one link name)
        threshold = box_score_ui(c2, card.min_box_score, "Minimum score of a counted box")
    else:
        threshold = support_ui(c2)
    a = ctx.analysis()
    key = kn.compare_key(iou)
    # The two greedy merges are the app's cached ones (the Merge page shows the same).
    res = methods(ctx.model_key, ctx.image_key, key, a,
                  {kind: ctx.merge(kind) for kind in ("literal", "corrected")})
    truth = ctx.any_truth
    truth_kind = None if truth is None else ("scene" if ctx.truth is not None else "photo")
    if by_score:
        scored = appstate.with_scores(res, a.table, a.n_views)
        counted = {name: d.scored(threshold) for name, d in scored.items()}
        rows = compare.compare_rows(counted, len(a.table), truth, a.class_names)
        for row, d in zip(rows, res.values()):
            row["final boxes"] = len(d)
        rule = SCORE_RULE.format(t=f"{threshold:g}", n=a.n_views)
        short = (f"A final box counts when its **score** is at least {threshold:g} (its best "
                 "window's probability, averaged over the views).")
    else:
        counted = {name: r.supported(threshold) for name, r in res.items()}
        rows = compare.compare_rows(res, len(a.table), truth, a.class_names, threshold)
        rule = SUPPORT_RULE.format(t=f"{threshold:g}")
        short = (f"A final box counts when its **support** is at least {threshold:g}: about "
                 "that many confident windows' worth of class probability behind it.")
    # Presenter mode and a phone: the pictures first (a container placed here, drawn below).
    pictures = st.container() if compact() else None
    table(rows)
    st.caption(short, help=terms("score", "views") if by_score else term("support"))
    with st.expander("Why one counting rule for all four methods"):
        st.caption(rule)
    if truth is not None:
        best = [r["method"] for r in rows if r["rank"] == 1]
        source = ("" if ctx.truth is not None else
                  " (the photo's hand-drawn boxes, assets/photos/boxes.json)")
        st.caption(f"Closest to the truth{source}: **{', '.join(best)}**.", help=term("IoU"))
        with st.expander("How the methods are ranked"):
            st.caption(f"Measure (overfeat.compare): VOC matching at IoU >= {compare.MATCH_IOU} "
                       "of the counted boxes (most confident first, same class, each object "
                       "once); methods are ranked by true positives, then fewest false "
                       "positives, then the mean IoU of the matches.")
    else:
        st.caption("No ground truth for this image: choose a generated scene (or a sample "
                   "photo with hand-drawn boxes, for a model that knows their classes) to rank "
                   "the methods against its objects.")
    what = f"score >= {threshold:g}" if by_score else f"support >= {threshold:g}"
    matched, lacking = marks(ctx.model_key, ctx.image_key, key, (by_score, threshold),
                             truth_kind, counted, a.class_names, truth)
    # No empty picture: a method that counts no box gets one line saying why (its rule and the
    # best its boxes reach); the others are drawn two per row, large enough to compare.
    drawn = [(i, name) for i, name in enumerate(res) if len(counted[name])]
    # Nothing to draw (no method counts a box): the table stays the first thing under the
    # title, and the reason follows it.
    with (pictures if drawn else None) or st.container():
        draw_methods(res, counted, scored if by_score else None, drawn, matched, lacking, truth,
                     by_score, threshold, what, a, iou, truth_kind)
    notice(notice_bullets(res, counted, matched, lacking, rows, what))
    show_code(compare.compare_rows, compare.run_methods, compare.nms_boxes, compare.match_truth,
              compare.counterparts)


def draw_methods(res, counted, scored, drawn, matched, lacking, truth, by_score, threshold,
                 what, a, iou, truth_kind) -> None:
    """One line for each method that counts no box, then the others' pictures, two per row.
    Presenter mode and a phone (issue 27): the captions under the pictures, not above them."""
    small = compact()
    nothing = []
    for name in res:
        if not len(counted[name]):
            why = compare.nothing_counted(scored[name] if by_score else res[name],
                                          None if by_score else threshold,
                                          threshold if by_score else None)
            nothing.append(f"**{name}** counts no box: {why}.")
    if not drawn:  # one line for all four methods, and no legend for pictures not drawn
        st.caption("No picture: no method counts a box (" + "; ".join(
            line.replace(" counts no box: ", ": ").rstrip(".") for line in nothing) + ").")
        return
    for line in [] if small else nothing:
        st.caption(line)
    legend = ("Each method's counted boxes"
              + (": solid green right, dashed red wrong, dotted orange a missed object"
                 if truth is not None else ", by class")
              + "; **thick on a white halo**: a box some other method does not keep.")
    if not small:
        st.caption(legend)
    for row_start in range(0, len(drawn), 2):
        cols = st.columns(2)
        for col, (i, name) in zip(cols, drawn[row_start:row_start + 2]):
            d = counted[name]
            shown = d.top(figures.DEFAULT_MAX_BOXES)
            m = matched[name]
            n_lack = sum(1 for x in lacking[name] if x)
            with col:
                line = st.container()
                chart(f"cmp_fig_{i}", figures.method_marks_figure, ctx.backdrop(), shown,
                      a.class_names, None if m is None else m.status[:len(shown)], truth,
                      None if m is None else m.missed, lacking[name][:len(shown)],
                      title=f"{name}: {len(d)} boxes counted", phone=is_phone(),
                      depends=(name, iou, threshold, by_score, truth_kind))
                (st if small else line).caption(
                    f"{name}: {len(d)} of {len(res[name])} boxes have {what}"
                    + (f"; the {len(shown)} {'best' if by_score else 'most confident'} "
                       "drawn" if len(shown) < len(d) else ", all drawn")
                    + (f"; {n_lack} not in every method" if n_lack else ""))
    if small:
        for line in nothing:
            st.caption(line)
        st.caption(legend)


def notice_bullets(res, counted, matched, lacking, rows, what) -> list[str]:
    """The "What to notice" box: this image's counts, rights and wrongs, and differences."""
    out = [f"Boxes counted ({what}): " + ", ".join(f"{n} {len(counted[n])}" for n in res) + "."]
    if all(m is not None for m in matched.values()):
        out.append("Right / wrong boxes against the truth: "
                   + ", ".join(f"{n} {matched[n].tp} / {matched[n].fp}" for n in res)
                   + f" (of {rows[0]['true positives'] + rows[0]['missed']} objects).")
    diff = {n: sum(1 for x in lacking[n] if x) for n in res if len(counted[n])}
    if diff:
        out.append("Boxes not in every method (thick): "
                   + ", ".join(f"{n} {k}" for n, k in diff.items()) + ".")
    empty = [n for n in res if not len(counted[n])]
    if empty:
        out.append(f"{', '.join(empty)} count{'s' if len(empty) == 1 else ''} no box at "
                   f"{what}: the line {'under' if compact() else 'above'} the pictures says how far {'it falls' if len(empty) == 1 else 'they fall'} short.")
    return out[:3] if len(out) <= 3 else out[:2] + [out[-1]]


render()
