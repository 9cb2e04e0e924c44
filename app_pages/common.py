"""Streamlit glue shared by app.py and the pages: cached loaders and the per-run Context.

Not a page itself (app.py registers the pages explicitly). The package does the work; this file
only decides what is cached and for how long, and turns package errors into one-line
messages on the page.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import streamlit as st
import torch
from PIL import Image

from overfeat import glossary
from overfeat.models import registry as zoo
from overfeat.app import figures, jobs, share, tables
from overfeat.app import state as appstate
from overfeat.checkpoint import DEMO_CHECKPOINT, load_checkpoint
from overfeat.config import ModelConfig, preset
from overfeat.app.figures import Backdrop, backdrop
from overfeat.images import load_image
from overfeat.merge import MergeResult, Stopped
from overfeat.models.overfeat import OverFeat
from overfeat.multiscale import Analysis, Settings, analyze
from overfeat.predict import load_model

CTX_KEY = "_ctx"


# --- models ---------------------------------------------------------------------------------
def _warm_up(model: OverFeat) -> None:
    """One small evaluation, so the first real image does not pay for PyTorch's first calls."""
    with torch.no_grad():
        analyze(model, Image.new("RGB", (260, 260), (128, 128, 128)),
                Settings(scales=(0,), flips=False))


@st.cache_resource(show_spinner="Loading the model...")
def default_model(stamp: float | None) -> tuple[OverFeat, str]:
    """The shipped checkpoint (or the random demo model while there is none). `stamp` is the
    checkpoint's modification time, so a checkpoint that appears later is picked up."""
    model, desc = load_model()
    _warm_up(model)
    return model, desc


@st.cache_resource(max_entries=3, show_spinner="Loading the uploaded checkpoint...")
def uploaded_model(key: str, _data: bytes, name: str) -> tuple[OverFeat, dict]:
    model, meta = load_checkpoint(_data, name=name)
    if appstate.runnable(model.cfg):
        _warm_up(model)
    return model, meta


@st.cache_resource(show_spinner="Building the untrained model...")
def preset_model(name: str) -> OverFeat:
    torch.manual_seed(0)  # the same random weights in every session
    model = OverFeat(preset(name)).eval()
    _warm_up(model)
    return model


@st.cache_resource(show_spinner="Loading the pretrained network...")
def zoo_model(name: str):
    """One of the pretrained nets of overfeat.models.registry (weights shipped in a package or in assets/),
    shared by every session."""
    model = zoo.load(name)
    _warm_up(model)
    return model


@st.cache_resource(max_entries=3, show_spinner="Loading the checkpoint trained in the app...")
def trained_model(path: str, stamp: float) -> tuple[OverFeat, dict]:
    """A checkpoint written by a run of the Training page (overfeat.app.jobs); `stamp` is its
    modification time, so a rewritten file is loaded again."""
    model, meta = load_checkpoint(path)
    if appstate.runnable(model.cfg):
        _warm_up(model)
    return model, meta


@st.cache_data(max_entries=64, show_spinner=False)
def _checkpoint_label(path: str, stamp: float) -> str:
    return jobs.checkpoint_label(Path(path))


def mtime(path: str) -> float:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


def app_checkpoints() -> list[tuple[str, str]]:
    """[(path, label)] of the finished runs of the Training page, newest first."""
    return [(str(p), _checkpoint_label(str(p), mtime(str(p)))) for p in jobs.checkpoints()]


def checkpoint_stamp() -> float | None:
    try:
        return DEMO_CHECKPOINT.stat().st_mtime
    except OSError:
        return None


# --- images ---------------------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner=False)
def decode_upload(key: str, _data: bytes, name: str) -> tuple[Image.Image, str | None]:
    """Upload bytes -> (RGB image ready for the network, note); ImageError is not cached."""
    return appstate.prepare(load_image(_data, name=name))


@st.cache_data(max_entries=32, show_spinner="Rendering the scene...")
def scene(kind: str, seed: int, index: int) -> tuple[Image.Image, list[dict]]:
    return appstate.make_scene(kind, seed, index)


@st.cache_data(max_entries=8, show_spinner=False)
def sample_photo(index: int) -> Image.Image:
    return appstate.load_photo(index)


@st.cache_data(show_spinner=False)
def photo_truth(index: int) -> list[dict] | None:
    """The hand-drawn boxes of sample photo `index` (assets/photos/boxes.json), or None for a
    photo without them (or should the file be unreadable: the pages then rank nothing)."""
    from overfeat.photos import load_truth

    try:
        return appstate.photo_truth(index, load_truth())
    except ValueError:
        logging.getLogger("overfeat.app").exception("assets/photos/boxes.json")
        return None


@st.cache_resource(max_entries=32, show_spinner=False)
def image_backdrop(image_key: str, _image: Image.Image, max_side: int = 560) -> Backdrop:
    return backdrop(_image, max_side)


# --- analyses -------------------------------------------------------------------------------
# Shared by every session of the server, never copied (st.cache_resource): an Analysis with all
# its maps is 40-50 MB, and st.cache_data unpickled a private copy on every script run (about
# 0.2 s per run and one copy per session). Nothing downstream mutates an Analysis or a
# MergeResult (derive and the figures build new objects). Bounded: 12 images x (offsets on/off,
# scale rule) hold at most ~600 MB.
@st.cache_resource(max_entries=12, show_spinner="Running the network at six scales (with flips)...")
def full_analysis(model_key: str, image_key: str, fine: bool, rule: str, _model: OverFeat,
                  _image: Image.Image, _stop=None) -> Analysis:
    """All six scales with flips: every other choice of scales and flips is cut out of it.
    _stop: the background work's (see _analyse_and_merge); not part of the key."""
    return analyze(_model, _image, appstate.Knobs(fine=fine, rule=rule).full_settings(),
                   stop=_stop)


