"""A seeded random walk through the whole app, headless (AppTest), the way a class uses it.

Model-based testing (issue 25): Hypothesis's stateful testing (RuleBasedStateMachine) draws the
actions, two sessions walk side by side in one process, and after every action the machine
checks what must always hold:

- the run raised nothing, and the page shows no error box but the one-line messages a bad
  input earns (a bad image or checkpoint while it is in its uploader, too many boxes to merge);
  never the app's own "something went wrong" line, which means a page raised;
- the address bar is the state: encode(state) equals the URL, and decode(URL) gives back the
  session's values, with no note;
- the page shows the image and the model this session chose (its own widgets, its own
  uploads: an upload of the other session never shows here), in the header too.

The actions are everything a user can do that AppTest can drive: switch page; upload a sample
photo, a generated picture or a bad file (text as .jpg, truncated JPEG, 5x5, 4000x60, CMYK,
16-bit PNG), or a checkpoint (a good one or garbage); choose an image source, sample scene,
sample photo or seed; switch model (every entry of the sidebar's radio); set any sidebar widget
or any widget of the page (selectboxes, multiselects, pills, radios, sliders, number inputs,
toggles, checkboxes, buttons) to a random value; an *interrupted run*: the browser sends back a
widget's label from an earlier run (what it does when a run is cut short by the next click,
the cause of issue 25's crash); open a link the walk produced earlier, or one with garbage in
every parameter, in a new session; rerun. Widgets are found in the page at each step, so a new
widget joins the walk without an edit here. Left out: starting a training run (minutes of CPU:
tests/test_app_classroom.py), the Experiments page's recompute, clicks on a Plotly chart
and the camera (AppTest runs no JavaScript; tests/browser_walk.py clicks in Chromium).

    python tests/random_walk.py --seed 1 --steps 500          # one seed, 500 actions
    python tests/random_walk.py --seeds 1-10 --steps 500      # the long run (docs/ROBUSTNESS.md)

Each action is one line of the log; a failure names the seed, the step and the command that
replays it (the same seed and steps give the same actions). --shrink lets Hypothesis shrink a
failure to its shortest action sequence (slow: every try replays the app).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, Phase, assume, settings  # noqa: E402
from hypothesis import seed as hseed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant,  # noqa: E402
                                 rule, run_state_machine_as_test)
from PIL import Image, ImageDraw  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402
from streamlit.testing.v1.element_tree import (Button, ButtonGroup, Checkbox,  # noqa: E402
                                               Multiselect, NumberInput, Radio, Selectbox,
                                               SelectSlider, Slider, TextInput, Toggle,
                                               Widget)

from app_pages.common import LESSON_KEY  # noqa: E402
from overfeat.app import share  # noqa: E402
from overfeat.app import state as appstate  # noqa: E402

APP = str(ROOT / "app.py")
TIMEOUT = 300  # s per script run: two sessions and a busy CPU
PAGES = ("overview", "architecture", "scales", "offsets", "regressor", "merge", "detection",
         "compare", "experiments", "efficiency", "training", "glossary")
PHOTOS = ROOT / "assets" / "photos"
# Buttons the walk never presses: a training run takes the CPU for minutes, and the
# Experiments recompute analyses up to 200 scenes (both have their own tests).
SKIP_BUTTONS = re.compile(r"Start training|Recompute")
# The one-line messages a bad input earns; any other error box fails the walk.
EXPECTED_ERRORS = re.compile(
    r"^(Cannot merge: .*"  # too many raw boxes for the greedy merge (the sidebar's knobs)
    r"|[\w.\-]+\.(jpe?g|png|gif|webp|bmp): .*"  # overfeat.images.ImageError: "<file>: why"
    r"|line \d+: .*"  # a pasted lesson's line that is not a named link (share.parse_lesson)
    r"|.*[Cc]heckpoint.*Using .* instead\.)$")  # a checkpoint that does not load
PAGE_FAILED = "Sorry, something went wrong here"
SUGGESTION = "A photo of things?"  # app.py's suggestion of the models made for photos
IMAGE_ERROR = re.compile(r"^[\w.\-]+\.(jpe?g|png|gif|webp|bmp): .*$")  # a rejected image file
# Link parameters with garbage in every one (a truncated, hand-edited or mangled link).
GARBAGE = {"page": ["zzz", "", "overview/../x", "%00"], "img": ["nope", "upload", ""],
           "g": ["-1", "99", "x", "1e3"], "seed": ["-5", "abc", "9" * 30], "kind": ["xyz"],
           "p": ["17", "-1", "one"], "model": ["resnet", "faces;drop", ""],
           "scales": ["9,x", "-1", ",,", "0,0,0,7"], "flips": ["maybe", "2"], "fine": ["nan"],
           "byclass": ["yes please"], "rule": ["stretch"], "topk": ["0", "6", "2.5"],
           "min": ["nan", "inf", "-0.1", "1.01"], "score": ["best"], "tl": ["inf", "1e99"],
           "tc": ["nan", "--1"], "avg": ["mean"], "dconf": ["7", "-3"], "iou": ["1", "0"],
           "support": ["x"], "bscore": ["0.33", "x", "2"], "present": ["2"],
           "cls": ["abc", "-1", "1000", "ox (0.103)"],
           "sflip": ["t"], "oscale": ["6"], "oflip": ["?"], "och": ["-2"], "orow": ["1e9"],
           "ocol": ["x"], "rscales": ["7"], "roffs": ["9"], "rcls": ["a,b"], "rall": ["3"],
           "rpick": ["-1"], "step": ["-5", "1.5", "x"], "jump": ["3"], "mall": ["9"],
           "nfinal": ["0", "51"], "mview": ["all", ""], "mcls": ["-2", "x"], "mchart": ["2"],
           "colour": ["rainbow", ""], "oband": ["-1"], "ascale": ["9"],
           "alayer": ["x"], "aout": ["-3"], "arow": ["1e9"], "acol": ["?"], "sat": ["6", "x"],
           "slevel": ["-1"], "srow": ["1e9"], "scol": ["-2"], "asizes": ["open"],
           "atrace": ["yes"], "ofig3": ["2"], "odiffs": ["-1"], "dbg": ["1.0"],
           "utm_source": ["newsletter"]}

log = logging.getLogger("random_walk")


# --- inputs ------------------------------------------------------------------------------------
def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def generated_png(seed: int) -> bytes:
    """A drawn picture of random size (160..520 px a side) and shapes."""
    rng = random.Random(seed)
    w, h = rng.randint(160, 520), rng.randint(160, 520)
    im = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(im)
    for _ in range(rng.randint(1, 5)):
        x0, y0 = rng.randrange(w - 20), rng.randrange(h - 20)
        box = (x0, y0, rng.randint(x0 + 10, w), rng.randint(y0 + 10, h))
        fill = tuple(rng.randrange(256) for _ in range(3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=fill)
    return _encode(im, "PNG")


def bad_files() -> dict[str, tuple[bytes, str]]:
    """Files a class uploads by mistake: {name: (bytes, mime)}. Some are images the app accepts
    with a note (CMYK, 16-bit, a strip), the others earn a one-line error."""
    jpeg = (PHOTOS / "cat.jpg").read_bytes()
    rgb = Image.new("RGB", (300, 240), (200, 40, 40))
    return {
        "notes.jpg": (b"These are my lecture notes, not a picture.\n" * 20, "image/jpeg"),
        "truncated.jpg": (jpeg[: len(jpeg) // 3], "image/jpeg"),
        "tiny.png": (_encode(Image.new("RGB", (5, 5), (0, 128, 0)), "PNG"), "image/png"),
        "strip.png": (_encode(Image.new("RGB", (4000, 60), (90, 90, 200)), "PNG"), "image/png"),
        "cmyk.jpg": (_encode(rgb.convert("CMYK"), "JPEG"), "image/jpeg"),
        "deep.png": (_encode(Image.fromarray(
            (np.arange(300 * 240, dtype=np.uint16).reshape(240, 300) * 7)), "PNG"), "image/png"),
        "empty.png": (b"", "image/png"),
    }


def checkpoint_files() -> dict[str, bytes]:
    """A small checkpoint this project wrote (random weights), and two that are not."""
    import tempfile

    import torch

    from overfeat.checkpoint import save_checkpoint
    from overfeat.config import ModelConfig
    from overfeat.models.overfeat import OverFeat

    torch.manual_seed(0)
    cfg = ModelConfig(geometry="fast", width=1 / 32, num_classes=3, class_names=("a", "b", "bg"),
                      background=True, regressor_channels=(32, 8))
    with tempfile.TemporaryDirectory() as d:
        save_checkpoint(Path(d) / "tiny.pt", OverFeat(cfg).eval(), meta={"note": "walk"})
        good = (Path(d) / "tiny.pt").read_bytes()
    return {"tiny.pt": good, "garbage.pt": bytes(range(256)) * 8, "half.pt": good[: len(good) // 2]}


# --- driving AppTest like a browser ------------------------------------------------------------
def send_labels(at: AppTest, widget: Widget, labels) -> None:
    """The next run sends `labels` as the widget's value, the way the browser does: a
    selectbox's or radio's value is its label (a str), a multiselect's, pills' or
    select_slider's a list of labels. Labels of an earlier run are what the browser sends
    after an interrupted run."""
    tree = at._tree
    original = tree.get_widget_states

    def states():
        ws = original()
        for w in ws.widgets:
            if w.id == widget.id:
                if isinstance(labels, str):
                    w.string_value = labels
                else:
                    w.string_array_value.data[:] = list(labels)
        return ws

    tree.get_widget_states = states  # type: ignore[method-assign]


def widgets(at: AppTest, sidebar: bool) -> list[Widget]:
    """The widgets the walk may set, in the sidebar or in the page's main area."""
    root = at.sidebar if sidebar else at.main
    out = []
    for el in root:
        if not isinstance(el, (Button, ButtonGroup, Checkbox, Multiselect, NumberInput, Radio,
                               Selectbox, SelectSlider, Slider, TextInput, Toggle)):
            continue
        if getattr(el.proto, "disabled", False):
            continue
        if isinstance(el, Button) and SKIP_BUTTONS.search(el.label or ""):
            continue
        out.append(el)
    return out


