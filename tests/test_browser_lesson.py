"""The lesson in Chromium (issue 27): presenter mode at 1280x720 follows the Next links through
every page of the lesson with the sidebar collapsed and each page's main visual in the upper
part of the first screen; metric values are larger than their labels and tables are not cut;
on a phone (390x844, a phone's User-Agent) every page of the lesson shows its main visual in
the first half of the screen, nothing but a table wider than the screen, the Overview's
pipeline stacked; the camera works from the phone's browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from browser_helpers import SLOW, PHONE, PROJECTOR, check_page, screen_page, settle

pytestmark = pytest.mark.slow
VISUAL = ('[data-testid="stMain"] :is(.js-plotly-plot, [data-testid="stImage"], '
          '.ovf-table, [data-testid="stForm"])')
TITLES = ("Overview", "Architecture", "Scales", "Offsets", "Regressor", "Merge",
          "Detection", "Greedy vs NMS", "Experiments", "Efficiency", "Training")


# Where the main visual must start (px from the window's top): in presenter mode at 1280x720 in
# the upper part of the screen, so what the room sees is mostly the figure (the header line and
# the title take ~150 px); on a phone (390x844) within its first half, right after the title
# (the header, the title and an expander or two take ~300 px).
PRESENTER_TOP, PHONE_TOP = 330, 450
PICTOGRAMS_ONLY = "this model knows only pictograms"  # app.py's header note on a photo


def first_visual_top(page) -> float:
    """The top of the first visual on screen (one in a closed expander does not count)."""
    box = page.locator(f"{VISUAL} >> visible=true").first.bounding_box()
    assert box is not None
    return box["y"]


def walk(page, check) -> list[str]:
    """Follow the foot's Next links through the lesson, calling check(page, title) on each
    page; returns the last page's URL path."""
    for i, title in enumerate(TITLES):
        expect(page.locator("h1").first).to_have_text(
            "OverFeat, step by step" if title == "Overview" else title)
        settle(page)
        page.locator(f"{VISUAL} >> visible=true").first.wait_for()  # the main visual is drawn
        settle(page)
        check(page, title)
        if i + 1 < len(TITLES):
            page.get_by_text(f"Next: {TITLES[i + 1]}", exact=True).click()
    return page.url.split("?")[0]


def test_presenter_mode_walks_the_lesson_with_each_figure_on_the_first_screen(browser, server):
    ctx, page = screen_page(browser, PROJECTOR)
    page.goto(f"{server}/?present=1&scales=0,1&flips=0")
    settle(page)
    # The sidebar is collapsed: the page has the whole width.
    expect(page.locator('[data-testid="stSidebar"]')).to_have_attribute("data-collapsed", "true")
    tops = {}

    def check(page, title):
        check_page(page)
        tops[title] = first_visual_top(page)
        assert tops[title] < PRESENTER_TOP, (title, tops[title])
        for m in page.locator('[data-testid="stMetric"]').all()[:4]:
            value = m.locator('[data-testid="stMetricValue"]').evaluate(
                "e => parseFloat(getComputedStyle(e).fontSize)")
            label = m.locator('[data-testid="stMetricLabel"] p').first.evaluate(
                "e => parseFloat(getComputedStyle(e).fontSize)")
            assert value > label, (title, value, label)
        for t in page.locator('.ovf-table').all()[:3]:
            cut = t.evaluate("e => e.getBoundingClientRect().right > window.innerWidth + 1")
            assert not cut, title

    assert walk(page, check).endswith("/training")
    ctx.close()


def test_a_phone_sees_each_figure_right_after_the_title(browser, server):
    """Every page of the lesson on a phone: its main visual starts in the first half of the
    screen, nothing but a table is wider than the screen, and the Overview's pipeline is
    stacked (taller than wide, so its boxes' texts do not overlap)."""
    ctx, page = screen_page(browser, PHONE)
    page.goto(f"{server}/?scales=0,1&flips=0")
    settle(page)
    tops = {}

    def check(page, title):
        assert page.locator('[data-testid="stException"]').count() == 0
        tops[title] = first_visual_top(page)
        assert tops[title] < PHONE_TOP, (title, tops[title])
        wide = page.evaluate("""() => [...document.querySelectorAll(
            '[data-testid="stMain"] [data-testid="stElementContainer"]')]
            .filter(e => e.checkVisibility() && !e.querySelector('.ovf-table')
                    && e.getBoundingClientRect().right > window.innerWidth + 1)
            .map(e => e.innerText.slice(0, 40))""")
        assert wide == [], (title, wide)
        if title == "Overview":
            box = page.locator(".js-plotly-plot").first.bounding_box()
            assert box["height"] > box["width"]

    assert walk(page, check).endswith("/training")
    ctx.close()


