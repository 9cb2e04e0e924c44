"""The classroom features in a real browser: a shared link opens the same page, sample image
and knobs; presenter mode enlarges the text; every figure's modebar offers "Download plot as a
PNG"; a tiny training run started from the Training page ends and its checkpoint becomes the
model.

Same set-up as tests/test_browser.py (streamlit run as a subprocess, Debian's Chromium via
Playwright: tests/browser_helpers.py and the browser fixture of tests/conftest.py); the server
writes its training runs under a temporary folder (OVERFEAT_APP_TRAIN_DIR). Screenshots go to
test-artifacts/teach-*.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from browser_helpers import check_page, new_page, screenshot, settle, sidebar, streamlit_server
from overfeat.app import state as appstate

# The view a teacher shares: Scales page, gallery scene 5, scales 1 and 3, no flips, no
# offsets, top-2 classes, the literal match score.
LINK = "scales?img=gallery&g=4&scales=0,2&flips=0&fine=0&topk=2&score=literal&knobs=1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app with its training runs in a temporary folder: (URL, that folder)."""
    runs = tmp_path_factory.mktemp("app-train")
    with streamlit_server("streamlit-teach.log", {"OVERFEAT_APP_TRAIN_DIR": str(runs)}) as url:
        yield url, runs


def test_a_shared_link_opens_the_same_view(server, browser):
    url, _ = server
    page = new_page(browser, f"{url}/{LINK}")
    expect(page.locator("h1").first).to_have_text("Scales")
    label = appstate.gallery_label(*appstate.GALLERY[4])
    expect(page.get_by_text(f"Image: {label}")).to_be_visible()
    sb = sidebar(page)
    assert label in sb.locator('[data-testid="stSelectbox"]', has_text="Sample scene").aria_snapshot()
    expect(sb.get_by_role("checkbox", name="Flips")).not_to_be_checked()
    expect(sb.get_by_role("checkbox", name="Offsets")).not_to_be_checked()
    pills = sb.locator('[data-testid="stButtonGroup"]').first
    chosen = [b.inner_text().split(":")[0] for b in pills.locator("button").all()
              if b.get_attribute("aria-pressed") == "true"]
    assert chosen == ["1", "3"], pills.aria_snapshot()
    expect(sb.locator('[data-testid="stSlider"]', has_text="top-k")).to_contain_text("2")
    expect(sb.get_by_role("radiogroup", name="Match score").get_by_role(
        "radio", name="literal")).to_be_checked()
    # The page shows what those knobs give: 2 scales x no flips = 2 views.
    expect(page.get_by_text(re.compile(r"Your choice: scales 1, 3, flips off \(2 views\)"))).to_be_visible()
    # The address bar still holds the view (the app rewrote it in its own order).
    for part in ("g=4", "scales=0%2C2", "flips=0", "fine=0", "topk=2", "score=literal"):
        assert part in page.url, (part, page.url)
    check_page(page)
    screenshot(page, "teach-1-shared-link")

    # The modebar of a figure offers the PNG download (Plotly's toImage, in the browser).
    plot = page.locator(".js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    plot.hover()
    expect(plot.locator('.modebar-btn[data-title="Download plot as a PNG"]')).to_have_count(1)

    # A bad value in a link is ignored with a note.
    page.goto(f"{url}/{LINK.replace('topk=2', 'topk=99')}")
    settle(page)
    expect(page.get_by_text("link parameter topk='99' ignored: expected 1..5")).to_be_visible()
    expect(page.locator("h1").first).to_have_text("Scales")
    check_page(page)
    page.close()


def test_presenter_mode_enlarges_the_text_and_hides_controls(server, browser):
    url, _ = server
    page = new_page(browser, f"{url}/?g=3&scales=0,1&flips=0&knobs=1")
    size = lambda: page.evaluate("getComputedStyle(document.documentElement).fontSize")  # noqa: E731
    assert size() == "16px"
    assert sidebar(page).get_by_text("top-k classes per scale").count() == 1
    sidebar(page).get_by_text("Presenter mode").click()
    settle(page)
    assert size() == "21px"
    assert sidebar(page).get_by_text("top-k classes per scale").count() == 0
    assert sidebar(page).locator('[data-testid="stFileUploader"]').count() == 0
    assert "present=1" in page.url
    check_page(page)
    screenshot(page, "teach-2-presenter")
    page.close()


def test_a_tiny_training_run_in_the_browser(server, browser):
    url, runs = server
    page = new_page(browser, f"{url}/training?scales=0&flips=0")
    expect(page.locator("h1").first).to_have_text("Training")
    # Typed, then the button (Enter in a form's field submits the form too: with Enter and
    # the click, a run quick enough to end in between was followed by a second one).
    page.get_by_label("Generated scenes").fill("6")
    page.get_by_role("button", name="Start training").click()
    # (the run trains at the lowest CPU priority: on a busy machine it waits for a free core)
    expect(page.get_by_text(re.compile(r"Its checkpoint is in the sidebar"))).to_be_visible(
        timeout=600_000)
    settle(page)
    assert len(list(runs.glob("*/model.pt"))) == 1
    expect(page.locator('[data-testid="stProgress"]')).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(1)
    screenshot(page, "teach-3-training")
    sidebar(page).get_by_text("Trained in the app").click()
    settle(page)
    expect(page.get_by_text(re.compile(r"Model: trained in the app: run-"))).to_be_visible()
    check_page(page)
    screenshot(page, "teach-4-trained-model")
    page.close()