def find(at: AppTest, key: str) -> Widget | None:
    """The widget with this key on the page now, or None (presenter mode hides the uploader,
    the model and the merge knobs; a page draws only its own widgets)."""
    return next((w for w in at if isinstance(w, Widget) and getattr(w, "key", None) == key),
                None)


def option_labels(el: Widget) -> list[str]:
    return list(el.options) if hasattr(el, "options") else []


def wire_value(el: Widget):
    """What the browser would send for the widget now: its label (str) or labels (list)."""
    try:
        ws = el._widget_state
    except (ValueError, IndexError, TypeError, KeyError):
        return None
    if ws.HasField("string_value"):
        return ws.string_value
    if ws.HasField("string_array_value"):
        return list(ws.string_array_value.data)
    return None


def set_randomly(at: AppTest, el: Widget, rng: random.Random) -> str:
    """Give the widget a random value a user could give it; returns what was done."""
    opts = option_labels(el)
    if isinstance(el, (Selectbox, Radio)) and opts:
        label = rng.choice(opts)
        send_labels(at, el, label)
        return f"{label!r}"
    if isinstance(el, (Multiselect, ButtonGroup)) and opts:
        multi = isinstance(el, Multiselect) or el.proto.click_mode == el.proto.MULTI_SELECT
        k = rng.randint(0, len(opts)) if multi else 1
        labels = rng.sample(opts, min(k, len(opts)))
        send_labels(at, el, labels)
        return f"{labels!r}"
    if isinstance(el, SelectSlider) and opts:
        label = rng.choice(opts)
        send_labels(at, el, [label])
        return f"{label!r}"
    if isinstance(el, (Checkbox, Toggle)):
        v = not el.value
        el.set_value(v)
        return str(v)
    if isinstance(el, Button):
        el.click()
        return "click"
    if isinstance(el, TextInput):
        v = rng.choice(["", "x", "teacher", "' OR 1=1 --", "\u00e9\u00e8" * 40])
        el.set_value(v)
        return repr(v[:12])
    if isinstance(el, Slider):
        lo, hi, step = float(el.proto.min), float(el.proto.max), float(el.proto.step or 1)
        n = int(round((hi - lo) / step))
        v = lo + step * rng.randint(0, max(n, 0))
        is_int = el.proto.data_type == el.proto.INT
        v = int(round(v)) if is_int else round(v, 6)
        el.set_value(v)
        return str(v)
    if isinstance(el, NumberInput):
        p = el.proto
        lo = p.min if p.has_min else -1e3
        hi = p.max if p.has_max else 1e3
        is_int = p.data_type == p.INT
        choices = [lo, hi, (lo + hi) / 2, rng.uniform(lo, hi)]
        if el.value is not None:
            choices += [el.value + (p.step or 1), el.value - (p.step or 1)]
        v = min(max(rng.choice(choices), lo), hi)
        v = int(round(v)) if is_int else float(v)
        el.set_value(v)
        return str(v)
    return "left as it is"