@st.cache_resource(max_entries=48, show_spinner=False)
def derived(model_key: str, image_key: str, key: appstate.AnalysisKey, _full: Analysis,
            _settings: Settings) -> Analysis:
    """The sidebar's cut of a full analysis (scales, flips, top-k, min score): the same object
    on every run until a choice changes, so what is built from it can be kept (chart)."""
    return appstate.derive(_full, _settings)


@st.cache_resource(max_entries=48, show_spinner="Merging boxes...")
def merged(model_key: str, image_key: str, key: appstate.MergeKey,
           _analysis: Analysis, _stop=None) -> MergeResult:
    return _analysis.merge(score=key.score, threshold=key.threshold, by_class=key.by_class,
                           average=key.average, stop=_stop)


# --- the context every page reads ------------------------------------------------------------
@dataclass
class Context:
    """What the sidebar chose for this run: model, image and knobs, with lazy analyses."""

    model: OverFeat  # the model the pages run (always one small enough for the CPU)
    model_key: str
    model_desc: str
    arch_cfg: ModelConfig  # the model the Architecture page shows (may be a full-width preset)
    arch_note: str | None  # why other pages run a different model than arch_cfg, if they do
    image: Image.Image
    image_key: str
    image_label: str
    truth: list[dict] | None  # ground-truth objects of a generated scene
    knobs: appstate.Knobs
    notes: list[str] = field(default_factory=list)
    # The hand-drawn boxes of a sample photo (assets/photos/boxes.json), when the model knows
    # all their classes: the Detection and Greedy vs NMS pages mark boxes right or wrong.
    photo_truth: list[dict] | None = None
    is_photo: bool = False  # a photo (upload, camera, sample photo) accepted on this run
    timings: dict = field(default_factory=dict)
    _full: Analysis | None = None
    _analysis: Analysis | None = None

    @property
    def view_key(self) -> tuple:
        """Everything the sidebar chose that the pages' results depend on."""
        return (self.model_key, self.image_key, self.knobs)

    @property
    def settings(self) -> Settings:
        return self.knobs.settings()

    @property
    def card(self):
        """The model's card (overfeat.models.base.ModelCard): what it can do. Pages follow its
        fields (boxes, photos, pyramid, min_box_score), never the model's name."""
        return zoo.card_of(self.model)

    @property
    def any_truth(self) -> list[dict] | None:
        """The truth to mark boxes against: a generated scene's objects, else a sample
        photo's hand-drawn boxes (None: neither, or classes the model does not know)."""
        return self.truth if self.truth is not None else self.photo_truth

    def full(self) -> Analysis:
        if self._full is None:
            t = time.perf_counter()
            self._full = full_analysis(self.model_key, self.image_key, self.knobs.fine,
                                       self.knobs.rule, self.model, self.image)
            self.timings["analysis"] = time.perf_counter() - t
        return self._full

    def analysis(self) -> Analysis:
        """The analysis for the sidebar's scales, flips, top-k and min score."""
        if self._analysis is None:
            self._analysis = self.cut(self.settings)
        return self._analysis

    def cut(self, settings: Settings) -> Analysis:
        """The analysis for other settings (same fine stride and scale rule), cut out of the
        full one (cached: the same object on every run)."""
        return derived(self.model_key, self.image_key, appstate.analysis_key(settings),
                       self.full(), settings)

    def merge(self, kind: str) -> MergeResult:
        t = time.perf_counter()
        try:
            r = merged(self.model_key, self.image_key, self.knobs.merge_key(kind), self.analysis())
        except ValueError as e:  # too many raw boxes for the greedy merge: say so, keep going
            st.error(f"Cannot merge: {e} (sidebar).")
            st.stop()
        self.timings[f"merge {kind}"] = time.perf_counter() - t
        return r

    def merges_now(self, analysis: Analysis) -> dict[str, MergeResult]:
        """Both merges of `analysis` (this run's), from the cache or computed; for callers
        outside the page's run (a download button's callable): ValueError is raised, not shown."""
        return {kind: merged(self.model_key, self.image_key, self.knobs.merge_key(kind), analysis)
                for kind in ("literal", "corrected")}

    def backdrop(self, max_side: int = 560) -> Backdrop:
        """The image under the figures (a JPEG thumbnail; smaller for multi-panel figures)."""
        return image_backdrop(self.image_key, self.image, max_side)


