"""Overview: the pipeline in one picture, what each page shows, how to use the app in a lesson."""

import streamlit as st

from overfeat import compare, detection
from overfeat.app import export, figures
from overfeat.app import state as appstate
from overfeat.models import registry as zoo
from app_pages import common
from app_pages.common import (box_model, chart, context, figure, short_label, show_code, table,
                               use_model)

ctx = context()
MAX_DRAWN = 30  # final boxes drawn on the Overview's image at most (the table lists them all)


def render() -> None:
    a = ctx.analysis()
    info = appstate.pipeline_info(a, ctx.model)
    st.title("OverFeat, step by step")
    common.intro(intro(info), "What OverFeat does")
    pipeline(info)
    st.caption("Numbers are for the current image, model and sidebar settings.")
    notice(info)
    answer(info)
    guide(info)
    show_code(appstate.pipeline_info, detection.answer_boxes, export.analysis_dict)


def intro(info: dict) -> str:
    """What the model does, in the paper's words, for what this model has (pipeline_info):
    no window, offsets or regressor it lacks."""
    paper = "(Sermanet et al., ICLR 2014)"
    if info["pyramid"]:
        strides = ", ".join(str(s) for s in info["strides"])
        kind, t = info["answer"]
        return (f"One convolutional network is slid over the **whole image at six scales**. "
                f"Like OverFeat it is convolutional to the end, so one pass scores every "
                f"position; unlike OverFeat it has a **feature pyramid**: each input gives "
                f"{len(info['strides'])} maps, at strides {strides} px, and every cell of "
                f"every map gives {info['classes']} class probabilities and a box. A **greedy "
                f"merge** {paper} turns the raw boxes into a few detections; the answer is the "
                f"final boxes whose {kind} reaches {t:g}.")
    w = info["window"]
    text = (f"One convolutional network, trained on {w}x{w} crops, is slid over the **whole "
            f"image at six scales**. Its fully-connected layers are convolutions, so one pass "
            f"gives a class score{' and a box' if info['regressor'] else ''} for every "
            f"{w}x{w} window")
    if info["offsets"]:
        text += (f"; **offset pooling** makes the windows {info['prepool']} px apart instead "
                 f"of {info['coarse']}")
    if info["regressor"]:
        return text + f"; a **greedy merge** turns thousands of raw boxes into a few detections {paper}."
    return (text + f" {paper}. This model has **no box regressor**: it names what the image "
            "shows, it does not box it.")


def pipeline(info: dict) -> None:
    """The pipeline picture (figures.pipeline_figure) where it draws only what this model has;
    otherwise the same stages as a list (appstate.pipeline_stages)."""
    fig = figure("pipeline", figures.pipeline_figure, info)
    text = " ".join(str(n.text or "") for n in fig.layout.annotations)
    if not appstate.pipeline_misfits(text, info):
        # On a phone the stages stack vertically (seven boxes side by side overlap at 390 px).
        chart("pipeline", figures.pipeline_figure, info, vertical=common.is_phone())
        return
    st.markdown("\n".join(f"{i + 1}. **{title}**: {body} (*{where}*)"
                           for i, (title, body, where) in enumerate(appstate.pipeline_stages(info))))


