"""Many users at once (issue 5): N browser sessions upload N different images to one app server
at the same moment; every session must get its own, correct results.

    .venv/bin/python tests/load_app.py --sessions 8 [--timeout 600] [--json]   (1..40 sessions)

What it does:
1. Starts the app (`streamlit run app.py`, headless, on a free loopback port) and, meanwhile,
   computes in this process what the Overview and Merge pages must show for each session's
   image, with the same package functions and the same model the app loads
   (overfeat.predict.load_model(): the shipped checkpoint, or the seeded random model).
2. Opens one Chromium (Debian's, /usr/bin/chromium) with N contexts, one per session; each
   loads the app, then all upload at once: session i uploads a generated pictogram scene of
   its own (overfeat.data.scenes, seed 1000 + i; scenes differ in content and size).
3. Each session reads its results from the page: the caption (model, image name and size), the
   Overview's top-5 classes and scores and its view count; then it visits the pages of
   LOAD_PAGES in turn (each switch timed), ending on Merge, reads the Merge page's raw boxes,
   merge steps and final boxes (both match scores) and steps the merge MERGE_STEPS times (each
   step timed). After every session has finished, each one checks its page still shows its own
   image and results. The timings are the page's own clock from the input event to a settled
   page (Probe, SETTLED_JS: script done, every Plotly figure drawn, no change for 0.3 s), the
   same measure as tests/browser_latency.py's.
4. Checks: every session's numbers equal the package's numbers for its own image; the expected
   results are distinct across sessions (so a session showing another's results would fail);
   GET /_stcore/health answers "ok" throughout (polled) and after; no exception or error box on
   any page. Reports the server's peak memory (VmHWM of the server process and of any
   children, and the sampled peak of their summed RSS), p50/p95/max over the sessions of each
   interaction (upload to first results, page switch, merge step) with its websocket bytes,
   the error count and the cross-talk check.

Exit status: 0 when every check passed, 1 otherwise (2: bad arguments). --json prints the
report as one JSON object. tests/test_load.py runs the same code with 3 sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DEFAULT_SESSIONS, MAX_SESSIONS = 8, 40
STEP_TIMEOUT_S = 600  # one interaction of one session; a stuck one fails with what it showed
# The pages each session visits after its upload, in this order (each switch timed), ending on
# Merge, whose numbers it reads and whose merge it steps MERGE_STEPS times (each step timed).
LOAD_PAGES = ("Architecture", "Scales", "Offsets", "Regressor", "Detection", "Greedy vs NMS",
              "Merge")
MERGE_STEPS = 3
VIEWPORT = {"width": 1400, "height": 900}
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
SCORE_TOL = 2e-4  # the page rounds scores to 4 decimals; allow for float noise on top
KINDS = ("literal", "corrected")


# --- what each session uploads and what it must see ------------------------------------------
@dataclass
class Results:
    """What a page shows for one image (the same fields whether read or computed)."""

    model: str  # the model description in the caption
    image: str  # "upload <name>"
    size: tuple[int, int]  # (width, height) in the caption
    top: list[tuple[str, float]]  # Overview: the top-5 classes and their scores
    views: int  # Overview: "averaged over N views"
    raw_boxes: int  # Merge: the "raw boxes" metric
    steps: dict[str, int]  # Merge: merge steps per match score
    final_boxes: dict[str, int]  # Merge: boxes left per match score


def session_image(i: int) -> tuple[str, bytes]:
    """Session i's upload: (file name, PNG bytes), a generated scene of its own."""
    from overfeat.app import state as appstate

    kind, seed = ("loc", "det")[i % 2], 1000 + i
    im, _ = appstate.make_scene(kind, seed, 0)
    return f"s{i:02d}-{kind}-seed{seed}.png", appstate.png_bytes(im)


def expected_results(model, desc: str, name: str, data: bytes) -> Results:
    """What the app must show for this upload: the app's own path (app.py, app_pages/common.py)
    with the sidebar's defaults, through the same package functions."""
    from overfeat.app import state as appstate
    from overfeat.images import load_image
    from overfeat.multiscale import analyze

    im, _ = appstate.prepare(load_image(data, name=name))
    knobs = appstate.Knobs()
    full = analyze(model, im, knobs.full_settings())
    a = appstate.derive(full, knobs.settings())
    merges = {k: a.merge(score=k, threshold=float(knobs.threshold(k)), by_class=knobs.by_class)
              for k in KINDS}
    return Results(model=desc, image=f"upload {name}", size=im.size,
                   top=[(n, s) for _, n, s in appstate.class_ranking(a, 5)],
                   views=len(a.views), raw_boxes=len(a.table),
                   steps={k: r.n_steps for k, r in merges.items()},
                   final_boxes={k: len(r.final_confs) for k, r in merges.items()})


def compare(seen: Results | None, want: Results) -> list[str]:
    """Differences between what a page showed and what it must show (empty: all equal)."""
    if seen is None:
        return ["no results read from the page"]
    out = []
    for f in ("model", "image", "size", "views", "raw_boxes", "steps", "final_boxes"):
        a, b = getattr(seen, f), getattr(want, f)
        if (list(a) if isinstance(a, tuple) else a) != (list(b) if isinstance(b, tuple) else b):
            out.append(f"{f}: page {a!r}, package {b!r}")
    if len(seen.top) != len(want.top):
        out.append(f"top classes: page {seen.top}, package {want.top}")
        return out
    for r, ((n1, s1), (n2, s2)) in enumerate(zip(seen.top, want.top)):
        if abs(s1 - s2) > SCORE_TOL:
            out.append(f"top {r + 1} score: page {n1} {s1}, package {n2} {s2:.6f}")
        elif n1 != n2:
            # Two classes whose scores agree to the page's 4 decimals may come in either order.
            near = [n for n, s in want.top if abs(s - s1) <= SCORE_TOL]
            if n1 not in near:
                out.append(f"top {r + 1} class: page {n1} {s1}, package {n2} {s2:.6f}")
    return out