# --- prefetch --------------------------------------------------------------------------------
# After a page is drawn, both merges of the current settings are computed in the background, so
# that the run (and the spinner) ends as soon as the page has what it shows, and the Merge and
# Greedy vs NMS pages find both merges cached. One worker for the whole server and at most
# PREFETCH_QUEUE jobs waiting: under load a prefetch is skipped, never queued up; a page that
# needs a merge before it is done waits for the same computation (Streamlit's caches compute a
# key once) or computes it itself.
PREFETCH_QUEUE = 4
_prefetch_lock = threading.Lock()
_prefetch_pending: set = set()
PREFETCH_THREAD = "overfeat-prefetch"
# The worker runs at a lower CPU priority (Linux: a thread's own nice value, which the threads it
# starts, torch's OpenMP team among them, inherit), so that a click's script run and the
# browser drawing its answer are not slowed by a merge nobody waits for yet: on a 2-core machine
# the prefetch after an upload took a core for ~1.5 s while the student switched pages
# (tests/browser_latency.py, round 1). A page that does wait for it gets the CPU the others
# leave, as before. Elsewhere (no per-thread nice) nothing changes.
PREFETCH_NICE = 10
# ... and it starts PREFETCH_DELAY_S after the run that asked for it: the run's answer is drawn
# by the browser in those 0.2 to 0.6 s (on a 2-core machine shared with the browser, the
# server's CPU during a scale toggle went from 0.29-0.31 s to 0.13-0.19 s: tests/browser_latency.py
# --pages Scales). A page that needs the merges sooner computes them itself; the prefetch then
# finds them cached.
PREFETCH_DELAY_S = 0.6


def _background_priority() -> None:
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PREFETCH_NICE)
        except OSError:  # not allowed here: it runs at the normal priority
            pass


_prefetch_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=PREFETCH_THREAD,
                                    initializer=_background_priority)