@pytest.mark.parametrize("screen", ["projector", "phone"])
def test_a_photo_with_the_pictogram_model_keeps_each_figure_on_the_first_screen(
        browser, server, screen):
    """A class's own photo with the default (pictogram) model: the suggestion of the models
    made for photos is one short line on the Overview (with its buttons beside it), and the
    other pages end their header with PICTOGRAMS_ONLY instead, so every page's main visual
    starts where it does on a pictogram scene. (The whole notice above every page had pushed
    the figures to 453-527 px of a 720 px projector, 550-720 px of a phone.)"""
    presenter = screen == "projector"
    ctx, page = screen_page(browser, PROJECTOR if presenter else PHONE)
    query = "img=photo&p=0&scales=0,1&flips=0" + ("&present=1" if presenter else "")
    top = PRESENTER_TOP if presenter else PHONE_TOP
    for path in ("", "regressor", "merge"):
        page.goto(f"{server}/{path}?{query}")
        settle(page)
        page.locator(f"{VISUAL} >> visible=true").first.wait_for()
        settle(page)
        check_page(page)
        y = first_visual_top(page)
        assert y < top, (path, y)
        note = page.locator(".st-key-suggest")
        if path == "":
            expect(note).to_be_visible()
            expect(note).to_contain_text("A photo of things?")
            expect(note.get_by_role("button", name="Use Objects", exact=True)).to_be_visible()
            # One line of small type, then the buttons (beside it on a projector, under it on
            # a phone): not the 190 px (projector) or 300 px (phone) of the whole notice.
            h = note.bounding_box()["height"]
            assert h < (70 if presenter else 120), h
        else:
            expect(note).to_have_count(0)
            head = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]')
            expect(head.first).to_contain_text(PICTOGRAMS_ONLY)
    ctx.close()


def test_a_phone_takes_a_photo_with_its_camera(browser, server):
    """The camera input from a phone's browser: Chromium's fake camera (a test pattern) at
    390x844 with a phone's User-Agent; the photo taken becomes the image every page shows."""
    from browser_helpers import CHROMIUM, LAUNCH_ARGS

    # A second Chromium of the same Playwright, started with a fake camera.
    b = browser.browser_type.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS + [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
    try:
        ctx = b.new_context(**PHONE, permissions=["camera"])
        page = ctx.new_page()
        page.set_default_timeout(SLOW)
        page.goto(f"{server}/?scales=0,1&flips=0")
        settle(page)
        sb = page.locator('[data-testid="stSidebar"]')
        if sb.get_attribute("data-collapsed") == "true":  # a phone starts with it closed
            page.locator('[data-testid="stExpandSidebarButton"]').click()
        sb.get_by_text("Camera", exact=True).click()
        settle(page)
        take = sb.get_by_role("button", name="Take Photo")
        expect(take).to_be_enabled()
        # Streamlit enables the button once the camera's stream is granted, but a click takes
        # nothing while the video has no frame yet (react-webcam's getScreenshot returns null
        # while videoHeight is 0), as a person would not click before the picture shows. Once,
        # beside three other browser test files (session 46), the caption never named the
        # photo; this is the one way to lose a click that Streamlit's code shows.
        # It failed so once more (full suite, session 47; never alone). The code shows a second
        # way to lose a click: Streamlit's camera debounces its width by 1 s and then hands
        # react-webcam new video constraints, which stops and restarts the stream, so a click
        # in that moment finds no frame (which way the failure met is not known). A person
        # clicks again once the picture is back: so does the test, at most 3 times, and says
        # so. A photo taken shows "Clear photo".
        for tries in range(1, 4):
            page.wait_for_function("() => { const v = document.querySelector("
                                   "'[data-testid=\"stCameraInputWebcamComponent\"] video');"
                                   " return !!v && v.videoHeight > 0; }")
            take.click()
            try:
                expect(sb.get_by_role("button", name="Clear photo")).to_be_visible(timeout=15_000)
                break
            except AssertionError:
                print(f"Take Photo took nothing (click {tries}): clicking again")
        else:
            pytest.fail("three clicks on Take Photo took no photo")
        settle(page)
        caption = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]').first
        # Waited for, not read at once: the photo is uploaded before its run starts, and on a
        # busy machine settle() saw the page quiet before that run (CI, session 40: the
        # caption still named the sample scene).
        expect(caption).to_contain_text(re.compile(r"Image: .*(camera|photo)", re.I))
        text = caption.inner_text()
        assert page.locator('[data-testid="stException"]').count() == 0
        # Presenter mode on and off: the camera comes back without its photo (Streamlit drops
        # a hidden widget's file), and the photo taken stays the image.
        sb.get_by_text("Presenter mode", exact=True).click()
        settle(page)
        if sb.get_attribute("data-collapsed") == "true":
            page.locator('[data-testid="stExpandSidebarButton"]').click()
        sb.get_by_text("Presenter mode", exact=True).click()
        settle(page)
        expect(sb.get_by_role("button", name="Take Photo")).to_be_visible()
        assert caption.inner_text() == text
    finally:
        b.close()