def fingerprint(r: Results) -> tuple:
    """The numbers a page shows for an image, without its name: two sessions must differ here,
    or a session showing another session's numbers could pass unnoticed."""
    return (tuple(r.size), tuple((n, round(s, 4)) for n, s in r.top), r.raw_boxes,
            tuple(sorted(r.steps.items())), tuple(sorted(r.final_boxes.items())))


# --- the server -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port),
           "--browser.gatherUsageStats", "false",
           # Nothing is edited during the run; watching the tree only costs CPU.
           "--server.fileWatcherType", "none"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def health(url: str, timeout: float = 10.0) -> tuple[bool, float, str]:
    """(answered "ok", seconds, what it answered)."""
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=timeout) as r:
            body = r.read().decode(errors="replace").strip()
        return body == "ok", time.perf_counter() - t, body
    except OSError as e:
        return False, time.perf_counter() - t, f"{type(e).__name__}: {e}"


def wait_healthy(proc: subprocess.Popen, url: str, deadline: float) -> str | None:
    """None once the server answers "ok"; else why not."""
    while True:
        if proc.poll() is not None:
            return f"streamlit exited with status {proc.returncode} before answering"
        if health(url, timeout=2)[0]:
            return None
        if time.monotonic() > deadline:
            return "streamlit did not answer /_stcore/health in time"
        time.sleep(0.5)


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def status_kb(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Monitor(threading.Thread):
    """Polls the server's health and samples its memory until stopped."""

    def __init__(self, url: str, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.url, self.pid, self.every = url, pid, every
        self.stop = threading.Event()
        self.polls = self.failures = 0
        self.fail_examples: list[str] = []
        self.max_health_s = 0.0
        self.peak_rss_kb = 0  # the sampled peak of the tree's summed VmRSS
        self.hwm_kb: dict[int, int] = {}  # VmHWM per process of the tree, last read

    def sample_memory(self) -> None:
        tree = process_tree(self.pid)
        self.peak_rss_kb = max(self.peak_rss_kb, sum(status_kb(p, "VmRSS") for p in tree))
        for p in tree:
            self.hwm_kb[p] = max(self.hwm_kb.get(p, 0), status_kb(p, "VmHWM"))

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample_memory()
            ok, dt, body = health(self.url)
            self.polls += 1
            self.max_health_s = max(self.max_health_s, dt)
            if not ok:
                self.failures += 1
                if len(self.fail_examples) < 5:
                    self.fail_examples.append(body)
            self.stop.wait(self.every)


# --- one browser session --------------------------------------------------------------------
@dataclass
class Session:
    index: int
    name: str
    path: str
    expected: Results | None = None
    seen: Results | None = None
    seen_after: Results | None = None  # re-read after every session finished
    upload_to_results_s: float | None = None  # upload until the new results are on screen
    upload_to_idle_s: float | None = None  # until the run ended (incl. the merge prefetch)
    upload_settled_s: float | None = None  # the page's clock: input event to settled page
    merge_page_s: float | None = None  # click on Merge until its numbers are on screen
    page_switch_s: dict[str, float] = field(default_factory=dict)  # page -> settled (Probe)
    merge_step_s: list[float] = field(default_factory=list)  # each Next until settled
    ws_kb: dict[str, list[float]] = field(default_factory=dict)  # interaction -> websocket kB
    errors: list[str] = field(default_factory=list)
    stage: str = "start"  # what the session is doing (named in its errors)


CAPTION_RE = re.compile(r"Model:\s*(.*?)\s*·\s*Image:\s*(.*?)\s*\((\d+) wide x (\d+) high\)")


async def caption(page) -> tuple[str, str, tuple[int, int]] | None:
    loc = page.locator('[data-testid="stCaptionContainer"]', has_text="Image:").first
    m = CAPTION_RE.search(await loc.inner_text())
    return (m.group(1), m.group(2), (int(m.group(3)), int(m.group(4)))) if m else None


async def page_problems(page) -> list[str]:
    out = []
    for testid in ("stException", "stAlertContentError"):
        n = await page.locator(f'[data-testid="{testid}"]').count()
        if n:
            text = await page.locator(f'[data-testid="{testid}"]').first.inner_text()
            out.append(f"{testid} on the page: {text.strip()[:300]}")
    return out


# --- a settled page, and how long an interaction took to get there ---------------------------
# Installed in every page before it loads (context.add_init_script): records in the page's own
# clock the script-state transitions of stApp (a run ends when it goes back to notRunning), the
# last change to the page (any DOM mutation), the last user input (pointer, key, a file input's
# change) and the main thread's long tasks (> 50 ms: protobuf decoding, React, Plotly drawing).
PROBE_JS = """(() => {
  if (window.__ofp) return;
  const P = window.__ofp = {runs: 0, state: null, runStart: 0, runEnd: 0, lastMut: 0,
                            lastInput: 0, lastMsg: 0, lastUnseen: 0, long: [], sends: []};
  const now = () => performance.now();
  const send = WebSocket.prototype.send;  // when the page asks the server for a rerun
  WebSocket.prototype.send = function (...a) {
    if (!this.__ofp) {  // and when the server's messages arrive (the socket's first send)
      this.__ofp = true;
      this.addEventListener('message', () => { P.lastMsg = now(); });
    }
    P.sends.push(now());
    if (P.sends.length > 500) P.sends.shift();
    return send.apply(this, a);
  };
  for (const ev of ['pointerdown', 'keydown', 'change'])
    window.addEventListener(ev, () => { P.lastInput = now(); }, true);
  try {
    new PerformanceObserver(l => { for (const e of l.getEntries())
      P.long.push([e.startTime, e.duration]); }).observe({type: 'longtask', buffered: true});
  } catch (e) {}
  // Changes inside React Aria's live announcer are not changes a person sees: it is a 1x1 px,
  // clipped node for screen readers (data-live-announcer, prepended to body), and each
  // announcement ("20 options available" when a selectbox opens) is removed by a timer 7 s
  // later, in whatever interaction then runs: counted, it ended that interaction's time there.
  const unseen = r => {
    const n = r.target.nodeType === 1 ? r.target : r.target.parentElement;
    return !!n && !!n.closest('[data-live-announcer]')
      || [...r.addedNodes, ...r.removedNodes].some(
        x => x.nodeType === 1 && x.dataset && x.dataset.liveAnnouncer === 'true');
  };
  // A busy page may handle a whole run's messages in one task: the state then goes
  // running -> notRunning between two callbacks, so the values in between come from the
  // records' old values (the state attribute's history), then the current value.
  const mo = new MutationObserver(records => {
    const t = now();
    if (records.every(unseen)) { P.lastUnseen = t; return; }
    P.lastMut = t;
    const app = document.querySelector('[data-testid="stApp"]');
    const seq = [];
    for (const r of records)
      if (r.type === 'attributes' && r.target === app
          && r.attributeName === 'data-test-script-state') seq.push(r.oldValue);
    seq.push(app ? app.getAttribute('data-test-script-state') : null);
    for (const s of seq) {
      if (s === P.state) continue;
      if (s === 'notRunning') { P.runs += 1; P.runEnd = t; }
      else if (P.state === 'notRunning' || P.state === null) P.runStart = t;
      P.state = s;
    }
  });
  const start = () => mo.observe(document.documentElement, {
    subtree: true, childList: true, attributes: true, attributeOldValue: true,
    characterData: true});
  if (document.documentElement) start();
  else document.addEventListener('readystatechange', start, {once: true});
})()"""

# Settled: the script is not running, a run has ended since the mark (runs > mark.runs) or the
# server answered the page's request (a message after it, and the page changed after it: when
# the browser handles a whole quick run in one task, React may never draw the running state,
# so no run is seen), no
# spinner or skeleton, every .js-plotly-plot has drawn its svg with all its traces, the wanted
# caption and title are there, and nothing on the page changed for `quiet` ms. Returns the
# timings from the action (the first input event after the mark; the mark if none) to the
# page's last change (settled_ms) and to the end of the last run (script_ms), and the long
# tasks' time in between (busy_ms).
SETTLED_JS = """([mark, want, quiet]) => {
  const P = window.__ofp;
  if (!P) return false;
  // The quiet test first: it reads two numbers, while the checks below query the DOM and read
  // innerText, which makes the browser lay out the page there and then. Polled every 50 ms
  // during a page's drawing, they forced layouts the page would not have done (a user's
  // browser has no such probe); a page still changing fails here, before any of them.
  const end = Math.max(P.lastMut, P.runEnd);
  if (performance.now() - end < quiet) return false;
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const start = P.lastInput > mark.t0 ? P.lastInput : mark.t0;
  const sent = P.sends.find(t => t >= start);
  // ... and the page changed after the request (a late message of an earlier run alone is no
  // answer: a 30-session run had merge steps "settled" before anything changed).
  const answered = sent !== undefined && P.lastMsg > sent && P.lastMut > sent;
  if (P.runs <= mark.runs && !answered) return false;
  if (document.querySelector('[data-testid="stSpinner"], [data-testid="stSkeleton"]'))
    return false;
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (!gd.querySelector('svg.main-svg') || !gd._fullData || !gd.data
        || gd._fullData.length !== gd.data.length) return false;
  }
  if (want.caption) {
    const cap = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
      .find(e => e.innerText.includes('Image:'));
    if (!cap || !cap.innerText.includes(want.caption)) return false;
  }
  if (want.h1) {
    const h = document.querySelector('h1');
    if (!h || !h.innerText.includes(want.h1)) return false;
  }
  const ran = P.runs > mark.runs ? P.runEnd : P.lastMsg;  // the run's end, seen or inferred
  let busy = 0;
  for (const [s, d] of P.long) {
    const a = Math.max(s, start), b = Math.min(s + d, end);
    if (b > a) busy += b - a;
  }
  return {settled_ms: end - start, script_ms: ran - start, busy_ms: busy,
          runs: P.runs - mark.runs, input_seen: P.lastInput > mark.t0,
          send_ms: sent === undefined ? null : sent - start,
          // an unseen change after the last one seen (the time it would have ended)
          unseen_ms: P.lastUnseen > end ? P.lastUnseen - start : null};
}"""
QUIET_MS = 300  # no change for this long: the page has settled (its last change is the end)
# What a page shows, for an error message: title, caption, script state, spinners, figures.
SHOWN_JS = """() => {
  const cap = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .find(e => e.innerText.includes('Image:'));
  const app = document.querySelector('[data-testid="stApp"]');
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const P = window.__ofp;
  return `title ${JSON.stringify(document.querySelector('h1')?.innerText)}, caption `
    + `${JSON.stringify(cap?.innerText.slice(0, 160))}, script `
    + `${app?.getAttribute('data-test-script-state')} (runs ${P ? P.runs : '?'}), `
    + `${document.querySelectorAll('[data-testid="stSpinner"]').length} spinner(s), `
    + `${plots.filter(g => g.querySelector('svg.main-svg')).length}/${plots.length} figures drawn`;
}"""
PLOTS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => {
  let n = 0;
  try { n = JSON.stringify({data: gd.data, layout: gd.layout}).length; } catch (e) {}
  return n;
})"""


class Probe:
    """One page's instrumentation: PROBE_JS in the page and the websocket bytes it receives.
    attach() before the page's first goto. With cdp=True it also reads the websocket frames'
    network timestamps (Chrome DevTools Protocol): from the page's request (its first frame sent
    after the action) to the server's last frame (server_s: the server's run plus loopback
    delivery; the browser's main thread does not delay these stamps)."""

    def __init__(self, page):
        self.page = page
        self.ws_bytes = self.ws_frames = 0
        self.sent: list[float] = []  # CDP timestamps (s) of frames sent, with cdp=True
        self.received: list[float] = []
        page.on("websocket", self._socket)

    def _socket(self, ws) -> None:
        ws.on("framereceived", self._frame)

    def _frame(self, payload) -> None:
        self.ws_bytes += len(payload)
        self.ws_frames += 1

    @classmethod
    async def attach(cls, page, cdp: bool = False) -> "Probe":
        await page.add_init_script(PROBE_JS)
        probe = cls(page)
        if cdp:
            session = await page.context.new_cdp_session(page)
            session.on("Network.webSocketFrameSent",
                       lambda e: probe.sent.append(e["timestamp"]))
            session.on("Network.webSocketFrameReceived",
                       lambda e: probe.received.append(e["timestamp"]))
            await session.send("Network.enable")
        return probe

    async def mark(self) -> dict:
        m = await self.page.evaluate(
            "() => ({t0: performance.now(), runs: window.__ofp ? window.__ofp.runs : 0})")
        m["ws_bytes"], m["ws_frames"] = self.ws_bytes, self.ws_frames
        m["n_sent"], m["n_received"] = len(self.sent), len(self.received)
        return m

    async def settled(self, mark: dict | None = None, caption: str | None = None,
                      h1: str | None = None, timeout_ms: float | None = None) -> dict:
        """Wait for a settled page (see SETTLED_JS); the timings since `mark` (None: since the
        page opened, at least one run ended) and the websocket bytes received meanwhile."""
        m = mark or {"t0": 0, "runs": 0, "ws_bytes": 0, "ws_frames": 0, "n_sent": 0,
                     "n_received": 0}
        kw = {} if timeout_ms is None else {"timeout": timeout_ms}
        h = await self.page.wait_for_function(
            SETTLED_JS, arg=[{"t0": m["t0"], "runs": m["runs"]},
                             {"caption": caption, "h1": h1}, QUIET_MS], polling=50, **kw)
        r = await h.json_value()
        await h.dispose()
        out = {"settled_s": r["settled_ms"] / 1000, "script_s": r["script_ms"] / 1000,
               "browser_busy_s": r["busy_ms"] / 1000, "runs": r["runs"],
               "input_seen": r["input_seen"], "ws_bytes": self.ws_bytes - m["ws_bytes"],
               "ws_frames": self.ws_frames - m["ws_frames"],
               "request_s": None if r["send_ms"] is None else r["send_ms"] / 1000,
               "server_s": None, "after_server_s": None,
               "unseen_s": None if r.get("unseen_ms") is None else r["unseen_ms"] / 1000}
        sent, got = self.sent[m["n_sent"]:], self.received[m["n_received"]:]
        if sent and got and got[-1] > sent[0] and out["request_s"] is not None:
            # request_s (page clock) + server_s (network clock) + after_server_s = settled_s
            out["server_s"] = got[-1] - sent[0]
            out["after_server_s"] = out["settled_s"] - out["request_s"] - out["server_s"]
        return out

    async def timed(self, action, caption: str | None = None, h1: str | None = None,
                    timeout_ms: float | None = None) -> dict:
        """Mark, run `action` (an async callable: the student's click), wait until settled."""
        m = await self.mark()
        await action()
        return await self.settled(m, caption=caption, h1=h1, timeout_ms=timeout_ms)

    async def plot_sizes(self) -> list[int]:
        """JSON size (characters) of each Plotly figure on the page: data and layout."""
        return await self.page.evaluate(PLOTS_JS)