class _QuietPrefetch(logging.Filter):
    """Streamlit warns on each cache call made outside a script run ("missing
    ScriptRunContext ... can be ignored"): the prefetch thread makes them on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.threadName.startswith(PREFETCH_THREAD)


logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
    _QuietPrefetch())


def _analyse_and_merge(model_key: str, image_key: str, knobs: appstate.Knobs, model: OverFeat,
                       image: Image.Image, stop=None) -> bool:
    """Fill the caches a page reads for this image and these knobs: the full analysis, the
    sidebar's cut of it and both merges. Errors are dropped (too many boxes, a bad setting):
    the page says so when it asks. stop: asked before each of the four steps and inside the
    two long ones (before each scale of the analysis, every merge.STOP_EVERY steps of a merge);
    when it says so, the work stops there and False is returned (the steps done stay cached:
    a later call goes on where this one stopped; a step stopped half-way is done again)."""
    halted = stop if stop is not None else (lambda: False)
    try:
        if halted():
            return False
        full = full_analysis(model_key, image_key, knobs.fine, knobs.rule, model, image,
                             _stop=stop)
        if halted():
            return False
        a = derived(model_key, image_key, knobs.analysis_key(), full, knobs.settings())
        for kind in ("literal", "corrected"):
            if halted():
                return False
            merged(model_key, image_key, knobs.merge_key(kind), a, _stop=stop)
    except Stopped:
        return False
    except Exception:
        pass
    return True


def prefetch_merges(ctx: Context) -> bool:
    """Queue both merges of ctx's settings (and the analysis they need); False when skipped
    (already queued, or the queue is full)."""
    job = (ctx.model_key, ctx.image_key, ctx.knobs)
    with _prefetch_lock:
        if job in _prefetch_pending or len(_prefetch_pending) >= PREFETCH_QUEUE:
            return False
        _prefetch_pending.add(job)
    model, image, knobs = ctx.model, ctx.image, ctx.knobs

    def run() -> None:
        try:
            _analyse_and_merge(job[0], job[1], knobs, model, image)
        finally:
            with _prefetch_lock:
                _prefetch_pending.discard(job)

    _submit_later(run, PREFETCH_DELAY_S)
    return True


# While a sample scene is on screen, the other sample scenes are analysed too (with both
# merges), for the same model and settings: a switch to another sample then finds everything
# cached (a cold switch is the network at twelve views plus a greedy merge of 1,700 to 2,900
# raw boxes, about 0.5 to 0.7 s of CPU). So is the scene the sidebar's "New scene from a seed"
# shows first (its default kind and seed, last in the queue): choosing that source was a cold
# analysis of 1.6 to 2.6 s on a 2-core machine (tests/browser_latency.py, round 1), the only
# scene one click away from a sample. So that this never competes with a student's click, a
# scene is started only when no script run is in progress and none has ended for
# GALLERY_IDLE_S, and nothing else is queued; otherwise the job looks again GALLERY_RETRY_S
# later (a timer, so the worker stays free). One scene per turn, and each (model, settings,
# scene) once per server process: the caches may evict a sample later, it is not analysed again
# in a loop. OVERFEAT_PREFETCH_GALLERY=0 turns it off (a server short of CPU; the tests).
PREFETCH_GALLERY = os.environ.get("OVERFEAT_PREFETCH_GALLERY", "1") != "0"
GALLERY_IDLE_S = 1.0
GALLERY_RETRY_S = 0.5
_runs = {"active": 0, "ended": 0.0}  # script runs in progress; when the last one ended
_gallery_done: set = set()
_gallery_jobs: set = set()


def run_started() -> None:
    """app.py calls this first in every script run (and run_ended in a finally)."""
    with _prefetch_lock:
        _runs["active"] += 1


def run_ended() -> None:
    with _prefetch_lock:
        _runs["active"] -= 1
        _runs["ended"] = time.monotonic()


def counted_run(fn):
    """A fragment's body counted as a script run (app.py counts the whole script's): a fragment
    reruns alone, without app.py, and background work took the server for idle meanwhile. The
    Merge page's stepper is one: while a teacher stepped or played the merge, a sample scene's
    analysis (both cores for a scale, a merge) ran beside every step (the bench: 0.4-0.8 s of
    the server's CPU around a step that needs 0.03 s; one step 0.51 s). Nested in a whole run
    it counts twice, harmlessly."""
    @functools.wraps(fn)
    def counted(*args, **kw):
        run_started()
        try:
            return fn(*args, **kw)
        finally:
            run_ended()
    return counted


def _server_idle() -> bool:
    with _prefetch_lock:
        return (_runs["active"] == 0 and not _prefetch_pending
                and time.monotonic() - _runs["ended"] >= GALLERY_IDLE_S)


def _submit_later(fn, delay_s: float = GALLERY_RETRY_S) -> None:
    """Submit fn to the prefetch worker delay_s from now (a daemon timer: a server that is
    stopping neither waits for it nor complains that the worker is gone)."""
    def submit() -> None:
        try:
            _prefetch_pool.submit(fn)
        except RuntimeError:  # the interpreter is shutting down
            pass

    timer = threading.Timer(delay_s, submit)
    timer.daemon = True
    timer.start()


# (kind, seed, index) of the scenes analysed in the background: the samples in their order,
# then the first scene of the "New scene from a seed" source (the link's defaults, as the
# sidebar). Last, not first: in the bench's first round the background gets through about one
# scene before its sample switch, and with the seed scene first that switch was the cold one
# (0.89-1.55 s against 0.33-0.41 s; the seed source 0.36-0.50 s against 1.36-1.77 s). In a
# class the server is idle for minutes and all of them are done.
PREFETCHED_SCENES = (*appstate.GALLERY, (share.BY_KEY["scene_kind"].default,
                                         share.BY_KEY["scene_seed"].default, 0))


def prefetch_gallery(ctx: Context) -> bool:
    """Queue the analysis of the sample scenes (and the seed source's first scene) not done yet
    for ctx's model and settings; False when nothing was queued (not one of those scenes, all
    done, or a job for them is queued)."""
    keys = {appstate.scene_key(*g): g for g in PREFETCHED_SCENES}
    job = (ctx.model_key, ctx.knobs)
    if not PREFETCH_GALLERY or ctx.image_key not in keys:
        return False
    with _prefetch_lock:
        if job in _gallery_jobs or all((*job, k) in _gallery_done for k in keys):
            return False
        _gallery_jobs.add(job)
        _gallery_done.add((*job, ctx.image_key))  # on screen: the page computed it
        if len(_gallery_done) > 64 * len(keys):  # bounded; at worst a sample is done again
            _gallery_done.clear()
    model, knobs = ctx.model, ctx.knobs

    def turn() -> None:
        if not _server_idle():
            _submit_later(turn)
            return
        todo = [k for k in keys if (*job, k) not in _gallery_done]
        finished = True
        try:
            if todo:
                # A scene's four steps (the network at twelve views, the sidebar's cut, two
                # merges: ~1 s of CPU together) stop between steps as soon as a run starts, so
                # that a student's click shares the CPU with one step at most (the bench's round
                # 1: the server's CPU was 0.9 to 1.1 s during a 0.4 s click). The scene is done
                # once all four are; a stopped one goes on later, from the cache.
                finished = _analyse_and_merge(job[0], todo[0], knobs, model,
                                              scene(*keys[todo[0]])[0],
                                              stop=lambda: not _server_idle())
        finally:  # the next scene, the same one later, or the job is over (also after an error:
            if todo and finished:  # a scene that failed is not tried again)
                with _prefetch_lock:
                    _gallery_done.add((*job, todo[0]))
            if not finished:
                _submit_later(turn)
            elif len(todo) > 1:
                _prefetch_pool.submit(turn)
            else:
                with _prefetch_lock:
                    _gallery_jobs.discard(job)

    _prefetch_pool.submit(turn)
    return True


# The browser's part of a page's first visit in a tab (issue 27, speed). Streamlit's frontend
# loads the code of some elements only when one is first drawn (its lazy chunks): st.metric
# (with its number formatting), st.number_input, st.multiselect, st.slider (with moment.js),
# st.image. A page that is the first to draw one of them in the tab waits for the chunk, and
# React shows the element in a later commit, after the page's charts: on Architecture,
# Offsets and Regressor the metrics, inputs or class filter were the page's last change, 35-60
# ms after everything else (tests/page_timeline.py). So the tab's first run draws one of each,
# disabled and hidden (display: none), at the end of the page: the chunks are loaded while
# the first page is read, and no later page waits for them. Nothing of it is seen or
# focusable; the next run drops it. OVERFEAT_WARM_ELEMENTS=0 turns it off.
WARM_ELEMENTS = os.environ.get("OVERFEAT_WARM_ELEMENTS", "1") != "0"
WARM_KEY = "_elements_warmed"
WARM_CONTAINER = "lazy_warmup"  # hidden by its class, st-key-lazy_warmup


def warm_elements() -> None:
    """Draw the lazily loaded element kinds once in a session (see WARM_ELEMENTS)."""
    if not WARM_ELEMENTS or st.session_state.get(WARM_KEY):
        return
    with st.container(key=WARM_CONTAINER):
        st.html(f"<style>.st-key-{WARM_CONTAINER} {{ display: none; }}</style>")
        st.metric("warm-up", 0, label_visibility="collapsed")
        st.number_input("warm-up", 0, 1, key="_warm_number", disabled=True,
                        label_visibility="collapsed")
        st.multiselect("warm-up", ["a"], key="_warm_multi", disabled=True,
                       label_visibility="collapsed")
        st.slider("warm-up", 0, 1, key="_warm_slider", disabled=True,
                  label_visibility="collapsed")
        st.image(Image.new("RGB", (1, 1)))
    st.session_state[WARM_KEY] = True


PAGE_KEY = "_page_name"  # the current page's name in links (app.py sets it every run)


def sync_link() -> None:
    """Write the current view into the URL, so the address bar is a link to what is on the
    screen. app.py calls it on every run; a fragment (the Merge page's stepper) calls it after
    it changes a setting, since a fragment's rerun does not run app.py (issue 27: the URL said
    step=0 after three Next clicks). Never raises: one bad value here would break every page
    (issue 25)."""
    try:
        q = share.encode({k: st.session_state.get(k) for k in share.SHARED_KEYS},
                         st.session_state.get(PAGE_KEY), len(appstate.GALLERY))
        if q != st.query_params.to_dict():
            st.query_params.from_dict(q)
    except Exception:
        logging.getLogger("overfeat.app").exception("the link could not be written (the page "
                                                    "goes on)")


LESSON_KEY = "lesson_views"  # [(name, link)]: the teacher's saved views, in order
GOTO_KEY = "_goto_view"  # a saved view to open on the next run (app.py applies it)


def link_base() -> str:
    """The app's root URL as the browser sees it (st.context.url holds the page's path, which
    is dropped); a local address where there is no browser (AppTest)."""
    try:
        url = st.context.url or ""
    except Exception:
        url = ""
    if not url.startswith("http"):
        return "http://localhost:8501"
    parts = urlsplit(url)
    segs = parts.path.rstrip("/").split("/")
    if segs and segs[-1] in share.PAGES:
        segs = segs[:-1]
    return f"{parts.scheme}://{parts.netloc}{'/'.join(segs)}"


def current_link() -> str:
    """The link to what is on the screen now (the same query sync_link writes)."""
    page = st.session_state.get(PAGE_KEY) or "overview"
    q = share.encode({k: st.session_state.get(k) for k in share.SHARED_KEYS}, page,
                     len(appstate.GALLERY))
    return share.view_url(link_base(), page, q)


def _save_view(name_key: str) -> None:
    views = list(st.session_state.get(LESSON_KEY, []))
    name = " ".join(str(st.session_state.get(name_key) or "").split())[:60]
    page = st.session_state.get(PAGE_KEY) or "overview"
    views.append((name or f"{page.capitalize()} ({len(views) + 1})", current_link()))
    st.session_state[LESSON_KEY] = views[-share.MAX_LESSON_VIEWS:]
    st.session_state[name_key] = ""


def link_popover(where=None, key: str = "link") -> None:
    """A "Link to this view" button: the link, ready to copy (the copy icon at its right), and
    a name to save it under in the lesson's list of views (the sidebar's Lesson views)."""
    with (where or st).popover("Link" if compact() else "Link to this view", icon=":material/link:",
                               help="Copy a link that opens exactly this view, or save it "
                                    "to the lesson's list of views."):
        st.code(current_link(), language=None, wrap_lines=True)
        st.caption("Copy it with the icon at the box's right. An uploaded image is not part "
                   "of a link." if st.session_state.get("img_source") == "upload" else
                   "Copy it with the icon at the box's right.")
        st.text_input("Save as", key=f"{key}_name", placeholder="e.g. Merge: the boat's boxes",
                      max_chars=60)
        st.button("Save to the lesson", key=f"{key}_save", on_click=_save_view,
                  args=(f"{key}_name",), icon=":material/bookmark_add:")


def _open_view(i: int) -> None:
    views = st.session_state.get(LESSON_KEY, [])
    if 0 <= i < len(views):
        st.session_state[GOTO_KEY] = share.link_query(views[i][1])


def _drop_view(i: int) -> None:
    views = list(st.session_state.get(LESSON_KEY, []))
    if 0 <= i < len(views):
        views.pop(i)
    st.session_state[LESSON_KEY] = views


def _load_lesson() -> None:
    views, errors = share.parse_lesson(st.session_state.get("lesson_paste") or "")
    st.session_state["_lesson_errors"] = errors
    if views:
        st.session_state[LESSON_KEY] = views
        st.session_state["lesson_paste"] = ""


def lesson_ui() -> None:
    """The sidebar's Lesson views: the saved views in order, each opened with one click; the
    list downloads as a Markdown file of named links and is pasted back in another session."""
    views = st.session_state.get(LESSON_KEY, [])
    with st.sidebar.expander(f"Lesson views ({len(views)})"):
        if not views:
            st.caption("Save a view with *Link to this view* above a page; the views of a "
                       "lesson open here in order.")
        for i, (name, _url) in enumerate(views):
            c1, c2 = st.columns([5, 1], vertical_alignment="center")
            c1.button(f"{i + 1}. {name}", key=f"lesson_open_{i}", on_click=_open_view,
                      args=(i,), width="stretch", help="Open this view")
            c2.button("", key=f"lesson_drop_{i}", on_click=_drop_view, args=(i,),
                      icon=":material/close:", help="Remove it from the list")
        if views:
            st.download_button("Download the lesson", share.lesson_markdown(views),
                               file_name="overfeat-lesson.md", mime="text/markdown",
                               key="lesson_download", on_click="ignore",
                               icon=":material/download:")
        st.text_area("Paste a lesson", key="lesson_paste", height=80,
                     placeholder="1. [Merge: the boat](http://...)",
                     help="A downloaded lesson's lines, or 'name | link' per line.")
        st.button("Load the pasted lesson", key="lesson_load", on_click=_load_lesson)
        for e in st.session_state.pop("_lesson_errors", []):
            st.error(e)


def is_phone() -> bool:
    """The browser says it is a phone (its User-Agent: "Mobi" on iOS and Android phones).
    Streamlit does not tell the server the screen's width; a phone's browser says what it is."""
    try:
        ua = st.context.headers.get("User-Agent") or ""
    except Exception:  # no browser (AppTest, a bare run)
        return False
    return "Mobi" in ua


def row(weights: list[float], align: str = "center", wrap: bool = True) -> list:
    """Where a row of controls or numbers goes (`c = row([1, 2]); c[0].button(...)`): columns
    on a wide screen; on a phone one horizontal container that wraps, since Streamlit stacks
    columns one per row under 640 px (six buttons or four metrics would push the page's
    figure a screen down; issue 27, a student's phone)."""
    if is_phone():
        line = st.container(horizontal=True, gap="small", vertical_alignment=align, wrap=wrap)
        return [line] * len(weights)
    return st.columns(weights, vertical_alignment=align)


def compact() -> bool:
    """Presenter mode or a phone: each page's first screen is its main figure, the page's
    explanation folded into an expander (issue 27)."""
    return bool(st.session_state.get("presenter")) or is_phone()


def intro(text: str, label: str = "About this page") -> None:
    """A page's explanation under its title: in full on a desktop; folded into an expander in
    presenter mode and on a phone, so the main figure is on the first screen."""
    if compact():
        st.expander(label).markdown(text)
    else:
        st.markdown(text)


def explain(label: str = "About this page"):
    """A container for a page's explanation (use `with explain():`): the page itself on a
    desktop, an expander in presenter mode and on a phone (see intro)."""
    return st.expander(label) if compact() else st.container()


def colour_control() -> bool:
    """The probability maps' colour scale, one control for the Scales, Offsets and
    Architecture pages (share.PARAMS colour_scale, linked as colour=): True to stretch to the
    class's range, False for the absolute 0-1 scale."""
    from overfeat.app.figures import maps as figmaps

    choice = st.segmented_control("Colours of the maps", list(figmaps.COLOUR_LABELS),
                                  format_func=figmaps.COLOUR_LABELS.__getitem__, required=True,
                                  key="colour_scale", help=figmaps.COLOUR_HELP)
    return choice == "stretch"


def settings_box(label: str):
    """A container for a page's view controls above its figure (`with settings_box(...):`):
    the page itself on a desktop; in presenter mode and on a phone an expander, closed, so the
    figure is the first screen (the figure's title says what the controls chose)."""
    return st.expander(label, icon=":material/tune:") if compact() else st.container()


def folded(label: str, key: str, draw, *args, icon: str | None = None):
    """A section drawn only while it is open: an expander with a key whose content, draw(*args),
    the page builds only while it is open (box.open; opening or closing it reruns the page).
    Below the fold, secondary figures and tables drawn on every visit cost the browser ~0.05-0.1
    s of each page switch (issue 27). The key's state is a view setting: the link carries it
    (overfeat.app.share), so a teacher's link opens the section. Returns what draw returned,
    None while closed. In a `with st.sidebar:` block it folds in the sidebar."""
    with st.expander(label, key=key, icon=icon, on_change="rerun") as box:
        if box.open:
            return draw(*args)
    return None


def term(name: str) -> str:
    """A term's one-line explanation (overfeat.glossary) for a widget's help= or a caption."""
    return glossary.help_for(name)


def terms(*names: str) -> str:
    """A help tooltip explaining several terms, one per paragraph."""
    return "\n\n".join(f"**{n}**: {term(n)}" for n in names)


def notice(bullets: list[str], where=None) -> None:
    """The page's "What to notice" box: two or three bullets with the current image's numbers,
    for a student following alone (issue 27)."""
    (where or st).info("**What to notice**\n" + "\n".join(f"- {b}" for b in bullets),
                       icon=":material/visibility:")


def context() -> Context:
    """The Context app.py built for this run."""
    ctx = st.session_state.get(CTX_KEY)
    if ctx is None:
        st.error("Open the app through app.py (streamlit run app.py): the pages need its sidebar.")
        st.stop()
    return ctx


# --- figures -------------------------------------------------------------------------------
# Building a Plotly figure is the server's main cost on a page switch: every property a figure
# sets is validated (50 to 100 ms per figure, the house style another ~10 ms: measured with
# cProfile). A built figure is kept, for every session (cache_resource: never mutated after it
# is built; st.plotly_chart only reads it), under the key of what it shows.
FIGURE_ENTRIES = 300  # ~0.3 to 1.5 MB each as Python objects: a few hundred MB at most


def _key_part(v):
    """A plain value (numbers, strings, None, and lists, tuples and dicts of them: a title, a
    step, rows of a table) as a hashable part of a cache key; "*" for anything else."""
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, (tuple, list)):
        parts = tuple(_key_part(x) for x in v)
        return "*" if "*" in parts else parts
    if isinstance(v, dict):
        parts = tuple((k, _key_part(x)) for k, x in v.items())
        return "*" if any(p == "*" for _, p in parts) else parts
    return "*"


