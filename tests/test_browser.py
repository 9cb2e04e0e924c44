"""End to end in a real browser: `streamlit run app.py` as a subprocess, Debian's Chromium
driven by Playwright. Uploads an image through the file uploader, visits every page, checks
that the Plotly figures are drawn (an svg inside each .js-plotly-plot), steps the merge, plays
it, clicks a cell of the fine map, and saves a full-page screenshot of every page under
test-artifacts/ (git-ignored) for a person to look at.

AppTest (tests/test_app.py) checks what the pages compute; only a browser runs the JavaScript
that draws the charts and turns clicks into selections. tests/run.sh installs Chromium, so
these tests run (never skip) wherever the suite runs. The server and browser fixtures are in
tests/conftest.py, the helpers in tests/browser_helpers.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from browser_helpers import (check_bars, check_figures, check_margins, check_page, go, merge_step, new_page,
                             screenshot, settle, wait_for_merge_step)

PAGES = ["Overview", "Architecture", "Scales", "Offsets", "Regressor", "Merge"]
# Plotly figures each page draws (with offsets on, the default); Architecture's traced cell (its
# class maps and window) and cost chart, the Offsets page's Fig. 3 strip and two difference
# grids are in expanders drawn only while open.
BARS = {"Scales": 1}  # HTML bar charts (overfeat.app.bars)
FIGURES = {"Overview": 2, "Architecture": 2, "Scales": 1, "Offsets": 2, "Regressor": 1, "Merge": 0}
# Issue 27: the Merge page draws its step and its final boxes as pictures (JPEGs), the Offsets
# page its two grids of k*k maps (PNGs), by key.
PICTURES = {"Offsets": ["off_pooled", "off_classmaps"],
            "Merge": ["merge_fig_corrected", "merge_final_corrected"]}


@pytest.fixture(scope="module")
def image_file(tmp_path_factory) -> Path:
    """A small drawn picture to upload (small images keep the analysis quick)."""
    im = Image.new("RGB", (320, 280), (150, 190, 230))
    d = ImageDraw.Draw(im)
    d.rectangle((0, 200, 320, 280), fill=(110, 160, 80))
    d.ellipse((90, 70, 210, 200), fill=(200, 70, 50))
    d.rectangle((230, 110, 290, 230), fill=(60, 60, 140))
    path = tmp_path_factory.mktemp("upload") / "picture.png"
    im.save(path)
    return path


@pytest.fixture(scope="module")
def app(server, browser, image_file) -> Page:
    """One browser tab on the app, with the picture uploaded; the tests below run in order."""
    # A deep link as the server's very first request: the page runs inside app.py (with a
    # pages/ folder, Streamlit's old multipage mode ran the page file alone on a fresh server).
    # min=0, topk=1: the drawn picture is no pictogram; only then does every window give a box.
    page = new_page(browser, f"{server}/architecture?min=0&topk=1")
    expect(page.locator("h1").first).to_have_text("Architecture")
    # (waiting: on a loaded machine the title can be drawn before the sidebar's uploader)
    expect(page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"]')).to_have_count(1)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        str(image_file))
    expect(page.get_by_text(re.compile(r"Image: upload picture\.png"))).to_be_visible()
    settle(page)
    yield page
    page.close()


# --- tests (in order, one tab) -----------------------------------------------------------------
@pytest.mark.parametrize("name", PAGES)
def test_every_page_draws_its_figures(app: Page, name: str):
    go(app, name)
    expect(app.get_by_text(re.compile(r"Image: upload picture\.png"))).to_be_visible()
    check_figures(app, FIGURES[name])
    check_margins(app)  # each figure drawn once: no margin grown for a label
    check_bars(app, BARS.get(name, 0))
    for key in PICTURES.get(name, []):
        _picture(app, key)
    check_page(app)
    screenshot(app, f"{PAGES.index(name) + 1}-{name.lower()}")


KINDS = ("literal", "corrected")
MAIN = "corrected"  # the sidebar's default match score: the Merge page's main figure


def _picture(page: Page, key: str) -> str:
    """A picture's URL (its name is a hash of its bytes) once the browser has decoded it."""
    img = page.locator(f".st-key-{key} img").first
    img.scroll_into_view_if_needed()
    img.wait_for()
    page.wait_for_function("k => { const i = document.querySelector(`.st-key-${k} img`);"
                           " return i && i.complete && i.naturalWidth > 0; }", arg=key)
    return img.get_attribute("src")


def test_merge_steps_forward(app: Page):
    go(app, "Merge")
    steps = {kind: merge_step(app, kind)[1] for kind in KINDS}
    # Issue 27: the sidebar's score (corrected) is the one figure drawn and sets the stepper's
    # range; the other score's text stays at its last step.
    longest = MAIN
    assert steps[longest] >= 2
    assert merge_step(app, longest)[0] == 0
    shown = [_picture(app, f"merge_fig_{MAIN}")]
    pairs = []
    for n in (1, 2):
        app.locator(".st-key-merge_next button").first.click()  # its name carries the key hint
        wait_for_merge_step(app, longest, n)
        settle(app)
        for kind in KINDS:
            step, _, text = merge_step(app, kind)
            assert step == min(n, steps[kind])
            if step:
                assert re.search(r"merged pair \(\d+, \d+\)", text) and "match score" in text
        # A new picture for the new step (what it draws, the pair on top: test_merge_page.py
        # and test_app.py read its drawn items).
        shown.append(_picture(app, f"merge_fig_{MAIN}"))
        assert shown[-1] != shown[-2]
        text = merge_step(app, longest)[2]
        pairs.append(re.search(r"merged pair \(\d+, \d+\)", text).group(0))
    assert pairs[0] != pairs[1]  # the counter moved and so did the pair
    check_page(app)
    screenshot(app, "7-merge-step-2")