async def settle(page) -> None:
    """Until the page has settled (SETTLED_JS) after any run; pages without the probe: until
    the script run ends (a rerun may start a moment after the last one)."""
    if await page.evaluate("() => !!window.__ofp"):
        h = await page.wait_for_function(
            SETTLED_JS, arg=[{"t0": 0, "runs": 0}, {}, QUIET_MS], polling=50)
        await h.dispose()
        return
    await page.wait_for_selector(IDLE)
    await page.wait_for_timeout(300)
    await page.wait_for_selector(IDLE)


# The Overview's answer, once it belongs to the current run: the caption names the upload and
# the top-5 table's element is there and not stale (Streamlit keeps the old one on screen, marked
# data-stale, until the new run replaces it).
FRESH_JS = """name => {
    const cap = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
        .find(e => e.innerText.includes('Image:'));
    if (!cap || !cap.innerText.includes('Image: upload ' + name)) return false;
    // The top-5 classes' table (columns class, score): the answer's table comes first.
    const t = [...document.querySelectorAll('.ovf-table')].find(e =>
        [...e.querySelectorAll('thead th')].map(h => h.innerText.trim()).filter(x => x)
            .join(',') === 'class,score');
    if (!t) return false;
    const c = t.closest('[data-testid="stElementContainer"]');
    return !!c && c.getAttribute('data-stale') !== 'true';
}"""


