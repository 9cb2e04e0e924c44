"""Training: start a small run in the browser, watch its loss and progress, stop it, use it.

The run itself lives in overfeat.app.jobs (one per server, in a low-priority worker process);
this page only starts it, polls its snapshot every second inside a fragment (the rest of the app
stays responsive), and draws what the package returns.

Who may do what (issue 25, part 5): every session sees the server's run; only the session that
started it (its token, OWNER_KEY) or whoever types the teacher key may stop it; without the key
a run is capped at jobs.CAP, and the widgets' maxima follow the cap (jobs.start checks it too).
"""

import uuid

import streamlit as st

from overfeat import train
from overfeat.app import figures, jobs
from app_pages.common import chart, context, intro, notice, show_code, table

ctx = context()
POLL_S = 1.0
STAGES = {1: "1 classifier", 2: "2 regressor", 3: "3 detection"}
WIDTHS = (0.03125, 0.0625, 0.125, 0.25)  # the width slider's stops (those within the limits)
# Session keys starting with "_" are this session's own: no link carries them.
OWNER_KEY = "_train_owner"  # this session's token: jobs.start(owner=), Job.stop(by=)
KEY_INPUT = "_train_key"  # the "Teacher key" field
KEY_KEPT = "_train_key_kept"  # its value, kept while the field's page is not drawn
NOT_YOURS = "Started by another session: only that session or the teacher can stop it."


def owner() -> str:
    """This session's token (a random uuid4, made once per session)."""
    if not st.session_state.get(OWNER_KEY):
        st.session_state[OWNER_KEY] = uuid.uuid4().hex
    return st.session_state[OWNER_KEY]


def teacher_key() -> str | None:
    """The key typed in the "Teacher key" field (None: none typed, or the server has none)."""
    return (st.session_state.get(KEY_KEPT) or None) if jobs.teacher_key_set() else None


def key_ui() -> jobs.Limits:
    """The "Teacher key" field, shown only when the server has a key; returns the limits this
    session's runs must keep (jobs.CAP, or jobs.MAXIMA with the right key)."""
    if not jobs.teacher_key_set():
        return jobs.CAP
    # Streamlit drops a widget's value while its page is not drawn: restore it from the copy.
    if KEY_INPUT not in st.session_state and st.session_state.get(KEY_KEPT):
        st.session_state[KEY_INPUT] = st.session_state[KEY_KEPT]
    key = st.text_input("Teacher key", type="password", key=KEY_INPUT,
                        help="The key the server was started with (OVERFEAT_TEACHER_KEY): it "
                             "stops any run and lifts the size cap of a run started here.")
    st.session_state[KEY_KEPT] = key
    if key and jobs.is_teacher(key):
        st.caption(f"Teacher key accepted: this session may stop any run, and start runs up to "
                   f"{jobs.MAXIMA.n_scenes} scenes, {jobs.MAXIMA.epochs} epochs per stage and "
                   f"width {jobs.MAXIMA.width:g}.")
    elif key:
        st.warning("That is not the teacher key: the cap applies, and only a run this session "
                   "started can be stopped here.")
    return jobs.limits_for(teacher_key())


def spec_ui(limits: jobs.Limits) -> jobs.JobSpec:
    """The run's choices, within limits; returns a validated JobSpec."""
    # A value chosen under a lifted cap comes back within this one (a widget refuses a value
    # over its maximum).
    for k, top in (("train_epochs", limits.epochs), ("train_scenes", limits.n_scenes)):
        if isinstance(st.session_state.get(k), int) and st.session_state[k] > top:
            st.session_state[k] = top
    widths = [w for w in WIDTHS if w <= limits.width]
    if st.session_state.get("train_width") not in widths:
        st.session_state["train_width"] = widths[-1]
    c1, c2 = st.columns([3, 2])
    stages = c1.pills("Stages", list(STAGES), selection_mode="multi", key="train_stages",
                      format_func=STAGES.get,
                      help="Stage 2 trains the regressor on the frozen trunk; stage 3 fine-tunes "
                           "the classifier with mined negatives (needs det scenes to be useful).")
    kind = c2.radio("Scenes", list(jobs.KINDS), key="train_kind", horizontal=True,
                    format_func={"loc": "loc (one object)", "det": "det (several)"}.get)
    c1, c2, c3 = st.columns(3)
    epochs = c1.number_input("Epochs per stage", 1, limits.epochs, step=1, key="train_epochs")
    n = c2.number_input("Generated scenes", 2, limits.n_scenes, step=2, key="train_scenes")
    width = c3.select_slider("Channel width", widths, key="train_width",
                             help="The demo preset's channel multiplier; the shipped model uses "
                                  "0.125. Narrow models finish in a minute or two.")
    return jobs.JobSpec(stages=tuple(stages) or (1,), epochs=int(epochs), n_scenes=int(n),
                        kind=kind, width=float(width))


