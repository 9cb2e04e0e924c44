"""Streamlit's restyle pass draws nothing again (figures.drawn_once, common.chart's theme=None).

With Streamlit's own Plotly theme, the browser restyled every figure right after it was drawn
and Plotly drew it all again. Counted here where it happens: each time Plotly paints a heat map,
it writes the heat map's picture (an SVG <image> under a "hm" group) anew. A figure's first draw
paints it once, or twice when Plotly moves the margins to fit a colour bar or labels and draws
again (its automargin, inside the first draw; left as it is); the theme's pass made that three
times (18 paints for the default scene's 6 maps). So: at most two paints a heat map, after
opening a page, after a page switch and after a class change. The pictogram scene at 1400x1000
(tests/browser_helpers.py).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from browser_helpers import HEIGHT, SLOW, WIDTH, check_figures, check_page, settle
from browser_helpers import streamlit_server

# Every write of a heat map's picture: its <image> added with a picture, or its href set again.
COUNT_JS = """() => {
  window.__paints = 0;
  const isHeat = n => n.nodeType === 1 && n.tagName.toLowerCase() === 'image'
                      && n.parentNode && n.parentNode.classList.contains('hm');
  new MutationObserver(records => {
    for (const r of records) {
      if (r.type === 'attributes' && isHeat(r.target) && r.attributeName === 'href') {
        window.__paints++;
      }
    }
  }).observe(document, {subtree: true, attributes: true});  // (an attributeFilter misses
  // namespaced attributes such as xlink:href)
}"""


@pytest.fixture(scope="module")
def server():
    with streamlit_server("streamlit-drawn-once.log") as url:
        yield url


def paints(page: Page) -> int:
    return page.evaluate("() => { const n = window.__paints; window.__paints = 0; return n; }")


def heat_maps(page: Page) -> int:
    return page.locator(".js-plotly-plot g.hm > image").count()


def open_page(browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    page.set_default_timeout(SLOW)
    page.js_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))  # type: ignore[attr-defined]
    page.add_init_script("(" + COUNT_JS + ")()")
    page.goto(url)
    settle(page)
    return page


def test_heat_maps_are_painted_once_on_open_switch_and_class_change(server, browser):
    page = open_page(browser, f"{server}/scales?img=gallery&g=0")
    expect(page.locator("h1").first).to_have_text("Scales")
    check_figures(page, 2)
    page.wait_for_timeout(500)  # the theme's paint came 50 to 70 ms after the first draw
    n = heat_maps(page)
    assert n >= 3  # one per scale drawn
    assert n <= paints(page) <= 2 * n
    # a page switch: the Offsets page's maps (coarse and fine, the offset grids)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Offsets").first.click()
    expect(page.locator("h1").first).to_have_text("Offsets")
    settle(page)
    page.wait_for_timeout(500)
    n = heat_maps(page)
    assert n >= 4
    assert n <= paints(page) <= 2 * n
    # back to Scales, another class: its maps are new figures, each painted once
    page.locator('[data-testid="stSidebarNav"] a', has_text="Scales").first.click()
    expect(page.locator("h1").first).to_have_text("Scales")
    settle(page)
    page.wait_for_timeout(500)
    paints(page)
    before = re.search(r"[?&]cls=(\d+)", page.url).group(1)  # the link names the class
    page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').first \
        .locator("input").first.click()
    page.get_by_role("option").nth(2).click()
    page.wait_for_function("c => !location.search.includes('cls=' + c + '&')", arg=before)
    settle(page)
    page.wait_for_timeout(500)
    n = heat_maps(page)
    assert n <= paints(page) <= 2 * n
    check_page(page)
    page.close()
