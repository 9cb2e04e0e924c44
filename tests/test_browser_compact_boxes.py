"""The box and evaluation pages on the lesson's small screens, in Chromium (issue 27): in
presenter mode at 1280x720 each page's main figure starts within the top 330 px and most of it
is on the first screen; on a phone (390x844, a phone's User-Agent, touch) it starts within the
top 450 px, nothing in it is wider than the screen, and its title and legend stay clear of the
modebar (the title also of the Regressor's pixel labels); a phone's Glossary is blocks, not a squeezed table; the
Experiments chart fits the phone's width. The headless checks of the same layout:
tests/test_compact_boxes.py."""

from __future__ import annotations

import pytest

from browser_helpers import PHONE, PROJECTOR, check_page, screen_page, settle

pytestmark = pytest.mark.slow
# Two scales, no flips (quick); counted at support and confidence >= 2, so that every method
# and the Detection page have boxes to draw with two scales.
QUERY = "scales=0,1&flips=0&support=2&dconf=2"
PAGES = ("regressor", "detection", "compare", "efficiency")
# The first Plotly figure of the main column: its box, its title's lines, the modebar and the
# top axis's labels (the Regressor's), in the window's pixels.
MEASURE = """() => {
  const gd = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
  if (!gd) return null;
  const r = e => { const b = e.getBoundingClientRect();
                   return {top: b.top, bottom: b.bottom, left: b.left, right: b.right}; };
  const lines = [...gd.querySelectorAll('.g-gtitle text')].flatMap(t => {
    const spans = [...t.querySelectorAll('tspan.line')];
    return (spans.length ? spans : [t]).filter(s => s.textContent.trim()).map(r); });
  const bar = gd.querySelector('.modebar');
  const legend = gd.querySelector('.legend');
  return {fig: r(gd), H: window.innerHeight, W: window.innerWidth, lines,
          legend: legend ? r(legend) : null, plotWidth: gd._fullLayout._size.w,
          modebar: bar ? r(bar) : null,
          xticks: gd._fullLayout.xaxis && gd._fullLayout.xaxis.side === 'top'
            ? [...gd.querySelectorAll('.xtick text')].map(r) : []};
}"""


def overlap(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] \
        and b["top"] < a["bottom"]


def open_page(page, url: str) -> dict:
    page.goto(url)
    settle(page)
    page.locator('[data-testid="stMain"] .js-plotly-plot').first.wait_for()
    page.wait_for_timeout(300)  # Plotly's layout to the column's width
    check_page(page)
    got = page.evaluate(MEASURE)
    assert got is not None, url
    return got


def test_box_pages_put_their_figure_on_the_first_screen_in_presenter_mode_and_on_a_phone(
        browser, server):
    ctx, page = screen_page(browser, PROJECTOR)
    for name in PAGES:
        m = open_page(page, f"{server}/{name}?present=1&{QUERY}")
        f = m["fig"]
        seen = (min(f["bottom"], m["H"]) - f["top"]) / (f["bottom"] - f["top"])
        assert f["top"] <= 330, (name, f)
        assert seen >= 0.6, (name, seen)
        assert m["lines"] or name == "efficiency", name  # the figure says what it shows
        assert bool(m["xticks"]) == (name == "regressor"), name  # its pixel labels on top
        for tick in m["xticks"]:  # the Regressor's pixel labels, under its title
            assert not any(overlap(t, tick) for t in m["lines"]), (name, tick)
        for t in page.locator('.ovf-table').all()[:3]:
            assert t.evaluate("e => e.getBoundingClientRect().right <= window.innerWidth + 1")
    ctx.close()

    ctx, page = screen_page(browser, PHONE)
    for name in PAGES + ("experiments",):
        m = open_page(page, f"{server}/{name}?{QUERY}")
        f = m["fig"]
        if name != "experiments":  # its results table comes first, its chart below it
            assert f["top"] <= 450, (name, f)
        assert f["right"] <= m["W"] + 1 and f["left"] >= -1, (name, f)
        if name in ("regressor", "detection"):  # a long title, wrapped
            assert len(m["lines"]) >= 2, (name, m["lines"])
        for t in m["lines"]:  # the title: inside the figure, clear of the modebar
            assert t["right"] <= f["right"] + 1, (name, t)
            assert m["modebar"] is None or not overlap(t, m["modebar"]), (name, t, m["modebar"])
        for tick in m["xticks"]:
            assert not any(overlap(t, tick) for t in m["lines"]), (name, tick)
        if m["legend"] and m["modebar"]:  # the modebar spans a phone's width
            assert not overlap(m["legend"], m["modebar"]), (name, m["legend"], m["modebar"])
        if name in ("regressor", "detection", "compare"):
            # the image across the phone's width, its legend in rows under it (a legend left
            # at the right took 113-275 px and left the image ~150 px wide)
            assert m["plotWidth"] >= 0.8 * (f["right"] - f["left"]), (name, m["plotWidth"], f)
    page.goto(f"{server}/glossary?{QUERY}")
    settle(page)
    check_page(page)
    main = page.locator('[data-testid="stMain"]')
    assert main.locator('.ovf-table').count() == 0
    assert main.get_by_text("On this image:").count() >= 5
    ctx.close()
