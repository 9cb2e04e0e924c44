"""Detection: background-aware detection of several objects, right and wrong boxes marked."""

import streamlit as st

from overfeat import compare, detection
from overfeat.app import figures
from overfeat.app import state as appstate
from overfeat.multiscale import Analysis
from app_pages.common import box_score_ui, chart, context, require_boxes, show_code, table

ctx = context()
require_boxes(ctx, "Detection")


@st.cache_resource(max_entries=32, show_spinner="Merging the boxes of the top classes...")
def detected(model_key: str, image_key: str, key: appstate.DetectionKey, truth_key: str | None,
             _full: Analysis, _truth, _merged):
    """_merged: the app's cached merge of the same boxes (ctx.merge), not run again; truth_key
    says which truth _truth is (a scene's or a photo's, or none)."""
    return detection.detect(_full, min_score=key.analysis.min_score, top_k=key.analysis.top_k,
                            score=key.score, threshold=key.threshold, by_class=key.by_class,
                            average=key.average, truth=_truth,
                            min_confidence=key.min_confidence, merged=_merged,
                            min_box_score=key.min_box_score)


CONFIDENCES = detection.CONFIDENCE_STEPS


def controls() -> tuple[float, float | None]:
    """The page's one setting: what a merged box needs to be a detection, (min confidence,
    min score). For a model whose card sets min_box_score, its probability-like score (0..1,
    the card's default first; detection.answer_boxes); for the others the summed confidence.
    The window threshold and top-k are the sidebar's (one setting each, on every page)."""
    card = ctx.card
    if card.min_box_score is not None:
        return detection.DEFAULT_MIN_CONFIDENCE, box_score_ui(st, card.min_box_score)
    if st.session_state["det_min_conf"] not in CONFIDENCES:
        st.session_state["det_min_conf"] = detection.DEFAULT_MIN_CONFIDENCE
    return float(st.select_slider(
        "Minimum confidence of a detection (sum of its windows' class probabilities)",
        CONFIDENCES, key="det_min_conf",
        help="A merged box is reported when its windows' probabilities add up to at least "
             "this: about that many confident windows must agree. 0 keeps every merged box "
             "(what the mAP on the Experiments page ranks).")), None


def render() -> None:
    st.title("Detection")
    a = ctx.analysis()
    bg = ("The demo model has a **background** class (its last output): it is never a guess, "
          "but it soaks up the probability of windows that see no object, so the object "
          "classes' scores drop there." if detection.background_class(a) is not None else
          "This model has no background class: a window that sees no object gives every "
          "class a low score.")
    st.markdown("Detection (paper section 5): any number of objects, possibly none. " + bg +
                " The final detections are every box the greedy merge leaves (no non-maximum "
                "suppression) whose "
                + ("**score** (the probability-like score below) reaches the minimum below."
                   if ctx.card.min_box_score is not None else
                   "confidence, the sum of its windows' class probabilities, reaches the "
                   "minimum below."))
    min_conf, min_box = controls()
    by_score = min_box is not None
    what = f"score >= {min_box:g}" if by_score else f"confidence >= {min_conf:g}"
    kn = ctx.knobs
    thr, k = kn.min_score, kn.top_k
    st.caption(f"Windows below p = {thr:.2f} give no box and the top-{k} classes of each scale "
               "enter the merge: the sidebar's *min score of a window* and *top-k* (they start "
               "at the settings the Experiments page's detection mAP was measured with"
               + (", or this model's own" if appstate.MODEL_KNOBS.get(ctx.card.name) else "")
               + ").")
    truth = ctx.any_truth
    truth_kind = None if truth is None else ("scene" if ctx.truth is not None else "photo")
    key = kn.detection_key(min_conf, min_box)
    r = detected(ctx.model_key, ctx.image_key, key, truth_kind, a, truth, ctx.merge(kn.score))
    m = st.columns(4)
    m[0].metric("raw boxes kept", len(r.analysis.table))
    m[1].metric("detections", len(r.detections),
                help=f"{r.below} more merged boxes are below {what}")
    if r.match is not None:
        required = [t for t in truth if not t.get("difficult")]
        m[2].metric("true positives", r.match.tp)
        m[3].metric("false positives", r.match.fp)
        source = ("the scene's objects" if truth_kind == "scene" else
                  "the photo's hand-drawn boxes (assets/photos/boxes.json)")
        st.caption(f"**{r.match.tp} of {len(required)} objects found, {len(r.match.missed)} "
                   f"missed, {r.match.fp} false positives**, against {source} (VOC rule: most "
                   f"confident first, IoU >= {compare.MATCH_IOU} with a same-class true object, "
                   "each object matched once; a second box on it is a false positive"
                   + ("; a box on an object marked difficult is ignored" if
                      len(required) < len(truth) else "")
                   + "). Solid green: true positive; dashed red: false positive; dotted "
                   "orange: missed object; dotted white: the true objects.")
    else:
        st.caption("An uploaded or sample image without known objects: choose 'New scene "
                   "from a seed' (kind det) in the sidebar, or a sample photo with hand-drawn "
                   "boxes and a model that knows their classes, to see true and false "
                   "positives.")
    # The figure marks TP and FP, and a box on a difficult object in grey (not counted).
    status = r.match.status if r.match else None
    chart("det_fig", figures.detection_marks_figure, ctx.backdrop(), r.detections, status,
          truth, r.match.missed if r.match else None,
          title=f"{len(r.detections)} detections ({what}; {r.below} below; "
                f"windows >= {thr:.2f}, top-{k})", depends=(min_conf, min_box, truth_kind))
    rows = appstate.detection_rows(r.detections, score=by_score)
    if r.match is not None:
        for row, s, o in zip(rows, r.match.status, r.match.ious):
            row["mark"], row["best IoU"] = ("ignored (difficult)" if s == "ignored" else s), round(o, 3)
    if rows:
        table(rows)
        if by_score:
            st.caption(f"score: the mean over the {a.n_views} views of the best window "
                       "probability in each, in [0, 1]; confidence: the paper's sum of window "
                       "probabilities.")
    else:
        st.info(f"No detection: {r.below} merged boxes are below {what} (windows of the "
                f"top-{k} classes at p >= {thr:.2f}). Lower the minimum "
                f"{'score' if by_score else 'confidence'}, or the sidebar's min score of a "
                "window.")
    background(a, r.analysis.class_names)
    show_code(detection.detect, detection.answer_boxes, compare.match_truth)


def background(a: Analysis, names) -> None:
    """The background class's map at each scale (where windows see no object)."""
    st.subheader("The background class, scale by scale")
    bg = detection.background_class(a)
    if bg is None:
        st.info("This model has no background class (config.background is off): nothing to "
                "show here.")
    else:
        st.caption(f"p({names[bg]}) over the image at each scale (unflipped views): high where "
                   "a window sees no object. Windows are drawn at their centres.")
        chart("det_bg", figures.scale_maps_figure, a, ctx.backdrop(figures.PANEL_SIDE), bg)


render()
