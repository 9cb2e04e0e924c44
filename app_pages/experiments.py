"""Experiments: the paper's Table 2 for the loaded checkpoint, beside the paper's numbers."""

import streamlit as st

from overfeat import experiments
from overfeat.app import figures
from app_pages.common import (chart, compact, context, explain, is_phone, notice, show_code,
                              table)

ctx = context()


def show_dataset(d: dict, key: str, source: str = "") -> None:
    """One folder's Table 2 rows, chart and findings; `source` (compact mode: where the numbers
    come from) leads the folder's line, which is then a caption, not a paragraph."""
    rows = experiments.table_rows(d)
    line = (f"**{d['folder']}** ({d.get('split', 'val')}): {d.get('images', '?')} images, "
            f"{d.get('single_class_images', '?')} with one class")
    if source:
        st.caption(f"{source}; {line}")
    else:
        st.markdown(line)
    if not rows:
        st.info("No single-class images in this folder: no Table 2 rows.")
    else:
        table(rows)
        diffs = experiments.scale_differences(d)
        if diffs:
            st.caption("Lined up with the paper's rows by stride and number of scales; where "
                       "they differ: " + " ".join(diffs))
        chart(f"{key}_fig", figures.table2_figure, rows, experiments.PAPER_TABLE2,
              phone=is_phone())
        found = experiments.findings(d)
        notice(found["steps"][:2] + (found["against"][:1] or
                                     ["No step raises an error here: the trend is the paper's."]))
        with st.expander(f"Every step on {d['folder']}, and where it does not follow the paper"):
            st.markdown(f"**What this checkpoint shows on {d['folder']}**, step by step:\n"
                        + "\n".join(f"- {line}" for line in found["steps"]))
            if found["against"]:
                st.markdown("**Where it does not follow the paper** (whose every step lowers "
                            "the error):\n" + "\n".join(f"- {line}" for line in found["against"]))
        if found["noise"]:
            st.caption(found["noise"])
    det = d.get("detection") or {}
    if det.get("mAP") is not None:
        st.caption(f"Detection mAP at IoU 0.5 on this folder: {100 * det['mAP']:.1f}%")


def stored() -> None:
    # Presenter mode and a phone (issue 27): no heading above the results table (the caption
    # under it says where the numbers come from), so the table is on the first screen.
    small = compact()
    if not small:
        st.subheader("From the committed evaluation")
    try:
        data = experiments.load_eval(experiments.EVAL_JSON)
    except ValueError as e:
        st.warning(str(e))
        return
    if data is None:
        st.info(f"No evaluation yet: {experiments.EVAL_JSON.name} is written when the demo "
                "checkpoint has finished training (python -m overfeat evaluate --checkpoint "
                "assets/demo.pt --data ... --split val --json). Recompute below meanwhile.")
        return
    source = (f"{experiments.EVAL_JSON.name}" + (f", checkpoint {data['checkpoint']}"
                                                 if data.get("checkpoint") else ""))
    if not small:
        st.caption(source)
    for i, d in enumerate(data["datasets"]):  # compact: one line above the table, not two
        show_dataset(d, f"exp_json_{i}", f"From the committed evaluation ({source})"
                     if small and i == 0 else "")


def recompute() -> None:
    st.subheader("Recompute on fresh scenes")
    n = st.number_input("Images (new one-object scenes, seed "
                        f"{experiments.RECOMPUTE_SEED}; training used seeds 1 and 2)",
                        1, 200, step=1, key="exp_n")
    able = experiments.can_recompute(ctx.model)
    if not able:
        st.caption(f"{ctx.model_desc} does not know the pictogram classes the scenes hold: "
                   "choose the pictogram checkpoint (or one trained in the app) to recompute.")
    if st.button("Recompute with the current model", key="exp_run", disabled=not able):
        bar = st.progress(0.0, text="Generating the scenes...")

        def progress(ev: dict) -> None:
            bar.progress(ev["done"] / ev["total"], text=f"{ev['done']}/{ev['total']} images")

        res = experiments.recompute(ctx.model, int(n), callback=progress)
        st.session_state["exp_result"] = (ctx.model_key, res)
    got = st.session_state.get("exp_result")
    if got is not None:
        if got[0] != ctx.model_key:
            st.caption("Computed with another model than the one now chosen.")
        who = ctx.model_desc if got[0] == ctx.model_key else got[0]
        st.caption(f"Recomputed in {got[1]['seconds']} s ({who}).")
        for i, d in enumerate(got[1]["datasets"]):
            show_dataset(d, f"exp_new_{i}")


def render() -> None:
    st.title("Experiments")
    if ctx.model.name != "pictogram":  # one line in presenter mode and on a phone
        (st.caption if compact() else st.info)(
            "These experiments measure the shipped pictogram checkpoint (and its validation "
            "scenes), whatever model the sidebar runs.")
    where = explain()
    where.markdown("The paper's Table 2 asks what each idea buys: one scale with the coarse "
                   "stride, then offset pooling (fine stride), then more scales. Below, the same "
                   "steps for the loaded checkpoint on the project's scenes (errors on "
                   "one-object scenes; localization: ILSVRC rule, 5 guesses, IoU 0.5), each row "
                   "beside the paper's row it lines up with, and what each step does here.")
    # The paper's four rows first, then the checkpoint's tables at full width (in a column of
    # the page their last column was cut off). Presenter mode and a phone: the paper's rows
    # folded with the explanation (one expander), so the checkpoint's table comes first.
    where.subheader("The paper")
    c1, c2 = where.columns([3, 2])
    table([{"approach": p["approach"], "scales": ", ".join(str(v) for v in p["scales"]),
            "top-1 error %": p["top1_error"], "top-5 error %": p["top5_error"]}
           for p in experiments.PAPER_TABLE2], where=c1)
    c2.caption(experiments.PAPER_SOURCE + ". " + experiments.paper_trend() + " Other model, "
               "other data: compare the trend, not the level.")
    stored()
    recompute()
    show_code(experiments.recompute, experiments.table_rows, experiments.paper_row,
              experiments.findings)


render()
