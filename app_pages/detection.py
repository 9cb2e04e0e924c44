"""Detection: background-aware detection of several objects, right and wrong boxes marked."""

import math

import streamlit as st

from overfeat import compare, detection, evaluate
from overfeat.app import figures
from overfeat.app import state as appstate
from overfeat.multiscale import Analysis
from app_pages import common
from app_pages.common import (box_score_ui, chart, compact, context, explain, is_phone, notice,
                              require_boxes, settings_box, show_code, table, term, terms)

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


# --- the current scene set's precision-recall curves ------------------------------------------
def scene_kind(image_key: str) -> str | None:
    """'det' or 'loc' for a generated scene (a sample or a seed's), else None."""
    parts = image_key.split(":")
    return parts[1] if parts[0] == "scene" and len(parts) > 2 else None


def merge_kw(kn: appstate.Knobs) -> dict:
    """The Analysis.merge keywords of the page's merge (the sidebar's)."""
    return dict(score=kn.score, threshold=kn.threshold(kn.score), by_class=kn.by_class,
                average=kn.average)


@st.cache_resource(max_entries=16, show_spinner="Evaluating the sample scenes...")
def scene_set_ap(model_key: str, kind: str, knobs: appstate.Knobs, names: tuple, obj: tuple,
                 _model):
    """evaluate's detection report and precision-recall curves of the sample scenes of `kind`
    (appstate.GALLERY) with this model and the sidebar's settings. Each scene's analysis and
    merge are the app's cached ones (common.full_analysis, derived, merged: the prefetch of
    the gallery computes them while a sample scene is on screen); its detections are every
    final box of the merge, ranked by confidence, as `python -m overfeat evaluate` ranks them.
    names, obj: the model's class names and object classes. ValueError: the model does not
    know the scenes' classes (said before any scene is analysed), or too many boxes to merge."""
    scenes = [g for g in appstate.GALLERY if g[0] == kind]
    truths = [evaluate.scene_truth(common.scene(*g)[1], names) for g in scenes]
    dets = []
    for g in scenes:
        key = appstate.scene_key(*g)
        full = common.full_analysis(model_key, key, knobs.fine, knobs.rule, _model,
                                    common.scene(*g)[0])
        a = common.derived(model_key, key, knobs.analysis_key(), full, knobs.settings())
        dets.append(common.merged(model_key, key, knobs.merge_key(knobs.score), a).final.as_tuples())
    return (evaluate.detection_report(dets, truths, names, obj),
            evaluate.detection_curves(dets, truths, obj), len(truths), names)


@st.cache_resource(max_entries=8, show_spinner="Evaluating the sample photos...")
def photo_set_ap(model_key: str, knobs: appstate.Knobs, names: tuple, obj: tuple, _model):
    """The same for the sample photos with hand-drawn boxes (assets/photos/boxes.json): their
    analyses are not kept (eight photos would push every other image out of the app's
    cache), only their final boxes (evaluate.images_detections). names, obj: the model's class
    names and object classes."""
    idx = [i for i in range(len(appstate.PHOTOS)) if common.photo_truth(i) is not None]
    truths = [evaluate.scene_truth(common.photo_truth(i), names) for i in idx]
    dets = evaluate.images_detections(_model, [common.sample_photo(i) for i in idx],
                                      knobs.settings(), merge_kw(knobs))
    return (evaluate.detection_report(dets, truths, names, obj),
            evaluate.detection_curves(dets, truths, obj), len(truths), names)


def image_set(a: Analysis):
    """(report, curves, images, class names, what the set is) for the current image's set, or
    (None, ..., why there is no curve)."""
    kn = ctx.knobs
    kind = scene_kind(ctx.image_key)
    try:
        if kind is not None:
            n = sum(1 for g in appstate.GALLERY if g[0] == kind)
            return (*scene_set_ap(ctx.model_key, kind, kn, tuple(a.class_names),
                                  tuple(a.object_classes), ctx.model),
                    f"the {n} sample {kind} scenes")
        if ctx.image_key.startswith("photo:") and ctx.photo_truth is not None:
            return (*photo_set_ap(ctx.model_key, kn, tuple(a.class_names),
                                  tuple(a.object_classes), ctx.model),
                    "the sample photos with hand-drawn boxes")
    except ValueError as e:  # classes the model does not know, or too many boxes to merge
        why = (f"{ctx.model_desc} does not know the sample scenes' classes: choose the "
               "pictogram checkpoint for them." if "not among the model's classes" in str(e)
               else f"the set's boxes cannot be merged at these settings ({e}).")
        return None, None, 0, None, " ".join(why.split())
    if ctx.image_key.startswith("photo:"):
        why = ("this model does not know the classes of the sample photos' hand-drawn boxes: "
               "the Objects model does.")
    elif ctx.is_photo:
        why = "an uploaded photo has no known objects to rank boxes against."
    else:
        why = "this image has no known objects."
    return None, None, 0, None, why