async def read_overview(page) -> tuple[list[tuple[str, float]], int | None]:
    # The top-5 classes: the table whose columns are class and score (the answer's table of
    # final boxes comes first on the Overview).
    rows = await page.locator('.ovf-table').evaluate_all(
        """ts => ts.map(t => [[...t.querySelectorAll('thead th')].map(h => h.innerText.trim()),
                              [...t.querySelectorAll('tbody tr')].map(r =>
                                  [...r.querySelectorAll('td')].map(td => td.innerText.trim()))])
               .filter(([h, _]) => h.filter(x => x).join(',') === 'class,score')
               .flatMap(([_, rs]) => rs)""")
    top = [(r[0], float(r[1])) for r in rows if len(r) >= 2]
    text = await page.locator('[data-testid="stCaptionContainer"]',
                              has_text="averaged over").first.inner_text()
    m = re.search(r"averaged over (\d+) views", text)
    return top, int(m.group(1)) if m else None


async def read_merge(page) -> tuple[int, dict, dict]:
    metrics = {}
    for m in await page.locator('[data-testid="stMetric"]').all():
        label = (await m.locator('[data-testid="stMetricLabel"]').inner_text()).strip()
        value = (await m.locator('[data-testid="stMetricValue"]').inner_text()).strip()
        metrics[label] = int(value.replace(",", ""))
    # The final boxes of both merges, from the What to notice box (the pictures are JPEGs):
    # "The corrected merge ends with 12 boxes after 2843 merges; literal ends with 76 after 2."
    # or "...; literal makes none (...)" (then its final boxes are the raw boxes).
    text = " ".join(await page.locator('[data-testid="stAlertContainer"]').all_inner_texts())
    finals = {}
    m = re.search(r"The (literal|corrected) merge ends with ([\d,]+) boxes after [\d,]+ "
                  r"merges; (literal|corrected) (?:ends with ([\d,]+) after|makes none)", text)
    if m:
        finals[m.group(1)] = int(m.group(2).replace(",", ""))
        other = m.group(4)
        raw = metrics.get("raw boxes")
        finals[m.group(3)] = int(other.replace(",", "")) if other else raw
    steps = {k: metrics.get(f"{k}: steps") for k in KINDS}
    return metrics.get("raw boxes"), steps, finals


