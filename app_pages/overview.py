"""Overview: the pipeline in one picture, what each page shows, how to use the app in a lesson."""

import streamlit as st

from overfeat import detection
from overfeat.app import export, figures
from overfeat.app import state as appstate
from app_pages.common import chart, context, show_code

ctx = context()


def render() -> None:
    m = ctx.model
    st.title("OverFeat, step by step")
    st.markdown(
        f"One convolutional network, trained on {m.window}x{m.window} crops, is slid over the "
        f"**whole image at six scales**. Its fully-connected layers are convolutions, so one "
        f"pass gives a class score and a box for every {m.window}x{m.window} window; **offset "
        f"pooling** makes the windows {m.prepool_stride} px apart instead of {m.stride}; a "
        f"**greedy merge** turns thousands of raw boxes into a few detections (Sermanet et "
        f"al., ICLR 2014).")
    chart("pipeline", figures.pipeline_figure, appstate.pipeline_info(ctx.analysis(), ctx.model))
    st.caption("Numbers are for the current image, model and sidebar settings.")
    guide(ctx.model.k, ctx.model.window)
    answer()
    show_code(appstate.pipeline_info, export.analysis_dict)


def guide(k: int, w: int) -> None:
    """What each page shows, and a lesson plan (k: the offsets per side, w: the window)."""
    left, right = st.columns([3, 2])
    with left:
        st.subheader("What each page shows")
        st.markdown(
            "- **Architecture**: every layer with its map size at each of the six scales for "
            "this image (the paper's Table 5), receptive field, stride, parameters and "
            "multiply-adds.\n"
            "- **Scales**: the confidence map of a class at each scale over the image, each "
            "scale's spatial maximum and the averaged score; switch scales and flips in the "
            "sidebar and watch the prediction change.\n"
            f"- **Offsets**: the {k}x{k} offset-pooled feature maps, the {k * k} classifier "
            "maps and the "
            f"fine map they interleave into; pick a cell to see its {w}x{w} window.\n"
            "- **Regressor**: every raw box the regressor predicts, by scale, offset and "
            "class; pick one to see the window it came from.\n"
            "- **Merge**: the greedy merge one step at a time, with the paper's literal match "
            "score beside the corrected one, and the final boxes.\n"
            "- **Training**: train a small model in the browser (a minute or two), watch its "
            "loss, then pick it in the sidebar (*Trained in the app*).\n"
            "- **Detection**: several objects at once; a score threshold; on a generated "
            "scene each detection marked right or wrong; where the background class wins.\n"
            "- **Greedy vs NMS**: the paper's merge against non-maximum suppression on the "
            "same raw boxes, ranked against the truth of a generated scene.\n"
            "- **Experiments**: the paper's Table 2 (what offsets, scales and flips each buy) "
            "for this model beside the paper's numbers; recompute it on fresh scenes.\n"
            "- **Efficiency**: why sliding a convolutional network beats cropping: windows, "
            "multiply-adds and measured times for this image.")
    with right:
        st.subheader("In a lesson")
        st.markdown(
            "1. Pick a sample scene (or let students upload a photo).\n"
            "2. **Architecture**: ask why the map at scale 1 is only a few cells wide.\n"
            "3. **Scales**: untick the large scales; which objects does the network lose?\n"
            "4. **Offsets**: turn offsets off in the sidebar; how coarse is the map now?\n"
            "5. **Merge**: press *Next* a few times, then compare the literal score: why does "
            "it refuse to merge boxes that overlap?\n"
            "6. **Detection** on a new scene from a seed: which objects are missed, and are "
            "they small or large?\n\n"
            "**Presenter mode** (top of the sidebar) enlarges the text and hides the controls "
            "a class does not need. **Share a view**: the address bar always holds the page, "
            "the sample image and the knobs; send that link and students open the same view. "
            "**Export**: every figure has a camera button in its top-right toolbar (*Download "
            "plot as a PNG*); the button below saves the whole analysis of this image as JSON.")


def answer() -> None:
    """The final boxes and the top classes for this image, and the JSON download."""
    a = ctx.analysis()
    st.subheader("The network's answer")
    if ctx.image_key.startswith("upload:") and ctx.model_key.startswith("default:"):
        st.info("The shipped checkpoint learned the 20 Pascal VOC classes from pictogram scenes "
                "(emoji objects on generated backgrounds), not from photos: on a photo its "
                "classes are guesses, but every map, box and merge step still shows how "
                "OverFeat works. Try a sample scene to see it right.")
    r = ctx.merge(ctx.knobs.score)  # the other merge: prefetched after the page (app.py)
    n = appstate.n_confident(r, detection.DEFAULT_MIN_CONFIDENCE)
    left, right = st.columns([3, 2])
    with left:
        if ctx.model.has_regressor:
            title = f"{n} final boxes, confidence >= {detection.DEFAULT_MIN_CONFIDENCE:g}"
            st.caption(f"{ctx.image_label}: {len(r.final)} boxes after the "
                       f"{ctx.knobs.score} merge, the {n} most confident drawn.")
        else:
            title = "no boxes: this model has no box regressor"
        chart("overview_boxes", figures.final_boxes_figure, ctx.backdrop(), r, a.class_names, n,
              ctx.truth, title=title)
    with right:
        ranking = appstate.class_ranking(a, 5)
        st.table([{"class": n, "score": round(s, 4)} for _, n, s in ranking])
        st.caption(f"Classification: spatial max per class at each view, averaged over "
                   f"{len(a.views)} views ({len(a.settings.scales)} scales"
                   f"{' x 2 flips' if a.settings.flips else ''}). Boxes: the greedy merge of "
                   "the raw boxes (Merge page), those whose confidence (the sum of their "
                   "windows' class probabilities) reaches the Detection page's default.")
    download(a)


def download(a) -> None:
    """The analysis of this image (sizes, per-view scores, raw boxes, both merges) as JSON."""
    label, desc = ctx.image_label, ctx.model_desc
    name = "".join(ch if ch.isalnum() else "-" for ch in label).strip("-")[:60]
    # A callable: the JSON (thousands of boxes) is built when the button is clicked, not on
    # every run of the page.
    st.download_button("Download the analysis (JSON)",
                       lambda: export.analysis_json(a, ctx.merges_now(a), image=label,
                                                    model=desc),
                       file_name=f"overfeat-{name}.json",
                       mime="application/json", key="export_json", on_click="ignore",
                       help=f"{len(a.views)} views, {len(a.table)} raw boxes with provenance, "
                            f"both merges' traces and final boxes.")


render()
