"""Helpers for the tests that drive the app in a real browser (tests/test_browser*.py) and for
tests/screenshots.py: `streamlit run app.py` as a subprocess on a free port, Debian's Chromium
for Playwright, waiting for a script run to end, page navigation, the checks every page gets
(no exception, no error box, no JavaScript error; Plotly figures drawn) and full-page
screenshots under test-artifacts/ (git-ignored).

The fixtures built on these (server, browser) are in tests/conftest.py. A plain module, not a
test file: pytest puts tests/ on sys.path, and screenshots.py puts it there itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTH, HEIGHT = 1400, 900
SLOW = 120_000  # ms: the first analysis runs the network at 12 views on a busy 2-core CPU
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
expect.set_options(timeout=SLOW)  # expect's own default is 5 s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_log_name(module: str) -> str:
    """The log of a test module's `server` fixture (module: its __name__): one file per module,
    so that two modules running at once (tests/run.sh runs two pytest workers) never write the
    same file."""
    return f"streamlit-{module.rsplit('.', 1)[-1]}.log"


@contextlib.contextmanager
def streamlit_server(log_name: str, env: dict | None = None):
    """`streamlit run app.py` on a free loopback port; yields its URL once /_stcore/health
    answers "ok", and stops it afterwards. Output goes to test-artifacts/<log_name>."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = _free_port()
    log = open(ARTIFACTS / log_name, "w")
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port),
           "--browser.gatherUsageStats", "false",
           # No file watcher: nothing is edited during the test, and watching the tree costs CPU.
           "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}: "
                            f"{(ARTIFACTS / log_name).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("streamlit did not answer /_stcore/health within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def settle(page: Page) -> None:
    """Wait until the script has finished its run (a rerun may start a moment after a click)."""
    page.wait_for_timeout(400)
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(200)
    page.wait_for_selector(IDLE)


def new_page(browser, url: str, height: int = HEIGHT) -> Page:
    """A new tab (WIDTH x height) that records JavaScript errors in page.js_errors, opened on
    url and settled."""
    page = browser.new_page(viewport={"width": WIDTH, "height": height})
    page.set_default_timeout(SLOW)
    page.js_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))  # type: ignore[attr-defined]
    page.goto(url)
    settle(page)
    return page


# A phone as the lesson tests see it: 390x844, touch, a phone's User-Agent ("Mobi": the app's
# common.is_phone), in Chromium's mobile emulation.
PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
PHONE = dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
             user_agent=PHONE_UA)
PROJECTOR = dict(viewport={"width": 1280, "height": 720})  # presenter mode's screen


def screen_page(browser, screen: dict, **kw):
    """(context, page) on a screen (PHONE, PROJECTOR or new_context's own arguments), the page
    with the tests' timeout and its JavaScript errors recorded in page.js_errors."""
    ctx = browser.new_context(**screen, **kw)
    page = ctx.new_page()
    page.set_default_timeout(SLOW)
    page.js_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))  # type: ignore[attr-defined]
    return ctx, page


def sidebar(page: Page):
    """The sidebar's locator."""
    return page.locator('[data-testid="stSidebar"]')


def go(page: Page, name: str) -> None:
    """Click a page in the sidebar's navigation and wait for its title and the run's end."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=name).click()
    expect(page.locator("h1").first).to_have_text(
        "OverFeat, step by step" if name == "Overview" else name)
    settle(page)


def check_page(page: Page) -> None:
    """No exception, no error box, no JavaScript error (page.js_errors), and no "Page not
    found" dialog (a test that opened a path the app has not: the Overview is "/")."""
    assert page.get_by_text("Page not found", exact=True).count() == 0, "Page not found"
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert page.js_errors == []  # type: ignore[attr-defined]