def pr_section(report, curves, n_images: int, names, what: str) -> None:
    kn = ctx.knobs
    if report is None:  # `what` says why
        st.subheader("Precision and recall")
        st.caption(f"No precision-recall curve: {what}", help=term("AP"))
        return
    st.subheader("Precision and recall on " + what)
    m_ap = report["mAP"]
    diff = evaluate.detection_differences(kn.settings(), merge_kw(kn))
    st.caption(f"Every merged box of the {n_images} images, most confident first, matched as "
               f"above (IoU >= {compare.MATCH_IOU}): `python -m overfeat evaluate`'s **AP** "
               + ("at its own settings." if not diff else
                  f"at the sidebar's settings ({', '.join(diff)}; evaluate's differ)."),
               help=terms("AP", "IoU", "confidence"))
    aps = {}
    index = {n: i for i, n in enumerate(names)}
    for name, v in report["per_class"].items():
        aps[index[name]] = v["ap"] if v["ap"] is not None else math.nan
    title = (f"{what}: mAP {m_ap:.3f}" if m_ap is not None else f"{what}: no objects")
    chart("det_pr", figures.pr_curve_figure, curves, aps, names, title=title,
          phone=is_phone(), depends=(what, n_images, m_ap))
    table([{"class": name, "AP": round(v["ap"], 3), "objects": v["positives"],
            "boxes": v["detections"], "right boxes": v["true_positives"]}
           for name, v in report["per_class"].items() if v["positives"]])
    stray = [f"{name} {v['detections']}" for name, v in report["per_class"].items()
             if not v["positives"] and v["detections"]]
    st.caption("Solid: precision and recall after each box; dashed: the envelope whose area "
               "is the AP." + (f" Boxes of classes no image holds (all wrong; no AP, left out "
                               f"of the mean): {', '.join(stray)}." if stray else ""))


def render() -> None:
    st.title("Detection")
    a = ctx.analysis()
    bg = ("The demo model has a **background** class (its last output): it is never a guess, "
          "but it soaks up the probability of windows that see no object, so the object "
          "classes' scores drop there." if detection.background_class(a) is not None else
          "This model has no background class: a window that sees no object gives every "
          "class a low score.")
    explain().markdown("Detection (paper section 5): any number of objects, possibly none. " + bg +
                " The final detections are every box the greedy merge leaves (no non-maximum "
                "suppression) whose "
                + ("**score** (the probability-like score below) reaches the minimum below."
                   if ctx.card.min_box_score is not None else
                   "confidence, the sum of its windows' class probabilities, reaches the "
                   "minimum below."), help=terms("NMS", "score" if ctx.card.min_box_score
                                                 is not None else "confidence"))
    box = settings_box("Minimum of a detection")
    with box:
        min_conf, min_box = controls()
    by_score = min_box is not None
    what = f"score >= {min_box:g}" if by_score else f"confidence >= {min_conf:g}"
    kn = ctx.knobs
    thr, k = kn.min_score, kn.top_k
    box.caption(f"Windows below p = {thr:.2f} give no box and the top-{k} classes of each scale "
               "enter the merge: the sidebar's *min score of a window* and *top-k* (they start "
               "at the settings the Experiments page's detection mAP was measured with"
               + (", or this model's own" if appstate.MODEL_KNOBS.get(ctx.card.name) else "")
               + ").", help=terms("min score of a window", "top-k"))
    truth = ctx.any_truth
    truth_kind = None if truth is None else ("scene" if ctx.truth is not None else "photo")
    key = kn.detection_key(min_conf, min_box)
    r = detected(ctx.model_key, ctx.image_key, key, truth_kind, a, truth, ctx.merge(kn.score))
    # Presenter mode and a phone (issue 27): the figure first (a container placed here, drawn
    # below), then the counts; on a phone the four metrics share a wrapping line (common.row).
    picture = st.container() if compact() else None
    m = common.row([1, 1, 1, 1])
    m[0].metric("raw boxes kept", len(r.analysis.table), help=term("raw box"))
    m[1].metric("detections", len(r.detections),
                help=f"{r.below} more merged boxes are below {what}")
    if r.match is not None:
        required = [t for t in truth if not t.get("difficult")]
        m[2].metric("true positives", r.match.tp)
        m[3].metric("false positives", r.match.fp)
        source = ("the scene's objects" if truth_kind == "scene" else
                  "the photo's hand-drawn boxes (assets/photos/boxes.json)")
        st.caption(f"**{r.match.tp} of {len(required)} objects found, {len(r.match.missed)} "
                   f"missed, {r.match.fp} false positives**, against {source}.",
                   help=term("IoU"))
        with st.expander("How a box is marked right or wrong"):
            st.caption(f"VOC rule: most confident first, IoU >= {compare.MATCH_IOU} with a "
                       "same-class true object, each object matched once; a second box on it "
                       "is a false positive"
                       + ("; a box on an object marked difficult is ignored" if
                          len(required) < len(truth) else "")
                       + ". Solid green: true positive; dashed red: false positive; dotted "
                       "orange: missed object; dotted white: the true objects, each with its "
                       "class written on it.")
    else:
        st.caption("An uploaded or sample image without known objects: choose 'New scene "
                   "from a seed' (kind det) in the sidebar, or a sample photo with hand-drawn "
                   "boxes and a model that knows their classes, to see true and false "
                   "positives.")
    # The figure marks TP and FP, and a box on a difficult object in grey (not counted); each
    # true object's class is written on it (a missed one's below its box).
    status = r.match.status if r.match else None
    with picture or st.container():
        chart("det_fig", figures.labelled_marks_figure, ctx.backdrop(), r.detections, status,
              truth, r.match.missed if r.match else None,
              title=f"{len(r.detections)} detections ({what}; {r.below} below; "
                    f"windows >= {thr:.2f}, top-{k})", phone=is_phone(),
              depends=(min_conf, min_box, truth_kind))
    report, curves, n_images, names, set_what = image_set(a)
    notice(notice_bullets(r, truth, what, report, set_what))
    rows = appstate.detection_rows(r.detections, score=by_score)
    if r.match is not None:
        for row, s, o in zip(rows, r.match.status, r.match.ious):
            row["mark"], row["best IoU"] = ("ignored (difficult)" if s == "ignored" else s), round(o, 3)
    if rows:
        table(rows)
        if by_score:
            st.caption(f"score: the mean over the {a.n_views} views of the best window "
                       "probability in each, in [0, 1]; confidence: the paper's sum of window "
                       "probabilities.", help=terms("views", "score", "confidence"))
    else:
        st.info(f"No detection: {r.below} merged boxes are below {what} (windows of the "
                f"top-{k} classes at p >= {thr:.2f}). Lower the minimum "
                f"{'score' if by_score else 'confidence'}, or the sidebar's min score of a "
                "window.")
    pr_section(report, curves, n_images, names, set_what)
    background(a, r.analysis.class_names)
    show_code(detection.detect, detection.answer_boxes, compare.match_truth,
              evaluate.detection_curves)