async def read_all(page, s: Session) -> Results | None:
    """The Merge page's numbers plus the Overview's numbers already read into s.seen."""
    cap = await caption(page)
    if cap is None:
        s.errors.append("the caption (model, image, size) is missing or unreadable")
        return None
    raw, steps, finals = await read_merge(page)
    return Results(model=cap[0], image=cap[1], size=cap[2], top=s.seen.top if s.seen else [],
                   views=s.seen.views if s.seen else 0, raw_boxes=raw, steps=steps,
                   final_boxes=finals)


class Gate:
    """Opens once n sessions have arrived (a failed session arrives too, so none waits on it)."""

    def __init__(self, n: int):
        self.n, self.count, self.open = n, 0, asyncio.Event()

    def arrive(self) -> None:
        self.count += 1
        if self.count >= self.n:
            self.open.set()

    async def wait(self) -> None:
        self.arrive()
        await self.open.wait()


async def step_shown(page, step: int) -> bool:
    """The Merge page's step text says `step` for one of the match scores."""
    return await page.evaluate(r"""n => [...document.querySelectorAll(
        '[data-testid="stMarkdownContainer"]')].some(e => {
        const m = e.innerText.match(/^(\w+): step (\d+) of/);
        return m && Number(m[2]) === n; })""", step)


