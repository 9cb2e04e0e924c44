"""Every page at 1400x1000 (the whole page) and in presenter mode at 1280x720 (the first
screen, what a projector shows), on a pictogram scene and on photos: screenshots under
test-artifacts/screens/ for a person to look at, and the figures' drawn sizes (plot-area
width of each Plotly figure, its smallest font) as JSON on stdout.

    .venv/bin/python tests/screenshots.py [--pages merge,scales] [--views scene,photo]

Not a test (nothing is asserted): the browser tests check behaviour; this is the look-see a
teacher does before a lesson. Uses the same server and browser set-up as the browser tests
(tests/browser_helpers.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from playwright.sync_api import sync_playwright  # noqa: E402

from browser_helpers import (ARTIFACTS, CHROMIUM, LAUNCH_ARGS, screenshot, settle,  # noqa: E402
                             streamlit_server)

PAGES = ("overview", "architecture", "scales", "offsets", "regressor", "merge", "detection",
         "compare", "experiments", "efficiency", "training", "glossary")
VIEWS = {"scene": "img=gallery&g=3", "photo": "img=photo&p=0&model=imagenet",
         "faces": "img=photo&p=2&model=faces", "objects": "img=photo&p=3&model=objects",
         "objects-person": "img=photo&p=4&model=objects",
         "objects-kite": "img=photo&p=6&model=objects"}
MEASURE = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => {
    const xs = Object.keys(gd._fullLayout).filter(k => /^xaxis\\d*$/.test(k))
        .map(k => gd._fullLayout[k]._length || 0);
    const fonts = [...gd.querySelectorAll('text')].map(t => parseFloat(getComputedStyle(t).fontSize))
        .filter(f => f > 0);
    return {width: gd.getBoundingClientRect().width, widest_panel: Math.max(0, ...xs),
            min_font: fonts.length ? Math.min(...fonts) : null};
})"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", default=",".join(PAGES))
    ap.add_argument("--views", default="scene,photo")
    args = ap.parse_args()
    out = ARTIFACTS / "screens"
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    with streamlit_server("screens.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)
        for view in args.views.split(","):
            for present in (False, True):
                for name in args.pages.split(","):
                    path = "" if name == "overview" else name  # the default page has no path
                    # presenter mode as a projector shows it: 1280x720, the first screen
                    page.set_viewport_size({"width": 1280, "height": 720} if present
                                           else {"width": 1400, "height": 1000})
                    page.goto(f"{url}/{path}?{VIEWS[view]}{'&present=1' if present else ''}")
                    settle(page)
                    page.wait_for_timeout(600)
                    tag = f"{view}-{'presenter-' if present else ''}{name}"
                    sizes[tag] = page.evaluate(MEASURE)  # before the full shot
                    if present:
                        page.screenshot(path=str(out / f"{tag}.png"))  # what the room sees
                    else:
                        screenshot(page, f"screens/{tag}")  # the whole page, 1400 wide
        browser.close()
    log = (ARTIFACTS / "screens.log").read_text()
    print(json.dumps({"figures": sizes, "server_log_lines": len(log.splitlines()),
                      "inotify_lines": log.count("Inotify")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
