"""Merge: the greedy merge step by step, the literal match score beside the corrected one; the
final boxes with their summed confidence and, where the merge gives one, their score."""

import streamlit as st

from overfeat import merge
from overfeat.app import export, figures, share
from overfeat.predict import detections
from app_pages.common import chart, clamp_state, context, require_boxes, show_code, table

ctx = context()
require_boxes(ctx, "Merge")
KINDS = ("literal", "corrected")
JUMPS = share.MERGE_JUMPS


def _step_by(delta: int, n: int) -> None:
    """Button callback: move the step, inside 0..n."""
    st.session_state["merge_step"] = min(max(st.session_state.get("merge_step", 0) + delta, 0), n)


def _jump(sign: int, n: int) -> None:
    """Previous/Next callback: one jump (the "steps per click" slider, read at click time)."""
    _step_by(sign * int(st.session_state.get("merge_jump", 1)), n)


def _play_changed(n: int) -> None:
    """Play switch callback: playing from the last step starts over."""
    if st.session_state.get("merge_playing") and st.session_state.get("merge_step", 0) >= n:
        st.session_state["merge_step"] = 0


def step_controls(n: int) -> int:
    """First / previous / next / last buttons, the Play switch and a slider over the steps;
    returns the step."""
    clamp_state("merge_step", 0, n, 0)
    # Presenter mode's larger text needs a wider column for the Play switch's label.
    c = st.columns([1, 1, 1, 1.5, 1, 2.5] if st.session_state.get("presenter") else [1, 1, 1, 1, 1, 3])
    c[0].button("First", on_click=_step_by, args=(-n, n), disabled=n == 0, key="merge_first",
                width="stretch")
    c[1].button("Previous", on_click=_jump, args=(-1, n), key="merge_prev",
                disabled=n == 0, width="stretch")
    c[2].button("Next", on_click=_jump, args=(1, n), key="merge_next",
                disabled=n == 0, width="stretch")
    # A switch, not a Play/Pause button: a button's click is a one-shot trigger, and one that
    # arrives while the 0.7 s timer's rerun is running can be dropped (a Pause that did not
    # pause, seen in the browser test on a busy CPU). A switch's value travels with every
    # rerun, the timer's too, so the click always lands.
    c[3].toggle("Play", key="merge_playing", on_change=_play_changed, args=(n,),
                disabled=n == 0, help="Step forward by one jump every 0.7 s until the last step")
    c[4].button("Last", on_click=_step_by, args=(n, n), disabled=n == 0, key="merge_last",
                width="stretch")
    c[5].select_slider("Steps per click / tick", JUMPS, key="merge_jump")
    return st.slider("Step (0 = the raw boxes)", 0, max(n, 1), key="merge_step", disabled=n == 0)


def step_text(kind: str, r, ms: merge.MergeStep, names) -> str:
    t = r.threshold
    head = f"**{kind}**: step {ms.step} of {r.n_steps}, **{ms.remaining} boxes left**"
    if ms.pair is None:
        body = "the raw boxes, nothing merged yet"
    else:
        i, j = ms.pair
        b = ", ".join(f"{v:.0f}" for v in ms.merged.tolist())
        body = (f"merged pair ({i}, {j}) of class {names[ms.label]}: match score "
                f"**{ms.score:.4g}** <= t = {t:g}; merged box ({b}), confidence {ms.conf:.3f}")
    stop = f"  \n{ms.stopped}" if ms.stopped else ""
    return f"{head}  \n{body}{stop}"


def show_steps(results: dict, step: int, names, max_boxes) -> None:
    cols = st.columns(2)
    for col, kind in zip(cols, KINDS):
        r = results[kind]
        ms = r.step(step)
        with col:
            st.markdown(f"#### {kind} match score")
            # One line each, so that the two figures start at the same height.
            st.caption("the sidebar's choice: the app's answer" if kind == ctx.knobs.score
                       else "shown for comparison")
            st.markdown(step_text(kind, r, ms, names))
            title = f"{kind}: step {ms.step}/{r.n_steps}, {ms.remaining} boxes"
            chart(f"merge_fig_{kind}", figures.merge_figure, ctx.backdrop(), ms, names, title,
                  max_boxes, depends=(kind, step))


