"""Detection: background-aware detection of several objects, right and wrong boxes marked."""

import streamlit as st

from overfeat import appstate, compare, detection, figures
from overfeat.multiscale import Analysis
from overfeat.figures import PLOTLY_CONFIG
from app_pages.common import require_boxes, context, show_code

ctx = context()
require_boxes(ctx, "Detection")


@st.cache_data(max_entries=16, show_spinner="Merging the boxes of the top classes...")
def detected(model_key: str, image_key: str, key: tuple, _full: Analysis, _truth):
    min_score, top_k, score, t, by_class, average = key[-6:]
    return detection.detect(_full, min_score=min_score, top_k=top_k, score=score, threshold=t,
                            by_class=by_class, average=average, truth=_truth)


def controls() -> tuple[float, int]:
    st.session_state.setdefault("det_min_score", detection.DEFAULT_MIN_SCORE)
    st.session_state.setdefault("det_top_k", detection.DEFAULT_TOP_K)
    c1, c2 = st.columns(2)
    thr = c1.slider("Score threshold: windows below this class probability give no box",
                    0.0, 1.0, step=0.05, key="det_min_score")
    k = c2.slider("Classes per scale (top-k) whose boxes are merged", 1, 5, key="det_top_k")
    return float(thr), int(k)


def render() -> None:
    st.title("Detection")
    st.markdown("Detection (paper section 4.6): any number of objects, possibly none. The demo "
                "model has a **background** class (its last output): it is never a guess, but "
                "it soaks up the probability of windows that see no object, so the object "
                "classes' scores drop there. The final detections are every box the greedy "
                "merge leaves (no non-maximum suppression). The sliders start at the settings "
                "the Experiments page's detection mAP was measured with.")
    thr, k = controls()
    a = ctx.analysis()
    kn = ctx.knobs
    key = (*kn.analysis_key(), round(thr, 6), k, kn.score, kn.threshold(kn.score), kn.by_class,
           kn.average)
    r = detected(ctx.model_key, ctx.image_key, key, a, ctx.truth)
    names = r.analysis.class_names
    m = st.columns(4)
    m[0].metric("raw boxes kept", len(r.analysis.table))
    m[1].metric("detections", len(r.detections))
    if r.match is not None:
        m[2].metric("true positives", r.match.tp)
        m[3].metric("false positives", r.match.fp)
        st.caption(f"**{r.match.tp} of {len(ctx.truth)} objects found, {len(r.match.missed)} "
                   f"missed, {r.match.fp} false positives** (VOC rule: most confident first, "
                   f"IoU >= {compare.MATCH_IOU} with a same-class true object, each object "
                   "matched once; a second box on it is a false positive). Solid green: true "
                   "positive; dashed red: false positive; dotted orange: missed object; dotted "
                   "white: the scene's objects.")
    else:
        st.caption("An uploaded or sample image without known objects: choose 'New scene "
                   "from a seed' (kind det) in the sidebar to see true and false positives.")
    status = r.match.status if r.match else None
    st.plotly_chart(figures.detection_marks_figure(
        ctx.backdrop(), r.detections, status, ctx.truth, r.match.missed if r.match else None,
        title=f"{len(r.detections)} detections ({kn.score} merge, windows >= {thr:.2f}, "
              f"top-{k} classes per scale)"), config=PLOTLY_CONFIG, key="det_fig")
    rows = appstate.detection_rows(r.detections)
    if status is not None:
        for row, s, o in zip(rows, status, r.match.ious):
            row["mark"], row["best IoU"] = s, round(o, 3)
    if rows:
        st.dataframe(rows, hide_index=True)
    else:
        st.info(f"No window of the top-{k} classes reaches p = {thr:.2f}, so there is nothing "
                "to merge: lower the score threshold.")

    st.subheader("The background class, scale by scale")
    bg = detection.background_class(a)
    if bg is None:
        st.info("This model has no background class (config.background is off): nothing to "
                "show here.")
    else:
        st.caption(f"p({names[bg]}) over the image at each scale (unflipped views): high where "
                   "a window sees no object. Windows are drawn at their centres.")
        st.plotly_chart(figures.scale_maps_figure(a, ctx.backdrop(), bg), config=PLOTLY_CONFIG,
                        key="det_bg")
    show_code(detection.detect, compare.match_truth)


render()
