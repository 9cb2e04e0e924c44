"""Every page on the four screens a lesson uses, on a pictogram scene and on a real photo:
screenshots under test-artifacts/screens/ for a person to look at, and where each page's main
figure lands (its top, and how much of it the first screen shows) as a table on stdout.

    .venv/bin/python tests/screenshots.py [--pages merge,scales] [--views scene,photo]
                                          [--screens desk,pres720,pres1080,phone]

Screens (issue 27): desk = 1400x1000, the whole page; pres720 = presenter mode at 1280x720
(a projector) and pres1080 = presenter mode at 1920x1080, the first screen, what the room
sees; phone = 390x844 in Chromium's mobile emulation (a phone's User-Agent, touch), the first
screen and the whole page.

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

from browser_helpers import (ARTIFACTS, CHROMIUM, LAUNCH_ARGS, PHONE_UA, settle,  # noqa: E402
                             streamlit_server)

PAGES = ("overview", "architecture", "scales", "offsets", "regressor", "merge", "detection",
         "compare", "experiments", "efficiency", "training", "glossary")
VIEWS = {"scene": "img=gallery&g=3", "photo": "img=photo&p=3&model=objects",
         "photo-imagenet": "img=photo&p=0&model=imagenet",
         "photo-pictogram": "img=photo&p=0",  # the default model on a photo: the suggestion
         "faces": "img=photo&p=2&model=faces",
         "objects-person": "img=photo&p=4&model=objects",
         "objects-kite": "img=photo&p=6&model=objects"}
SCREENS = {"desk": (1400, 1000, False, False), "pres720": (1280, 720, True, False),
           "pres1080": (1920, 1080, True, False), "phone": (390, 844, False, True)}
# The page's main figure: the first picture or chart under the title (an image, a Plotly
# figure, a chart); its top and how much of it the first screen shows; whether anything is
# wider than the screen (cut off or scrolled sideways).
MEASURE = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const h1 = main.querySelector('h1');
  const y0 = h1 ? h1.getBoundingClientRect().top : 0;
  const figs = [...main.querySelectorAll('.js-plotly-plot, [data-testid="stImage"] img, '
      + '[data-testid="stVegaLiteChart"], canvas')]
    .filter(e => e.checkVisibility() && e.getBoundingClientRect().height > 60
                 && e.getBoundingClientRect().top >= y0);
  const H = window.innerHeight, W = window.innerWidth;
  const f = figs[0];
  const r = f ? f.getBoundingClientRect() : null;
  const seen = r ? Math.max(0, Math.min(r.bottom, H) - Math.max(r.top, 0)) / r.height : 0;
  const wide = [...main.querySelectorAll('*')].filter(e => e.checkVisibility()
      && e.getBoundingClientRect().right > W + 2 && getComputedStyle(e).position !== 'fixed')
    .length;
  return {title_top: Math.round(y0), fig: f ? f.tagName.toLowerCase() : null,
          fig_top: r ? Math.round(r.top) : null, fig_height: r ? Math.round(r.height) : null,
          first_screen: Math.round(seen * 100) / 100, wider_than_screen: wide,
          errors: main.querySelectorAll('[data-testid="stException"]').length};
}"""


def full_height(page) -> int:
    return page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", default=",".join(PAGES))
    ap.add_argument("--views", default="scene,photo")
    ap.add_argument("--screens", default=",".join(SCREENS))
    args = ap.parse_args()
    out = ARTIFACTS / "screens"
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    with streamlit_server("screens.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        for screen in args.screens.split(","):
            w, h, present, phone = SCREENS[screen]
            ctx = browser.new_context(viewport={"width": w, "height": h}, is_mobile=phone,
                                      has_touch=phone, user_agent=PHONE_UA if phone else None)
            page = ctx.new_page()
            page.set_default_timeout(240_000)
            for view in args.views.split(","):
                for name in args.pages.split(","):
                    path = "" if name == "overview" else name  # the default page has no path
                    page.set_viewport_size({"width": w, "height": h})
                    page.goto(f"{url}/{path}?{VIEWS[view]}{'&present=1' if present else ''}")
                    settle(page)
                    page.wait_for_timeout(800)
                    settle(page)
                    tag = f"{view}-{screen}-{name}"
                    rows[tag] = page.evaluate(MEASURE)
                    page.screenshot(path=str(out / f"{tag}.png"))  # the first screen
                    if screen in ("desk", "phone"):  # and the whole page
                        page.set_viewport_size({"width": w, "height": min(full_height(page) + 40,
                                                                        12000)})
                        page.wait_for_timeout(800)  # Plotly re-lays out to the new size
                        page.screenshot(path=str(out / f"{tag}-full.png"))
                    print(tag, json.dumps(rows[tag]), flush=True)
            ctx.close()
        browser.close()
    print(f"\n{'shot':40} {'title':>5} {'fig':>6} {'top':>5} {'first screen':>12} {'wide':>5}")
    for tag, r in rows.items():
        print(f"{tag:40} {r['title_top']:>5} {str(r['fig']):>6} {str(r['fig_top']):>5} "
              f"{r['first_screen']:>12.2f} {r['wider_than_screen']:>5}")
    (ARTIFACTS / "screens.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