def start(spec: jobs.JobSpec) -> None:
    try:
        jobs.start(spec, owner=owner(), key=teacher_key())
        st.session_state.pop("train_msg", None)
    except jobs.JobRunning as e:
        st.session_state["train_msg"] = str(e)
    except jobs.OverCap as e:  # the widgets keep within the cap; a key removed meanwhile
        st.warning(str(e))


def stop(job: jobs.Job) -> None:
    """The Stop button: ask the run to stop; its "already running" warning no longer applies."""
    try:
        job.stop(by=owner(), key=teacher_key())
        st.session_state.pop("train_msg", None)
    except jobs.NotYourRun as e:  # the teacher key was changed since the button was drawn
        st.session_state["train_msg"] = str(e)


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
    if job.alive and job.may_stop(by=owner(), key=teacher_key()):
        st.button("Stop", key="train_stop", on_click=stop, args=(job,),
                  disabled=s["stop_requested"],
                  help="Stops after the current step; the last finished epoch's checkpoint stays.")
    elif job.alive:
        st.caption(NOT_YOURS)
    if job.alive and s["worker"]:
        w = s["worker"]
        st.caption(f"Training in process {w['pid']} at nice {w['nice']} with {w['threads']} "
                   f"thread(s): the server's pages come first, the run takes what they leave.")
    chart("train_loss", figures.training_figure, s["losses"], s["epochs"], cache=False)
    vals = [r["loss"] for r in s["losses"] if r["loss"] is not None]
    if len(vals) >= 2:
        notice([f"The loss went from {vals[0]:.3f} to {vals[-1]:.3f} over {len(vals)} logged "
                "steps (lower: the network's answers on its training scenes got better).",
                "Stage 1 trains the classifier; stage 2 the regressor on the frozen trunk "
                "(paper §4.2); stage 3 detection, with a background class (§5)."])
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
    intro(
        "Train a small OverFeat in the browser: the app generates a few pictogram scenes, then "
        "runs the paper's stages with the project's trainer (the same loop as "
        "`python -m overfeat train`) in a separate process at low priority. One run at a time "
        "per server, seen by every session; only the session that started it, or the teacher, "
        "can stop it. Other pages keep working while it runs.")
    owner()
    job = jobs.current()
    running = job is not None and job.alive
    limits = key_ui()
    with st.form("train_form", border=True):
        spec = spec_ui(limits)
        clicked = st.form_submit_button("Start training", type="primary")
    if clicked:
        start(spec)
    if limits == jobs.CAP:
        st.caption(f"Runs started here are capped at {jobs.CAP.n_scenes} scenes, "
                   f"{jobs.CAP.epochs} epochs per stage and width {jobs.CAP.width:g}: the "
                   f"largest took about {jobs.CAP_LARGEST_RUN_S} s on the project's 2-core server "
                   f"with a core to spare, longer while the class keeps both cores busy."
                   + (" The teacher key lifts the cap." if jobs.teacher_key_set() else ""))
    if running and not clicked:
        st.caption("A run is in progress on this server; starting another waits until it ends.")
    monitor()
    done = jobs.checkpoints()
    if done:  # what a user can use: the run's name (the sidebar lists it) and the file itself
        latest = done[0]
        c1, c2 = st.columns([3, 1])
        c1.caption(f"Latest finished run: **{jobs.checkpoint_label(latest)}**. Pick it in the "
                   "sidebar (Model: Trained in the app), or download its checkpoint to use it "
                   "with `python -m overfeat predict --checkpoint`.")
        c2.download_button("Download checkpoint", latest.read_bytes, key="train_download",
                           file_name=f"{latest.parent.name}.pt", on_click="ignore",
                           mime="application/octet-stream")
    st.caption(f"The other pages run the sidebar's model ({ctx.model_desc}).")
    show_code(jobs.Job.callback, train.Trainer.run)


render()
