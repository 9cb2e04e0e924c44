"""A seeded random walk through the app in a real browser (issue 25, part 4): a learner who
clicks, types and uploads whatever comes to hand, with a check after every action.

    .venv/bin/python tests/browser_walk.py --seed S --steps N [--sessions 1] [--json]
        [--url http://127.0.0.1:8501 [--server-log PATH]] [--timeout 240] [--keep-going] [--quiet]

Without --url it starts the app itself (browser_helpers.streamlit_server, log in
test-artifacts/walk-server.log). One headless Chromium tab (1400x1000) per session; --sessions K
walks K sessions one after another (seeds S, S+1, ..., S+K-1), each in a fresh browser context,
against the same server. tests/test_browser_walk.py imports walk() and runs it in CI.

Every step draws one action with random.Random(seed), among those the page offers right now
(widgets are found in the DOM at each step, by their data-testid, visible and enabled, so a
widget added later is walked without an edit here):
  nav           a page of the sidebar's navigation (all of them, read from stSidebarNav)
  upload_*      through the sidebar's image file input: a sample photo (assets/photos/*.jpg), a
                freshly generated PNG, or a bad file written into a temp dir (text renamed .jpg,
                a truncated JPEG, a 5x5 PNG, a 4000x60 strip, a CMYK JPEG, a 16-bit PNG, an
                empty file); with the checkpoint uploader shown (model "Upload a checkpoint"):
                assets/demo.pt or a text file renamed .pt
  source        an option of the sidebar's image source radio (not Camera: no camera here)
  sample        a sample scene / photo from the sidebar's "Sample ..." selectbox
  model         an entry of the sidebar's Model radio (labels read from the page)
  checkbox      a checkbox or toggle (sidebar or page: Flips, Offsets, Presenter mode, Play ...)
  pills         a pill of a pills widget (the sidebar's scales, the Regressor's filters ...)
  slider        a slider or select-slider: focus its thumb, ArrowRight/ArrowLeft 1-4 times
  radio         an option of any radio (Match score, Box merge, Kind ...)
  number        a number input: its +/- buttons, or a value typed (in range, at or past a
                bound, a fraction) and Enter or Tab (only Tab inside a form: Enter submits it)
  text          a text input: odd text typed, Enter or Tab (the Training page's teacher key,
                shown when the server has one)
  selectbox     open a selectbox, type a few letters of one of its options, Enter
  multiselect   the same for a multiselect, or remove one of its chips
  button        any visible, enabled st.button or st.download_button, never "Start training"
                (a training run takes the CPU for minutes; it is a form submit button anyway)
  expander      open or close an expander
  keyboard      ArrowRight / ArrowLeft / space on the page body (or on the focused widget)
  copy_link     remember the address bar (the app keeps the view in it)
  open_link     open the remembered address in the same tab (page.goto: a new session)
  garbage_link  open the app with a garbage value in every query parameter the app links
  sidebar       open the sidebar while it is collapsed (presenter mode, a phone); until then
                its widgets are not offered (off the screen, a click on them times out)

After every action: the run must end within --timeout seconds (a hang is a failure); then no
[data-testid="stException"], no "This app has encountered an error", no "Traceback" in the
page's text, no new "Traceback" in the server's log since the action, no new JavaScript page
error, a page title (h1) on the page. Error boxes (stAlertContentError) are allowed only while a
rejected file is in an uploader (a bad upload, until the next good one or a new session) or
right after a garbage link, and each must be one line. A good image upload must show as the
image in the caption ("Image: upload NAME"); a file no decoder can read (text, truncated, empty,
4000x60, 5x5) must give an error box naming it; a clicked page must be the page shown (nav and
title); a share link (one the app wrote) must show its page and take every value (no "link
parameter ... ignored" note); a training run must never be going on (the walk starts none).

Each action is logged as one line (step, kind, target, result); a failing seed replays with the
same --seed and --steps. On a failure: a full-page screenshot test-artifacts/walk-seed<S>-step<N>.png
and WalkFailure (an AssertionError) with the seed, step, the action log's last 10 lines, what
was wrong and the server log's new traceback. --keep-going records it, reloads the app (a new
session) and walks on. At the end a summary: steps, actions by kind, pages visited, models
used, failures, seconds (--json: one JSON object). Exit status 0 when no step failed.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import shutil
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from browser_helpers import ARTIFACTS, CHROMIUM, IDLE, LAUNCH_ARGS  # noqa: E402

VIEWPORT = {"width": 1400, "height": 1000}
# The navigation the app must offer (checked at the start; the walk clicks what stSidebarNav has).
PAGES = ("Overview", "Architecture", "Scales", "Offsets", "Regressor", "Merge", "Training",
         "Detection", "Greedy vs NMS", "Experiments", "Efficiency")
H1 = {"Overview": "OverFeat, step by step"}  # a page's title where it is not its nav label
SKIP_BUTTONS = {"Start training"}  # never: a training run takes the CPU for minutes
SKIP_SOURCES = {"Camera"}  # headless Chromium has no camera
CRASH_TEXT = "This app has encountered an error"
PHOTOS = sorted((ROOT / "assets" / "photos").glob("*.jpg"))
DEMO_CKPT = ROOT / "assets" / "demo.pt"

# Relative weights of the action kinds (a kind the page does not offer now is left out).
WEIGHTS = {
    "nav": 14, "upload_photo": 4, "upload_png": 3, "upload_bad": 4, "upload_ckpt": 1,
    "source": 5, "sample": 3, "model": 5, "checkbox": 7, "pills": 5, "slider": 6, "radio": 4,
    "number": 4, "text": 2, "selectbox": 6, "multiselect": 2, "button": 7, "expander": 1, "keyboard": 3,
    "copy_link": 2, "open_link": 2, "garbage_link": 2, "sidebar": 6,
}
# Garbage for the query parameters (raw query text, already URL-escaped where it matters).
GARBAGE = ("zzz", "%00", "9,x", "abc", "-5", "nan", "NaN", "inf", "-inf", "", "1e999", "-0",
           "%C3%A9%C3%A9", "%3Cscript%3E", "9" * 400, ",,,", "0,0,0,0,0,0,0", "1.5", "true",
           "%20", "%FF", "null", "None", "[1]", "0x10", "1_000", "%E2%80%AE", "-1,-2", "3,3,99",
           "1e-320", "%25", "%2C")
# Installed in every document of the tab: counts the changes of stApp's script state, so that
# after an action the walk waits for the run the action started (it may start late on a busy
# machine), not just for a "not running" seen before that run began.
RUNS_JS = """(() => {
  if (window.__walk) return;
  const W = window.__walk = {changes: 0};
  new MutationObserver(ms => { W.changes += ms.length; }).observe(document, {
    subtree: true, attributes: true, attributeFilter: ['data-test-script-state']});
})()"""
CONNECTED = '[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
REJECT = {"text.jpg", "truncated.jpg", "strip.png", "empty.jpg", "text.pt", "tiny.png"}  # must be refused

# What the page offers, in one pass over the DOM: widgets by testid with their index among the
# elements of that testid (Playwright's nth), label, place (sidebar or main) and state.
SCAN_JS = r"""() => {
  // Laid out is not enough: a closed expander's content keeps its boxes (Streamlit 1.67)
  // but is not rendered, and a click on it times out.
  // A collapsed sidebar (presenter mode, a phone) keeps its widgets laid out off the screen:
  // a click on one times out, so they are not offered until the walk opens it ("sidebar").
  const folded = document.querySelector('[data-testid="stSidebar"][data-collapsed="true"]');
  const vis = e => !!e && e.getClientRects().length > 0 &&
                   getComputedStyle(e).visibility !== 'hidden' &&
                   (!e.checkVisibility || e.checkVisibility()) &&
                   !(folded && folded.contains(e));
  const label = e => {
    const l = e.querySelector('[data-testid="stWidgetLabel"]');
    const t = l ? l.innerText.trim() : '';
    if (t) return t;
    const i = e.querySelector('[aria-label]');
    return i ? i.getAttribute('aria-label') : e.innerText.trim().split('\n')[0];
  };
  const side = e => !!e.closest('[data-testid="stSidebar"]');
  const form = e => !!e.closest('[data-testid="stForm"]');
  const out = {sidebarCollapsed: !!folded
                 && !!document.querySelector('[data-testid="stExpandSidebarButton"]')};
  const each = (tid, f) => {
    out[tid] = [];
    document.querySelectorAll(`[data-testid="${tid}"]`).forEach((e, i) => {
      if (!vis(e)) return;
      const r = f(e);
      if (r) out[tid].push({i, label: label(e), sidebar: side(e), form: form(e), ...r});
    });
  };
  const navText = e => (e.querySelector('[data-testid="stMarkdownContainer"]') || e).innerText.trim();
  each('stSidebarNavLink', e => ({label: navText(e),
                                  current: e.getAttribute('aria-current') === 'page'}));
  each('stFileUploader', e => {
    const inp = e.querySelector('input[type="file"]');
    return inp && !inp.disabled ? {accept: inp.getAttribute('accept') || ''} : null; });
  each('stRadio', e => {
    const opts = [...e.querySelectorAll('[data-testid="stRadioOption"]')];
    return {options: opts.map(o => o.innerText.trim()),
            enabled: opts.map(o => !o.querySelector('input').disabled),
            checked: opts.findIndex(o => o.querySelector('input').checked)}; });
  each('stCheckbox', e => {
    const inp = e.querySelector('input');
    return inp && !inp.disabled ? {checked: inp.checked,
                                   role: inp.getAttribute('role') || 'checkbox'} : null; });
  each('stButtonGroup', e => {
    const bs = [...e.querySelectorAll('button[data-variant]')];  // not the help button
    const tb = e.querySelector('[role="toolbar"], [role="radiogroup"]');
    if (tb && tb.getAttribute('aria-disabled') === 'true') return null;
    return {options: bs.map(b => b.innerText.trim()), enabled: bs.map(b => !b.disabled)}; });
  each('stSlider', e => {
    const ins = [...e.querySelectorAll('input[type="range"]')];
    return ins.length && !ins.some(x => x.disabled) ? {thumbs: ins.length,
        value: ins.map(x => x.getAttribute('aria-valuetext') || x.value).join(' - ')} : null; });
  each('stNumberInput', e => {
    const inp = e.querySelector('input');
    if (!inp || inp.disabled) return null;
    return {value: inp.value, min: inp.getAttribute('min'), max: inp.getAttribute('max'),
            step: inp.getAttribute('step'),
            stepper: !!e.querySelector('[data-testid="stNumberInputStepUp"]')}; });
  each('stTextInput', e => {
    const inp = e.querySelector('input');
    return inp && !inp.disabled && !inp.readOnly ? {type: inp.type} : null; });
  each('stSelectbox', e => {
    const inp = e.querySelector('input');
    return inp && !inp.disabled ? {value: inp.value} : null; });
  each('stMultiSelect', e => {
    const inp = e.querySelector('input');
    if (!inp || inp.disabled) return null;
    return {chips: [...e.querySelectorAll('[data-tag]')].filter(vis)
                       .map(c => c.getAttribute('aria-label'))}; });
  each('stButton', e => {
    const b = e.querySelector('button');
    return b && !b.disabled ? {label: b.innerText.trim()} : null; });
  each('stDownloadButton', e => {
    const b = e.querySelector('button');
    return b && !b.disabled ? {label: b.innerText.trim()} : null; });
  each('stExpander', e => {
    const s = e.querySelector('summary');
    const t = s && (s.querySelector('[data-testid="stMarkdownContainer"]') || s);
    return s ? {label: t.innerText.trim(), open: !!e.querySelector('details[open]')} : null; });
  return out;
}"""


class WalkFailure(AssertionError):
    """A step of the walk failed; .record holds what was walked until then."""

    def __init__(self, message: str, record: "WalkRecord"):
        super().__init__(message)
        self.record = record


@dataclass
class WalkRecord:
    seed: int
    steps: int = 0
    actions: collections.Counter = field(default_factory=collections.Counter)
    pages: set = field(default_factory=set)
    models: set = field(default_factory=set)
    images: set = field(default_factory=set)
    uploads: int = 0  # good image uploads
    bad_files: int = 0  # bad image or checkpoint files uploaded
    log: list = field(default_factory=list)  # one line per action
    failures: list = field(default_factory=list)  # {step, action, message, traceback}
    step_seconds: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        slow = sorted(self.step_seconds, reverse=True)[:3]
        return {"seed": self.seed, "steps": self.steps, "actions": dict(sorted(self.actions.items())),
                "pages": sorted(self.pages), "models": sorted(self.models),
                "images": len(self.images), "uploads": self.uploads, "bad_files": self.bad_files,
                "failures": self.failures, "seconds": round(self.seconds, 1),
                "slowest_steps_s": [round(s, 1) for s in slow]}


# --- files to upload --------------------------------------------------------------------------
def _scene_png(rng: random.Random, path: Path) -> Path:
    """A fresh picture (random size and shapes): never seen by the app before."""
    from PIL import Image, ImageDraw

    w, h = rng.randrange(200, 481), rng.randrange(200, 481)
    im = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(im)
    for _ in range(rng.randrange(1, 6)):
        x0, y0 = rng.randrange(w - 20), rng.randrange(h - 20)
        box = (x0, y0, rng.randrange(x0 + 10, w), rng.randrange(y0 + 10, h))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=colour)
    im.save(path)
    return path


def make_bad_files(folder: Path) -> list[Path]:
    """The bad files a learner might pick, written into folder."""
    import io

    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "text.jpg").write_text("This is a text file, not a JPEG.\n" * 20)
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 120, 40)).save(buf, "JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    Image.new("RGB", (5, 5), (10, 200, 30)).save(folder / "tiny.png")
    Image.new("RGB", (4000, 60), (90, 90, 200)).save(folder / "strip.png")
    Image.new("CMYK", (300, 220), (0, 120, 200, 20)).save(folder / "cmyk.jpg", "JPEG")
    ramp = (np.arange(240 * 260, dtype=np.uint32).reshape(240, 260) * 1031 % 65536)
    Image.fromarray(ramp.astype(np.uint16)).save(folder / "sixteen.png")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.pt").write_text("not a checkpoint\n")
    return sorted(p for p in folder.iterdir() if p.suffix != ".pt")


# --- the walk ---------------------------------------------------------------------------------
class Walker:
    def __init__(self, page, url: str, seed: int, steps: int, server_log: Path | None,
                 timeout_s: float, folder: Path, out=print, keep_going: bool = False):
        self.page, self.url, self.seed, self.n = page, url.rstrip("/"), seed, steps
        self.rng = random.Random(seed)
        self.server_log, self.timeout_ms = server_log, timeout_s * 1000
        self.folder, self.out, self.keep_going = folder, out, keep_going
        self.rec = WalkRecord(seed)
        self.bad_files = make_bad_files(folder / "bad")
        self.js_errors: list[str] = []
        page.on("pageerror", lambda e: self.js_errors.append(str(e)))
        self.link: str | None = None  # the address copied earlier
        # The refused file each uploader ("image", "ckpt") holds: its error box shows on every
        # run until another file or a new session.
        self.rejected: dict[str, str | None] = {"image": None, "ckpt": None}
        self.t0 = time.monotonic()
        self.step = 0
        self.expect: dict = {}
        self.target = ""  # the action's target, known before it is done (for a failed action)  # what this step's action expects of the page

    # -- helpers
    def log(self, kind: str, target: str) -> None:
        line = f"seed {self.seed} step {self.step:3d} {kind:<12} {target}"
        self.rec.log.append(line)
        self.out(line)

    def log_tail(self) -> int:
        try:
            return self.server_log.stat().st_size if self.server_log else 0
        except OSError:
            return 0

    def new_log(self, since: int) -> str:
        if not self.server_log:
            return ""
        try:
            with open(self.server_log, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def changes(self) -> int:
        return self.page.evaluate("() => window.__walk ? window.__walk.changes : 0")

    def settle(self, before: int | None = None) -> None:
        """Wait for the end of the run the action started: the script state must change
        (before: the count of changes before the action) within 2 s, or the action started
        none; then not running, and still not running 0.2 s later (a rerun may follow)."""
        p = self.page
        if before is None:
            p.wait_for_timeout(400)
        else:
            try:
                p.wait_for_function("n => window.__walk && window.__walk.changes > n",
                                    arg=before, timeout=2000)
            except Exception:  # Playwright's TimeoutError: no run (an expander, a copy...)
                pass
        p.wait_for_selector(IDLE, timeout=self.timeout_ms)
        p.wait_for_timeout(200)
        p.wait_for_selector(IDLE, timeout=self.timeout_ms)

    def scan(self) -> dict:
        return self.page.evaluate(SCAN_JS)

    def loc(self, tid: str, i: int):
        return self.page.locator(f'[data-testid="{tid}"]').nth(i)

    def pick(self, items):
        return items[self.rng.randrange(len(items))]

    # -- actions: each returns the log text of its target; self.expect says what to check
    def a_nav(self, w):
        link = self.pick(w["stSidebarNavLink"])
        self.target = link["label"]
        self.expect["page"] = link["label"]  # checked once the run has ended (title, nav)
        self.loc("stSidebarNavLink", link["i"]).click()
        return link["label"]

    def _image_uploader(self, w):
        ups = [u for u in w["stFileUploader"] if u["sidebar"] and ".png" in u["accept"]]
        return ups[0] if ups else None

    def _ckpt_uploader(self, w):
        ups = [u for u in w["stFileUploader"] if u["sidebar"] and ".pt" in u["accept"]]
        return ups[0] if ups else None

    def _upload(self, up, path: Path) -> None:
        self.target = path.name
        self.loc("stFileUploader", up["i"]).locator('input[type="file"]').set_input_files(str(path))

    def _held(self, up) -> str:
        """The name of the file the uploader's input holds ("" if none). Choosing that same
        file again fires no change event in Chromium (the input's value does not change), so
        nothing reaches the app: the walk picks another file (seed 40 step 14 expected a
        second "truncated.jpg" to be reported, and the app never saw it)."""
        value = self.loc("stFileUploader", up["i"]).locator('input[type="file"]').input_value()
        return value.replace("\\", "/").rsplit("/", 1)[-1]

    def a_upload_photo(self, w):
        up = self._image_uploader(w)
        photo = self.pick([p for p in PHOTOS if p.name != self._held(up)])
        self._upload(up, photo)
        self.expect.update(image=f"upload {photo.name}", good_upload=True)
        return photo.name

    def a_upload_png(self, w):
        path = _scene_png(self.rng, self.folder / f"walk-{self.seed}-{self.step}.png")
        self._upload(self._image_uploader(w), path)
        self.expect.update(image=f"upload {path.name}", good_upload=True)
        return path.name

    def a_upload_bad(self, w):
        up = self._image_uploader(w)
        path = self.pick([p for p in self.bad_files if p.name != self._held(up)])
        self._upload(up, path)
        self.expect.update(bad_file=path.name, bad_kind="image")
        return path.name

    def a_upload_ckpt(self, w):
        up = self._ckpt_uploader(w)
        path = DEMO_CKPT if self.rng.random() < 0.5 else self.folder / "bad" / "text.pt"
        if path.name == self._held(up):  # the same file again reaches nothing (_held)
            path = self.folder / "bad" / "text.pt" if path == DEMO_CKPT else DEMO_CKPT
        self._upload(up, path)
        if path.name == "text.pt":
            self.expect.update(bad_file=path.name, bad_kind="ckpt")
        else:
            self.expect.update(good_ckpt=f"uploaded checkpoint {path.name}")
        return path.name

    def _radio(self, r, choices=None):
        opts = choices if choices is not None else [
            j for j, ok in enumerate(r["enabled"]) if ok and j != r["checked"]]
        j = self.pick(opts) if opts else r["checked"]
        self.loc("stRadio", r["i"]).locator('[data-testid="stRadioOption"]').nth(j).click()
        return f"{'sidebar' if r['sidebar'] else 'page'} '{r['label']}' -> '{r['options'][j]}'"

    def _source_radio(self, w):
        rs = [r for r in w["stRadio"] if r["sidebar"]
              and any(o in r["options"] for o in ("Upload", "Sample scene"))]
        return rs[0] if rs else None

    def _model_radio(self, w):
        rs = [r for r in w["stRadio"] if r["sidebar"] and r["label"] == "Model"]
        return rs[0] if rs else None

    def a_source(self, w):
        r = self._source_radio(w)
        opts = [j for j, o in enumerate(r["options"])
                if o not in SKIP_SOURCES and r["enabled"][j] and j != r["checked"]]
        return self._radio(r, opts)

    def a_model(self, w):
        return self._radio(self._model_radio(w))

    def a_radio(self, w):
        return self._radio(self.pick(w["stRadio"]))

    def a_checkbox(self, w):
        c = self.pick(w["stCheckbox"])
        self.loc("stCheckbox", c["i"]).locator("label").first.click()
        return (f"{'sidebar' if c['sidebar'] else 'page'} {c['role']} '{c['label']}' "
                f"{'on -> off' if c['checked'] else 'off -> on'}")

    def a_pills(self, w):
        g = self.pick(w["stButtonGroup"])
        j = self.pick([j for j, ok in enumerate(g["enabled"]) if ok])
        self.loc("stButtonGroup", g["i"]).locator("button[data-variant]").nth(j).click()
        return f"{'sidebar' if g['sidebar'] else 'page'} '{g['label']}' pill '{g['options'][j]}'"

    def a_slider(self, w):
        s = self.pick(w["stSlider"])
        thumb = self.rng.randrange(s["thumbs"])
        key = self.pick(["ArrowRight", "ArrowLeft"])
        n = self.rng.randrange(1, 5)
        self.loc("stSlider", s["i"]).locator('input[type="range"]').nth(thumb).focus()
        for _ in range(n):
            self.page.keyboard.press(key)
        return f"{'sidebar' if s['sidebar'] else 'page'} '{s['label']}' ({s['value']}) {key} x{n}"

    def a_number(self, w):
        x = self.pick(w["stNumberInput"])
        box = self.loc("stNumberInput", x["i"])
        where = f"{'sidebar' if x['sidebar'] else 'page'} '{x['label']}' ({x['value']})"
        if x["stepper"] and self.rng.random() < 0.4:
            which = self.pick(["stNumberInputStepUp", "stNumberInputStepDown"])
            btn = box.locator(f'[data-testid="{which}"]')
            if btn.is_enabled():
                btn.click()
                return f"{where} {'+' if which.endswith('Up') else '-'}"
        lo, hi = (float(v) if v is not None and abs(float(v)) < 1e300 else None
                  for v in (x["min"], x["max"]))
        cur = float(x["value"]) if x["value"] not in ("", None) else 0.0
        step = float(x["step"] or 1)
        choices = [cur + step, cur - step, cur + 0.5 * step, cur * 10, -cur - 1, 0]
        if lo is not None:
            choices += [lo, lo - step]
        if hi is not None:
            choices += [hi, hi + step]
        v = self.pick(choices)
        text = str(int(v)) if float(v).is_integer() else f"{v:.3f}"
        field_ = box.locator("input")
        field_.fill(text)
        # Enter in a form's input submits the form (the Training page's: a training run), so
        # there the value is committed with Tab, as a learner tabbing on would.
        key = "Tab" if x["form"] or self.rng.random() < 0.3 else "Enter"
        field_.press(key)
        return f"{where} typed {text} + {key}"

    def a_text(self, w):
        x = self.pick(w["stTextInput"])
        text = self.pick(["abc", "", " ", "x" * 300, "%00", "1e999", "<b>hi</b>", "élève",
                          "\u202e", "'; DROP TABLE", str(self.rng.randrange(10**6))])
        field_ = self.loc("stTextInput", x["i"]).locator("input").first
        field_.fill(text)
        key = "Tab" if x["form"] or self.rng.random() < 0.3 else "Enter"
        field_.press(key)
        return f"{'sidebar' if x['sidebar'] else 'page'} '{x['label']}' typed {text[:40]!r} + {key}"

    def _combobox(self, tid, w, pred=lambda s: True):
        cands = [s for s in w[tid] if pred(s)]
        s = self.pick(cands)
        inp = self.loc(tid, s["i"]).locator("input").first
        inp.click()
        listbox = self.page.locator('[role="listbox"]').first
        try:
            listbox.wait_for(state="visible", timeout=2000)
        except Exception:  # a click on the focused input does not open it: the keyboard does
            inp.press("ArrowDown")
            try:
                listbox.wait_for(state="visible", timeout=2000)
            except Exception:
                pass
        opts = [t for t in self.page.locator('[role="listbox"] [role="option"]').all_inner_texts()
                if t.strip()]
        where = f"{'sidebar' if s['sidebar'] else 'page'} '{s['label']}'"
        if not opts:
            self.page.keyboard.press("Escape")
            return s, f"{where} opened (no options)"
        target = self.pick(opts).strip()
        k = self.rng.randrange(1, 5)
        start = self.rng.randrange(max(1, len(target) - k + 1)) if self.rng.random() < 0.4 else 0
        typed = target[start:start + k]
        self.page.keyboard.press("Control+A")
        self.page.keyboard.type(typed)
        self.page.wait_for_timeout(200)
        if s["form"]:  # no Enter inside a form (it would submit it): click the first match
            first = self.page.locator('[role="listbox"] [role="option"]').first
            if first.count():
                first.click()
            else:
                self.page.keyboard.press("Escape")
        else:
            self.page.keyboard.press("Enter")
        return s, f"{where} typed {typed!r} (aiming at {target!r})"

    def a_selectbox(self, w):
        return self._combobox("stSelectbox", w)[1]

    def a_sample(self, w):
        return self._combobox("stSelectbox", w,
                              lambda s: s["sidebar"] and s["label"].startswith("Sample"))[1]

    def a_multiselect(self, w):
        m = self.pick(w["stMultiSelect"])
        if m["chips"] and self.rng.random() < 0.4:
            chip = self.pick(m["chips"])
            self.loc("stMultiSelect", m["i"]).get_by_role(
                "button", name=f"Remove {chip}", exact=True).first.click()
            return f"'{m['label']}' removed {chip!r}"
        return self._combobox("stMultiSelect", {"stMultiSelect": [m]})[1]

    def a_button(self, w):
        b = self.pick([("stButton", b) for b in w["stButton"]] +
                      [("stDownloadButton", b) for b in w["stDownloadButton"]])
        tid, b = b
        self.loc(tid, b["i"]).locator("button").first.click()
        return f"{'sidebar' if b['sidebar'] else 'page'} '{b['label']}'"

    def a_expander(self, w):
        e = self.pick(w["stExpander"])
        self.loc("stExpander", e["i"]).locator("summary").first.click()
        return f"'{e['label']}' {'close' if e['open'] else 'open'}"

    def a_keyboard(self, w):
        on_body = self.rng.random() < 0.7
        in_form = self.page.evaluate(
            "() => !!document.activeElement?.closest('[data-testid=\"stForm\"]')")
        if on_body or in_form:  # never keys inside a form: Space or Enter could submit it
            on_body = True
            self.page.evaluate("() => document.activeElement && document.activeElement.blur()")
        focused = self.page.evaluate(
            "() => { const e = document.activeElement; return e ? (e.getAttribute('aria-label')"
            " || e.tagName) : 'none'; }")
        keys = [self.pick(["ArrowRight", "ArrowLeft", "Space"])
                for _ in range(self.rng.randrange(1, 4))]
        for k in keys:
            self.page.keyboard.press(k)
        return f"{'+'.join(keys)} on {'body' if on_body else repr(focused)}"

    def a_sidebar(self, w):
        self.page.locator('[data-testid="stExpandSidebarButton"]').click()
        return "open the collapsed sidebar"

    def a_copy_link(self, w):
        self.link = self.page.url
        return self.link.removeprefix(self.url)

    def a_open_link(self, w):
        self.goto(self.link)
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.link).query)
        if "page" in q:
            self.expect["link_page"] = q["page"][-1]
        self.rejected = dict.fromkeys(self.rejected)  # a new session: the uploaders are empty
        return self.link.removeprefix(self.url)

    def a_garbage_link(self, w):
        from overfeat.app import share

        names = ["page", "img"] + [p.name for p in share.LINKED]
        q = "&".join(f"{n}={self.pick(GARBAGE)}" for n in names)
        self.goto(f"{self.url}/?{q}")
        self.rejected = dict.fromkeys(self.rejected)
        self.expect["garbage"] = True
        return "/?" + (q if len(q) < 300 else q[:300] + "...")

    # -- which kinds the page offers now
    def offered(self, w) -> dict:
        side_sel = [s for s in w["stSelectbox"] if s["sidebar"] and s["label"].startswith("Sample")]
        src = self._source_radio(w)
        model = self._model_radio(w)
        buttons = [b for b in w["stButton"] + w["stDownloadButton"]
                   if b["label"] not in SKIP_BUTTONS]
        w["stButton"] = [b for b in w["stButton"] if b["label"] not in SKIP_BUTTONS]
        w["stDownloadButton"] = [b for b in w["stDownloadButton"] if b["label"] not in SKIP_BUTTONS]
        ok = {
            "nav": bool(w["stSidebarNavLink"]),
            "upload_photo": bool(self._image_uploader(w)),
            "upload_png": bool(self._image_uploader(w)),
            "upload_bad": bool(self._image_uploader(w)),
            "upload_ckpt": bool(self._ckpt_uploader(w)),
            "source": bool(src) and any(o not in SKIP_SOURCES for j, o in enumerate(src["options"])
                                        if j != src["checked"]),
            "sample": bool(side_sel),
            "model": bool(model) and len(model["options"]) > 1,
            "checkbox": bool(w["stCheckbox"]),
            "pills": any(any(g["enabled"]) for g in w["stButtonGroup"]),
            "slider": bool(w["stSlider"]),
            "radio": bool(w["stRadio"]),
            "number": bool(w["stNumberInput"]),
            "text": bool(w["stTextInput"]),
            "selectbox": bool(w["stSelectbox"]),
            "multiselect": bool(w["stMultiSelect"]),
            "button": bool(buttons),
            "expander": bool(w["stExpander"]),
            "keyboard": True,
            "copy_link": True,
            "open_link": self.link is not None,
            "garbage_link": True,
            "sidebar": w["sidebarCollapsed"],
        }
        w["stButtonGroup"] = [g for g in w["stButtonGroup"] if any(g["enabled"])]
        return {k: WEIGHTS[k] for k, v in ok.items() if v}

    # -- checks
    def check(self, since: int, js_before: int, kind: str) -> list[str]:
        p = self.page
        problems = []
        n_exc = p.locator('[data-testid="stException"]').count()
        if n_exc:
            problems.append("stException on the page: " + " | ".join(
                t.strip()[:600] for t in p.locator('[data-testid="stException"]').all_inner_texts()))
        body = p.locator("body").inner_text()
        if CRASH_TEXT in body:
            problems.append(f"the page says {CRASH_TEXT!r}")
        if "Traceback" in body:
            problems.append("'Traceback' in the page's text")
        new = self.new_log(since)
        if "Traceback" in new:
            problems.append("a new Traceback in the server log")
        if len(self.js_errors) > js_before:
            problems.append(f"JavaScript page errors: {self.js_errors[js_before:]}")
        errors = [t.strip() for t in
                  p.locator('[data-testid="stAlertContentError"]').all_inner_texts()]
        bad = self.expect.get("bad_file")
        if bad:
            self.rejected[self.expect["bad_kind"]] = bad if any(bad in e for e in errors) else None
        if self.expect.get("good_upload"):
            self.rejected["image"] = None
        if self.expect.get("good_ckpt"):
            self.rejected["ckpt"] = None
        held = [n for n in self.rejected.values() if n]
        unexplained = [e for e in errors if not any(n in e for n in held)]
        if unexplained and not self.expect.get("garbage"):
            problems.append("error box(es) with no bad file in an uploader or garbage link "
                            f"before: {unexplained}")
        for e in errors:
            if "\n" in e:
                problems.append(f"an error box of more than one line: {e!r}")
        if bad in REJECT and not any(bad in e for e in errors):
            problems.append(f"the bad file {bad} was not reported in an error box "
                            f"(errors: {errors})")
        caption = self.caption()
        if self.expect.get("good_ckpt") and (not caption or caption[0] != self.expect["good_ckpt"]):
            problems.append(f"after uploading the checkpoint, the caption's model is "
                            f"{caption and caption[0]!r}, not {self.expect['good_ckpt']!r}")
        if self.expect.get("good_upload"):
            if not caption or caption[1] != self.expect["image"]:
                problems.append(f"after uploading, the caption's image is {caption and caption[1]!r},"
                                f" not {self.expect['image']!r}")
        stop = p.locator('[data-testid="stButton"] button', has_text=re.compile(r"^Stop$"))
        if self.current_page() == "Training" and stop.count():
            problems.append("a training run is going on: the walk must never start one")
            stop.first.click()
        if p.locator("h1").count() == 0:
            problems.append("no page title (h1) after the run")
        current = self.current_page()
        if "page" in self.expect:
            want = H1.get(self.expect["page"], self.expect["page"])
            h1 = p.locator("h1").first.inner_text().strip() if p.locator("h1").count() else None
            if current != self.expect["page"] or h1 != want:
                problems.append(f"clicked {self.expect['page']!r} in the navigation: the page "
                                f"shown is {current!r}, its title {h1!r}")
        if "link_page" in self.expect:
            href = p.locator('[data-testid="stSidebarNavLink"][aria-current="page"]')
            path = urllib.parse.urlparse(href.get_attribute("href") or "").path.strip("/")
            if (path or "overview") != self.expect["link_page"]:
                problems.append(f"the link's page is {self.expect['link_page']!r}, the page shown "
                                f"is {current!r}")
            # The app wrote this link itself: every value in it must be taken.
            notes = [t for t in p.locator('[data-testid="stAlert"]').all_inner_texts()
                     if re.search(r"link parameter .* ignored", t)]
            if notes:
                problems.append(f"the app's own link was refused in part: {notes}")
        return problems

    def caption(self) -> tuple[str, str] | None:
        text = self.page.locator('[data-testid="stMain"]').inner_text()
        m = re.search(r"Model: (.+?) · Image: (.+?) \(\d+ wide x \d+ high\)", text)
        return (m.group(1), m.group(2)) if m else None

    def goto(self, url: str) -> None:
        """Open url in the tab (a new session) and wait until it is connected and its first
        run has ended (before that the script state is "initial", not "notRunning")."""
        self.page.goto(url)
        self.page.wait_for_selector(CONNECTED, timeout=self.timeout_ms)
        self.page.wait_for_selector(IDLE, timeout=self.timeout_ms)

    def current_page(self) -> str | None:
        cur = self.page.locator('[data-testid="stSidebarNavLink"][aria-current="page"]')
        return (cur.first.locator('[data-testid="stMarkdownContainer"]').first.inner_text().strip()
                if cur.count() else None)

    def fail(self, kind: str, problems: list[str], since: int) -> None:
        self.rec.seconds = time.monotonic() - self.t0
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"walk-seed{self.seed}-step{self.step}.png"
        try:
            self.page.screenshot(path=str(shot), full_page=True, timeout=30_000)
        except Exception as e:  # a hung page may not draw: the failure matters more
            shot = Path(f"(no screenshot: {e})")
        new = self.new_log(since)
        tb = ""
        if "Traceback" in new:
            tb = new[new.index("Traceback"):]
            tb = tb if len(tb) < 6000 else tb[:2500] + "\n[...]\n" + tb[-3000:]
        last = next((ln.strip() for ln in reversed(tb.strip().splitlines())
                     if ln.strip() and not ln.startswith(" ")), "") if tb else ""
        self.rec.failures.append({"step": self.step, "action": self.rec.log[-1],
                                  "problems": problems, "traceback_last_line": last,
                                  "screenshot": str(shot)})
        msg = (f"random walk failed: seed {self.seed}, step {self.step} ({kind})\n"
               f"replay: .venv/bin/python tests/browser_walk.py --seed {self.seed} "
               f"--steps {self.step}\n"
               "problems:\n  " + "\n  ".join(problems) + "\n"
               "last actions:\n  " + "\n  ".join(self.rec.log[-10:]) + "\n"
               f"screenshot: {shot}\n"
               + (f"server log traceback:\n{tb}" if tb else "server log: no new traceback"))
        if not self.keep_going:
            raise WalkFailure(msg, self.rec)
        self.out(msg)
        # A new session: the failed one may be stuck (e.g. every page showing the error).
        self.page.goto(self.url)  # not self.goto: a failure here is no new failure
        self.rejected = dict.fromkeys(self.rejected)
        try:
            self.settle()
        except Exception:
            pass

    # -- the loop
    def run(self) -> WalkRecord:
        self.t0 = time.monotonic()
        self.out(f"random walk: seed {self.seed}, {self.n} steps, {self.url}")
        self.page.add_init_script(RUNS_JS)
        self.page.goto(self.url)
        self.step = 0
        since, js0 = self.log_tail(), len(self.js_errors)
        try:
            self.page.wait_for_selector(CONNECTED, timeout=self.timeout_ms)
            self.settle()
            nav = [x["label"] for x in self.scan()["stSidebarNavLink"]]
            missing = [p for p in PAGES if p not in nav]
            problems = self.check(since, js0, "start") + (
                [f"pages missing from the navigation: {missing}"] if missing else [])
        except Exception as e:
            problems = [f"the app did not load: {type(e).__name__}: {str(e).splitlines()[0]}"]
        self.rec.log.append(f"seed {self.seed} step   0 start        {self.url}")
        if problems:
            self.fail("start", problems, since)
        self.observe()
        for self.step in range(1, self.n + 1):
            w = self.scan()
            kinds = self.offered(w)
            kind = self.rng.choices(list(kinds), weights=list(kinds.values()))[0]
            since, js0, runs0 = self.log_tail(), len(self.js_errors), self.changes()
            self.expect, self.target = {}, ""
            ts = time.monotonic()
            try:
                target = getattr(self, f"a_{kind}")(w)
            except Exception as e:
                target = (f"{self.target} (the action failed: {type(e).__name__}: "
                          f"{str(e).splitlines()[0]})").strip()
                self.log(kind, target)
                self.rec.actions[kind] += 1
                self.fail(kind, [f"the action could not be done: {type(e).__name__}: "
                                 f"{str(e).splitlines()[0][:300]}"], since)
                continue
            self.log(kind, target)
            self.rec.actions[kind] += 1
            try:
                self.settle(runs0)
                problems = self.check(since, js0, kind)
            except Exception as e:  # playwright's TimeoutError: the run did not end
                problems = [f"hang or broken page: {type(e).__name__}: "
                            f"{str(e).splitlines()[0][:300]} (timeout {self.timeout_ms / 1000:.0f} s)"]
            self.rec.step_seconds.append(time.monotonic() - ts)
            self.rec.steps = self.step
            if kind.startswith("upload"):
                if "bad_file" in self.expect:
                    self.rec.bad_files += 1
                elif self.expect.get("good_upload"):
                    self.rec.uploads += 1
            if problems:
                self.fail(kind, problems, since)
            self.observe()
        self.rec.seconds = time.monotonic() - self.t0
        return self.rec

    def observe(self) -> None:
        """Pages, models and images seen (for the summary and the coverage checks)."""
        try:
            cur = self.current_page()
            if cur:
                self.rec.pages.add(cur)
            cap = self.caption()
            if cap:
                self.rec.models.add(cap[0])
                self.rec.images.add(cap[1])
        except Exception:
            pass


def walk(browser, url: str, seed: int, steps: int, server_log: Path | None = None,
         timeout_s: float = 240, out=print, keep_going: bool = False) -> WalkRecord:
    """One session's walk in a new browser context (one tab, 1400x1000). Raises WalkFailure
    at the first failing step unless keep_going (then the record lists the failures)."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    folder = Path(tempfile.mkdtemp(prefix=f"walk-{seed}-"))
    try:
        page = context.new_page()
        page.set_default_timeout(timeout_s * 1000)
        walker = Walker(page, url, seed, steps, server_log, timeout_s, folder, out, keep_going)
        return walker.run()
    finally:
        context.close()
        shutil.rmtree(folder, ignore_errors=True)


def format_summary(records: list[WalkRecord], seconds: float) -> str:
    actions = collections.Counter()
    for r in records:
        actions.update(r.actions)
    lines = [f"summary: {len(records)} session(s), {sum(r.steps for r in records)} steps, "
             f"{seconds:.0f} s",
             "  actions: " + ", ".join(f"{k} {v}" for k, v in sorted(actions.items())),
             "  pages: " + ", ".join(sorted(set().union(*(r.pages for r in records)))),
             "  models: " + "; ".join(sorted(set().union(*(r.models for r in records)))),
             f"  uploads {sum(r.uploads for r in records)}, bad files "
             f"{sum(r.bad_files for r in records)}, images {len(set().union(*(r.images for r in records)))}",
             f"  failures: {sum(len(r.failures) for r in records)}"]
    for r in records:
        for f in r.failures:
            lines.append(f"    seed {r.seed} step {f['step']}: {f['action']}")
            lines.extend(f"      {p[:400]}" for p in f["problems"])
            if f["traceback_last_line"]:
                lines.append(f"      traceback: {f['traceback_last_line']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--sessions", type=int, default=1,
                    help="walks one after another, seeds SEED..SEED+K-1, one context each")
    ap.add_argument("--url", help="an app already running (default: start one)")
    ap.add_argument("--server-log", type=Path, help="that app's log, for the traceback check")
    ap.add_argument("--timeout", type=float, default=240, help="seconds a run may take")
    ap.add_argument("--keep-going", action="store_true",
                    help="after a failure, reload the app and walk on")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    ap.add_argument("--quiet", action="store_true", help="no action log on stdout")
    a = ap.parse_args(argv)
    out = (lambda s: None) if a.quiet or a.json else (lambda s: print(s, flush=True))
    from contextlib import ExitStack

    from playwright.sync_api import sync_playwright

    from browser_helpers import streamlit_server

    t0 = time.monotonic()
    records: list[WalkRecord] = []
    with ExitStack() as stack:
        if a.url:
            url, log = a.url, a.server_log
        else:
            # Training runs (the walk starts none) would go to a temp dir, not runs/.
            train_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="walk-train-"))
            url = stack.enter_context(streamlit_server(
                "walk-server.log", env={"OVERFEAT_APP_TRAIN_DIR": train_dir}))
            log = ARTIFACTS / "walk-server.log"
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        stack.callback(browser.close)
        for k in range(a.sessions):
            seed = a.seed + k
            try:
                records.append(walk(browser, url, seed, a.steps, log, a.timeout, out,
                                    a.keep_going))
            except WalkFailure as e:
                records.append(e.record)
                out(str(e))
                if a.json:
                    print(str(e), file=sys.stderr)
    seconds = time.monotonic() - t0
    if a.json:
        print(json.dumps({"seconds": round(seconds, 1),
                          "sessions": [r.summary() for r in records]}, indent=1))
    else:
        print(format_summary(records, seconds), flush=True)
    return 1 if any(r.failures for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