def test_link_button_and_lesson_views_in_the_browser(browser, server):
    """Save the view to the lesson from the link button, open it again from the sidebar's
    Lesson views after moving elsewhere. Replays the browser walk's seed 15 step 12 too: the
    closed expander's 'Load the pasted lesson' button is laid out but not rendered, so the
    walk's scan (browser_walk.SCAN_JS) must not offer it (a click on it timed out)."""
    from browser_walk import SCAN_JS

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(SLOW)
    page.goto(f"{server}/merge?page=merge&scales=0,1&flips=0&step=4")
    settle(page)
    labels = [b["label"] for b in page.evaluate(SCAN_JS)["stButton"]]
    assert "Load the pasted lesson" not in labels  # inside the closed Lesson views
    page.get_by_role("button", name="Link to this view").click()
    expect(page.locator('[data-testid="stCode"]', has_text="/merge?").first).to_contain_text(
        "step=4")  # the link, ready to copy
    page.get_by_label("Save as").fill("Boat, step 4")
    page.get_by_role("button", name="Save to the lesson").click()
    settle(page)
    page.keyboard.press("Escape")
    page.locator('[data-testid="stSidebarNav"] a', has_text="Scales").click()
    settle(page)
    sb = page.locator('[data-testid="stSidebar"]')
    sb.get_by_text("Lesson views (1)").click()
    labels = [b["label"] for b in page.evaluate(SCAN_JS)["stButton"]]
    assert "Load the pasted lesson" in labels  # open now: a target like any other
    sb.get_by_role("button", name="1. Boat, step 4").click()
    settle(page)
    expect(page.locator("h1").first).to_have_text("Merge")
    assert "step=4" in page.url
    page.close()


def test_the_walk_opens_a_collapsed_sidebar_before_using_it(browser, server):
    """Replays the browser walk's seed 19 step 10 (CI, session 40): presenter mode collapsed
    the sidebar and the walk clicked a page link in it, off the screen, until its 180 s ran
    out. The walk's scan (browser_walk.SCAN_JS) offers no sidebar widget while it is collapsed
    and says so; opening it ("sidebar") offers them again, and a page link then works."""
    from browser_walk import SCAN_JS

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(SLOW)
    page.goto(f"{server}/?scales=0,1&flips=0&present=1")
    settle(page)
    w = page.evaluate(SCAN_JS)
    assert w["sidebarCollapsed"]
    assert not w["stSidebarNavLink"]
    assert not [c for kind in ("stCheckbox", "stRadio", "stButtonGroup") for c in w[kind]
                if c["sidebar"]]
    page.locator('[data-testid="stExpandSidebarButton"]').click()
    expect(page.locator('[data-testid="stSidebar"]')).to_have_attribute("data-collapsed",
                                                                          "false")
    w = page.evaluate(SCAN_JS)
    assert not w["sidebarCollapsed"]
    links = [x["label"] for x in w["stSidebarNavLink"]]
    assert "Greedy vs NMS" in links, links
    page.locator('[data-testid="stSidebarNavLink"]', has_text="Greedy vs NMS").click()
    settle(page)
    expect(page.locator("h1").first).to_have_text("Greedy vs NMS")
    page.close()


def test_presenter_mode_keeps_the_folded_tables_and_grids_on_the_screen(browser, server):
    """The sections drawn only while open (the Architecture page's traced cell and layer
    tables, the Offsets page's Fig. 3 strip and difference grids), opened by a link in
    presenter mode at 1280x720: every table, figure and picture fits the screen's width."""
    ctx, page = screen_page(browser, PROJECTOR)
    # the Offsets page: 3 Plotly figures (coarse/fine maps, window, Fig. 3 strip) and 4
    # pictures (the two grids of k*k maps and the two difference grids, figures.grids)
    for path, tables, plots, pics in (("architecture?asizes=1&atrace=1", 3, 5, 0),
                                      ("offsets?odiffs=1&ofig3=1", 0, 3, 4)):
        page.goto(f"{server}/{path}&present=1&scales=0,1&flips=0")
        settle(page)
        check_page(page)
        main = page.locator('[data-testid="stMain"]')
        expect(main.locator(".ovf-table")).to_have_count(tables)
        expect(main.locator(".js-plotly-plot")).to_have_count(plots)
        # (visible ones: the first page of a session also draws common.warm_elements' hidden one)
        expect(main.locator('[data-testid="stImage"] img:visible')).to_have_count(pics)
        for el in main.locator('.ovf-table, .js-plotly-plot, [data-testid="stImage"] img:visible').all():
            assert el.evaluate("e => e.getBoundingClientRect().right <= window.innerWidth + 1"), \
                path
    ctx.close()
