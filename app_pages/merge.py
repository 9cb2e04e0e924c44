"""Merge: the greedy merge step by step. The first screen is the step controls and the main
figure (the sidebar's match score; the other score, or both, one click away), the pair being
merged drawn on top and its match score taken apart beside it; the counts, the explanations
and the final boxes follow below."""

import numpy as np
import streamlit as st

from overfeat import merge
from overfeat.app import export, figures, share
from overfeat.app.figures import raster
from overfeat.predict import detections
from app_pages.common import (chart, clamp_state, context, counted_run, is_phone, notice,
                              picture as common_picture,
                              require_boxes, row, show_code, starts_again, sync_link, table, term)

ctx = context()
require_boxes(ctx, "Merge")
KINDS = ("literal", "corrected")
JUMPS = share.MERGE_JUMPS
VIEWS = share.MERGE_VIEWS
ALL = -1  # the class filter's "every class"
# The step picture's largest size (width, height px), drawn at the size it is shown: the
# picture's column is about 620 px wide at 1400x1000; a phone's column about 360 px (its text
# then stays readable). In presenter mode the server does not know the projector's height: the
# picture is drawn for 1920x1080 (a column about 1150 px wide) and the page's CSS caps its shown
# height at the window's height less the ~255 px above it (the header line, the title row, the
# buttons; measured with tests/screenshots.py), so at 1280x720 it shrinks to fit the first
# screen (sidebar.PRESENTER_CSS, .st-key-merge_fig_*).
FIG_BOX, PRESENTER_FIG_BOX, PHONE_FIG_BOX = (620, 600), (1000, 680), (360, 600)
FONT_PX, PRESENTER_SCALE = 15, figures.PRESENTER_SCALE  # the pictures' text (px)
FINAL_BOX, PHONE_FINAL_BOX = (900, 560), (360, 600)  # the final boxes' picture, the same way


def fit_height(box: tuple[int, int], side_by_side: int = 1) -> int:
    """The height (px) at which the image's picture fits `box` (width, height), one of
    `side_by_side` pictures in a row (each gets a share of the width)."""
    w, h = ctx.image.size
    width = box[0] if side_by_side == 1 else box[0] * 3 // (2 * side_by_side)
    return max(120, min(box[1], round(width * h / w)))


# --- callbacks (run before the fragment draws its widgets) --------------------------------
def _set_step(step: int) -> None:
    st.session_state["merge_step"] = int(step)


def _move(direction: int, mask, n: int) -> None:
    """Previous / Next / a Play tick: one jump ("steps per click", read at click time) among
    the steps the class filter keeps (mask; None: all), inside 0..n."""
    cur = int(st.session_state.get("merge_step", 0))
    jump = int(st.session_state.get("merge_jump", 1))
    if mask is None:
        new = min(max(cur + direction * jump, 0), n)
    else:
        new = merge.next_step(mask, cur, direction, jump)
    st.session_state["merge_step"] = cur if new is None else new


def _jump_to(which: str, r, mask) -> None:
    """The two jumps: the next merge of another cluster, the next merge that changes a box a
    lot; a one-line note when there is none."""
    cur = int(st.session_state.get("merge_step", 0))
    if which == "cluster":
        new = merge.next_other_cluster(r, cur, mask)
        what = "merge of another cluster"
    else:
        new = merge.next_big_change(r, cur, mask)
        what = "merge that changes a box a lot"
    if new is None:
        st.session_state["_merge_note"] = f"No later {what} after step {cur}."
    else:
        st.session_state["merge_step"] = new


def _play_changed(n: int, mask) -> None:
    """Play switch callback: playing from the last step (of the filter) starts over."""
    if st.session_state.get("merge_playing"):
        cur = int(st.session_state.get("merge_step", 0))
        if cur >= n or (mask is not None and merge.next_step(mask, cur) is None):
            st.session_state["merge_step"] = 0


def _toggle_play(n: int, mask) -> None:
    """The keyboard's Play/pause (key P): flips the Play switch."""
    st.session_state["merge_playing"] = not st.session_state.get("merge_playing", False)
    _play_changed(n, mask)


# --- the page --------------------------------------------------------------------------------
def view_ui(where) -> str:
    """The main figure: the sidebar's match score (the default, and again whenever the sidebar
    changes it), the other one, or both side by side."""
    score = ctx.knobs.score
    if starts_again("_merge_view_for", score, "merge_view",
                    stale=st.session_state.get("merge_view") not in VIEWS):
        st.session_state["merge_view"] = score
    v = where.segmented_control(
        "Match score shown", VIEWS, key="merge_view", label_visibility="collapsed",
        format_func=lambda k: f"{k} (sidebar)" if k == score else k,
        help=f"The sidebar's match score ({score}) is the app's answer; the other is shown for "
             f"comparison. {term('match score')}")
    return v if v in VIEWS else score