async def run_session(browser, url: str, s: Session, loaded: Gate, finished: Gate,
                      timeout_ms: float) -> None:
    ctx = await browser.new_context(viewport=VIEWPORT)
    page = await ctx.new_page()
    page.set_default_timeout(min(timeout_ms, STEP_TIMEOUT_S * 1000))
    js_errors: list[str] = []
    page.on("pageerror", lambda e: js_errors.append(str(e)))
    probe = await Probe.attach(page)
    arrived = left = False
    try:
        s.stage = "first page load"
        await page.goto(url)
        await page.locator('[data-testid="stCaptionContainer"]', has_text="Image:").first.wait_for()
        await settle(page)
        # The first page a student sees (a cold server's first runs, all sessions at once).
        s.errors += [f"first page load: {e}" for e in await page_problems(page)]
        arrived = True
        await loaded.wait()  # every session uploads at the same moment

        s.stage = "upload"
        mark = await probe.mark()
        t0 = time.perf_counter()
        await page.locator('[data-testid="stFileUploader"] input[type="file"]').first \
            .set_input_files(s.path)
        await page.wait_for_function(FRESH_JS, arg=s.name, polling=100)
        s.upload_to_results_s = time.perf_counter() - t0
        top, views = await read_overview(page)
        cap = await caption(page)
        t = await probe.settled(mark, caption=f"Image: upload {s.name}")
        s.upload_to_idle_s = time.perf_counter() - t0
        s.upload_settled_s = t["settled_s"]
        s.ws_kb.setdefault("upload", []).append(t["ws_bytes"] / 1024)
        top2, _ = await read_overview(page)
        if top2 != top:
            s.errors.append(f"the Overview's table changed after it was shown: {top} -> {top2}")
        s.seen = Results(model=cap[0] if cap else "?", image=cap[1] if cap else "?",
                         size=cap[2] if cap else (0, 0), top=top, views=views or 0,
                         raw_boxes=0, steps={}, final_boxes={})
        s.errors += await page_problems(page)

        for name in LOAD_PAGES:  # each switch timed to a settled page showing that page
            s.stage = f"page switch to {name}"
            t1 = time.perf_counter()
            t = await probe.timed(
                lambda: page.locator('[data-testid="stSidebarNav"] a', has_text=name).first
                .click(), h1=name)
            s.page_switch_s[name] = t["settled_s"]
            s.ws_kb.setdefault("page_switch", []).append(t["ws_bytes"] / 1024)
            if name == "Merge":
                s.merge_page_s = time.perf_counter() - t1
            if (cap := await caption(page)) is None or cap[1] != f"upload {s.name}":
                s.errors.append(f"page {name} shows image {cap[1] if cap else None!r}")
            s.errors += [f"page {name}: {e}" for e in await page_problems(page)]
        merged = await read_all(page, s)
        if merged is not None:
            s.seen = merged

        nxt = page.locator(".st-key-merge_next button").first  # its name carries the key hint
        for k in range(1, MERGE_STEPS + 1):
            s.stage = f"merge step {k}"
            t = await probe.timed(nxt.click)
            s.merge_step_s.append(t["settled_s"])
            s.ws_kb.setdefault("merge_step", []).append(t["ws_bytes"] / 1024)
            if not await step_shown(page, k):
                s.errors.append(f"merge step {k}: the Merge page does not show step {k}")
        s.errors += [f"merge steps: {e}" for e in await page_problems(page)]

        left = True
        s.stage = "waiting for the other sessions"
        await finished.wait()  # then look again: did another session's upload reach this one?
        s.stage = "re-reading after all sessions"
        await page.wait_for_timeout(500)
        await settle(page)
        s.seen_after = await read_all(page, s)
        s.errors += await page_problems(page)
    except Exception as e:  # a timeout or a missing element: this session failed, others go on
        try:
            shown = await asyncio.wait_for(page.evaluate(SHOWN_JS), 30)
        except Exception:
            shown = "?"
        s.errors.append(f"{s.stage}: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''} (page: {shown})")
    except asyncio.CancelledError:  # the global timeout: say where this session was
        s.errors.append(f"{s.stage}: cancelled by the global timeout")
        raise
    finally:
        # A failed session must not hold the others at a barrier.
        if not arrived:
            loaded.arrive()
        if not left:
            finished.arrive()
        s.errors += [f"JavaScript error: {e}" for e in js_errors]
        try:
            await ctx.close()
        except Exception:
            pass


async def run_browsers(url: str, sessions: list[Session], timeout_s: float) -> None:
    from playwright.async_api import async_playwright

    loaded, finished = Gate(len(sessions)), Gate(len(sessions))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            await asyncio.gather(*(run_session(browser, url, s, loaded, finished,
                                               timeout_s * 1000) for s in sessions))
        finally:
            await browser.close()


