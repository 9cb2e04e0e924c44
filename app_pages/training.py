"""Training: start a small run in the browser, watch its loss and progress, stop it, use it.

The run itself lives in overfeat.app.jobs (a background thread, one per server); this page only
starts it, polls its snapshot every second inside a fragment (the rest of the app stays
responsive), and draws what the package returns.
"""

import streamlit as st

from overfeat import train
from overfeat.app import figures, jobs
from app_pages.common import chart, context, show_code, table

ctx = context()
POLL_S = 1.0
STAGES = {1: "1 classifier", 2: "2 regressor", 3: "3 detection"}


def spec_ui() -> jobs.JobSpec:
    """The run's choices; returns a validated JobSpec."""
    c1, c2 = st.columns([3, 2])
    stages = c1.pills("Stages", list(STAGES), selection_mode="multi", key="train_stages",
                      format_func=STAGES.get,
                      help="Stage 2 trains the regressor on the frozen trunk; stage 3 fine-tunes "
                           "the classifier with mined negatives (needs det scenes to be useful).")
    kind = c2.radio("Scenes", list(jobs.KINDS), key="train_kind", horizontal=True,
                    format_func={"loc": "loc (one object)", "det": "det (several)"}.get)
    c1, c2, c3 = st.columns(3)
    epochs = c1.number_input("Epochs per stage", 1, 20, step=1, key="train_epochs")
    n = c2.number_input("Generated scenes", 2, 500, step=2, key="train_scenes")
    width = c3.select_slider("Channel width", [0.03125, 0.0625, 0.125], key="train_width",
                             help="The demo preset's channel multiplier; the shipped model uses "
                                  "0.125. Narrow models finish in a minute or two.")
    return jobs.JobSpec(stages=tuple(stages) or (1,), epochs=int(epochs), n_scenes=int(n),
                        kind=kind, width=float(width))


def start(spec: jobs.JobSpec) -> None:
    try:
        jobs.start(spec)
        st.session_state.pop("train_msg", None)
    except jobs.JobRunning as e:
        st.session_state["train_msg"] = str(e)


def stop(job: jobs.Job) -> None:
    """The Stop button: ask the run to stop; its "already running" warning no longer applies."""
    job.stop()
    st.session_state.pop("train_msg", None)


@st.fragment(run_every=POLL_S)
def monitor() -> None:
    """The live part: progress bar, loss curves, stop button; reruns itself every POLL_S."""
    job = jobs.current()
    if job is None:
        st.info("No run on this server yet.")
        return
    # The "already running" warning of a start refused: drawn in the fragment, so it goes
    # within POLL_S once the Stop button is pressed or the run has ended (it stayed before).
    if not job.alive or job.id not in st.session_state.get("train_msg", job.id):
        st.session_state.pop("train_msg", None)  # its run has ended (or another run is on)
    if st.session_state.get("train_msg"):
        st.warning(st.session_state["train_msg"])
    s = job.snapshot()
    st.progress(s["progress"], text=f"{s['id']}: {s['status']} - {s['message']} "
                                    f"({s['seconds']:.0f} s)")
    if job.alive:
        st.button("Stop", key="train_stop", on_click=stop, args=(job,),
                  disabled=s["stop_requested"],
                  help="Stops after the current step; the last finished epoch's checkpoint stays.")
    chart("train_loss", figures.training_figure, s["losses"], s["epochs"], cache=False)
    if any(r["loss"] is None for r in s["losses"]):
        st.caption("Stage 2 mixes the windows of a few images in a shuffle buffer before it "
                   "learns from them: an epoch's first steps only fill it (no point drawn), and "
                   "its last step also learns what the buffer still holds.")
    if s["epochs"]:
        table(s["epochs"])
    if s["status"] == "failed":
        st.error(f"The run failed: {s['error']}")
    elif not job.alive:
        if s["checkpoint"]:
            st.success(f"{s['message']}. Its checkpoint is in the sidebar: Model -> "
                       f"*Trained in the app* -> {s['id']}.")
        else:
            st.warning(f"{s['message']}.")
        if st.session_state.get("_train_seen_end") != s["id"]:
            # Once per run: rerun the whole app so the sidebar lists the new checkpoint.
            st.session_state["_train_seen_end"] = s["id"]
            st.rerun(scope="app")


def render() -> None:
    st.title("Training")
    if ctx.model.name != "pictogram":
        st.info("Training is for the project's own OverFeat (the pictogram model): the ImageNet "
                "and Faces nets come pretrained. What you train here appears in the sidebar.")
    st.markdown(
        "Train a small OverFeat in the browser: the app generates a few pictogram scenes, then "
        "runs the paper's stages with the project's trainer (the same loop as "
        "`python -m overfeat train`) in a background thread. One run at a time per server; "
        "other pages keep working while it runs.")
    job = jobs.current()
    running = job is not None and job.alive
    with st.form("train_form", border=True):
        spec = spec_ui()
        clicked = st.form_submit_button("Start training", type="primary")
    if clicked:
        start(spec)
    if running and not clicked:
        st.caption("A run is in progress on this server; starting another waits until it ends.")
    monitor()
    st.caption(f"Runs and their checkpoints are written under {jobs.ROOT}. The other pages "
               f"run the sidebar's model ({ctx.model_desc}).")
    show_code(jobs.Job.callback, train.Trainer.run)


render()