def guide(info: dict) -> None:
    """What each page shows, and a lesson plan, for what this model has."""
    k, w = info["k"], info["window"]
    boxes = "" if info["regressor"] else " (needs a model with boxes)"
    if info["pyramid"]:
        offsets = ("- **Offsets**: the paper's offset pooling makes a finer map; this model's "
                   "feature pyramid gives maps at strides "
                   f"{', '.join(str(s) for s in info['strides'])} px instead.\n")
        step4 = ("4. **Offsets**: compare the finest map with the coarsest; which objects "
                 "does each see?\n")
    else:
        offsets = (f"- **Offsets**: the {k}x{k} offset-pooled feature maps, the {k * k} "
                   f"classifier maps and the fine map they interleave into; pick a cell to see "
                   f"its {w}x{w} window.\n")
        step4 = "4. **Offsets**: turn offsets off in the sidebar; how coarse is the map now?\n"
    left, right = (st.expander("What each page shows, and a lesson plan"),) * 2 if (
        common.compact()) else st.columns([3, 2])
    with left:
        st.subheader("What each page shows")
        st.markdown(
            "- **Architecture**: every layer with its map size at each of the six scales for "
            "this image (the paper's Table 5), receptive field, stride, parameters and "
            "multiply-adds.\n"
            "- **Scales**: the confidence map of a class at each scale over the image, each "
            "scale's spatial maximum and the averaged score; switch scales and flips in the "
            "sidebar and watch the prediction change.\n"
            + offsets +
            f"- **Regressor**{boxes}: every raw box the regressor predicts, by scale, offset "
            "and class; pick one to see the window it came from.\n"
            f"- **Merge**{boxes}: the greedy merge one step at a time, with the paper's "
            "literal match score beside the corrected one, and the final boxes.\n"
            f"- **Detection**{boxes}: several objects at once; a score threshold; on a "
            "generated scene (or a sample photo with hand-drawn boxes) each detection marked "
            "right or wrong; where the background class wins.\n"
            f"- **Greedy vs NMS**{boxes}: the paper's merge against non-maximum suppression on "
            "the same raw boxes, ranked against the truth where it is known.\n"
            "- **Experiments**: the paper's Table 2 (what offsets, scales and flips each buy) "
            "for this model beside the paper's numbers; recompute it on fresh scenes.\n"
            "- **Efficiency**: why sliding a convolutional network beats cropping: windows, "
            "multiply-adds and measured times for this image.\n"
            "- **Training**: train a small model in the browser (a minute or two), watch its "
            "loss, then pick it in the sidebar (*Trained in the app*).\n"
            "- **Glossary**: every term in one line, with its value on this image.")
    with right:
        st.subheader("In a lesson")
        st.markdown(
            "1. Pick a sample scene (or let students upload a photo).\n"
            "2. **Architecture**: ask why the map at scale 1 is only a few cells wide.\n"
            "3. **Scales**: untick the large scales; which objects does the network lose?\n"
            + step4 +
            "5. **Merge**: press *Next* a few times, then compare the literal score: why does "
            "it refuse to merge boxes that overlap?\n"
            "6. **Detection** on a new scene from a seed: which objects are missed, and are "
            "they small or large?\n\n"
            "**Presenter mode** (top of the sidebar) collapses the sidebar, folds the "
            "explanations and enlarges the text: each page's figure is the first screen. "
            "**Share a view**: *Link to this view* (top right) gives the link to the page, "
            "image and knobs on screen; save views to the sidebar's *Lesson views* to open "
            "them in order in class. "
            "**Export**: every figure has a camera button in its top-right toolbar (*Download "
            "plot as a PNG*); the button below saves the whole analysis of this image as JSON.")


def notice(info: dict) -> None:
    """What to notice on the first screen, with this image's numbers."""
    a = ctx.analysis()
    flips = " with flips" if info["flips"] else ""
    bullets = [f"The same network runs on {info['inputs']} views of this image "
               f"({len(info['sizes'])} scales{flips}): {info['windows']:,} windows in all."]
    if info["top"]:
        bullets.append(f"Their votes, averaged, make **{info['top'][0]}** the top class "
                       f"(p = {info['top'][1]:.2f}).")
    if info["regressor"] and info["answer"] is not None:
        r = ctx.merge(ctx.knobs.score)
        kind, t = info["answer"]
        ans = (detection.answer_boxes(r.final, t) if kind == "score"
               else detection.answer_boxes(r.final, None, t))
        line = (f"{len(a.table):,} raw boxes merge into {len(r.final)}; {len(ans)} reach "
                f"{kind} >= {t:g}: the answer")
        truth = ctx.truth or ctx.photo_truth
        if truth:
            m = compare.match_truth(ans, truth, a.class_names)
            line += (f", {m.tp} of {len(truth)} objects found, {m.fp} false "
                     f"box{'es' if m.fp != 1 else ''}")
        bullets.append(line + ".")
    common.notice(bullets)