def render() -> None:
    a = ctx.analysis()
    results = summary(a)
    n = max(r.n_steps for r in results.values())
    names = a.class_names
    if n == 0:
        st.session_state["merge_playing"] = False
    playing = st.session_state.get("merge_playing", False)

    @st.fragment(run_every=0.7 if playing else None)
    def stepper() -> None:
        if st.session_state.get("merge_playing", False) != playing:
            # Play was switched: a widget inside a fragment reruns only the fragment, but
            # the timer (run_every) is set when the whole page runs.
            st.rerun()
        if playing:
            if st.session_state.get("merge_step", 0) >= n:
                st.session_state["merge_playing"] = False
                st.rerun()  # the whole page, to stop the timer
            _jump(1, n)
        step = step_controls(n)
        show_all = st.toggle(f"Draw all boxes (default: the {figures.DEFAULT_MAX_BOXES} most "
                             f"confident)", key="merge_all")
        show_steps(results, int(step), names, None if show_all else figures.DEFAULT_MAX_BOXES)
        chart("merge_scores", figures.merge_scores_figure, results, int(step))

    stepper()
    final_boxes(a, results)
    show_code(merge.match_score, merge.merge_reference, merge.merge, merge._update_minima)


def summary(a) -> dict:
    """The paper's rule, the counts of both merges and the project's choices; returns the two
    merges ({kind: MergeResult})."""
    st.title("Merge")
    st.markdown("Paper, section 4.3: repeatedly take the pair of boxes with the **lowest match "
                "score**; if it is above **t**, stop; otherwise replace the two by their "
                "average. Both match scores run on the same raw boxes. The paper's plain "
                "average lets a cluster of hundreds of boxes jump halfway towards each stray box "
                "it swallows; this app weights the average by confidence unless the sidebar's "
                "**Box merge** says *plain*: try both and count the boxes left.")
    results = {kind: ctx.merge(kind) for kind in KINDS}
    m = st.columns(4)
    m[0].metric("raw boxes", len(a.table))
    m[1].metric("literal: steps", results["literal"].n_steps)
    m[2].metric("corrected: steps", results["corrected"].n_steps)
    m[3].metric("classes in the merge", len({c for cs in a.top_classes.values() for c in cs}))
    st.caption("Project choices where the paper is silent: boxes merge only within a class "
               f"({'on' if ctx.knobs.by_class else 'off'} in the sidebar); box_merge is the "
               f"{'confidence-weighted' if ctx.knobs.average == 'weighted' else 'plain'} "
               "average of the coordinates (sidebar); a merged box's confidence is the sum of its "
               "windows' class scores; ties go to the lowest box indices. literal = centre "
               "distance + intersection area (pixels + squared pixels: overlapping boxes score "
               "HIGH and do not merge). corrected = centre distance / mean box side - IoU. "
               f"t = {ctx.knobs.t_literal:g} (literal), {ctx.knobs.t_corrected:g} (corrected).")

    if len(a.table) == 0:
        st.info(f"No raw boxes: no window of the top-{ctx.knobs.top_k} classes reaches the "
                f"sidebar's min score of a window ({ctx.knobs.min_score:.2f}). Lower it to see "
                "this image's boxes merge.")
    return results


def final_boxes(a, results: dict) -> None:
    """The most confident final boxes of both merges, drawn and in a table."""
    names = a.class_names
    st.subheader("Final boxes")
    n_final = st.number_input("How many to show", 1, 50, step=1, key="merge_n_final")
    cols = st.columns(2)
    for col, kind in zip(cols, KINDS):
        r = results[kind]
        with col:
            dets = detections(a, r, int(n_final))
            chart(f"merge_final_{kind}", figures.final_boxes_figure, ctx.backdrop(), r, names,
                  int(n_final), ctx.truth,
                  title=f"{kind}: {len(r.final)} boxes after {r.n_steps} merges", depends=(kind,))
            table(export.final_box_rows(dets))
    scored = any(d.score is not None for r in results.values() for d in detections(a, r, 1))
    st.caption("confidence: the sum of the box's member windows' class probabilities (the "
               "paper's; it grows with the number of views and windows that saw the object); "
               "windows: how many raw boxes it merged; mean p: confidence / windows."
               + (f" score: for each of the {a.n_views} inputs (scales x flips), the best "
                  "class probability among its member windows from that input (0 where none), "
                  "averaged over the inputs: 1.0 means every input saw the object with "
                  "certainty (a project choice; it does not grow with the number of windows)."
                  if scored else ""))
    if ctx.truth:
        st.caption("Dotted white: the scene's true objects ("
                   + ", ".join(t["name"] for t in ctx.truth) + ").")


render()