# --- the whole run --------------------------------------------------------------------------
def run_load(sessions: int = DEFAULT_SESSIONS, timeout: float = 600.0,
             log_path: str | Path | None = None) -> dict:
    """Run the load test; returns the report (report["ok"]: every check passed)."""
    if not 1 <= sessions <= MAX_SESSIONS:
        raise ValueError(f"sessions must be in 1..{MAX_SESSIONS}, got {sessions}")
    t_start = time.monotonic()
    deadline = t_start + timeout
    failures: list[str] = []
    from overfeat.checkpoint import DEMO_CHECKPOINT
    from overfeat.predict import load_model

    def stamp():
        try:
            return DEMO_CHECKPOINT.stat().st_mtime
        except OSError:
            return None

    stamp0 = stamp()
    tmp = tempfile.TemporaryDirectory(prefix="load_app-")
    log_path = Path(log_path) if log_path else Path(tmp.name) / "streamlit.log"
    log = open(log_path, "w")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(port, log)
    monitor = None
    report: dict = {"sessions": sessions, "url": url, "checkpoint": str(DEMO_CHECKPOINT)
                    if stamp0 is not None else None}
    try:
        # While the server starts: the images and the package's answers for them.
        t = time.monotonic()
        model, desc = load_model()
        ss = []
        for i in range(sessions):
            name, data = session_image(i)
            path = Path(tmp.name) / name
            path.write_bytes(data)
            ss.append(Session(index=i, name=name, path=str(path),
                              expected=expected_results(model, desc, name, data)))
        report["expected_s"] = round(time.monotonic() - t, 2)
        fps = [fingerprint(s.expected) for s in ss]
        report["expected_distinct"] = len(set(fps)) == len(fps)
        if len(set(fps)) != len(fps):
            failures.append("two sessions' images have the same expected numbers: the test "
                            "could not tell their results apart")

        why = wait_healthy(proc, url, min(deadline, time.monotonic() + 180))
        if why:
            failures.append(why)
            return report
        report["server_ready_s"] = round(time.monotonic() - t_start, 2)
        monitor = Monitor(url, proc.pid)
        monitor.start()

        t = time.monotonic()
        left = deadline - time.monotonic()
        try:
            asyncio.run(asyncio.wait_for(run_browsers(url, ss, left), left))
        except (asyncio.TimeoutError, TimeoutError):
            failures.append(f"the global timeout ({timeout:g} s) ran out")
        report["browsers_s"] = round(time.monotonic() - t, 2)

        ok, dt, body = health(url)
        report["health_after"] = body
        if not ok:
            failures.append(f"/_stcore/health after the run answered {body!r}")
        if proc.poll() is not None:
            failures.append(f"the server exited with status {proc.returncode}")
        monitor.stop.set()
        monitor.join()
        monitor.sample_memory()  # once more, after the last page was served

        if stamp() != stamp0:
            failures.append("assets/demo.pt changed during the run: the app and this script "
                            "may have used different models (run again)")
        seen = []
        for s in ss:
            for e in s.errors:
                failures.append(f"session {s.index} ({s.name}): {e}")
            for d in compare(s.seen, s.expected):
                failures.append(f"session {s.index} ({s.name}): {d}")
            for d in compare(s.seen_after, s.expected):
                failures.append(f"session {s.index} ({s.name}), after all sessions: {d}")
            if s.seen is not None:
                seen.append(fingerprint(s.seen))
        report["seen_distinct"] = len(seen) == len(ss) and len(set(seen)) == len(seen)
        if len(set(seen)) != len(seen):
            failures.append("two sessions showed the same numbers")
        report["sessions_detail"] = [
            {"index": s.index, "image": s.name, "size": list(s.expected.size),
             "upload_to_results_s": _r(s.upload_to_results_s),
             "upload_to_idle_s": _r(s.upload_to_idle_s), "merge_page_s": _r(s.merge_page_s),
             "upload_settled_s": _r(s.upload_settled_s),
             "page_switch_s": {k: _r(v) for k, v in s.page_switch_s.items()},
             "merge_step_s": [_r(v) for v in s.merge_step_s], "errors": s.errors,
             "expected": _results_dict(s.expected), "seen": _results_dict(s.seen),
             "seen_after_all": _results_dict(s.seen_after),
             "ok": not s.errors and not compare(s.seen, s.expected)
             and not compare(s.seen_after, s.expected)}
            for s in ss]
        lat = [s.upload_to_results_s for s in ss if s.upload_to_results_s is not None]
        idle = [s.upload_to_idle_s for s in ss if s.upload_to_idle_s is not None]
        mp = [s.merge_page_s for s in ss if s.merge_page_s is not None]
        settled = [s.upload_settled_s for s in ss if s.upload_settled_s is not None]
        switches = [v for s in ss for v in s.page_switch_s.values()]
        steps = [v for s in ss for v in s.merge_step_s]
        # upload_settled, page_switch, merge_step: the page's own clock, from the input event
        # to a settled page (SETTLED_JS: script done, figures drawn, no change for 0.3 s).
        report["latency_s"] = {
            "upload_to_results": _stats(lat), "upload_settled": _stats(settled),
            "upload_to_idle": _stats(idle), "page_switch": _stats(switches),
            "merge_step": _stats(steps), "merge_page": _stats(mp)}
        report["page_switch_by_page_s"] = {
            name: _stats([s.page_switch_s[name] for s in ss if name in s.page_switch_s])
            for name in LOAD_PAGES}
        report["ws_kb"] = {k: _stats([v for s in ss for v in s.ws_kb.get(k, [])])
                           for k in ("upload", "page_switch", "merge_step")}
        report["timed"] = {"page_switch": len(switches), "merge_step": len(steps),
                           "upload": len(settled), "pages": list(LOAD_PAGES),
                           "merge_steps_per_session": MERGE_STEPS}
        if len(switches) != sessions * len(LOAD_PAGES) or len(steps) != sessions * MERGE_STEPS:
            failures.append(f"timed {len(switches)} page switches and {len(steps)} merge steps "
                            f"of {sessions * len(LOAD_PAGES)} and {sessions * MERGE_STEPS}")
        bad = [s.index for s in ss if compare(s.seen, s.expected)
               or compare(s.seen_after, s.expected)]
        report["cross_talk"] = {
            "sessions_checked": len(ss), "sessions_mismatched": bad,
            "expected_distinct": report["expected_distinct"],
            "seen_distinct": report["seen_distinct"],
            "ok": not bad and report["expected_distinct"] and report["seen_distinct"]}
        report["errors"] = sum(len(s.errors) for s in ss)
        report["health"] = {"polls": monitor.polls, "failures": monitor.failures,
                            "max_response_s": round(monitor.max_health_s, 3),
                            "examples": monitor.fail_examples}
        if monitor.failures:
            failures.append(f"/_stcore/health failed {monitor.failures} of {monitor.polls} "
                            f"polls during the run: {monitor.fail_examples}")
        if monitor.polls == 0:
            failures.append("the health poller never ran")
        report["memory_mb"] = {
            "server_vmhwm": round(monitor.hwm_kb.get(proc.pid, 0) / 1024, 1),
            "tree_vmhwm_sum": round(sum(monitor.hwm_kb.values()) / 1024, 1),
            "tree_peak_rss_sampled": round(monitor.peak_rss_kb / 1024, 1),
            "processes": len(monitor.hwm_kb)}
        return report
    except Exception as e:
        failures.append(f"{type(e).__name__}: {e}")
        return report
    finally:
        if monitor is not None:
            monitor.stop.set()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        # An exception the page no longer shows (a later run replaced it) is still in the log.
        text = Path(log_path).read_text(errors="replace")
        report["server_exceptions"] = text.count("Uncaught app execution")
        if report["server_exceptions"]:
            last = [x for x in text.splitlines() if re.match(r"^\w*(Error|Exception)\b", x)]
            failures.append(f"the server log holds {report['server_exceptions']} uncaught app "
                            f"exception(s); the last: {last[-1] if last else '?'}")
        report["failures"] = failures
        report["ok"] = not failures
        report["total_s"] = round(time.monotonic() - t_start, 2)
        if failures:
            report["server_log_tail"] = Path(log_path).read_text(errors="replace")[-3000:]
        tmp.cleanup()