def new_image() -> None:
    """A new image or model starts its merge at step 0, every class, not playing: another
    image's step number and class mean nothing in this merge (the other pages start a new image
    at its first layer, top class or best cell too). A link's step and class are this image's
    (kept once). A change of the sidebar's merge knobs keeps the step, to compare the two
    merges at the same step."""
    if starts_again("_merge_for", (ctx.image_key, ctx.model_key), "merge_step", "merge_class"):
        st.session_state["merge_step"], st.session_state["merge_class"] = 0, ALL
        st.session_state["merge_playing"] = False


def class_filter_options(r) -> list[int]:
    """The class filter's choices (every class, then the classes the merge has boxes of); a
    value no longer among them (a link's, another image's) goes back to every class. Run
    before the stepper, which reads it."""
    options = [ALL] + sorted({int(c) for c in r.labels.tolist()})
    if st.session_state.get("merge_class") not in options:
        st.session_state["merge_class"] = ALL
    return options


def class_filter(where, options, names) -> None:
    where.selectbox("Steps of class", options, key="merge_class",
                    format_func=lambda c: "every class" if c == ALL else names[c],
                    help="Previous, Next, Play and the jumps go through this class's merges "
                         "only.")


def step_controls(n: int, mask) -> None:
    """First / Previous (Left arrow) / Next (Right arrow) / Play (key P) / Last, in one row
    directly above the figure."""
    clamp_state("merge_step", 0, n, 0)
    off = n == 0
    presenter = st.session_state.get("presenter")
    c = row([1, 1.3, 1.2, 1.1, 0.8, 1] if presenter else [1, 1.2, 1.1, 1, 0.7, 1])
    c[0].button("First", on_click=_set_step, args=(0,), disabled=off, key="merge_first",
                width="stretch")
    c[1].button("Previous", on_click=_move, args=(-1, mask, n), key="merge_prev",
                disabled=off, width="stretch", shortcut="Left",
                help="One jump back (key: Left arrow)")
    c[2].button("Next", on_click=_move, args=(1, mask, n), key="merge_next",
                disabled=off, width="stretch", shortcut="Right", type="primary",
                help="One jump forward (key: Right arrow)")
    # A switch, not a Play/Pause button: a button's click is a one-shot trigger, and one that
    # arrives while the 0.7 s timer's rerun is running can be dropped (a Pause that did not
    # pause, seen in the browser test on a busy CPU). A switch's value travels with every
    # rerun, the timer's too, so the click always lands. The keyboard's P (a button, beside
    # it) flips the same switch.
    c[3].toggle("Play", key="merge_playing", on_change=_play_changed, args=(n, mask),
                disabled=off, help="Step forward by one jump every 0.7 s until the last step "
                                   "(key: P)")
    c[4].button(":material/play_pause:", on_click=_toggle_play, args=(n, mask), key="merge_play_key",
                disabled=off, shortcut="P", help="Play / pause from the keyboard",
                width="stretch")
    c[5].button("Last", on_click=_set_step, args=(n,), disabled=off, key="merge_last",
                width="stretch")


def step_text(kind: str, r, ms: merge.MergeStep, names) -> str:
    """One score's step in one or two lines; a merge without steps says why."""
    head = f"**{kind}**: step {ms.step} of {r.n_steps}, **{ms.remaining} boxes left**"
    why = merge.no_steps_reason(r)
    if why:
        return f"{head}  \n{why}"
    if ms.pair is None:
        body = "the raw boxes, nothing merged yet"
    else:
        i, j = ms.pair
        body = (f"merged pair ({i}, {j}) of class {names[ms.label]}: match score "
                f"**{ms.score:.4g}** <= t = {r.threshold:g}")
    stop = f"  \n{ms.stopped}" if ms.stopped else ""
    return f"{head}  \n{body}{stop}"


def step_info(r, step: int) -> merge.MergeStep:
    """A step's words without replaying its boxes (alive is None): the other score's line,
    which MergeResult.step would replay the whole merge for (30 ms at 2,800 steps)."""
    step = max(0, min(int(step), r.n_steps))
    out = merge.MergeStep(step=step, n_steps=r.n_steps, alive=None,
                          remaining=int(r.boxes.shape[0]) - step)
    if step >= 1:
        out.pair = tuple(int(v) for v in r.pairs[step - 1])
        out.score = float(r.step_scores[step - 1])
        out.label = int(r.step_labels[step - 1])
    if step == r.n_steps:
        out.stopped = r.stop_reason()
    return out