@st.cache_resource(max_entries=FIGURE_ENTRIES, show_spinner=False)
def _figure(cache_key: tuple, _build, _args: tuple, _kw: dict):
    return figures.styled(_build(*_args, **_kw), presenter=cache_key[-1])


def figure(key: str, build, *args, depends: tuple = (), **kw):
    """The figure chart() would draw for the same arguments (built once, cached), without
    drawing it: for a page that reads a figure before it decides to show it."""
    ctx = st.session_state.get(CTX_KEY)
    presenter = bool(st.session_state.get("presenter"))
    return _figure(_cache_key(key, build, ctx, args, kw, depends, presenter), build, args, kw)


def _cache_key(key, build, ctx, args, kw, depends, presenter) -> tuple:
    return (key, f"{build.__module__}.{build.__qualname__}",
            ctx.view_key if ctx is not None else None, tuple(_key_part(a) for a in args),
            tuple(sorted((k, _key_part(v)) for k, v in kw.items())), depends, presenter)


def chart(key: str, build, *args, depends: tuple = (), cache: bool = True,
          plot_kw: dict | None = None, **kw):
    """Draw the package figure build(*args, **kw) in the house style (figures.styled; larger in
    presenter mode) across the column's width, with the app's toolbar config. `key` is the
    chart's element key; plot_kw: on_select and friends for st.plotly_chart.

    The figure is built once per key, the sidebar's choices (ctx.view_key: model, image and
    knobs), the plain arguments (numbers, strings, lists of them: a title, a step, table rows),
    `depends` and presenter mode, and then reused (by other sessions too). So every other
    argument (an analysis, a merge, a list of maps) must follow from the sidebar's choices and
    `depends`: a page passes whatever else it chose (a scale, a class, a cell) in `depends`.
    cache=False: built on every run (a live figure that changes each time)."""
    ctx = st.session_state.get(CTX_KEY)
    presenter = bool(st.session_state.get("presenter"))
    if cache:
        fig = _figure(_cache_key(key, build, ctx, args, kw, depends, presenter), build, args, kw)
    else:
        fig = figures.styled(build(*args, **kw), presenter=presenter)
    # theme=None: the figure carries Streamlit's look itself (figures.drawn_once: with the
    # theme, the browser drew every figure twice)
    return st.plotly_chart(fig, config=figures.PLOTLY_CONFIG, key=key, width="stretch",
                           theme=None, **(plot_kw or {}))