def _r(x):
    return None if x is None else round(x, 2)


def percentile(v: list[float], q: float) -> float:
    """The q-th percentile (0..100) of v, linear between the sorted values (as numpy's
    default): p50 is the median, p100 the maximum."""
    x = sorted(v)
    pos = (len(x) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(x) - 1)
    return x[lo] + (x[hi] - x[lo]) * (pos - lo)


def _stats(v: list[float]) -> dict:
    if not v:
        return {"n": 0}
    return {"n": len(v), "min": _r(min(v)), "median": _r(statistics.median(v)),
            "p50": _r(percentile(v, 50)), "p95": _r(percentile(v, 95)), "max": _r(max(v))}


def _results_dict(r: Results | None) -> dict | None:
    if r is None:
        return None
    d = asdict(r)
    d["size"] = list(r.size)
    d["top"] = [[n, round(s, 6)] for n, s in r.top]
    return d


def summary(report: dict) -> str:
    lines = [f"{report['sessions']} sessions against {report.get('url')}: "
             f"{'ALL CHECKS PASSED' if report['ok'] else 'FAILED'} "
             f"(total {report.get('total_s')} s, browsers {report.get('browsers_s')} s)"]
    mem = report.get("memory_mb")
    if mem:
        lines.append(f"server peak memory: VmHWM {mem['server_vmhwm']} MB "
                     f"({mem['processes']} process(es), summed VmHWM {mem['tree_vmhwm_sum']} MB,"
                     f" sampled peak RSS {mem['tree_peak_rss_sampled']} MB)")
    for k, v in (report.get("latency_s") or {}).items():
        if v.get("n"):
            kb = (report.get("ws_kb") or {}).get(k.replace("upload_settled", "upload"), {})
            lines.append(f"latency {k}: p50 {v['p50']} s, p95 {v['p95']} s, max {v['max']} s, "
                         f"min {v['min']} s (n={v['n']})"
                         + (f"; websocket p50 {kb['p50']} kB" if kb.get("n") else ""))
    for k, v in (report.get("page_switch_by_page_s") or {}).items():
        if v.get("n"):
            lines.append(f"  page switch to {k}: p50 {v['p50']} s, p95 {v['p95']} s, "
                         f"max {v['max']} s")
    if report.get("server_exceptions") is not None:
        lines.append(f"uncaught app exceptions in the server log: {report['server_exceptions']}")
    ct = report.get("cross_talk")
    if ct:
        lines.append(f"cross-talk: {ct['sessions_checked']} sessions checked, mismatched "
                     f"{ct['sessions_mismatched'] or 'none'}, expected distinct "
                     f"{ct['expected_distinct']}, seen distinct {ct['seen_distinct']}; "
                     f"errors: {report.get('errors')}")
    h = report.get("health")
    if h:
        lines.append(f"health: {h['polls'] - h['failures']}/{h['polls']} polls ok, slowest "
                     f"{h['max_response_s']} s; after the run: {report.get('health_after')!r}")
    for s in report.get("sessions_detail", []):
        seen = s["seen"] or {}
        top = (seen.get("top") or [["?", 0]])[0]
        lines.append(f"  session {s['index']:2d} {s['image']:22s} {'ok ' if s['ok'] else 'BAD'} "
                     f"results {s['upload_to_results_s']} s, settled {s['upload_settled_s']} s,"
                     f" merge page {s['merge_page_s']} s;"
                     f" top {top[0]} {top[1]:.4f}, raw {seen.get('raw_boxes')}, final "
                     f"{seen.get('final_boxes')}")
    for f in report["failures"]:
        lines.append(f"FAIL: {f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS,
                   help=f"simultaneous browser sessions, 1..{MAX_SESSIONS} (default "
                        f"{DEFAULT_SESSIONS})")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="global time limit in seconds, server start included (default 600)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--log", help="keep the server's output in this file")
    args = p.parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS:
        p.error(f"--sessions must be in 1..{MAX_SESSIONS}")
    if args.timeout <= 0:
        p.error("--timeout must be positive")
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 1
    report = run_load(args.sessions, args.timeout, args.log)
    print(json.dumps(report, indent=1) if args.json else summary(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