def answer(info: dict) -> None:
    """The final boxes the model answers with (detection.answer_boxes, by its card) and the top
    classes for this image, and the JSON download."""
    a = ctx.analysis()
    st.subheader("The network's answer")
    if ctx.image_key.startswith("upload:") and ctx.model_key.startswith("default:"):
        st.info("The shipped checkpoint learned the 20 Pascal VOC classes from pictogram scenes "
                "(emoji objects on generated backgrounds), not from photos: on a photo its "
                "classes are guesses, but every map, box and merge step still shows how "
                "OverFeat works. Try a sample scene to see it right.")
    if info["answer"] is not None and info["answer"][0] == "score":
        scored_answer(a, info)
    else:
        left, right = st.columns([3, 2])
        with left:
            if info["regressor"]:
                confident_answer(a, info)
            else:
                name = box_model()
                st.info(f"No boxes: {ctx.model_desc} has no box regressor, so its answer is "
                        f"the classes on the right. **{zoo.CARDS[name].label}** boxes what it "
                        "finds.")
                st.button(f"Use {short_label(zoo.CARDS[name])}", on_click=use_model,
                          args=(name,), key="use_box_model_overview",
                          help=f"Choose {zoo.CARDS[name].label} in the sidebar.")
        with right:
            classes(a)
    download(a)


def classes(a) -> None:
    """The top classes (the classification answer) and how they are computed."""
    ranking = appstate.class_ranking(a, 5)
    table([{"class": n, "score": round(s, 4)} for _, n, s in ranking])
    flips = " x 2 flips" if a.settings.flips else ""
    levels = (f", each the max over its {len(a.views) // a.n_views} maps: {len(a.views)} "
              "maps in all" if len(a.views) != a.n_views else "")
    st.caption(f"Classification: spatial max per class at each view{levels}, averaged "
               f"over {a.n_views} views ({len(a.settings.scales)} scales{flips}).")


def scored_answer(a, info: dict) -> None:
    """A model whose card sets min_box_score: the final boxes whose probability-like score
    reaches it (detection.answer_boxes), drawn across the page, then their table (score and
    confidence) beside the top classes."""
    r = ctx.merge(ctx.knobs.score)  # the other merge: prefetched after the page (app.py)
    t = info["answer"][1]
    ans = detection.answer_boxes(r.final, ctx.card.min_box_score)
    recs = ans.records(a.class_names)
    chart("overview_boxes", figures.detection_marks_figure, ctx.backdrop(), recs[:MAX_DRAWN],
          None, None, None, title=f"{len(ans)} final boxes, score >= {t:g}")
    left, right = st.columns([3, 2])
    with left:
        if recs:
            table(appstate.detection_rows(recs, score=True))
        st.caption(f"{ctx.image_label}: {len(a.table):,} raw boxes, {len(r.final)} after the "
                   f"{ctx.knobs.score} merge, {len(ans)} with score >= {t:g}"
                   f"{f' (the {MAX_DRAWN} best drawn)' if len(recs) > MAX_DRAWN else ''}. "
                   f"**score**: the mean over the {a.n_views} views of the best window "
                   "probability in each, in [0, 1]; **confidence**: the paper's sum of window "
                   "probabilities (it grows with the number of views and windows, so this "
                   "model's answer uses the score).")
    with right:
        classes(a)


def confident_answer(a, info: dict) -> None:
    """The paper's answer: the merged boxes whose summed confidence reaches the Detection
    page's default, the most confident drawn."""
    r = ctx.merge(ctx.knobs.score)  # the other merge: prefetched after the page (app.py)
    t = info["answer"][1]
    n = appstate.n_confident(r, t)
    st.caption(f"{ctx.image_label}: {len(r.final)} boxes after the {ctx.knobs.score} merge, "
               f"the {n} most confident drawn.")
    chart("overview_boxes", figures.final_boxes_figure, ctx.backdrop(), r, a.class_names, n,
          ctx.truth, title=f"{n} final boxes, confidence >= {t:g}")
    recs = r.final.top(n).records(a.class_names)
    if recs:
        table(export.final_box_rows(recs))
    st.caption("Boxes: the greedy merge of the raw boxes (Merge page), those whose "
               f"**confidence** reaches {t:g}: the sum of their windows' class probabilities, "
               "which grows with the number of windows and views that saw the object. "
               f"**score**: the mean over the {a.n_views} views of the best window probability "
               "in each, from 0 to 1, comparable with the class scores on the right.")


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
                            "both merges' traces and final boxes"
                            + (f" ({a.n_views} inputs, {len(a.views) // a.n_views} maps each)."
                               if len(a.views) != a.n_views else "."))


render()