def opened_page(s: "Session", el: Widget) -> str | None:
    """The page a click on el opens, when el is one of the sidebar's Lesson views (a saved
    view of another page: the app switches to it, and the walk must follow); None for any
    other widget."""
    key = getattr(el, "key", None) or ""
    if not (isinstance(el, Button) and key.startswith("lesson_open_")):
        return None
    views = s.state(LESSON_KEY) or []
    i = int(key.rsplit("_", 1)[1])
    if not 0 <= i < len(views):
        return None
    _, page, _ = share.decode(share.link_query(views[i][1]), len(appstate.GALLERY), PAGES)
    return page


def follow(s: "Session", page: str | None) -> None:
    """After the app switched to `page` itself (st.switch_page: a Lesson view), the walk is
    on that page, and so are AppTest's later runs: a browser's next run asks for the page in
    its address bar, but AppTest keeps asking for the page it was last told (seed 3, step 54
    of `--seeds 1-3 --steps 120`: a rerun went back to the page the view was opened from)."""
    if page is not None and page != s.page:
        s.page = page
        s.at.switch_page(f"app_pages/{page}.py")


# --- the walk ----------------------------------------------------------------------------------
class Session:
    """One browser tab: its AppTest, its page, what it uploaded, what errors it may show."""

    def __init__(self, name: str, params: dict | None = None):
        self.name = name
        self.at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        for k, v in (params or {}).items():
            self.at.query_params[k] = v
        self.page = (params or {}).get("page", "overview")
        if self.page not in PAGES:
            self.page = "overview"
        self.uploads: set[str] = set()  # image keys of this session's accepted uploads
        self.ckpts: set[str] = set()  # model keys of this session's accepted checkpoints
        self.bad_image = False  # a bad file sits in the image uploader
        self.bad_ckpt = False  # a bad checkpoint sits in the checkpoint uploader
        self.link_notes = bool(params)  # a link's notes are shown once (info, not error)

    def state(self, key: str, default=None):
        try:
            return self.at.session_state[key]
        except KeyError:
            return default


