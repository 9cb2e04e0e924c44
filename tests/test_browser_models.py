"""The sidebar's model switch in a real browser (issue 13): a sample photo with the pictogram
checkpoint, then a click on "ImageNet (EfficientNet-Lite0)" - the Scales page redraws with the
photo's top ImageNet class; the Regressor page says in one line that this net has no boxes, with a
button to the Objects model; the Faces model on the astronaut photo steps through its real
merge; the Objects model, chosen from the suggestion on a photo, draws its boxes.

Same set-up as tests/test_browser.py (tests/browser_helpers.py, the browser fixture of
tests/conftest.py). Screenshots at 1400x1000 (and in presenter mode) go to
test-artifacts/models-*.png; the README shows two of them.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from browser_helpers import (SLOW, check_bars, check_figures, check_page, merge_step,
                             screenshot, settle, sidebar, streamlit_server,
                             wait_for_merge_step)
from browser_helpers import new_page as _new_page
from overfeat.models import registry as zoo
from overfeat.app import state as appstate


def new_page(browser, url: str) -> Page:
    """A tab at the 1400x1000 a teacher's screen shows."""
    return _new_page(browser, url, height=1000)


PHOTO = {name: i for i, (name, _) in enumerate(appstate.PHOTOS)}
CATS = ("Egyptian cat", "tiger cat", "tabby")


@pytest.fixture(scope="module")
def server():
    with streamlit_server("streamlit-models.log") as url:
        yield url


def class_box(page: Page):
    """The page's class picker (the first selectbox of the main column)."""
    return page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').first


def picked_class(page: Page) -> str:
    """The picker's label and chosen option, as the accessibility tree reads them."""
    return class_box(page).aria_snapshot()


def wait_for_cat(page: Page) -> None:
    deadline = SLOW / 1000
    while not any(c in picked_class(page) for c in CATS):
        page.wait_for_timeout(500)
        deadline -= 0.5
        assert deadline > 0, picked_class(page)


def test_switch_to_imagenet_on_a_cat_photo(server, browser):
    page = new_page(browser, f"{server}/scales?img=photo&p={PHOTO['cat.jpg']}")
    expect(page.locator("h1").first).to_have_text("Scales")
    # The pictogram checkpoint knows no cats.
    assert not any(c in picked_class(page) for c in CATS), picked_class(page)
    sidebar(page).get_by_text(zoo.CARDS["imagenet"].label).click()
    settle(page)
    wait_for_cat(page)
    assert "model=imagenet" in page.url
    check_figures(page, 1)  # the maps (the spatial maxima are HTML bars)
    check_bars(page, 1)
    check_page(page)
    screenshot(page, "models-1-imagenet-scales-cat")

    page.locator('[data-testid="stSidebarNav"] a', has_text="Regressor").click()
    settle(page)
    note = page.locator('[data-testid="stAlertContentInfo"]', has_text="no box regressor")
    expect(note).to_contain_text(zoo.CARDS["objects"].label)
    expect(page.get_by_role("button", name="Use Objects", exact=True)).to_be_visible()
    assert page.locator(".js-plotly-plot").count() == 0
    check_page(page)

    # Presenter mode keeps the model and the photo.
    page.locator('[data-testid="stSidebarNav"] a', has_text="Scales").click()
    settle(page)
    sidebar(page).get_by_text("Presenter mode").click()
    settle(page)
    assert "present=1" in page.url and "model=imagenet" in page.url
    # Presenter mode folds the page's controls into one expander (the maps come first).
    page.get_by_text("Class, flips and colours").click()
    wait_for_cat(page)
    check_figures(page, 1)  # the maps (the spatial maxima are HTML bars)
    check_bars(page, 1)
    check_page(page)
    screenshot(page, "models-2-imagenet-scales-presenter")
    page.close()


def test_faces_model_steps_through_a_real_merge(server, browser):
    page = new_page(browser, f"{server}/merge?img=photo&p={PHOTO['astronaut.jpg']}&model=faces")
    expect(page.locator("h1").first).to_have_text("Merge")
    radio = sidebar(page).get_by_role("radio", name=zoo.CARDS["faces"].label)
    expect(radio).to_be_checked()
    step, n, _ = merge_step(page, "corrected")
    assert step == 0 and n >= 10  # hundreds of raw face boxes, many merge steps
    for k in (1, 2):
        page.locator(".st-key-merge_next button").first.click()  # its name has the key hint
        wait_for_merge_step(page, "corrected", k)
        settle(page)
    step, _, text = merge_step(page, "corrected")
    assert step == 2 and re.search(r"merged pair \(\d+, \d+\)", text)
    check_page(page)
    screenshot(page, "models-3-faces-merge")
    page.close()


def test_switch_to_the_objects_model_on_a_photo(server, browser):
    """A sample photo with the pictogram checkpoint: the suggestion's "Use Objects" button
    switches the model; the Overview draws its pipeline (the stages this model has) and the
    answer's boxes over the photo, and lists them with score and confidence."""
    page = new_page(browser, f"{server}/?img=photo&p={PHOTO['horses.jpg']}")
    expect(page.locator("h1").first).to_have_text("OverFeat, step by step")
    label = zoo.CARDS["objects"].label
    expect(page.locator('[data-testid="stAlertContentInfo"]',
                        has_text="A photo of things?")).to_contain_text(label)
    page.get_by_role("button", name="Use Objects", exact=True).click()
    settle(page)
    expect(sidebar(page).get_by_role("radio", name=label)).to_be_checked()
    assert "model=objects" in page.url
    expect(page.locator('[data-testid="stAlertContentInfo"]',
                        has_text="A photo of things?")).to_have_count(0)
    expect(page.get_by_text("Set for " + label)).to_be_visible()
    check_figures(page, 2)  # the pipeline, then the answer
    plot = page.locator(".js-plotly-plot").nth(1)
    boxes = plot.evaluate(
        "gd => gd.data.filter(t => t.name === 'horse' && t.mode === 'lines').length")
    assert boxes >= 3, boxes
    table = page.locator('.ovf-table').first
    expect(table).to_contain_text("score")
    expect(table).to_contain_text("confidence")
    check_page(page)
    plot.first.scroll_into_view_if_needed()
    screenshot(page, "models-4-objects-overview")

    # A page that needs boxes, back with ImageNet: one line and a button to Objects.
    sidebar(page).get_by_text(zoo.CARDS["imagenet"].label).click()
    settle(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Detection").click()
    settle(page)
    expect(page.locator('[data-testid="stAlertContentInfo"]',
                        has_text="no box regressor")).to_be_visible()
    page.get_by_role("button", name="Use Objects", exact=True).click()
    settle(page)
    expect(sidebar(page).get_by_role("radio", name=label)).to_be_checked()
    # the detections (no background class: no map of it), the sample photos' PR curves
    check_figures(page, 2)
    expect(page.locator('.ovf-table').first).to_contain_text("TP")
    check_page(page)
    screenshot(page, "models-5-objects-detection")
    page.close()
