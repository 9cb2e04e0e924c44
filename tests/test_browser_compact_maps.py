"""Architecture, Scales and Offsets on a projector and on a phone, in Chromium (issue 27): in
presenter mode at 1280x720 each page's main figure starts within the first 330 px (the header
and the title end ~150 px down) and most of it is on the first screen; at 390x844 with a
phone's User-Agent it starts within 450 px, is no wider than the screen, and its texts (panel
titles, colour bar, tick labels, layer headers) are at least 10 px, inside the screen and not
drawn over each other. On a pictogram scene, and the Scales page also on a photo with the
Objects model (a feature pyramid: three maps a scale). Screenshots go to
test-artifacts/compact-*.png.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from browser_helpers import ARTIFACTS, PHONE, PROJECTOR, check_page, screen_page, settle
from overfeat.app import figures
from overfeat.app.figures import grids

pytestmark = pytest.mark.slow
CHEAP = "scales=0,1&flips=0"
PAGES = {"architecture": "Architecture", "scales": "Scales", "offsets": "Offsets"}
PYRAMID = "img=photo&p=3&model=objects"
# The main figure (the first Plotly figure or picture under the title): its box, and every
# text Plotly drew in it (panel titles, colour bar, ticks, annotations) with its box and font
# size; a text trace's points (the layer strip's headers) count as annotations. A picture (the
# Offsets page's grids, figures.grids) has its text in its pixels: its natural width says at
# what size they are shown.
MEASURE = """async () => {
  const main = document.querySelector('[data-testid="stMain"]');
  const y0 = main.querySelector('h1').getBoundingClientRect().bottom;
  const gd = [...main.querySelectorAll('.js-plotly-plot, [data-testid="stImage"] img')]
    .find(e => e.getBoundingClientRect().top >= y0 && e.getBoundingClientRect().height > 60);
  if (gd.tagName === 'IMG') await gd.decode();
  const r = gd.getBoundingClientRect();
  const texts = [...gd.querySelectorAll('svg text')].filter(t => t.textContent.trim()
      && t.getBoundingClientRect().width > 0).map(t => {
    const b = t.getBoundingClientRect();
    return {text: t.textContent, size: parseFloat(getComputedStyle(t).fontSize),
            left: b.left, right: b.right, top: b.top, bottom: b.bottom,
            annotation: !!t.closest('.annotation, .textpoint')};
  });
  return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height,
          screen: window.innerHeight, width: window.innerWidth, texts,
          picture: gd.tagName === 'IMG' ? gd.naturalWidth : null};
}"""
# The pages whose main figure is a picture (figures.grids), and the CSS px of its smallest
# text as drawn (the colour bar's ticks and title: 0.9 of the page's font)
PICTURED = {"offsets"}


def picture_text_px(m: dict, presenter: bool) -> float:
    """On-screen px of a picture's smallest text: drawn at grids.SCALE device px per CSS px of
    the page's font (FONT, PRESENTER_SCALE times in presenter mode), shown at the width the
    page gives it."""
    font = round(figures.FONT * (figures.PRESENTER_SCALE if presenter else 1))
    return round(font * 0.9) * grids.SCALE * (m["right"] - m["left"]) / m["picture"]


def measure(page) -> dict:
    page.locator('[data-testid="stMain"] .js-plotly-plot, [data-testid="stMain"] '
                 '[data-testid="stImage"] img').first.wait_for()
    page.wait_for_timeout(500)  # Plotly lays out after the element appears
    return page.evaluate(MEASURE)


def overlapping(texts: list[dict]) -> list[tuple[str, str]]:
    """Pairs of annotations (panel titles, layer headers) whose boxes intersect by more than
    2 px each way: text drawn over text."""
    notes = [t for t in texts if t["annotation"]]
    out = []
    for i, a in enumerate(notes):
        for b in notes[i + 1:]:
            if (min(a["right"], b["right"]) - max(a["left"], b["left"]) > 2
                    and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 2):
                out.append((a["text"], b["text"]))
    return out


def test_presenter_mode_shows_each_main_figure_on_the_first_screen(browser, server):
    ctx, page = screen_page(browser, PROJECTOR)
    shots = [(p, "") for p in PAGES] + [("scales", PYRAMID), ("offsets", PYRAMID)]
    for where, extra in shots:
        page.goto(f"{server}/{where}?present=1&{CHEAP}{'&' + extra if extra else ''}")
        settle(page)
        expect(page.locator("h1").first).to_have_text(PAGES[where])
        check_page(page)
        m = measure(page)
        assert m["top"] <= 330, (where, extra, m["top"])
        seen = (min(m["bottom"], 720) - m["top"]) / m["height"]
        assert seen >= 0.5 or m["bottom"] - m["top"] > 720 - 330, (where, extra, seen)
        assert m["right"] <= 1280 and not overlapping(m["texts"]), (where, extra)
        if where in PICTURED and not extra:  # a picture: its text as shown
            assert m["picture"] and picture_text_px(m, True) >= 12, (where, m)
        else:
            assert min(t["size"] for t in m["texts"]) >= 12  # a room reads it
        page.screenshot(path=str(ARTIFACTS / f"compact-pres720-{where}"
                                             f"{'-pyramid' if extra else ''}.png"))
    assert not page.js_errors, page.js_errors
    ctx.close()


def test_a_phone_sees_each_main_figure_readable_after_the_title(browser, server):
    ctx, page = screen_page(browser, PHONE)
    shots = [(p, "") for p in PAGES] + [("scales", PYRAMID)]
    for where, extra in shots:
        page.goto(f"{server}/{where}?{CHEAP}{'&' + extra if extra else ''}")
        settle(page)
        expect(page.locator("h1").first).to_have_text(PAGES[where])
        check_page(page)
        m = measure(page)
        assert m["top"] <= 450, (where, extra, m["top"])
        assert m["left"] >= 0 and m["right"] <= 390, (where, extra, m["left"], m["right"])
        small = [t for t in m["texts"] if t["size"] < 10]
        assert not small, (where, small[:3])
        if where in PICTURED:  # a picture: its text as shown, the screen's width
            assert m["picture"] and picture_text_px(m, False) >= 10, (where, m)
            assert m["right"] - m["left"] >= 340, (where, m)
            page.screenshot(path=str(ARTIFACTS / f"compact-phone-{where}.png"))
            continue
        cut = [t["text"] for t in m["texts"] if t["left"] < -1 or t["right"] > 391]
        assert not cut, (where, cut[:3])
        assert not overlapping(m["texts"]), (where, overlapping(m["texts"])[:3])
        # the check saw the panel titles (the layer headers): it is not vacuous
        assert where == "offsets" or sum(t["annotation"] for t in m["texts"]) >= 2, where
        # panels large enough to see: the figure's first panel (its first axis' drawing
        # area) is most of the screen's width
        panel = page.evaluate("() => document.querySelector("
                              "'[data-testid=\"stMain\"] .js-plotly-plot')._fullLayout.xaxis._length")
        assert panel >= (100 if where == "architecture" else 250), (where, panel)
        page.screenshot(path=str(ARTIFACTS / f"compact-phone-{where}"
                                             f"{'-pyramid' if extra else ''}.png"))
    ctx.close()
