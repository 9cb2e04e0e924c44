"""Inside the network (issue 28) in a real browser: on the Architecture page a click on a layer
of the strip shows that layer's channels, a click on a cell of the class score map draws that
cell's window on the image; with the pictogram checkpoint on a sample scene and with the Objects
model on a photo (three output maps, a nominal window). Then the Offsets page's one-row strip.

Same set-up as tests/test_browser_models.py (tests/browser_helpers.py, the browser fixture of
tests/conftest.py); screenshots at 1400x1000 go to test-artifacts/layers-*.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from browser_helpers import check_figures, check_page, screenshot, settle, streamlit_server
from browser_helpers import new_page as _new_page
from overfeat.app import state as appstate

PHOTO = {name: i for i, (name, _) in enumerate(appstate.PHOTOS)}


def new_page(browser, url: str) -> Page:
    return _new_page(browser, url, height=1000)


@pytest.fixture(scope="module")
def server():
    with streamlit_server("streamlit-layers.log") as url:
        yield url


def plot(page: Page, key: str):
    """The Plotly figure of the chart with that element key."""
    return page.locator(f".st-key-{key} .js-plotly-plot")


def click_marker(page: Page, key: str, trace: str, match: str) -> None:
    """Click where Plotly drew the marker of `trace` (a trace name, or its prefix ending in
    '*') whose customdata satisfies the JavaScript predicate `match` (on d)."""
    p = plot(page, key)
    p.scroll_into_view_if_needed()
    x, y = p.evaluate(f"""gd => {{
        const want = {trace!r};
        const t = gd._fullData.find(t => want.endsWith('*') ? t.name.startsWith(want.slice(0, -1))
                                                            : t.name === want);
        const i = t.customdata.findIndex(d => {match});
        const xa = gd._fullLayout[t.xaxis.replace('x', 'xaxis')];
        const ya = gd._fullLayout[t.yaxis.replace('y', 'yaxis')];
        const box = gd.getBoundingClientRect();
        return [box.left + xa._offset + xa.l2p(t.x[i]), box.top + ya._offset + ya.l2p(t.y[i])];
    }}""")
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)


def layer_names(page: Page) -> list[str]:
    return plot(page, "arch_strip").evaluate("gd => gd.layout.meta[0].layers.map(l => l[0])")


def test_click_a_layer_and_a_class_cell_on_a_scene(server, browser):
    page = new_page(browser, f"{server}/architecture")
    expect(page.locator("h1").first).to_have_text("Architecture")
    check_figures(page, 2)  # strip, channels (the traced cell and the costs: folded)
    names = layer_names(page)
    assert names[0] == "conv1" and names[-1].endswith("class scores")
    # a click on the fourth layer's column: its channels, larger
    click_marker(page, "arch_strip", "layers", "d[0] === 3")
    grid = plot(page, "arch_channels")
    expect(grid).to_be_attached()
    page.wait_for_function(
        "n => document.querySelector('.st-key-arch_channels .js-plotly-plot')"
        "?.layout?.title?.text?.includes(n + ':')", arg=names[3])
    settle(page)
    assert page.get_by_role("combobox", name=re.compile("^Layer")).input_value() \
        .endswith(names[3]) or names[3] in page.locator(".st-key-arch_layer").inner_text()
    red = plot(page, "arch_strip").evaluate(
        "gd => gd.layout.shapes.filter(s => s.line && s.line.color === 'red').length")
    assert red == 1
    # The traced cell, drawn when its expander opens (the link says so): the class maps and
    # the window; a click on a cell other than the picked one draws that cell's window.
    page.locator('[data-testid="stExpander"] summary').filter(
        has_text="Which part of the image").click()
    check_figures(page, 4)
    page.wait_for_function("() => location.search.includes('atrace=1')")
    settle(page)
    row, col = (int(page.get_by_label(re.compile(r"^Row \(0-")).input_value()),
                int(page.get_by_label(re.compile(r"^Column \(0-")).input_value()))
    want = (0, 1) if (row, col) != (0, 1) else (0, 0)
    click_marker(page, "arch_out_click", "cells*", f"d[1] === {want[0]} && d[2] === {want[1]}")
    expect(page.get_by_label(re.compile(r"^Column \(0-"))).to_have_value(str(want[1]))
    expect(page.get_by_label(re.compile(r"^Row \(0-"))).to_have_value(str(want[0]))
    settle(page)
    title = plot(page, "arch_trace").evaluate("gd => gd.layout.title.text")
    assert f"cell ({want[0]},{want[1]})" in title
    check_page(page)
    # The layers' tables and cost chart, drawn when their expander opens; the link says so.
    page.locator('[data-testid="stExpander"] summary').filter(has_text="Tables: map sizes").click()
    expect(page.locator(".ovf-table")).to_have_count(3)
    check_figures(page, 5)
    page.wait_for_function("() => location.search.includes('asizes=1')")
    assert "atrace=1" in page.evaluate("() => location.search")
    check_page(page)
    plot(page, "arch_strip").scroll_into_view_if_needed()
    screenshot(page, "layers-1-scene-architecture")
    page.close()


def test_click_a_neck_map_and_a_stride_32_cell_with_the_objects_model(server, browser):
    # the traced cell's section open from the link
    page = new_page(browser, f"{server}/architecture?img=photo&p={PHOTO['dog.jpg']}&model=objects"
                    "&atrace=1")
    expect(page.locator("h1").first).to_have_text("Architecture")
    check_figures(page, 4)
    names = layer_names(page)
    neck = names.index("neck P3, stride 8")
    click_marker(page, "arch_strip", "layers", f"d[0] === {neck}")
    page.wait_for_function(
        "n => document.querySelector('.st-key-arch_channels .js-plotly-plot')"
        "?.layout?.title?.text?.includes(n + ':')", arg=names[neck])
    settle(page)
    # the stride-32 map's cell (1, 2): the map and the stride follow the click
    last = len(names) - 1
    click_marker(page, "arch_out_click", "cells, stride 32",
                 f"d[0] === {last} && d[1] === 1 && d[2] === 2")
    expect(page.get_by_label(re.compile(r"^Column \(0-"))).to_have_value("2")
    expect(page.get_by_label(re.compile(r"^Row \(0-"))).to_have_value("1")
    settle(page)
    title = plot(page, "arch_trace").evaluate("gd => gd.layout.title.text")
    assert "stride 32, cell (1,2)" in title
    legend = plot(page, "arch_trace").evaluate(
        "gd => gd.data.map(t => t.name).filter(n => n && n.startsWith('nominal window'))")
    assert legend == ["nominal window (160x160 px at this scale)"]
    check_page(page)
    screenshot(page, "layers-2-objects-architecture")
    page.close()


def test_offsets_page_draws_one_row_of_offsets(server, browser):
    page = new_page(browser, f"{server}/offsets")
    expect(page.locator("h1").first).to_have_text("Offsets")
    # folded on arrival, drawn when its expander opens (the link says so)
    expect(page.locator(".st-key-off_strip")).to_have_count(0)
    page.locator('[data-testid="stExpander"] summary').filter(has_text="One row of offsets").click()
    page.wait_for_function("() => location.search.includes('ofig3=1')")
    strip = plot(page, "off_strip")
    strip.scroll_into_view_if_needed()
    names = strip.evaluate("gd => gd._fullData.filter(t => t.type === 'heatmap').map(t => t.name)")
    assert names == ["pre-pool", "offset 0", "offset 1", "offset 2", "interleaved"]
    # every number in it is written with two decimals
    texts = strip.evaluate("gd => [...gd.querySelectorAll('text')].map(t => t.textContent)"
                           ".filter(s => /^-?\\d+\\.\\d+$/.test(s))")
    assert texts and all(re.fullmatch(r"-?\d+\.\d{2}", s) for s in texts)
    check_page(page)
    screenshot(page, "layers-3-scene-offsets")
    page.close()