PICTURES = "_pictures"  # session state: what each picture on the page drew (tests read it)


def picture(key: str, data: bytes, fmt: str, record: dict, width: str = "content") -> None:
    """A package picture (figures.raster, figures.grids: an image, not a Plotly figure, issue
    27: showing it costs the browser one image decode) in a container keyed `key`. fmt: "JPEG"
    or "PNG" (data's format: Streamlit sends the bytes as they are); width "content": shown at
    the size it was drawn (narrower where the column is), "stretch": the column's width. What it
    drew (`record`) goes to session state under `key`, beside its bytes: the tests read it as
    they read a figure's traces (the bytes name the image the page shows)."""
    with st.container(key=key):
        st.image(data, output_format=fmt, width=width)
    st.session_state.setdefault(PICTURES, {})[key] = {
        "bytes": data, "mimetype": f"image/{fmt.lower()}", **record}


@st.cache_resource(max_entries=FIGURE_ENTRIES, show_spinner=False)
def _picture(cache_key: tuple, _build, _args: tuple, _kw: dict) -> tuple[bytes, dict]:
    """(PNG bytes, what was drawn): kept without the drawn image itself (~2 MB at 2x; the
    PNG is ~30-100 KB), so the cache holds about what a chart's figure holds."""
    pic = _build(*_args, **_kw)
    return pic.png(), pic.record()