def breakdown(kind: str, ms: merge.MergeStep) -> tuple[str, merge.ScoreParts | None]:
    """The current pair's match score taken apart, as Markdown: the parts in a table and how
    they add up (the page's main score first); "" before the first merge."""
    if ms.pair is None:
        return "", None
    p = merge.score_parts(ms.b1.numpy(), ms.b2.numpy())
    rows = [("centre distance", f"{p.centre_distance:,.2f} px"),
            ("mean box side", f"{p.mean_side:,.1f} px ({p.side_a:,.1f}, {p.side_b:,.1f})"),
            ("intersection", f"{p.intersection:,.0f} px²"), ("IoU", f"{p.iou:.3f}")]
    lit = (f"literal = {p.centre_distance:,.2f} + {p.intersection:,.0f} = "
           f"**{p.literal:,.4g}**")
    cor = (f"corrected = {p.centre_distance:,.2f} / {p.mean_side:,.1f} − {p.iou:.3f} = "
           f"**{p.corrected:.4g}**")
    text = ("| part | value |\n|:--|--:|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
            + "\n" + (f"{lit}  \n{cor}" if kind == "literal" else f"{cor}  \n{lit}"))
    return text, p


@st.cache_resource(max_entries=8, show_spinner=False)
def _canvas(image_key: str, height: int, pad: float, dim: float, _image):
    """The image under every picture of one size (raster.canvas), once per image."""
    return raster.canvas(_image, height, pad, dim)


def picture(key: str, pic: raster.Picture) -> None:
    """A step or final-boxes picture (a JPEG: common.picture), what it drew recorded for tests:
    each item's trace-like dict, the title and the font size."""
    common_picture(key, pic.jpeg(), "JPEG",
                   {"items": pic.items(), "title": pic.title, "font_size": pic.font_size})


def font_size() -> int:
    return round(FONT_PX * (PRESENTER_SCALE if st.session_state.get("presenter") else 1))


def draw(kind: str, r, step: int, names, max_boxes, height: int) -> merge.MergeStep:
    """One score's step picture (raster.merge_picture), `height` px tall."""
    ms = r.step(step)
    title = f"{kind}: step {ms.step}/{r.n_steps}, {ms.remaining} boxes"
    base = _canvas(ctx.image_key, height, raster.PAD, raster.DIM, ctx.image)
    picture(f"merge_fig_{kind}", raster.merge_picture(base, ms, names, title, max_boxes,
                                                      font_size=font_size()))
    return ms


def what_to_notice(kind: str, r, n_raw: int, big: int, other: str, ro) -> None:
    """The image's numbers (not the step's: those are beside the picture), so that the box
    stays outside the stepper and a step does not redraw it."""
    first = (f"{n_raw} raw boxes: each Next merges the pair with the lowest {kind} match score "
             f"while it is <= t = {r.threshold:g}. The pair is drawn on top (b1 solid orange, "
             f"b2 dotted blue), the dashed box is their merge, its score taken apart beside it.")
    second = (f"The {kind} merge ends with {len(r.final)} boxes after {r.n_steps} merges; "
              + (f"{other} makes none ({merge.no_steps_reason(ro)})." if ro.n_steps == 0 else
                 f"{other} ends with {len(ro.final)} after {ro.n_steps}."))
    third = (f"{big} of the {r.n_steps} merges change a box a lot (IoU < "
             f"{merge.BIG_CHANGE_IOU:g} with the heavier box): '→ Big change' jumps to them.")
    notice([first, second, third])


def panel(main: str, results: dict, steps: dict, names, n: int, mask) -> None:
    """Beside the picture: each score's step in words, the pair's match score taken apart, the
    jumps and the step slider."""
    ms = steps[main]
    parts_text, parts = breakdown(main, ms)
    st.markdown(step_text(main, results[main], ms, names)
                + (f"\n\n{parts_text}" if parts_text else ""),
                help=f"{term('literal match score')} {term('corrected match score')} "
                     f"{term('IoU')}")
    for kind in (k for k in KINDS if k != main):
        ms_k = steps.get(kind) or step_info(results[kind], ms.step)
        st.markdown(step_text(kind, results[kind], ms_k, names))
    r = results[main]
    j1, j2 = row([1, 1])
    j1.button("→ Other cluster", on_click=_jump_to, args=("cluster", r, mask),
              key="merge_next_cluster", disabled=n == 0, width="stretch",
              help="The next merge that builds another final box than this step's.")
    j2.button("→ Big change", on_click=_jump_to, args=("big", r, mask),
              key="merge_next_big", disabled=n == 0, width="stretch",
              help=f"The next merge whose merged box has IoU < {merge.BIG_CHANGE_IOU:g} "
                   "with the more confident box of its pair.")
    note = st.session_state.pop("_merge_note", None)
    if note:
        st.caption(note)
    st.slider("Step (0 = the raw boxes)", 0, max(n, 1), key="merge_step", disabled=n == 0)


