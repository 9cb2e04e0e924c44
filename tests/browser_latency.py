"""What a student waits for, in a real browser (issue 16): part 6 of `python -m overfeat bench`,
which runs this script in a subprocess (the overfeat package never imports Streamlit or
Playwright) and reads the JSON it prints.

    .venv/bin/python tests/browser_latency.py [--rounds 3] [--size 500] [--json]

One app server (`streamlit run app.py`, headless, loopback, file watcher off: tests/load_app.py's
start_server) and one Chromium page at 1400x1000. Every round uploads a NEW size x size PNG (a
generated scene, so it is analysed from scratch), then visits every page of the sidebar's
navigation in order, changes the class and toggles a scale on Scales, steps the merge twice on
Merge, and on the Overview goes back to the sample scenes and picks one not shown before, then
makes a new scene from a seed not used before. The app analyses the other sample scenes in the
background while a sample is shown and the server is idle (app_pages/common.py,
prefetch_gallery), so a sample switch is usually a cache hit; a new scene from a seed is never
prefetched, so its row is the cold path (the network at twelve views and both merges).

Each interaction is timed from the student's action (the first input event the page sees) to a
SETTLED page (load_app.SETTLED_JS, one function for all): the script is not running, a run has
ended since the action, no spinner, every .js-plotly-plot has drawn its svg with all its traces,
and nothing on the page changed for 0.3 s; the time is that of the page's last change (a
change only a screen reader gets, inside React Aria's live announcer, is not one: it is reported
apart as unseen_after_rounds_s). It is
split in three: request_s (the input event to the page's rerun request on the websocket, an
upload's HTTP transfer included), server_s (that request to the server's last websocket frame,
in the network stack's clock, read over the DevTools protocol: the server's run and loopback
delivery; the merge prefetch after the page runs in a background worker) and after_server_s (the rest: the page decoding,
rendering and drawing what came). Beside it: when the run's end showed on the page (script_s),
the main thread's long tasks (browser_busy_s: decoding, React, Plotly drawing), the bytes the
websocket brought (ws_kb), the JSON size of the page's Plotly figures (plot_kb), and the CPU
seconds the server's processes and Chromium's used meanwhile (server_cpu_s, browser_cpu_s: on a
2-core machine the two compete, and headless Chromium without a GPU rasterises in software).

Targets (issue 16): the first results of a 500x500 upload <= 1.5 s, a switch to a new sample
scene <= 1.5 s, every other interaction <= 0.5 s (max over the rounds). Exit status 0 when
every interaction ran without an error (a missed target is reported, not an error), 1 otherwise.
--json prints one JSON object.

--training on: before the rounds, a second browser (its own context: another student, or the
teacher) opens the Training page on the same server and starts the largest run a browser may
start (overfeat.app.jobs.CAP: all three stages, the cap's epochs, scenes and width); whenever
that run ends it starts the next, so a run is in progress through all the rounds. Between its
clicks that tab waits on the Architecture page, so that the rounds measure the run and not a
tab polling the Training page's live chart every second; --watch-training keeps it on the
Training page, as a teacher watching (TrainingTab). The runs' folder is a temporary one
(OVERFEAT_APP_TRAIN_DIR). --training alternate, the comparison to trust on a shared machine:
one server, the rounds alternately without and with a run (off, on, on, off, ...; the run is
stopped with its Stop button before a round without), so that load that comes and goes on the
machine weighs on both; printed side by side (median and max per interaction) with the runs'
durations. --training both: all rounds without, then all with, each on a fresh server.
Training's CPU counts in the server's CPU column (its process tree).

--timeline S: for each interaction slower than S seconds, tests/page_timeline.py's timeline
(requests, messages, long tasks, every batch of DOM changes and where) on stderr, with the CPU
the server, Chromium and the rest of the machine used meanwhile: what came late in a slow round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from load_app import (CHROMIUM, LAUNCH_ARGS, SHOWN_JS, Probe, free_port,  # noqa: E402
                      page_problems, process_tree, start_server, wait_healthy)
from page_timeline import TIMELINE_JS, format_events  # noqa: E402

VIEWPORT = {"width": 1400, "height": 1000}
FIRST_TARGET_S, SAMPLE_TARGET_S, LATER_TARGET_S = 1.5, 1.5, 0.5
H1 = {"Overview": "OverFeat, step by step"}  # a page's title where it is not its nav label
UPLOAD = "first results of a new {size}x{size} upload (Overview)"
SAMPLE = "sample switch: a new sample scene (Overview)"
SEEDED = "new scene from a seed (Overview; cold: never prefetched)"


# --model / --photo: the app opened on another model (a link's model=...), and each round's
# upload a real photo made new by one changed pixel (so it is analysed afresh).
MODEL: str | None = None
PHOTO: Path | None = None
# --pages: only these pages of the navigation are visited in a round (the Overview always);
# --no-keyboard: no Right-arrow merge step (an app from before the Merge page's keys).
PAGES: list[str] | None = None
KEYBOARD_STEP = True
TIMELINE_OVER_S: float | None = None  # --timeline
# Hook for more timed rows on a page (the lead's presenter-mode page switch): async functions
# (page, rec, name) called after the page `name` was switched to and its own rows timed.
EXTRA_ROWS: list = []
PRESENTER_SWITCH = True  # the presenter-mode rows after the Merge page (issue 27)


async def presenter_rows(page, rec, sb) -> None:
    """Presenter mode on (from the Merge page), a page switch by the foot's Next link (the
    sidebar is collapsed in presenter mode: a presenter follows the lesson's path), then the
    sidebar opened again and presenter mode off, so the round goes on as before."""
    toggle = sb.get_by_text("Presenter mode", exact=True)
    await rec.time("presenter mode on (Merge)", LATER_TARGET_S, toggle.click)
    await rec.time("page switch in presenter mode: Next -> Detection", LATER_TARGET_S,
                   page.get_by_text("Next: Detection", exact=True).click, h1="Detection")
    try:
        # Open the sidebar if presenter mode collapsed it. A second time in a session it does
        # not: Streamlit keeps the sidebar as the user last left it by hand (a persisted
        # preference ranks above set_page_config's initial_sidebar_state), and waiting for the
        # expand button there hung the round (seen in round 2).
        if await sb.get_attribute("data-collapsed") == "true":
            await page.locator('[data-testid="stExpandSidebarButton"]').click()
        await rec.time("presenter mode off (Detection)", LATER_TARGET_S, toggle.click)
        # Back where the round was (untimed in spirit: its own row, not a page switch's).
        await rec.time("back to Merge after presenter mode", LATER_TARGET_S,
                       page.locator('[data-testid="stSidebarNav"] a', has_text="Merge")
                       .first.click, h1="Merge")
    except Exception as e:
        rec.errors.append(f"presenter mode: cannot leave it: {e}")


def upload_png(seed: int, size: int) -> bytes:
    """A generated detection scene resized to size x size (as tests/app_latency.py uploads),
    or with --photo that photo with pixel (0, 0) set from the seed."""
    if PHOTO is not None:
        import io

        from PIL import Image

        im = Image.open(PHOTO).convert("RGB")
        im.putpixel((0, 0), (seed % 256, (seed // 256) % 256, 7))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return buf.getvalue()
    from app_latency import upload_png as png

    return png(seed, size)


def cpu_seconds(pids) -> float:
    """CPU time (user + system) the processes have used so far, from /proc."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def _cpu_ticks() -> list[int]:
    """/proc/stat's first line, all cores: user nice system idle iowait irq softirq steal ..."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat; not idle or iowait,
    nor the hypervisor's steal: that is steal_s)."""
    v = _cpu_ticks()
    return (sum(v[:7]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def steal_s() -> float:
    """CPU seconds the hypervisor gave this machine's cores to other guests while they had work
    (/proc/stat's steal column): time a shared virtual machine lost, whatever ran on it."""
    return _cpu_ticks()[7] / os.sysconf("SC_CLK_TCK")


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def chromium_pids() -> list[int]:
    """Chromium's processes (browser, renderers, GPU/raster, utility) under this process."""
    out = []
    for p in process_tree(os.getpid()):
        try:
            with open(f"/proc/{p}/comm") as f:
                name = f.read()
        except OSError:
            continue
        if "chrom" in name or "headless" in name:
            out.append(p)
    return out


# Every picture in the page decoded; the bytes and the arrival (s after the action) of the
# pictures fetched since the action, from the Resource Timing entries (page clock). The action's
# time is the page's last input, as SETTLED_JS takes it.
IMAGES_JS = """async (settled) => {
  const imgs = [...document.querySelectorAll('[data-testid="stMain"] img')];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  const P = window.__ofp;
  const start = P ? P.lastInput : 0;
  let bytes = 0, end = null;
  for (const e of performance.getEntriesByType('resource')) {
    if (e.initiatorType !== 'img' || e.startTime < start) continue;
    bytes += e.transferSize || e.encodedBodySize || 0;
    end = Math.max(end ?? 0, (e.responseEnd - start) / 1000);
  }
  return {bytes, end_s: end};
}"""


class Recorder:
    """The timings of one run, per interaction, in the order first seen."""

    def __init__(self, probe: Probe, timeout_ms: float, verbose: bool = False,
                 server_pid: int | None = None):
        self.probe, self.timeout_ms, self.verbose = probe, timeout_ms, verbose
        self.server_pid = server_pid
        self.samples: dict[str, list[dict]] = {}
        self.targets: dict[str, float] = {}
        self.pages: dict[str, list[int]] = {}  # page -> JSON sizes of its figures, last visit
        self.errors: list[str] = []

    async def time(self, name: str, target: float, action, caption=None, h1=None,
                   page_name: str | None = None) -> bool:
        self.targets.setdefault(name, target)
        try:
            server = process_tree(self.server_pid) if self.server_pid else []
            browser = chromium_pids()
            if TIMELINE_OVER_S is not None:
                await self.probe.page.evaluate("() => { if (window.__tl) window.__tl.ev = []; }")
            c0 = cpu_seconds(server), cpu_seconds(browser), machine_busy_s()
            t = await self.probe.timed(action, caption=caption, h1=h1, timeout_ms=self.timeout_ms)
            # The Merge and Offsets pages draw pictures (issue 27): an <img> loads after the
            # DOM settled. Wait for every picture on the page to be decoded before the CPU is
            # read, count the bytes of those fetched since the action (HTTP, not the
            # websocket) and end the time at the last one's arrival if that came after the
            # page's last change. (On every page: a page without a new picture fetches none.)
            img = await self.probe.page.evaluate(IMAGES_JS, t["settled_s"])
            t["img_bytes"] = img["bytes"]
            if img["end_s"] is not None and img["end_s"] > t["settled_s"]:
                t["settled_s"] = img["end_s"]
            # The CPU both sides spent (the quiet 0.3 s after the page settled included: idle).
            t["server_cpu_s"] = cpu_seconds(server) - c0[0]
            t["browser_cpu_s"] = cpu_seconds(browser) - c0[1]
            # Whatever else the machine ran meanwhile (this script, Playwright's driver, the
            # system): the CPU the two sides above may have waited for on 2 cores.
            t["other_cpu_s"] = max(machine_busy_s() - c0[2] - t["server_cpu_s"]
                                   - t["browser_cpu_s"], 0.0)
            if TIMELINE_OVER_S is not None and t["settled_s"] > TIMELINE_OVER_S:
                ev = await self.probe.page.evaluate("() => window.__tl ? window.__tl.ev : []")
                print(f"--- timeline: {name}: settled {t['settled_s']:.3f} s, server "
                      f"{_f(t['server_s'])}, CPU server {t['server_cpu_s']:.2f} s, Chromium "
                      f"{t['browser_cpu_s']:.2f} s, other {t['other_cpu_s']:.2f} s",
                      file=sys.stderr, flush=True)
                for line in format_events(ev):
                    print(line, file=sys.stderr, flush=True)
            sizes = await self.probe.plot_sizes()
            t["plot_bytes"], t["plots"] = sum(sizes), len(sizes)
            if page_name:
                self.pages[page_name] = sizes
            self.samples.setdefault(name, []).append(t)
            if self.verbose:
                print(f"{name}: {t['settled_s']:.2f} s (request {_f(t['request_s'])}, server "
                      f"{_f(t['server_s'])}, after {_f(t['after_server_s'])}, run done "
                      f"{t['script_s']:.2f} s, busy {t['browser_busy_s']:.2f} s, CPU server "
                      f"{t['server_cpu_s']:.2f} s, Chromium {t['browser_cpu_s']:.2f} s, "
                      f"{t['ws_bytes'] / 1024:.0f} kB)", file=sys.stderr, flush=True)
            for e in await page_problems(self.probe.page):
                self.errors.append(f"{name}: {e}")
            return True
        except Exception as e:  # a timeout or a missing element: note it, go on
            try:  # what the page showed instead
                shown = await self.probe.page.evaluate(SHOWN_JS)
            except Exception:
                shown = "?"
            self.errors.append(f"{name}: {type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''} (page: {shown})")
            if self.verbose:
                print(f"{name}: ERROR {self.errors[-1]}", file=sys.stderr, flush=True)
            return False

    def rows(self) -> list[dict]:
        out = []
        for name, ts in self.samples.items():
            s = [t["settled_s"] for t in ts]
            def med(k):
                v = [t[k] for t in ts if t.get(k) is not None]
                return statistics.median(v) if v else None

            target = self.targets[name]
            out.append({"interaction": name, "n": len(ts), "median_s": statistics.median(s),
                        "max_s": max(s), "target_s": target, "met": max(s) <= target,
                        "script_median_s": med("script_s"),
                        "request_median_s": med("request_s"),
                        "server_median_s": med("server_s"),
                        "after_server_median_s": med("after_server_s"),
                        "server_cpu_median_s": med("server_cpu_s"),
                        "browser_cpu_median_s": med("browser_cpu_s"),
                        "browser_busy_median_s": med("browser_busy_s"),
                        "ws_kb_median": med("ws_bytes") / 1024,
                        "img_kb_median": (med("img_bytes") or 0) / 1024,
                        "plot_kb_median": med("plot_bytes") / 1024,
                        "plots": ts[-1]["plots"],
                        # each round's figures, in order: which round a max came from
                        "rounds_s": [round(x, 3) for x in s],
                        "server_rounds_s": [None if t.get("server_s") is None
                                            else round(t["server_s"], 3) for t in ts],
                        "browser_cpu_rounds_s": [round(t["browser_cpu_s"], 3) for t in ts],
                        "server_cpu_rounds_s": [round(t["server_cpu_s"], 3) for t in ts],
                        "other_cpu_rounds_s": [round(t["other_cpu_s"], 3) for t in ts],
                        # a change only a screen reader gets (load_app.PROBE_JS) after the
                        # page's last change, within its quiet time: not counted in the time
                        "unseen_after_rounds_s": [None if t.get("unseen_s") is None
                                                  else round(t["unseen_s"], 3) for t in ts]})
        return out


async def open_selectbox(box) -> None:
    """Open a Streamlit selectbox's list (a click on its input; the list's options then have
    role "option")."""
    inp = box.first.locator("input").first
    await inp.scroll_into_view_if_needed()
    await inp.click()


async def one_round(page, rec: Recorder, r: int, size: int, tmp: Path, nav: list[str]) -> None:
    from overfeat.app import state as appstate

    sb = page.locator('[data-testid="stSidebar"]')

    async def go(name: str) -> None:
        await rec.time(f"page switch: {name}", LATER_TARGET_S,
                       lambda: page.locator('[data-testid="stSidebarNav"] a', has_text=name)
                       .first.click(), h1=H1.get(name, name), page_name=name)

    if H1["Overview"] not in await page.locator("h1").first.inner_text():
        await go("Overview")
    seed = 2000 + r
    name = f"round{r}-scene{seed}.png"
    path = tmp / name
    path.write_bytes(upload_png(seed, size))
    label = (UPLOAD.format(size=size) if PHOTO is None
             else f"first results of a new upload of {PHOTO.name} (Overview)")
    await rec.time(label, FIRST_TARGET_S,
                   lambda: page.locator('[data-testid="stFileUploader"] input[type="file"]')
                   .first.set_input_files(str(path)), caption=f"Image: upload {name}",
                   page_name="Overview")

    visit = [n for n in nav if n != "Overview" and (PAGES is None or n in PAGES)]
    for p in visit + ["Overview"]:
        await go(p)
        if p == "Scales":
            box = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').first
            try:
                await open_selectbox(box)
                option = page.get_by_role("option").nth(1)
                await option.wait_for()
            except Exception as e:
                rec.errors.append(f"class change: cannot open the class list: {e}")
            else:
                await rec.time("class change (Scales)", LATER_TARGET_S, option.click)
            pill = sb.locator('[data-testid="stButtonGroup"]').first.locator("button").nth(1)
            await rec.time("scale toggle: scale 2 off (sidebar, on Scales)", LATER_TARGET_S,
                           pill.click)
            await rec.time("scale toggle: scale 2 on again (sidebar, on Scales)",
                           LATER_TARGET_S, pill.click)
        if p == "Merge":
            # By its key (its name carries the keyboard hint now); an older app: by its name.
            nxt = page.locator(".st-key-merge_next button").first
            if not await nxt.count():
                nxt = page.get_by_role("button", name="Next", exact=True)
            for _ in range(2):
                await rec.time("merge step: Next (Merge)", LATER_TARGET_S, nxt.click)
            if KEYBOARD_STEP:
                # The presenter's Right arrow (st.button shortcut): focus off any widget first.
                await page.locator("h1").first.click()
                await rec.time("merge step: Right arrow key (Merge)", LATER_TARGET_S,
                               lambda: page.keyboard.press("ArrowRight"))
            if PRESENTER_SWITCH:
                await presenter_rows(page, rec, sb)
        for extra in EXTRA_ROWS:
            await extra(page, rec, p)

    # Back to the sample scenes (the app shows gallery scene 1 again: it does not keep the
    # scene chosen before the upload), then one not analysed yet: scenes 2..6 in turn (after 5
    # rounds they have been analysed already).
    source = sb.get_by_role("radiogroup", name="Image to analyse")
    if await rec.time("image source: back to the sample scene (Overview)", LATER_TARGET_S,
                      lambda: source.get_by_text("Sample scene", exact=True).click()):
        shown = await page.evaluate(SHOWN_JS)
        if "Image: upload" in shown or "scene" not in shown:
            rec.errors.append(f"image source: the page still shows {shown}")
    else:
        shown = ""
    new = 1 + r % (len(appstate.GALLERY) - 1)
    if appstate.gallery_label(*appstate.GALLERY[new]) in shown:
        new = 1 + (new % (len(appstate.GALLERY) - 1))
    label = appstate.gallery_label(*appstate.GALLERY[new])
    try:
        await open_selectbox(sb.locator('[data-testid="stSelectbox"]', has_text="Sample scene"))
        option = page.get_by_role("option", name=label, exact=True)
        await option.wait_for()
    except Exception as e:
        rec.errors.append(f"sample switch: cannot open the list of sample scenes: {e}")
        return
    await rec.time(SAMPLE, SAMPLE_TARGET_S, option.click, caption=f"Image: {label}")

    # The cold path: a scene from a seed no round used (the source switch itself shows seed
    # 0's scene first: timed as its own row; the app analyses that scene in the background
    # after the sample scenes, so it is cold in the first round only, unless the background
    # got that far).
    if await rec.time("image source: new scene from a seed (Overview; seed 0)",
                      SAMPLE_TARGET_S,
                      lambda: source.get_by_text("New scene from a seed", exact=True).click(),
                      # seed 0 in the first round; later rounds come back to the seed the
                      # session typed last (the app keeps it, as a link does)
                      caption="Image: new det scene, seed "):
        seed = 3000 + r
        box = sb.get_by_label("Seed", exact=True)

        async def enter_seed():
            await box.fill(str(seed))
            await box.press("Enter")

        await rec.time(SEEDED, SAMPLE_TARGET_S, enter_seed,
                       caption=f"Image: new det scene, seed {seed}")


# --- a training run on the same server (--training) -------------------------------------------
def train_choice() -> tuple[int, int, float]:
    """(scenes, epochs per stage, width) of the run --training starts: the browser cap's
    largest (overfeat.app.jobs.CAP), or on a tree from before the cap the same numbers (so a
    before/after comparison trains the same run)."""
    try:
        from overfeat.app.jobs import CAP
    except ImportError:
        return 120, 5, 0.125
    return CAP.n_scenes, CAP.epochs, CAP.width


PROGRESS_RE = re.compile(r"(run-[\w-]+): (\w+) - (.*) \((\d+) s\)")


class TrainingTab:
    """The second browser of --training: one session on the Training page that starts the
    browser cap's largest run, restarts it whenever it ends while training is wanted, and stops
    it (its Stop button: this session started it) for the rounds without training.

    watch=False (the default): between those clicks the tab waits on the Architecture page
    (cached, no polling), so what the rounds measure is the run, not a tab polling the Training
    page's live chart every second; a run's end is seen in its folder (its final checkpoint,
    complete in its meta) and its time is its start to that checkpoint. watch=True: the tab
    stays on the Training page as a teacher's would (the chart redrawn every second on the
    server and in Chromium) and reads the page's progress bar."""

    def __init__(self, browser, url: str, runs_dir: Path, timeout_s: float, watch: bool = False):
        self.browser, self.url, self.runs_dir, self.watch = browser, url, runs_dir, watch
        self.timeout_ms = timeout_s * 1000
        self.page = None
        self.lock = asyncio.Lock()  # one action on the tab's page at a time
        self.runs: list[dict] = []  # finished runs, in order
        self.started = self.stopped = 0  # runs started / stopped from this tab
        self.errors: list[str] = []
        self.wanted = False  # a run should be in progress (restarted when it ends)
        self.closing = False
        self.alive = False
        self.run_id: str | None = None  # the run in progress (or the last one)
        self.on_training = False  # the tab shows the Training page
        self.t_start = 0.0  # its start (time.time(), to compare with file times)

    async def go(self, name: str) -> None:
        """To a page of the app through the sidebar's navigation (the same session)."""
        await self.page.locator('[data-testid="stSidebarNav"] a', has_text=name).first.click()
        await self.page.locator("h1", has_text=name).first.wait_for()

    async def open(self) -> None:
        """The session, on the Training page."""
        ctx = await self.browser.new_context(viewport=VIEWPORT)
        self.page = page = await ctx.new_page()
        page.set_default_timeout(self.timeout_ms)
        await page.goto(f"{self.url}/training")
        await page.locator("h1", has_text="Training").first.wait_for()
        self.on_training = True

    async def choose(self) -> None:
        """The cap's largest run in the form, whatever it shows (every step idempotent: the
        form's values may come back as the defaults after the page was left)."""
        page = self.page
        scenes, epochs, width = train_choice()
        main = page.locator('[data-testid="stMain"]')
        for name in ("1 classifier", "2 regressor", "3 detection"):
            pill = main.locator('[data-testid="stButtonGroup"] button', has_text=name).first
            if await pill.get_attribute("aria-pressed") != "true":
                await pill.click()
        await page.get_by_label("Epochs per stage").fill(str(epochs))
        await page.get_by_label("Generated scenes").fill(str(scenes))
        thumb = main.locator('input[type="range"]').first  # the select_slider (react-aria)
        await thumb.focus()
        await thumb.press("End")  # the widest width the page offers (the cap's)
        shown = await thumb.get_attribute("aria-valuetext")
        if shown is None or float(shown) != width:
            self.errors.append(f"training: the width slider shows {shown}, not {width}")

    async def _start(self) -> None:
        page = self.page
        if not self.on_training:
            await self.go("Training")
            self.on_training = True
        await self.choose()
        self.t_start = time.time()
        await page.get_by_role("button", name="Start training").click()
        self.started += 1
        # Started when the progress bar names a run in progress other than the last one.
        await page.wait_for_function(
            """(last) => {
                 const m = /(run-[\\w-]+): (preparing|running) - /.exec(
                   document.querySelector('[data-testid="stProgress"]')?.innerText || '');
                 return m !== null && m[1] !== last;
               }""", arg=self.run_id or "", timeout=self.timeout_ms)
        p = await self.progress()
        self.run_id = p[0] if p else None
        self.alive = True
        await self.leave()

    async def leave(self) -> None:
        """Off the Training page (unless watching): to the Architecture page."""
        if not self.watch and self.on_training:
            await self.go("Architecture")
            self.on_training = False

    async def resume(self) -> None:
        """A run in progress from now on (started now unless one is)."""
        async with self.lock:
            self.wanted = True
            if not self.alive:
                await self._start()

    async def pause(self) -> None:
        """No run from now on: the one in progress stopped with its Stop button (its step
        finishes first), and waited for."""
        async with self.lock:
            self.wanted = False
            if not self.alive:
                return
            if not self.on_training:
                await self.go("Training")
                self.on_training = True
            stop = self.page.get_by_role("button", name="Stop", exact=True)
            if await stop.count():
                await stop.click()
                self.stopped += 1
            await self.page.wait_for_function(
                """() => /: (done|stopped|failed) - /.test(
                     document.querySelector('[data-testid="stProgress"]')?.innerText || '')""",
                timeout=self.timeout_ms)
            self.alive = False
            await self.leave()

    async def progress(self) -> tuple | None:
        """(run, status, message, seconds) from the page's progress bar, or None."""
        try:
            text = await self.page.locator('[data-testid="stProgress"]').first.inner_text(
                timeout=2000)
        except Exception:
            return None
        m = PROGRESS_RE.search(text)
        return m.groups() if m else None

    def saved(self) -> dict | None:
        """The run in progress's last checkpoint: stage, epoch, complete, its file time."""
        from overfeat.checkpoint import CheckpointError, read_checkpoint

        path = self.runs_dir / (self.run_id or "?") / "model.pt"
        try:
            mtime = path.stat().st_mtime
            meta = read_checkpoint(path).get("meta") or {}
        except (OSError, CheckpointError):
            return None
        return {"stage": meta.get("stage"), "epoch": meta.get("epoch"),
                "complete": bool(meta.get("complete")), "mtime": mtime}

    async def ended(self) -> dict | None:
        """The run in progress, once it has ended by itself: {run, status, seconds, ...}."""
        if self.watch:
            p = await self.progress()
            if p is None or p[1] in ("preparing", "running") or p[0] != self.run_id:
                return None
            return {"run": p[0], "status": p[1], "seconds": int(p[3]), "message": p[2]}
        last = self.saved()
        if last is None or not last["complete"]:
            return None
        return {"run": self.run_id, "status": "done",
                "seconds": round(last["mtime"] - self.t_start), "message": "final checkpoint"}

    async def at_end(self) -> dict | None:
        """Where the run in progress is (None: none is)."""
        if not self.alive:
            return None
        last = self.saved()
        return {"run": self.run_id,
                "saved": "no epoch yet" if last is None else
                f"stage {last['stage']} epoch {last['epoch'] + 1}",
                "seconds": round(time.time() - self.t_start)}

    async def loop(self) -> None:
        """Every 2 s: a run that has ended by itself is recorded, and the next one started
        while a run is wanted."""
        while not self.closing:
            await asyncio.sleep(2)
            async with self.lock:
                if not self.alive:
                    continue
                end = await self.ended()
                if end is None:
                    continue
                self.alive = False
                end["scenes_written"] = len(list((self.runs_dir / end["run"] / "data")
                                                 .glob("**/*.jpg")))
                self.runs.append(end)
                if end["status"] != "done":
                    self.errors.append(f"training: {end['run']} ended {end['status']}: "
                                       f"{end['message']}")
                if self.wanted and not self.closing:
                    try:
                        await self._start()
                    except Exception as e:
                        self.errors.append(f"training: cannot start the next run: {e}")
                        return


def plan(mode: str, rounds: int) -> list[str]:
    """Each round's condition: "off" (no run) or "on" (a run training). alternate: off, on,
    on, off, off, on, ... (each pair of rounds once in each order: a load that rises or falls
    during the bench weighs on both conditions alike)."""
    if mode != "alternate":
        return [mode] * rounds
    return ["off" if (r % 4) in (0, 3) else "on" for r in range(rounds)]


async def run_browser(url: str, rounds: int, size: int, timeout_s: float, tmp: Path,
                      verbose: bool = False, server_pid: int | None = None,
                      training: str = "off", watch_training: bool = False) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            ctx = await browser.new_context(viewport=VIEWPORT)
            page = await ctx.new_page()
            page.set_default_timeout(timeout_s * 1000)
            js_errors: list[str] = []
            page.on("pageerror", lambda e: js_errors.append(str(e)))
            if TIMELINE_OVER_S is not None:
                await page.add_init_script(TIMELINE_JS)
            probe = await Probe.attach(page, cdp=True)
            recs = {c: Recorder(probe, timeout_s * 1000, verbose, server_pid)
                    for c in ("off", "on")}
            t = time.perf_counter()
            await page.goto(f"{url}/?model={MODEL}" if MODEL else url)
            first = await probe.settled(timeout_ms=max(timeout_s, 300) * 1000)
            first_load_s = time.perf_counter() - t
            # A link's text is its icon's ligature name, then its label.
            nav = [x.strip().splitlines()[-1].strip() for x in
                   await page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
                   if x.strip()]
            errors: list[str] = []
            if not nav:
                errors.append("no page links in the sidebar's navigation")
            conditions = plan(training, rounds)
            tab = watcher = None
            if "on" in conditions:
                tab = TrainingTab(browser, url, tmp / "runs", timeout_s, watch_training)
                await tab.open()
                watcher = asyncio.create_task(tab.loop())
            t_rounds = time.perf_counter()
            for r, cond in enumerate(conditions):
                if tab is not None:
                    await (tab.resume() if cond == "on" else tab.pause())
                if verbose:
                    print(f"-- round {r + 1}: training {cond}", file=sys.stderr, flush=True)
                await one_round(page, recs[cond], r, size, tmp, nav)
            train = None
            if tab is not None:
                at_end = await tab.at_end()  # how far the run in progress got
                tab.closing = True
                await watcher
                train = {"started": tab.started, "stopped": tab.stopped, "runs": tab.runs,
                         "watched": tab.watch, "choice": train_choice(), "at_end": at_end,
                         "rounds_s": round(time.perf_counter() - t_rounds, 1)}
                errors += tab.errors
            for rec in recs.values():
                errors += rec.errors
            errors += [f"JavaScript error: {e}" for e in js_errors]
            by = {c: recs[c].rows() for c in ("off", "on") if c in conditions}
            pages: dict = {}
            for rec in recs.values():
                pages.update(rec.pages)
            return {"rows": by.get("off") or by.get("on"), "rows_by_training": by,
                    "plan": conditions, "errors": errors, "nav": nav, "training": train,
                    "first_load_s": first_load_s, "first_load_ws_kb": first["ws_bytes"] / 1024,
                    "page_plot_kb": {p: [round(s / 1024, 1) for s in v]
                                     for p, v in pages.items()}}
        finally:
            await browser.close()


def measure(rounds: int = 3, size: int = 500, timeout_s: float = 120.0,
            verbose: bool = False, training: str = "off", watch_training: bool = False) -> dict:
    out: dict = {"rounds": rounds, "image": f"{size}x{size} PNG upload", "training_mode": training,
                 "viewport": f"{VIEWPORT['width']}x{VIEWPORT['height']}", "rows": [],
                 "errors": []}
    t0 = time.monotonic()
    busy0, load0, steal0 = machine_busy_s(), loadavg(), steal_s()
    ours = 0.0  # CPU of this run's processes (server, Chromium, driver, this one)
    with tempfile.TemporaryDirectory(prefix="browser_latency-") as tmp:
        log_path = Path(tmp) / "streamlit.log"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        # The server's training runs (--training) go to this run's temporary folder.
        saved = os.environ.get("OVERFEAT_APP_TRAIN_DIR")
        os.environ["OVERFEAT_APP_TRAIN_DIR"] = str(Path(tmp) / "runs")
        with open(log_path, "w") as log:
            proc = start_server(port, log)
            if saved is None:
                del os.environ["OVERFEAT_APP_TRAIN_DIR"]
            else:
                os.environ["OVERFEAT_APP_TRAIN_DIR"] = saved
            try:
                why = wait_healthy(proc, url, time.monotonic() + 180)
                if why:
                    out["errors"].append(why)
                else:
                    out["server_ready_s"] = round(time.monotonic() - t0, 2)
                    out.update(asyncio.run(run_browser(url, rounds, size, timeout_s, Path(tmp),
                                                        verbose, proc.pid, training,
                                                        watch_training)))
            except Exception as e:
                out["errors"].append(f"{type(e).__name__}: {e}")
            finally:
                ours = cpu_seconds(process_tree(os.getpid())) + _own_cpu()
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except Exception:
                    proc.kill()
                    proc.wait()
        if out["errors"]:
            out["server_log_tail"] = log_path.read_text(errors="replace")[-2000:]
    out["all_met"] = bool(out["rows"]) and all(r["met"] for r in out["rows"])
    out["total_s"] = round(time.monotonic() - t0, 1)
    # How busy the machine was with other work meanwhile (a shared machine's figures vary).
    out["machine"] = {"cores": os.cpu_count(), "loadavg_start": load0, "loadavg_end": loadavg(),
                      "other_cpu_s": round(max(machine_busy_s() - busy0 - ours, 0.0), 1),
                      "steal_s": round(steal_s() - steal0, 1)}
    return out


def _own_cpu() -> float:
    """CPU seconds of this process's children that have exited (os.times)."""
    t = os.times()
    return t.children_user + t.children_system


def _f(x) -> str:
    return "?" if x is None else f"{x:.2f} s"


def format_rows(res: dict) -> str:
    head = ("interaction", "median", "max", "target", "met", "server", "after", "CPU srv",
            "CPU chr", "ws kB", "img kB", "plot kB")
    rows = [head]
    for r in res["rows"]:
        rows.append((r["interaction"], f"{r['median_s']:.2f} s", f"{r['max_s']:.2f} s",
                     f"<= {r['target_s']:g} s", "yes" if r["met"] else "NO",
                     _f(r.get("server_median_s")), _f(r.get("after_server_median_s")),
                     _f(r.get("server_cpu_median_s")), _f(r.get("browser_cpu_median_s")),
                     f"{r['ws_kb_median']:.0f}", f"{r.get('img_kb_median', 0):.0f}",
                     f"{r['plot_kb_median']:.0f}"))
    w = [max(len(x[i]) for x in rows) for i in range(len(head))]
    lines = [" | ".join(x[i].ljust(w[i]) for i in range(len(head))) for x in rows]
    lines.insert(1, "-+-".join("-" * x for x in w))
    lines.append(f"{res['rounds']} rounds, {res['image']}, viewport {res['viewport']}; "
                 f"first page load (cold server) {res.get('first_load_s', float('nan')):.1f} s; "
                 f"all targets met: {res['all_met']}; total {res.get('total_s')} s")
    m = res.get("machine")
    if m:
        lines.append(f"machine: {m['cores']} cores, load average {m['loadavg_start']:.1f} at the "
                     f"start, {m['loadavg_end']:.1f} at the end; other processes used "
                     f"{m['other_cpu_s']} CPU s during the run"
                     + (f", the hypervisor took {m['steal_s']} s (steal)" if "steal_s" in m
                        else ""))
    lines.append("Medians. server: the page's rerun request to the server's last websocket "
                 "frame (network clock); after: the page's work after that frame (settled - "
                 "request - server); CPU srv / CPU chr: CPU seconds the server / Chromium's "
                 "processes used meanwhile (both share the machine's cores); img kB: pictures fetched "
                 "over HTTP (the Merge page's step and final boxes).")
    t = res.get("training")
    if t:
        scenes, epochs, width = t["choice"]
        runs = ", ".join(f"{r['run']} {r['status']} in {r['seconds']} s" for r in t["runs"])
        lines.append(f"training: stages 1,2,3 x {epochs} epochs, {scenes} det scenes, width "
                     f"{width:g} ({'watched' if t['watched'] else 'not watched'}); rounds "
                     f"{', '.join(res.get('plan') or [])}; {t['started']} run(s) started, "
                     f"{t['stopped']} stopped for the rounds without; ended by themselves: "
                     f"{runs or 'none'}; rounds took {t['rounds_s']} s")
        if t.get("at_end"):
            e = t["at_end"]
            lines.append(f"  in progress at the end: {e['run']} for {e['seconds']} s, saved: "
                         f"{e['saved']}")
    for p, sizes in res.get("page_plot_kb", {}).items():
        lines.append(f"  {p}: {len(sizes)} figure(s), {sum(sizes):.0f} kB of figure JSON "
                     f"({', '.join(f'{s:.0f}' for s in sizes)})")
    lines += [f"ERROR: {e}" for e in res["errors"]]
    return "\n".join(lines)


def format_comparison(off: dict, on: dict) -> str:
    """The two phases of --training both side by side: median and max per interaction."""
    by = {r["interaction"]: r for r in on["rows"]}
    head = ("interaction", "median without", "median with", "max without", "max with")
    rows = [head]
    for r in off["rows"]:
        o = by.get(r["interaction"])
        rows.append((r["interaction"], f"{r['median_s']:.2f} s",
                     "?" if o is None else f"{o['median_s']:.2f} s", f"{r['max_s']:.2f} s",
                     "?" if o is None else f"{o['max_s']:.2f} s"))
    w = [max(len(x[i]) for x in rows) for i in range(len(head))]
    lines = [" | ".join(x[i].ljust(w[i]) for i in range(len(head))) for x in rows]
    lines.insert(1, "-+-".join("-" * x for x in w))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="rounds, 1..20 (default 3)")
    p.add_argument("--size", type=int, default=500, help="upload side in pixels (default 500)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds one interaction may take before it counts as an error")
    p.add_argument("--training", choices=("off", "on", "both", "alternate"), default="off",
                   help="on: a capped training run (restarted as it ends) on the same server "
                        "during the rounds, started from a second browser's Training page; "
                        "alternate: one server, rounds without and with a run in the order "
                        "off, on, on, off, ... (the run stopped for the rounds without), side "
                        "by side; both: all rounds without, then all with (fresh servers)")
    p.add_argument("--watch-training", action="store_true",
                   help="with --training: the second browser stays on the Training page (its "
                        "live chart polled every second), as a teacher watching the run would")
    p.add_argument("--model", help="open the app on this model (a link's model=...), e.g. objects")
    p.add_argument("--photo", type=Path, help="upload this photo (one pixel changed per round) "
                   "instead of a generated scene, e.g. assets/photos/dog.jpg")
    p.add_argument("--pages", help="comma-separated page names: visit only these (and the "
                   "Overview) in each round, e.g. Regressor,Merge")
    p.add_argument("--no-keyboard", action="store_true",
                   help="leave out the Right-arrow merge step")
    p.add_argument("--timeline", type=float, metavar="S",
                   help="on stderr, tests/page_timeline.py's timeline of every interaction that "
                        "took longer than S seconds (what came late in a slow round)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="each interaction's time on stderr as it is measured")
    args = p.parse_args(argv)
    if not 1 <= args.rounds <= 20:
        p.error("--rounds must be in 1..20")
    if not 64 <= args.size <= 4000:
        p.error("--size must be in 64..4000")
    if args.timeout <= 0:
        p.error("--timeout must be positive")
    if args.photo is not None and not args.photo.is_file():
        p.error(f"--photo {args.photo} is not a file")
    global MODEL, PHOTO, PAGES, KEYBOARD_STEP, TIMELINE_OVER_S
    MODEL, PHOTO = args.model, args.photo
    TIMELINE_OVER_S = args.timeline
    PAGES = [x.strip() for x in args.pages.split(",")] if args.pages else None
    KEYBOARD_STEP = not args.no_keyboard
    if not Path(CHROMIUM).exists():
        res = {"rounds": args.rounds, "rows": [], "all_met": False,
               "errors": [f"{CHROMIUM} is missing (apt-get install chromium)"]}
    elif args.training in ("both", "alternate"):
        if args.training == "both":
            off = measure(args.rounds, args.size, args.timeout, args.verbose, training="off")
            on = measure(args.rounds, args.size, args.timeout, args.verbose, training="on",
                         watch_training=args.watch_training)
            res = {"without_training": off, "with_training": on,
                   "errors": off["errors"] + on["errors"]}
        else:
            res = measure(args.rounds, args.size, args.timeout, args.verbose,
                          training="alternate", watch_training=args.watch_training)
            by = res.get("rows_by_training") or {}
            off, on = ({**res, "rows": by.get(c, []), "rounds": res.get("plan", []).count(c)}
                       for c in ("off", "on"))
            for d in (off, on):
                d["all_met"] = bool(d["rows"]) and all(r["met"] for r in d["rows"])
        print(json.dumps(res) if args.json else
              "\n\n".join(["WITHOUT TRAINING", format_rows(off), "WITH TRAINING",
                            format_rows(on), format_comparison(off, on)]))
        return 0 if not res["errors"] else 1
    else:
        res = measure(args.rounds, args.size, args.timeout, args.verbose,
                      training=args.training, watch_training=args.watch_training)
    print(json.dumps(res) if args.json else format_rows(res))
    return 0 if not res["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