def test_merge_play_and_pause(app: Page):
    longest = MAIN
    start, n, _ = merge_step(app, longest)
    play = app.get_by_role("switch", name="Play", exact=True)
    app.get_by_text("Play", exact=True).click()
    expect(play).to_be_checked()
    # The fragment ticks every 0.7 s: several steps within seconds, with no click.
    wait_for_merge_step(app, longest, min(start + 3, n), timeout=30_000)
    app.get_by_text("Play", exact=True).click()  # one click, while the timer keeps rerunning
    expect(play).not_to_be_checked()
    settle(app)
    stopped = merge_step(app, longest)[0]
    assert stopped >= min(start + 3, n)
    app.wait_for_timeout(2000)
    assert merge_step(app, longest)[0] == stopped
    check_page(app)


def test_offsets_click_a_cell_of_the_fine_map(app: Page):
    go(app, "Offsets")
    row = app.get_by_label(re.compile(r"^Row of the fine map"))
    col = app.get_by_label(re.compile(r"^Column of the fine map"))
    outlined = _picture(app, "off_classmaps")  # the picked cell outlined in its offset's map
    plot = app.locator(".st-key-off_click .js-plotly-plot")  # coarse | fine
    plot.scroll_into_view_if_needed()
    # Where Plotly drew fine cell (0, 1): the clickable marker at its window's corner.
    x, y = plot.evaluate("""gd => {
        const t = gd._fullData.find(t => t.name === 'cells');
        const i = t.customdata.findIndex(d => d[0] === 0 && d[1] === 1);
        const xa = gd._fullLayout[t.xaxis.replace('x', 'xaxis')];
        const ya = gd._fullLayout[t.yaxis.replace('y', 'yaxis')];
        const box = gd.getBoundingClientRect();
        return [box.left + xa._offset + xa.l2p(t.x[i]), box.top + ya._offset + ya.l2p(t.y[i])];
    }""")
    app.mouse.move(x, y)
    app.wait_for_timeout(300)
    app.mouse.click(x, y)
    expect(col).to_have_value("1")
    expect(row).to_have_value("0")
    settle(app)
    title = app.locator(".st-key-off_window .js-plotly-plot").evaluate("gd => gd.layout.title.text")
    assert "cell (0,1) = offset (1,0), cell (0,0) of its map" in title
    assert _picture(app, "off_classmaps") != outlined  # redrawn with the new cell outlined
    expect(app.get_by_text("the red square is the picked cell (0,1) of the fine map below: "
                           "map (1,0), cell (0,0)", exact=False)).to_be_visible()
    check_page(app)
    screenshot(app, "8-offsets-clicked")


def test_regressor_click_a_box_centre(app: Page):
    go(app, "Regressor")
    picked = app.get_by_role("combobox", name=re.compile(r"^Picked box"))
    before = picked.input_value()
    plot = app.locator(".js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    # A centre marker with no other marker within 15 px, where Plotly drew it: a click there can
    # only mean that box (markers of other boxes nearby would be as right an answer for Plotly's
    # nearest-point pick). Without such a marker, the last one and every box centred on its spot.
    box_id, x, y, same_spot = plot.evaluate("""gd => {
        const r = gd.getBoundingClientRect();
        const px = (t, i) => {
            const xa = gd._fullLayout[t.xaxis.replace('x', 'xaxis')];
            const ya = gd._fullLayout[t.yaxis.replace('y', 'yaxis')];
            return [r.left + xa._offset + xa.l2p(t.x[i]), r.top + ya._offset + ya.l2p(t.y[i])];
        };
        const centres = gd._fullData.filter(t => t.name.startsWith('centres'));
        const pts = centres.flatMap(u => u.customdata.map((d, j) => [d, ...px(u, j)]));
        for (const [d, x, y] of pts) {
            if (pts.every(([e, a, b]) => e === d || Math.hypot(a - x, b - y) > 15)) {
                return [d, x, y, [d]];
            }
        }
        const [d, x, y] = pts[pts.length - 1];
        return [d, x, y, pts.filter(([e, a, b]) => Math.hypot(a - x, b - y) < 2).map(p => p[0])];
    }""")
    assert box_id in same_spot
    app.mouse.move(x, y)
    app.wait_for_timeout(300)
    app.mouse.click(x, y)
    if not before.startswith(f"#{box_id}:"):
        expect(picked).not_to_have_value(before)
    settle(app)
    pick = int(re.search(r"#(\d+):", picked.input_value()).group(1))
    assert pick in same_spot
    names = plot.evaluate("gd => gd._fullData.map(t => t.name)")
    assert f"window of box #{pick}" in names and f"box #{pick}" in names
    check_page(app)
    screenshot(app, "9-regressor-clicked")