def notice_bullets(r, truth, what: str, report, set_what: str) -> list[str]:
    """The "What to notice" box: this image's numbers, and its set's mAP."""
    out = []
    if r.match is not None:
        found = sorted({truth[j]["name"] for j in r.match.truth_of if j is not None})
        missed = [truth[j]["name"] for j in r.match.missed]
        out.append(f"{r.match.tp} of {r.match.tp + len(r.match.missed)} objects found"
                   + (f" ({', '.join(found)})" if found else "")
                   + (f"; missed: {', '.join(missed)} (dotted orange, named on the image)"
                      if missed else "; none missed"))
        wrong = [d.name for d, s in zip(r.detections, r.match.status) if s == "FP"]
        out.append(f"{len(wrong)} false positive{'s' if len(wrong) != 1 else ''}"
                   + (f" ({', '.join(wrong)}): dashed red" if wrong else "")
                   + f"; {r.below} more merged boxes are below {what}.")
    else:
        names = [d.name for d in r.detections]
        out.append(f"{len(names)} detections ({what})"
                   + (f": {', '.join(names[:6])}{'...' if len(names) > 6 else ''}" if names
                      else "") + f"; {r.below} merged boxes below.")
    if report is not None and report["mAP"] is not None:
        aps = [(v["ap"], n) for n, v in report["per_class"].items() if v["ap"] is not None]
        lo = min(aps)
        out.append(f"On {set_what}: mAP {report['mAP']:.3f}; the weakest class is {lo[1]} "
                   f"(AP {lo[0]:.2f}).")
    return out


def background(a: Analysis, names) -> None:
    """The background class's map at each scale (where windows see no object), in an expander
    drawn only while it is open: six heat maps below the fold were ~100 kB and two Plotly draws
    on every visit to the page, open or not (tests/browser_latency.py, issue 27)."""
    bg = detection.background_class(a)
    with st.expander("The background class, scale by scale", key="det_bg_open",
                     on_change="rerun") as box:
        if bg is None:
            st.info("This model has no background class (config.background is off): nothing "
                    "to show here.")
        elif box.open:
            st.caption(f"p({names[bg]}) over the image at each scale (unflipped views): high "
                       "where a window sees no object. Windows are drawn at their centres.")
            chart("det_bg", figures.scale_maps_figure, a, ctx.backdrop(figures.PANEL_SIDE), bg)


render()