def picture_chart(key: str, build, *args, depends: tuple = (), **kw) -> None:
    """chart() for a package picture drawn as a PNG (figures.grids): built once per the same
    key as a chart's figure (the sidebar's choices, the plain arguments, `depends`, presenter
    mode), drawn for presenter mode's column and fonts there, and shown across the column."""
    ctx = st.session_state.get(CTX_KEY)
    presenter = bool(st.session_state.get("presenter"))
    kw = {**kw, "presenter": presenter,
          "font_px": round(figures.FONT * (figures.PRESENTER_SCALE if presenter else 1))}
    png, record = _picture(_cache_key(key, build, ctx, args, kw, depends, presenter), build,
                           args, kw)
    picture(key, png, "PNG", record, width="stretch")


def table(data, height: int | None = None, thousands: tuple[str, ...] = (), where=None) -> None:
    """A static table of rows (a list of dicts or a DataFrame), without an index: one piece of
    HTML (overfeat.app.tables, which says why not st.table).

    Project choice (issue 16): every table in the app is small (at most 100 rows), and
    st.dataframe's interactive grid cost 0.15 to 0.3 s of the browser's time on each page that
    showed one (measured in headless Chromium with tests/browser_latency.py); a static table is
    plain HTML, and its text grows with presenter mode's font, which the grid's canvas did not.
    Floats are written as given (the rows are rounded where they are made: overfeat.app.state),
    integer columns named in `thousands` with thousands separators. `height` (px) scrolls a long
    table under a sticky header. `where`: the container (default the page)."""
    (where or st).html(tables.table_html(data, thousands=thousands, height=height))


def show_code(*objects, label: str = "The package code this page ran") -> None:
    """The source of the package functions a page ran, in an expander drawn only while it is
    open (folded): the code students read is the code that runs. Highlighted, the code cost
    about 0.18 s of Chromium CPU on every page switch, open or closed (the Merge page, issue
    27); sent closed as plain text, its five or six blocks and their captions still cost ~0.1 s
    of Chromium CPU on an Architecture or Offsets switch (tests/browser_latency.py --pages
    Architecture,Offsets, three pairs: 0.64 -> 0.54 s and 0.82 -> 0.63 s at the mean)."""
    names = [f"{getattr(inspect.getmodule(o), '__name__', '')}.{o.__qualname__}" for o in objects]
    key = "code_" + hashlib.sha1("|".join(names).encode()).hexdigest()[:10]
    folded(label, key, _code_blocks, objects, names)


