"""Merge vs NMS: the greedy merge (literal and corrected) against torchvision's non-maximum
suppression, on the same raw boxes."""

import streamlit as st

from overfeat import compare, figures
from overfeat.multiscale import Analysis
from overfeat.figures import PLOTLY_CONFIG
from app_pages.common import require_boxes, context, show_code

ctx = context()
require_boxes(ctx, "Greedy vs NMS")


@st.cache_data(max_entries=16, show_spinner="Merging and suppressing...")
def methods(model_key: str, image_key: str, key: tuple, _analysis: Analysis, _merges: dict):
    t_lit, t_cor, iou, by_class, average = key[-5:]
    return compare.run_methods(_analysis.table, t_lit, t_cor, iou, by_class, merges=_merges,
                               average=average)


def render() -> None:
    st.title("Greedy vs NMS")
    st.markdown("The paper **accumulates** boxes (greedy merge, section 4.3) where most "
                "detectors **suppress** them (non-maximum suppression keeps the most confident "
                "box and drops those overlapping it by more than an IoU threshold). All four "
                "run on the same raw boxes (the sidebar's scales, top-k and min score).")
    st.session_state.setdefault("cmp_iou", compare.DEFAULT_NMS_IOU)
    # Default: each method's 10 most confident boxes (a scene has at most 5 objects; drawing
    # every leftover box hides the answer); 0 shows all.
    st.session_state.setdefault("cmp_top_n", compare.DEFAULT_TOP_N)
    c1, c2 = st.columns([3, 2])
    iou = c1.slider("NMS IoU threshold (boxes overlapping a kept one by more are dropped)",
                    0.05, 0.95, step=0.05, key="cmp_iou")
    top_n = int(c2.number_input("Count and draw each method's n most confident boxes (0 = all)",
                                0, 1000, step=1, key="cmp_top_n"))
    a = ctx.analysis()
    kn = ctx.knobs
    key = (*kn.analysis_key(), kn.t_literal, kn.t_corrected, round(float(iou), 4), kn.by_class,
           kn.average)
    # The two greedy merges are the app's cached ones (the Merge page shows the same).
    res = methods(ctx.model_key, ctx.image_key, key, a,
                  {kind: ctx.merge(kind) for kind in ("literal", "corrected")})
    rows = compare.compare_rows(res, len(a.table), ctx.truth, a.class_names, top_n)
    st.dataframe(rows, hide_index=True, key="cmp_table")
    if ctx.truth is not None:
        best = [r["method"] for r in rows if r["rank"] == 1]
        st.caption(f"Closest to the truth: **{', '.join(best)}**. Measure (overfeat.compare): "
                   f"VOC matching at IoU >= {compare.MATCH_IOU} (most confident first, same "
                   "class, each object once); methods are ranked by true positives, then fewest "
                   "false positives, then the mean IoU of the matches. "
                   + (f"Each method's {top_n} most confident boxes count." if top_n else
                      "Every final box counts (set n above to count only the most confident)."))
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
        shown = r.head(top_n or figures.DEFAULT_MAX_BOXES)
        with cols[i % 2]:
            # (Below the title, a note would run under Plotly's mode bar in a half-width column.)
            st.caption(f"{name}: the {len(shown)} most confident of {len(r)} boxes drawn"
                       if len(shown) < len(r) else f"{name}: all {len(r)} boxes drawn")
            st.plotly_chart(figures.method_boxes_figure(
                ctx.backdrop(), shown.boxes, shown.confs, shown.labels, a.class_names, ctx.truth,
                title=f"{name}: {len(r)} boxes", max_boxes=None), config=PLOTLY_CONFIG,
                key=f"cmp_fig_{i}")
    show_code(compare.run_methods, compare.nms_boxes, compare.match_truth)


render()