MARGINS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => {
  const m = gd.layout.margin || {}, s = gd._fullLayout._size;
  const key = (gd.closest('[class*="st-key-"]') || {className: ''}).className.match(/st-key-(\\S+)/);
  return [key ? key[1] : '?', [m.l, m.r, m.t, m.b], [s.l, s.r, s.t, s.b].map(Math.round)];
})"""


def check_margins(page: Page) -> None:
    """Every Plotly figure on the page drawn in the margins it gave (figures.base.room,
    image_margin, legend_below): where Plotly's automargin had to grow one for a label or a
    legend, it drew the whole figure a second time (issue 27)."""
    for key, given, drawn in page.evaluate(MARGINS_JS):
        assert given == drawn, f"{key}: margins (l, r, t, b) {given} grown to {drawn}"


BARS_JS = """el => {
  const plot = el.querySelector('.ovf-plot').getBoundingClientRect();
  const ticks = [...el.querySelectorAll('.ovf-tick span')].map(t => parseFloat(t.textContent));
  const top = Math.max(...ticks);
  return [...el.querySelectorAll('.ovf-bar')].map(b => [parseFloat(b.dataset.value),
    b.getBoundingClientRect().height / plot.height * top, b.getBoundingClientRect().width]);
}"""


def check_bars(page: Page, n: int) -> None:
    """n HTML bar charts (overfeat.app.bars), each laid out as its values say: every bar as tall
    as its value on the chart's axis (within 1% of the axis) and wide enough to see."""
    charts = page.locator(".ovf-bars")
    expect(charts).to_have_count(n)
    for i in range(n):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        bars = chart.evaluate(BARS_JS)
        assert bars, "a bar chart without bars"
        top = max(1.0, max(v for v, _, _ in bars if v == v))
        for v, h, w in bars:
            want = 0.0 if v != v else min(max(v, 0.0), top)
            assert abs(h - want) <= 0.01 * top, (v, h)
            assert w >= 2, w


def check_figures(page: Page, n: int) -> None:
    """n Plotly figures, each drawn: an svg with its plot area inside .js-plotly-plot."""
    plots = page.locator(".js-plotly-plot")
    expect(plots).to_have_count(n)
    for i in range(n):
        plot = plots.nth(i)
        plot.scroll_into_view_if_needed()
        expect(plot.locator("svg.main-svg").first).to_be_attached()
        # Every trace Plotly was given made it into the drawing, and every layout image (the
        # picture under a figure: figures.add_image) is an <image> in it; a figure has one or
        # the other at least (an image with no box on it has no trace).
        s = plot.evaluate("""gd => ({given: gd.data.length, drawn: gd._fullData.length,
            images: (gd.layout.images || []).length,
            imagesDrawn: [...gd.querySelectorAll('.imagelayer image')]
                .filter(e => !e.closest('.im')).length})""")  # .im: an image trace's own
        assert s["drawn"] == s["given"] and s["imagesDrawn"] == s["images"], s
        assert s["given"] + s["images"] > 0, s


def screenshot(page: Page, name: str) -> Path:
    """The whole page: Streamlit scrolls inside its main block, so the viewport is made as tall
    as the content for the shot (Playwright's full_page only sees the window)."""
    height = page.evaluate(
        "() => Math.max(...['stMain', 'stMainBlockContainer', 'stSidebarContent'].map("
        "id => document.querySelector(`[data-testid=${id}]`)?.scrollHeight || 0))")
    page.set_viewport_size({"width": WIDTH, "height": min(max(height + 40, HEIGHT), 12000)})
    page.wait_for_timeout(800)  # Plotly re-lays out its figures to the new size
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    assert path.stat().st_size > 20_000  # not a blank page
    return path


def merge_step(page: Page, kind: str) -> tuple[int, int, str]:
    """(step, number of steps, the step's text) of one match score on the Merge page."""
    text = page.locator('[data-testid="stMarkdownContainer"]',
                        has_text=re.compile(rf"^{kind}: step \d+ of")).inner_text()
    step, n = re.search(r"step (\d+) of (\d+)", text).groups()
    return int(step), int(n), text


def wait_for_merge_step(page: Page, kind: str, at_least: int, timeout: float = SLOW) -> None:
    """Wait until the Merge page shows that match score at step at_least or later."""
    page.wait_for_function(r"""([kind, n]) => [...document.querySelectorAll(
            '[data-testid="stMarkdownContainer"]')].some(e => {
            const m = e.innerText.match(/^(\w+): step (\d+) of/);
            return m && m[1] === kind && Number(m[2]) >= n; })""",
        arg=[kind, at_least], timeout=timeout)
