"""Merge vs NMS: the greedy merge (literal and corrected) against torchvision's non-maximum
suppression, on the same raw boxes."""

import streamlit as st

from overfeat import compare
from overfeat.app import figures
from overfeat.app import state as appstate
from overfeat.multiscale import Analysis
from app_pages.common import box_score_ui, chart, context, require_boxes, show_code, table

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
             "(and be drawn). 0 counts every final box."))
    return t


SCORE_RULE = (
    "A final box counts when its **score** is at least {t}: the mean over the {n} views of the "
    "best window probability in each, in [0, 1] (this model's answer, detection.answer_boxes), "
    "for all four methods: an NMS box's score comes from the kept box and those it suppressed. "
    "This model's summed confidences grow with the number of views and windows, so they are "
    "not counted on.")


def render() -> None:
    st.title("Greedy vs NMS")
    st.markdown("The paper **accumulates** boxes (greedy merge, section 4.3) where most "
                "detectors **suppress** them (non-maximum suppression keeps the most confident "
                "box and drops those overlapping it by more than an IoU threshold). All four "
                "run on the same raw boxes (the sidebar's scales, top-k and min score).")
    c1, c2 = st.columns([3, 2])
    iou = c1.slider("NMS IoU threshold (boxes overlapping a kept one by more are dropped)",
                    0.05, 0.95, step=0.05, key="cmp_iou")
    card = ctx.card
    by_score = card.min_box_score is not None
    if by_score:  # the Detection page's setting (one session key, one link name)
        threshold = box_score_ui(c2, card.min_box_score, "Minimum score of a counted box")
    else:
        threshold = support_ui(c2)
    a = ctx.analysis()
    kn = ctx.knobs
    key = kn.compare_key(iou)
    # The two greedy merges are the app's cached ones (the Merge page shows the same).
    res = methods(ctx.model_key, ctx.image_key, key, a,
                  {kind: ctx.merge(kind) for kind in ("literal", "corrected")})
    truth = ctx.any_truth
    if by_score:
        scored = appstate.with_scores(res, a.table, a.n_views)
        counted = {name: d.scored(threshold) for name, d in scored.items()}
        rows = compare.compare_rows(counted, len(a.table), truth, a.class_names)
        for row, d in zip(rows, res.values()):
            row["final boxes"] = len(d)
        rule = SCORE_RULE.format(t=f"{threshold:g}", n=a.n_views)
    else:
        counted = {name: r.supported(threshold) for name, r in res.items()}
        rows = compare.compare_rows(res, len(a.table), truth, a.class_names, threshold)
        rule = SUPPORT_RULE.format(t=f"{threshold:g}")
    table(rows)
    st.caption(rule)
    if truth is not None:
        best = [r["method"] for r in rows if r["rank"] == 1]
        source = ("" if ctx.truth is not None else
                  " (the photo's hand-drawn boxes, assets/photos/boxes.json)")
        st.caption(f"Closest to the truth{source}: **{', '.join(best)}**. Measure "
                   f"(overfeat.compare): VOC matching at IoU >= {compare.MATCH_IOU} of the "
                   "counted boxes (most confident first, same class, each object once); "
                   "methods are ranked by true positives, then fewest false positives, then "
                   "the mean IoU of the matches.")
    else:
        st.caption("No ground truth for this image: choose a generated scene (or a sample "
                   "photo with hand-drawn boxes, for a model that knows their classes) in the "
                   "sidebar to rank the methods against its objects.")
    st.caption(f"greedy: t = {kn.t_literal:g} (literal), {kn.t_corrected:g} (corrected), "
               f"{'within a class' if kn.by_class else 'across classes'}, {kn.average} average "
               "of the boxes; confidence = sum of the members' scores. nms: all classes "
               "together (torchvision.ops.nms); batched "
               "nms: within a class (torchvision.ops.batched_nms); confidence = the kept "
               "window's score.")
    what = f"score >= {threshold:g}" if by_score else f"support >= {threshold:g}"
    cols = st.columns(2)
    for i, (name, r) in enumerate(res.items()):
        shown = counted[name].top(figures.DEFAULT_MAX_BOXES)
        n = len(counted[name])
        with cols[i % 2]:
            if n == 0 and by_score:  # no empty plot: one line says why (the support
                # rule's image without boxes stays, pinned by the lesson tests)
                st.caption(f"{name}: none of its {len(r)} boxes has {what}: nothing to draw.")
                continue
            # (Below the title, a note would run under Plotly's mode bar in a half-width column.)
            st.caption(f"{name}: {n} of {len(r)} boxes have {what}"
                       + (f"; the {len(shown)} {'best' if by_score else 'most confident'} drawn"
                          if len(shown) < n else ", all drawn"))
            chart(f"cmp_fig_{i}", figures.method_boxes_figure, ctx.backdrop(), shown.boxes,
                  shown.score if by_score else shown.confs, shown.labels, a.class_names, truth,
                  title=f"{name}: {n} boxes counted", max_boxes=None,
                  depends=(name, iou, threshold, by_score))
    show_code(compare.compare_rows, compare.run_methods, compare.nms_boxes, compare.match_truth)


render()