class AppWalk(RuleBasedStateMachine):
    """Two sessions in one process; every rule acts on one of them, chosen by the draw."""

    made = 0  # machines made for this seed: the first runs Hypothesis's simplest example
    trace: list[str] = []  # the action log of the current machine (printed on failure)
    stats: Counter = Counter()
    pages_seen: set = set()
    models_seen: set = set()
    model_checks: Counter = Counter()  # checks passed per model (how much each was walked)
    links: list[dict] = []  # links this walk produced (any session), for open_link
    BAD = None
    CKPTS = None

    def __init__(self):
        super().__init__()
        type(self).made += 1
        self.first = type(self).made == 1
        self.sessions: list[Session] = []
        self.step = 0
        self.expect_error = [False, False]
        AppWalk.trace = []
        if AppWalk.BAD is None:
            AppWalk.BAD = bad_files()
            AppWalk.CKPTS = checkpoint_files()

    # -- plumbing --------------------------------------------------------------------------
    def act(self, who: int, what: str, fn) -> None:
        self.step += 1
        s = self.sessions[who]
        line = f"{self.step:4d} [{s.name}:{s.page}] {what}"
        AppWalk.trace.append(line)
        log.info(line)
        AppWalk.stats[what.split()[0]] += 1
        t = time.perf_counter()
        fn(s)
        dt = time.perf_counter() - t
        if dt > 20:
            log.info("     (%.1f s)", dt)
        self.check(s)

    def run(self, s: Session) -> None:
        s.at.run()

    def goto(self, s: Session, page: str) -> None:
        s.page = page
        s.at.switch_page(f"app_pages/{page}.py").run()

    def upload(self, s: Session, name: str, data: bytes, mime: str) -> None:
        up = find(s.at, "img")
        if up is None:  # presenter mode hides the uploader
            AppWalk.trace[-1] += " (no uploader: presenter mode)"
            return self.run(s)
        up.set_value((name, data, mime)).run()
        key = "upload:" + appstate.digest(data)
        c = s.state("_ctx")
        ok = c is not None and c.image_key == key
        if ok:
            s.uploads.add(key)
        s.bad_image = not ok

    # -- invariants ------------------------------------------------------------------------
    def check(self, s: Session) -> None:
        at = s.at
        where = f"session {s.name}, page {s.page}"
        assert not at.exception, f"{where}: exception {[e.value for e in at.exception]}"
        errors = [e.value for e in at.error]
        for e in errors:
            assert not e.startswith(PAGE_FAILED), f"{where}: a page raised: {e}"
            assert "\n" not in e.strip(), f"{where}: a message of several lines: {e!r}"
            assert EXPECTED_ERRORS.match(e.strip()), f"{where}: unexpected error box: {e!r}"
        c = s.state("_ctx")
        assert c is not None, f"{where}: no context (the sidebar did not finish)"
        # The suggestion of a model for photos: only for an accepted photo with the pictogram
        # checkpoint, never beside a rejected file's message.
        if any(i.value.startswith(SUGGESTION) for i in at.info):
            assert c.model_key.startswith("default:"), f"{where}: suggestion with {c.model_key}"
            assert c.image_key.startswith(("upload:", "photo:")), f"{where}: {c.image_key}"
            assert not [e for e in errors if IMAGE_ERROR.match(e.strip())], \
                f"{where}: a suggestion beside a rejected file: {errors}"
        self.check_image(s, c, where)
        self.check_model(s, c, where)
        header = at.caption[0].value if len(at.caption) else ""
        assert c.image_label in header and c.model_desc in header, (where, header)
        self.check_link(s, where)
        AppWalk.pages_seen.add(s.page)
        model = (c.model_key.split(":")[0] + ":" + c.model_key.split(":")[1]
                 if c.model_key.startswith("zoo:") else c.model_key.split(":")[0])
        AppWalk.models_seen.add(model)
        AppWalk.model_checks[model] += 1

    def check_image(self, s: Session, c, where: str) -> None:
        src = s.state("img_source")
        key = c.image_key
        if src == "photo":
            assert key == f"photo:{s.state('photo')}", (where, src, key)
        elif src == "gallery":
            assert key == appstate.scene_key(*appstate.GALLERY[s.state("gallery")]), (where, key)
        elif src == "generate":
            want = appstate.scene_key(s.state("scene_kind"), int(s.state("scene_seed")), 0)
            assert key == want, (where, key, want)
        if key.startswith("upload:"):  # never another session's upload (cross-talk)
            assert key in s.uploads, f"{where}: shows an image this session did not upload"

    def check_model(self, s: Session, c, where: str) -> None:
        ms = s.state("model_source")
        mk = c.model_key
        if ms in share.MODELS[1:]:  # the registry's pretrained nets (Objects, ImageNet, Faces)
            assert mk == f"zoo:{ms}", (where, ms, mk)
        elif ms == "default":
            assert mk.startswith("default:"), (where, ms, mk)
        elif ms == "upload":
            assert mk.startswith("default:") or mk in s.ckpts, (where, ms, mk)
        elif ms == "preset":
            assert mk.startswith(("default:", "preset:")), (where, ms, mk)
            if mk.startswith("preset:"):
                assert mk == f"preset:{s.state('preset')}", (where, mk)

    def check_link(self, s: Session, where: str) -> None:
        at = s.at
        q = {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}
        state = {k: s.state(k) for k in share.SHARED_KEYS}
        want = share.encode(state, s.page, len(appstate.GALLERY))
        assert q == want, f"{where}: the URL is not the state:\n  url   {q}\n  state {want}"
        got, page, notes = share.decode(q, len(appstate.GALLERY), PAGES)
        assert not notes and page == s.page, (where, notes, page)
        for k, v in got.items():
            if k == "img_source":
                assert v == state[k], (where, k)
            else:
                assert v == share.check(share.BY_KEY[k], state[k], len(appstate.GALLERY)), \
                    f"{where}: link {k}={v!r} but the session holds {state[k]!r}"
        if len(AppWalk.links) < 50:
            AppWalk.links.append(q)

    # -- rules -----------------------------------------------------------------------------
    @initialize(r=st.integers(0, 2**32 - 1))
    def open_two_sessions(self, r):
        # Hypothesis runs its simplest example (the first rule, again and again) first: skip it.
        assume(not self.first)
        self.sessions = [Session("A"), Session("B")]
        for i, s in enumerate(self.sessions):
            self.step += 1
            AppWalk.trace.append(f"{self.step:4d} [{s.name}] open the app")
            self.run(s)
            self.check(s)

    # -- the one rule: Hypothesis draws a session and a number, the number picks the action
    # (by ACTIONS' weights) and its target. One rule, not one per action: Hypothesis draws
    # rules very unevenly (whole examples of one rule), an even mix of actions is what finds
    # the orders nobody planned, and a failure still shrinks (fewer steps, smaller numbers).
    @rule(who=st.integers(0, 1), r=st.integers(0, 2**32 - 1))
    def act_randomly(self, who, r):
        rng = random.Random(r)
        name = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
        getattr(self, name)(who, rng.getrandbits(32))

    def switch_page(self, who, r):
        page = random.Random(r).choice(PAGES)
        self.act(who, f"page {page}", lambda s: self.goto(s, page))

    def upload_image(self, who, r):
        rng = random.Random(r)
        kind = rng.choice(["photo", "generated", "bad"])
        if kind == "photo":
            name = rng.choice(sorted(p.name for p in PHOTOS.glob("*.jpg")))
            data, mime = (PHOTOS / name).read_bytes(), "image/jpeg"
        elif kind == "generated":
            name, data, mime = f"drawn-{r % 1000}.png", generated_png(r), "image/png"
        else:
            name = rng.choice(sorted(AppWalk.BAD))
            data, mime = AppWalk.BAD[name]
        self.act(who, f"upload {name}", lambda s: self.upload(s, name, data, mime))

    def choose_image(self, who, r):
        """An image source, and a sample scene, photo or seed within it."""
        rng = random.Random(r)

        def do(s: Session):
            radio = find(s.at, "img_source")
            label = rng.choice(radio.options)
            send_labels(s.at, radio, label)
            self.run(s)
            for key in ("gallery", "photo", "scene_seed", "scene_kind"):
                el = next((w for w in widgets(s.at, True) if getattr(w, "key", None) == key),
                          None)
                if el is not None:
                    set_randomly(s.at, el, rng)
                    self.run(s)
                    break

        self.act(who, "image source", do)

    def switch_model(self, who, r):
        rng = random.Random(r)

        def do(s: Session):
            radio = find(s.at, "model_source")
            if radio is None:
                AppWalk.trace[-1] += " (hidden: presenter mode)"
                return self.run(s)
            label = rng.choice(radio.options)
            AppWalk.trace[-1] += f" -> {label!r}"
            send_labels(s.at, radio, label)
            self.run(s)
            now = find(s.at, "model_source")
            assert now is not None and now.options[now.index] == label, \
                f"model {label!r} chosen, the sidebar shows {now and now.options[now.index]!r}"

        self.act(who, "model", do)

    def upload_checkpoint(self, who, r):
        rng = random.Random(r)
        name = rng.choice(sorted(AppWalk.CKPTS))
        data = AppWalk.CKPTS[name]

        def do(s: Session):
            radio = find(s.at, "model_source")
            if radio is None:
                AppWalk.trace[-1] += " (hidden: presenter mode)"
                return self.run(s)
            label = next(o for o in radio.options if o.startswith("Upload"))
            send_labels(s.at, radio, label)
            self.run(s)
            up = find(s.at, "ckpt")
            assert up is not None, "'Upload a checkpoint' chosen, but no checkpoint uploader"
            up.set_value((name, data, "application/octet-stream"))
            self.run(s)
            key = "ckpt:" + appstate.digest(data)
            if name == "tiny.pt":  # the one good checkpoint: it must be the model now
                assert s.state("_ctx").model_key == key, f"{name} not loaded"
                s.ckpts.add(key)

        self.act(who, f"checkpoint {name}", do)

    def sidebar_widget(self, who, r):
        self._widget(who, r, sidebar=True)

    def page_widget(self, who, r):
        self._widget(who, r, sidebar=False)

    def _widget(self, who: int, r: int, sidebar: bool) -> None:
        rng = random.Random(r)
        s = self.sessions[who]
        ws = widgets(s.at, sidebar)
        if not ws:
            return self.switch_page(who, r)
        el = rng.choice(ws)
        name = getattr(el, "key", None) or el.label

        def do(s: Session):
            opens = opened_page(s, el)
            did = set_randomly(s.at, el, rng)
            AppWalk.trace[-1] += f" -> {did}"
            self.run(s)
            follow(s, opens)

        self.act(who, f"{'sidebar' if sidebar else 'widget'} {name}", do)

    def interrupted_run(self, who, r):
        """A click (new image, model or knob) whose run the next click cuts short: the browser
        never sees the answer and sends back the labels it still shows."""
        rng = random.Random(r)

        def do(s: Session):
            held = {(getattr(w, "key", None) or w.label): wire_value(w)
                    for w in widgets(s.at, False) + widgets(s.at, True)
                    if not isinstance(w, (Button, Checkbox, Toggle, Slider, NumberInput,
                                          TextInput))}
            held = {k: v for k, v in held.items() if v is not None}
            change = rng.choice(["photo", "gallery", "model", "knob"])
            if change == "photo":
                name = rng.choice(sorted(p.name for p in PHOTOS.glob("*.jpg")))
                self.upload(s, name, (PHOTOS / name).read_bytes(), "image/jpeg")
            elif change == "gallery":
                send_labels(s.at, find(s.at, "img_source"), "Sample scene")
                self.run(s)
                sb = find(s.at, "gallery")
                send_labels(s.at, sb, rng.choice(sb.options))
                self.run(s)
            elif change == "model" and find(s.at, "model_source") is not None:
                radio = find(s.at, "model_source")
                send_labels(s.at, radio, rng.choice(radio.options))
                self.run(s)
            else:
                el = rng.choice(widgets(s.at, True))
                opens = opened_page(s, el)
                set_randomly(s.at, el, rng)
                self.run(s)
                follow(s, opens)
            now = {(getattr(w, "key", None) or w.label): w
                   for w in widgets(s.at, False) + widgets(s.at, True)}
            stale = [k for k in held if k in now]
            if stale:
                k = rng.choice(stale)
                AppWalk.trace[-1] += f" ({change}, then {k} sends {held[k]!r})"
                send_labels(s.at, now[k], held[k])
            self.run(s)

        self.act(who, "interrupted", do)

    def open_link(self, who, r):
        """A link the walk produced earlier (either session's), opened in a new tab."""
        rng = random.Random(r)
        if not AppWalk.links:
            return self.open_garbage_link(who, r)
        q = dict(rng.choice(AppWalk.links))
        self.sessions[who] = Session(self.sessions[who].name, q)
        self.act(who, f"link {json.dumps(q, separators=(',', ':'))[:120]}", self.run)
        s = self.sessions[who]
        for k, v in share.decode(q, len(appstate.GALLERY), PAGES)[0].items():
            if k not in ("cls", "off_scale", "off_row", "off_col", "off_channel", "reg_pick",
                         "scales_at", "scales_level", "scales_row", "scales_col",
                         "reg_scales", "reg_offsets", "reg_classes", "merge_step", "merge_class",
                         "merge_view", "off_band", "arch_scale", "arch_layer", "arch_out",
                         "arch_row", "arch_col",
                         "eff_scale") and s.state(k) is not None:
                # What a page clamps (a step past the merge's end, a class this image lacks)
                # may differ; the sidebar's settings are the link's.
                assert share.check(share.BY_KEY[k], s.state(k)) == v if k in share.BY_KEY \
                    else s.state(k) == v, f"link {k}={v!r} opened as {s.state(k)!r}"

    def toggle_section(self, who, r):
        """Open or close a section drawn only while open (an expander with a key: AppTest
        cannot click one, so its state is set as the browser's click sets it)."""
        key = random.Random(r).choice(SECTIONS)

        def do(s: Session):
            k = key
            if k == CODE:  # this page's "package code" expander (its key hashes the functions)
                k = next((x for x in sorted(map(str, s.at.session_state))
                          if x.startswith("code_") and s.state(x) is not None), None)
                if k is None:
                    return
            s.at.session_state[k] = not s.state(k)
            self.run(s)

        self.act(who, f"section {key}", do)

    def open_garbage_link(self, who, r):
        rng = random.Random(r)
        q = {k: rng.choice(v) for k, v in GARBAGE.items() if rng.random() < 0.8}
        self.sessions[who] = Session(self.sessions[who].name, q)
        self.act(who, f"garbage link {json.dumps(q, separators=(',', ':'))[:100]}", self.run)

    def rerun(self, who, r=0):
        """Rerun with no change (a tab left open while the other session works): everything
        it shows that follows from its own choices is the same as before."""
        s = self.sessions[who]

        def seen(s: Session):
            c = s.state("_ctx")
            url = dict(s.at.query_params)
            if s.state("merge_playing"):  # Play: every run is the next tick (one more step)
                url.pop("step", None)
            return (c.image_key, c.model_key, c.knobs, url,
                    s.at.caption[0].value if len(s.at.caption) else "")

        before = seen(s)

        def do(s: Session):
            self.run(s)
            assert seen(s) == before, f"session {s.name} changed on a rerun:\n{before}\n{seen(s)}"

        self.act(who, "rerun", do)