def _code_blocks(objects, names: list[str]) -> None:
    for obj, name in zip(objects, names):
        st.caption(name.lstrip("."))
        st.code(inspect.getsource(obj), language="python")


def class_picker(analysis: Analysis, key: str, label: str = "Class") -> int:
    """A selectbox of object classes, best first, starting at the image's top class. The
    choice is kept across pages for the same image and model; a new image or model starts
    again at its own top class. With many classes (ImageNet's 1000) type to search.

    The labels are the class names only (appstate.class_labels), the same on every run for a
    model: Streamlit keeps a selectbox's value as its label, and a label that changed between
    runs (it held the score, which changes with every image and knob) came back from the
    browser as plain text after an interrupted run, into a key that holds a class index
    (issue 25). The score is the caption under the box."""
    ranking = appstate.class_ranking(analysis)
    options = [c for c, _, _ in ranking]
    ctx = st.session_state.get(CTX_KEY)
    owner = (ctx.image_key, ctx.model_key) if ctx is not None else None
    if starts_again(f"_{key}_for", owner, key, stale=st.session_state.get(key) not in options):
        st.session_state[key] = options[0]
    labels = appstate.class_labels(tuple(analysis.class_names))
    if len(options) > 30:
        label += f" ({len(options)}: type to search)"
    cls = st.selectbox(label, options, key=key, format_func=labels.__getitem__,
                       help="Object classes ordered by their final score (top class first).")
    rank = options.index(cls)
    st.caption(f"score {ranking[rank][2]:.3f}, rank {rank + 1} of {len(options)}")
    return cls


def from_link(key: str) -> bool:
    """True once if a shared link set `key` (app.py's apply_link): a page that resets this
    setting for a new image or scale keeps the linked value the first time instead."""
    pending = st.session_state.get("_link_pending", set())
    if key in pending:
        pending.discard(key)
        return True
    return False


def starts_again(tag: str, owner, *linked: str, stale: bool = False) -> bool:
    """Whether a choice that belongs to one image must start again (docs/DESIGN.md, "What
    belongs to an image"): the owner it was made for (image and model key, and a scale, a
    class, ...; kept under `tag`) is not `owner`, or it is `stale` (no longer among the
    choices). A shared link's value for one of the `linked` keys is this owner's, once. Records
    `owner` under `tag`."""
    state = st.session_state
    if any([from_link(k) for k in linked]):  # a list: every key's pending link is used up
        state[tag] = owner
    again = state.get(tag) != owner or stale
    state[tag] = owner
    return again


def use_model(name: str) -> None:
    """Choose the sidebar's model `name` (a registry name or "default"): the callback of the
    one-click "Use ..." buttons. The sidebar applies the model's own knobs on the next run."""
    st.session_state["model_source"] = name


def short_label(card) -> str:
    """A model's name for a button: its card's label without the parenthesis ("Objects")."""
    return card.label.split(" (")[0]


def box_model() -> str:
    """The model a page that needs boxes offers: the first of the registry whose card has
    boxes and is made for photos of things (the Objects model)."""
    return next(n for n in zoo.MODEL_NAMES if zoo.CARDS[n].boxes and zoo.CARDS[n].photos)


def require_boxes(ctx: "Context", page: str) -> None:
    """Stop a page that needs a box regressor when the model has none: one line, and a button
    that switches to a model with boxes (box_model)."""
    if not getattr(ctx.model, "has_regressor", True):
        st.title(page)
        name = box_model()
        label = zoo.CARDS[name].label
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.info(f"{page} needs boxes, and {ctx.model_desc} has no box regressor: use "
                f"**{label}** for boxes on a photo (or Faces, or the pictogram checkpoint).")
        c2.button(f"Use {short_label(zoo.CARDS[name])}", on_click=use_model, args=(name,),
                  key="use_box_model", type="primary", help=f"Choose {label} in the sidebar.",
                  width="stretch")
        st.stop()


SCORE_KEY = "min_box_score"  # share.PARAMS: the Detection and Greedy vs NMS pages' setting


def box_score_ui(where, default: float, label: str = "Minimum score of a detection") -> float:
    """The minimum probability-like score of a final box (share.PARAMS' min_box_score, kept
    across pages and in the link; the Greedy vs NMS page counts by it too)."""
    if st.session_state.get(SCORE_KEY) not in share.BOX_SCORE_STEPS:
        st.session_state[SCORE_KEY] = default
    return float(where.select_slider(
        f"{label} (mean over the views of the best window probability in each, 0 to 1)",
        share.BOX_SCORE_STEPS, key=SCORE_KEY,
        help=f"A final box counts when, on average over the views, its best window is this "
             f"probable (this model's default: {default:g}). Its summed confidence grows with "
             "the number of views and windows, so it is not the measure here."))


def clamp_state(key: str, lo, hi, default) -> None:
    """Keep a widget's remembered value inside its current range before the widget is drawn."""
    v = st.session_state.get(key, default)
    try:
        v = min(max(v, lo), hi)
    except TypeError:
        v = default
    st.session_state[key] = v