def render() -> None:
    a = ctx.analysis()
    names = a.class_names
    results = {kind: ctx.merge(kind) for kind in KINDS}
    score = ctx.knobs.score
    rule = ("Paper §4.3: repeatedly merge the pair of boxes with the lowest match score, "
            "until it is above t.")
    if st.session_state.get("presenter"):
        # A projector's 720 px: the title, the rule and the view share one row, so the
        # buttons and the picture make the first screen (issue 27).
        c0, c1, c2 = st.columns([0.8, 1.9, 2.3], vertical_alignment="center")
        c0.title("Merge")
    else:
        st.title("Merge")
        c1, c2 = st.columns([3, 2], vertical_alignment="center")
    c1.caption(rule, help=f"{term('match score')} {term('t')}")
    view = view_ui(c2)
    shown = list(KINDS) if view == "both" else [view]
    main = score if view == "both" else view
    other = next(k for k in KINDS if k != main)
    n = max(results[k].n_steps for k in shown)
    new_image()
    if n == 0:
        st.session_state["merge_playing"] = False
    playing = st.session_state.get("merge_playing", False)
    n_raw = len(a.table)
    big = int(merge.big_changes(results[main]).sum())
    options = class_filter_options(results[main])

    # The stepper: what a step changes, and only that (a fragment reruns alone; issue 27,
    # speed: a step reruns the buttons, the picture, the panel beside it and the notice). The
    # settings that are not a step (the class filter, steps per click, all boxes, the chart's
    # switch) sit under it: changing one reruns the page.
    @st.fragment(run_every=0.7 if playing else None)
    @counted_run  # a step is a run: background work waits for it
    def stepper() -> None:
        r = results[main]
        if st.session_state.get("merge_playing", False) != playing:
            # Play was switched: a widget inside a fragment reruns only the fragment, but
            # the timer (run_every) is set when the whole page runs.
            st.rerun()
        mask = (None if st.session_state.get("merge_class", ALL) in (ALL, None)
                else merge.steps_of_class(r, st.session_state["merge_class"]))
        if playing:
            cur = st.session_state.get("merge_step", 0)
            if cur >= n or (mask is not None and merge.next_step(mask, cur) is None):
                st.session_state["merge_playing"] = False
                st.rerun()  # the whole page, to stop the timer
            _move(1, mask, n)
        step_controls(n, mask)
        presenter = bool(st.session_state.get("presenter"))
        box = (PRESENTER_FIG_BOX if presenter else PHONE_FIG_BOX if is_phone()
               else FIG_BOX)
        height = fit_height(box, 2 if view == "both" else 1)
        max_boxes = None if st.session_state.get("merge_all") else figures.DEFAULT_MAX_BOXES
        step = int(st.session_state["merge_step"])
        if view == "both":
            steps = {}
            for col, kind in zip(st.columns(2), KINDS):
                with col:
                    steps[kind] = draw(kind, results[kind], step, names, max_boxes, height)
            fig_col, side = st.container(), st.container()
        else:
            fig_col, side = st.columns([2.4, 1])
            with fig_col:
                steps = {main: draw(main, r, step, names, max_boxes, height)}
        with side:
            panel(main, results, steps, names, n, mask)
        ms = steps[main]
        if st.session_state.get("merge_chart"):
            fig = figures.merge_scores_figure({k: results[k] for k in shown}, ms.step)
            if fig is None:
                st.caption("No merge made a step: nothing to chart.")
            else:
                chart("merge_scores", figures.merge_scores_figure,
                      {k: results[k] for k in shown}, ms.step, depends=(tuple(shown), ms.step))
        sync_link()  # a fragment's rerun does not run app.py: the link follows it here

    stepper()
    what_to_notice(main, results[main], n_raw, big, other, results[other])
    s = st.columns([1.2, 1, 1.3, 1.1], vertical_alignment="bottom")
    class_filter(s[0], options, names)
    s[1].select_slider("Steps per click / tick", JUMPS, key="merge_jump")
    s[2].toggle(f"Draw all boxes (default: the {figures.DEFAULT_MAX_BOXES} most confident)",
                key="merge_all")
    s[3].toggle("Chart: the match score of every step", key="merge_chart")
    summary(a, results)
    final_boxes(a, results, shown)
    show_code(merge.match_score, merge.score_parts, merge.merge_reference, merge.merge,
                 merge._update_minima)


