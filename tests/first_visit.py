"""A page's first visit in a fresh browser, on its own: what the bench's round 1 pays for. One app
server; for every try a new headless Chromium at 1400x1000 opens the Overview, uploads a new
500x500 scene (tests/app_latency.upload_png) and, once that page has settled, switches to the
page; the time is from the click to the page's last DOM change (no change for 2 s after it).

    .venv/bin/python tests/first_visit.py --page Scales [--tries 4] [--modes new,cached]

Modes: "new", the image is new to the server (the click's run builds the page's figures);
"cached", another browser visited the page for the same image first (its figures are cached on
the server), so the difference is the server's share. Tries alternate between the modes. A
measuring tool, not a test: docs/BENCHMARKS.md ("A second chart's cold cost") reads its output.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from app_latency import upload_png  # noqa: E402
from browser_helpers import CHROMIUM, LAUNCH_ARGS, go, settle, streamlit_server  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

# the time of the page's last DOM change, in the page's clock
LAST_CHANGE = """window.__last = 0; new MutationObserver(() => { window.__last = performance.now(); })
  .observe(document, {subtree: true, childList: true, attributes: true, characterData: true});"""
QUIET_S = 2.0


def fresh(pw, url: str):
    """A new browser and page on the app, settled."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(LAST_CHANGE)
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(url)
    settle(page)
    return browser, page


def upload(page, seed: int) -> None:
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        files=[{"name": f"visit{seed}.png", "mimeType": "image/png",
                "buffer": upload_png(seed, 500)}])
    page.get_by_text(f"Image: upload visit{seed}.png").first.wait_for()
    settle(page)
    time.sleep(1.0)


def first_visit(page, name: str) -> float:
    """ms from the click on `name` in the sidebar to the page's last DOM change."""
    t0 = page.evaluate("performance.now()")
    page.locator('[data-testid="stSidebarNav"] a', has_text=name).first.click()
    time.sleep(QUIET_S)
    return page.evaluate("window.__last") - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--page", default="Scales")
    ap.add_argument("--tries", type=int, default=4)
    ap.add_argument("--modes", default="new,cached")
    args = ap.parse_args()
    modes = args.modes.split(",")
    if not set(modes) <= {"new", "cached"}:
        print(f"unknown mode in {args.modes!r}: use new and/or cached", file=sys.stderr)
        return 2
    got: dict[str, list[float]] = {m: [] for m in modes}
    with streamlit_server("first_visit.log") as url, sync_playwright() as pw:
        for i in range(args.tries):
            for mode in modes:
                seed = 5000 + 2 * i + (mode == "cached")
                if mode == "cached":  # another student's visit builds the figures first
                    browser, page = fresh(pw, url)
                    upload(page, seed)
                    go(page, args.page)
                    browser.close()
                browser, page = fresh(pw, url)
                upload(page, seed)
                got[mode].append(first_visit(page, args.page))
                browser.close()
    for mode, ms in got.items():
        print(f"{args.page} {mode}: {[round(v) for v in ms]} ms, median {statistics.median(ms):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