# Actions and their weights (how often each is drawn).
ACTIONS = {"switch_page": 3, "upload_image": 2, "choose_image": 2, "switch_model": 2,
           "sidebar_widget": 3, "page_widget": 4, "interrupted_run": 1.5, "open_link": 0.7,
           "open_garbage_link": 0.5, "upload_checkpoint": 0.5, "rerun": 1,
           "toggle_section": 0.7}
# The expanders whose content is drawn only while they are open (their state is in a link),
# and every page's "package code" expander (CODE: the current page's code_... key).
CODE = "code"
SECTIONS = ("arch_sizes_open", "arch_trace_open", "off_strip_open", "off_diffs_open",
            "det_bg_open", "knobs_open", CODE)


def walk(seed: int, steps: int, per_example: int = 60, shrink: bool = False) -> dict:
    """Run the walk for `seed` until `steps` actions are done; returns its figures. Raises
    AssertionError (with the seed, step and recent actions) at the first failure."""
    AppWalk.made = 0
    AppWalk.stats = Counter()
    AppWalk.pages_seen, AppWalk.models_seen, AppWalk.links = set(), set(), []
    AppWalk.model_checks = Counter()
    per_example = min(per_example, steps)
    examples = -(-steps // per_example)  # the simplest example, skipped, is not counted
    phases = [Phase.generate] + ([Phase.shrink] if shrink else [])
    hseed(seed)(AppWalk)
    t = time.perf_counter()
    try:
        run_state_machine_as_test(AppWalk, settings=settings(
            max_examples=examples, stateful_step_count=per_example, deadline=None,
            database=None, phases=phases, suppress_health_check=list(HealthCheck),
            print_blob=False, report_multiple_bugs=False))
    except BaseException as e:
        tail = "\n".join(AppWalk.trace[-12:])
        raise AssertionError(
            f"random walk failed: seed {seed}, step {len(AppWalk.trace)}; replay with "
            f"`python tests/random_walk.py --seed {seed} --steps {steps}`\n"
            f"last actions:\n{tail}\n{type(e).__name__}: {e}") from e
    return {"seed": seed, "actions": sum(AppWalk.stats.values()),
            "seconds": round(time.perf_counter() - t, 1), "by_kind": dict(AppWalk.stats),
            "pages": sorted(AppWalk.pages_seen), "models": sorted(AppWalk.models_seen),
            "by_model": dict(AppWalk.model_checks)}


def _seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, help="one seed")
    ap.add_argument("--seeds", help="several: 1-10 or 1,4,7")
    ap.add_argument("--steps", type=int, default=200, help="actions per seed")
    ap.add_argument("--per-example", type=int, default=60,
                    help="actions before both sessions start afresh (one Hypothesis example)")
    ap.add_argument("--shrink", action="store_true", help="shrink a failure (slow)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every action")
    args = ap.parse_args(argv)
    seeds = _seeds(args.seeds) if args.seeds else [args.seed if args.seed is not None else 1]
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(message)s")
    results, failures = [], []
    for sd in seeds:
        print(f"seed {sd}: {args.steps} actions", flush=True)
        try:
            res = walk(sd, args.steps, args.per_example, args.shrink)
            print(f"  ok: {res['actions']} actions in {res['seconds']} s; pages "
                  f"{len(res['pages'])}, models {', '.join(res['models'])}", flush=True)
            results.append(res)
        except AssertionError as e:
            print(f"  FAILED\n{e}", flush=True)
            failures.append({"seed": sd, "error": str(e)})
    total = {"seeds": len(seeds), "actions": sum(r["actions"] for r in results),
             "seconds": round(sum(r["seconds"] for r in results), 1),
             "by_kind": dict(sum((Counter(r["by_kind"]) for r in results), Counter())),
             "pages": sorted(set().union(*[r["pages"] for r in results])) if results else [],
             "models": sorted(set().union(*[r["models"] for r in results])) if results else [],
             "checks_by_model": dict(sum((Counter(r["by_model"]) for r in results), Counter())),
             "failures": failures, "runs": results}
    print(json.dumps({k: v for k, v in total.items() if k != "runs"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(total, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
