"""A page's first visit in a tab (issue 27, speed), in Chromium: the tab's first page loads the
code of every element kind that Streamlit's frontend loads lazily and the lesson's pages use
(app_pages/common.warm_elements), so that no later page waits for a chunk of it; what draws
them is hidden (no space, nothing to see or focus) and gone after the next run."""

from __future__ import annotations

import pytest

from browser_helpers import HEIGHT, WIDTH, check_page, go, screen_page, settle

pytestmark = pytest.mark.slow
# Streamlit's lazily loaded chunks (the file names' stems) of st.metric, st.number_input,
# st.multiselect, st.slider and st.image
CHUNKS = ("Metric", "NumberInput", "Multiselect", "Slider", "ImageList")
SCRIPTS_JS = """() => performance.getEntriesByType('resource').map(e => e.name)
  .filter(n => n.endsWith('.js')).map(n => n.split('/').pop())"""
WARM = ".st-key-lazy_warmup"


def test_the_first_page_loads_the_lazy_elements_so_later_pages_fetch_no_script(browser, server):
    ctx, page = screen_page(browser, dict(viewport={"width": WIDTH, "height": HEIGHT}))
    # every script the tab fetches is listed (the buffer's default is 250 entries of any kind)
    ctx.add_init_script("performance.setResourceTimingBufferSize(100000)")
    page.goto(f"{server}/?scales=0,1&flips=0")
    settle(page)
    check_page(page)
    first = page.evaluate(SCRIPTS_JS)
    for stem in CHUNKS:
        assert any(n.startswith(f"{stem}.") for n in first), (stem, first)
    # Hidden: not displayed, and the block holding it takes no room in the page either.
    warm = page.locator(WARM)
    assert warm.count() == 1
    assert warm.evaluate("e => getComputedStyle(e).display") == "none"
    assert not warm.is_visible()
    holder = warm.evaluate("e => e.parentElement.getBoundingClientRect().height")
    assert holder == 0
    assert page.locator(f"{WARM} input").evaluate_all("es => es.every(e => e.disabled)")
    for name in ("Architecture", "Offsets", "Regressor", "Merge"):
        go(page, name)
        check_page(page)
        assert page.evaluate(SCRIPTS_JS) == first, name  # nothing fetched: no chunk waited for
        assert page.locator(WARM).count() == 0  # the next run dropped it
    ctx.close()