def summary(a, results: dict) -> None:
    """The counts (none contradicts another) and the rule, folded."""
    with_boxes = sorted({int(c) for c in a.table.labels.tolist()})
    m = row([1, 1, 1, 1])
    m[0].metric("raw boxes", len(a.table), help=term("raw box"))
    m[1].metric("literal: steps", results["literal"].n_steps)
    m[2].metric("corrected: steps", results["corrected"].n_steps)
    m[3].metric("classes in the merge", len(with_boxes),
                help="Classes with at least one raw box (the top-k classes of each scale whose "
                     "windows reach the sidebar's min score of a window).")
    if len(a.table) == 0:
        st.info(f"No raw boxes: no window of the top-{ctx.knobs.top_k} classes reaches the "
                f"sidebar's min score of a window ({ctx.knobs.min_score:.2f}). Lower it to see "
                "this image's boxes merge.")
    with st.expander("The rule and the project's choices"):
        st.markdown("Paper, section 4.3: repeatedly take the pair of boxes with the **lowest "
                    "match score**; if it is above **t**, stop; otherwise replace the two by "
                    "their average. Both match scores run on the same raw boxes. The paper's "
                    "plain average lets a cluster of hundreds of boxes jump halfway towards each "
                    "stray box it swallows; this app weights the average by confidence unless the "
                    "sidebar's **Box merge** says *plain*: try both and count the boxes left.")
        st.caption("Project choices where the paper is silent: boxes merge only within a class "
                   f"({'on' if ctx.knobs.by_class else 'off'} in the sidebar); box_merge is the "
                   f"{'confidence-weighted' if ctx.knobs.average == 'weighted' else 'plain'} "
                   "average of the coordinates (sidebar); a merged box's confidence is the sum of "
                   "its windows' class scores; ties go to the lowest box indices. literal = "
                   "centre distance + intersection area (pixels + squared pixels: overlapping "
                   "boxes score HIGH and do not merge). corrected = centre distance / mean box "
                   f"side - IoU. t = {ctx.knobs.t_literal:g} (literal), "
                   f"{ctx.knobs.t_corrected:g} (corrected). 'Another cluster': a merge whose "
                   "box ends in another final box than the current step's. 'A big change': the "
                   f"merged box has IoU < {merge.BIG_CHANGE_IOU:g} with the more confident box "
                   "of its pair.")


def final_boxes(a, results: dict, shown: list[str]) -> None:
    """The most confident final boxes of the merge(s) shown, drawn and in a table."""
    names = a.class_names
    st.subheader("Final boxes")
    n_final = st.number_input("How many to show", 1, 50, step=1, key="merge_n_final")
    cols = st.columns(len(shown)) if len(shown) > 1 else [st.container()]
    for col, kind in zip(cols, shown):
        r = results[kind]
        with col:
            dets = detections(a, r, int(n_final))
            height = fit_height(PHONE_FINAL_BOX if is_phone() else FINAL_BOX, len(shown))
            base = _canvas(ctx.image_key, height, 0.03, 1.0, ctx.image)
            picture(f"merge_final_{kind}", raster.final_boxes_picture(
                base, r, names, int(n_final), ctx.truth,
                title=f"{kind}: {len(r.final)} boxes after {r.n_steps} merges",
                font_size=font_size()))
            table(export.final_box_rows(dets))
    for kind in (k for k in KINDS if k not in shown):
        r = results[kind]
        st.caption(f"{kind}: {len(r.final)} boxes after {r.n_steps} merges (choose *both* "
                   "above the figure to draw them).")
    scored = any(d.score is not None for k in shown for d in detections(a, results[k], 1))
    with st.expander("What the columns mean"):
        st.caption("confidence: the sum of the box's member windows' class probabilities (the "
                   "paper's; it grows with the number of views and windows that saw the object); "
                   "windows: how many raw boxes it merged; mean p: confidence / windows."
                   + (f" score: for each of the {a.n_views} inputs (scales x flips), the best "
                      "class probability among its member windows from that input (0 where "
                      "none), averaged over the inputs: 1.0 means every input saw the object "
                      "with certainty (a project choice; it does not grow with the number of "
                      "windows)." if scored else ""))
    if ctx.truth:
        st.caption("Dotted white: the scene's true objects ("
                   + ", ".join(t["name"] for t in ctx.truth) + ").")


render()
