"""Merge vs NMS: the greedy merge (literal and corrected) against torchvision's non-maximum
suppression, on the same raw boxes."""

import streamlit as st

from overfeat import compare
from overfeat.app import figures
from overfeat.app import state as appstate
from overfeat.multiscale import Analysis
from app_pages.common import chart, context, require_boxes, show_code, table

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


def render() -> None:
    st.title("Greedy vs NMS")
    st.markdown("The paper **accumulates** boxes (greedy merge, section 4.3) where most "
                "detectors **suppress** them (non-maximum suppression keeps the most confident "
                "box and drops those overlapping it by more than an IoU threshold). All four "
                "run on the same raw boxes (the sidebar's scales, top-k and min score).")
    c1, c2 = st.columns([3, 2])
    iou = c1.slider("NMS IoU threshold (boxes overlapping a kept one by more are dropped)",
                    0.05, 0.95, step=0.05, key="cmp_iou")
    min_support = support_ui(c2)
    a = ctx.analysis()
    kn = ctx.knobs
    key = kn.compare_key(iou)
    # The two greedy merges are the app's cached ones (the Merge page shows the same).
    res = methods(ctx.model_key, ctx.image_key, key, a,
                  {kind: ctx.merge(kind) for kind in ("literal", "corrected")})
    rows = compare.compare_rows(res, len(a.table), ctx.truth, a.class_names, min_support)
    table(rows)
    st.caption(SUPPORT_RULE.format(t=f"{min_support:g}"))
    if ctx.truth is not None:
        best = [r["method"] for r in rows if r["rank"] == 1]
        st.caption(f"Closest to the truth: **{', '.join(best)}**. Measure (overfeat.compare): "
                   f"VOC matching at IoU >= {compare.MATCH_IOU} of the counted boxes (most "
                   "confident first, same class, each object once); methods are ranked by true "
                   "positives, then fewest false positives, then the mean IoU of the matches.")
    else:
        st.caption("No ground truth for this image: choose a generated scene in the sidebar to "
                   "rank the methods against its objects.")
    st.caption(f"greedy: t = {kn.t_literal:g} (literal), {kn.t_corrected:g} (corrected), "
               f"{'within a class' if kn.by_class else 'across classes'}, {kn.average} average "
               "of the boxes; confidence = sum of the members' scores. nms: all classes "
               "together (torchvision.ops.nms); batched "
               "nms: within a class (torchvision.ops.batched_nms); confidence = the kept "
               "window's score.")
    cols = st.columns(2)
    for i, (name, r) in enumerate(res.items()):
        counted = r.supported(min_support)
        shown = counted.top(figures.DEFAULT_MAX_BOXES)
        with cols[i % 2]:
            # (Below the title, a note would run under Plotly's mode bar in a half-width column.)
            st.caption(f"{name}: {len(counted)} of {len(r)} boxes have support >= "
                       f"{min_support:g}" + (f"; the {len(shown)} most confident drawn"
                                            if len(shown) < len(counted) else ", all drawn"))
            chart(f"cmp_fig_{i}", figures.method_boxes_figure, ctx.backdrop(), shown.boxes,
                  shown.confs, shown.labels, a.class_names, ctx.truth,
                  title=f"{name}: {len(counted)} boxes counted", max_boxes=None,
                  depends=(name, iou, min_support))
    show_code(compare.compare_rows, compare.run_methods, compare.nms_boxes, compare.match_truth)


render()
