"""The bench's notion of "the page changed" (tests/load_app.py, PROBE_JS), in Chromium on a plain
page: every change a person could see moves the page's last change, and a change inside React
Aria's live announcer (a clipped 1x1 px node for screen readers, whose announcements a timer
removes 7 s after they were made) does not. Before this, such a removal fell into whatever
interaction ran 7 s after a selectbox opened and ended its time there (docs/BENCHMARKS.md,
"The late change nobody sees")."""

from __future__ import annotations

import pytest

from load_app import PROBE_JS

# The announcer as React Aria builds it (Streamlit's LiveAnnouncer chunk): a visually hidden
# node prepended to body, with an assertive and a polite log.
PAGE = """<!doctype html><html><body>
<div id="app"><p id="text">answer</p><div id="plot"></div></div>
</body></html>"""

ANNOUNCER_JS = """() => {
  const node = document.createElement('div');
  node.dataset.liveAnnouncer = 'true';
  Object.assign(node.style, {border: 0, clip: 'rect(0 0 0 0)', clipPath: 'inset(50%)',
    height: '1px', margin: '-1px', overflow: 'hidden', padding: 0, position: 'absolute',
    width: '1px', whiteSpace: 'nowrap'});
  for (const a of ['assertive', 'polite']) {
    const log = document.createElement('div');
    log.setAttribute('role', 'log');
    log.setAttribute('aria-live', a);
    log.setAttribute('aria-relevant', 'additions');
    node.appendChild(log);
  }
  document.body.prepend(node);
}"""

# Each change, and whether a person could see it.
CHANGES = [
    ("announce", True, """() => { const d = document.createElement('div');
        d.textContent = '20 options available.';
        document.querySelector('[data-live-announcer] [role=log]').appendChild(d); }"""),
    ("announcement removed", True,
     "() => document.querySelector('[data-live-announcer] [role=log] div').remove()"),
    ("announcement text", True, """() => { const d = document.createElement('div');
        d.textContent = 'a'; document.querySelector('[data-live-announcer] [aria-live=polite]')
        .appendChild(d); d.firstChild.data = 'b'; }"""),
    ("log cleared", True,
     "() => { document.querySelector('[data-live-announcer] [role=log]').innerHTML = ''; }"),
    ("text", False, "() => { document.getElementById('text').firstChild.data = 'new answer'; }"),
    ("node added", False,
     "() => document.getElementById('plot').appendChild(document.createElement('svg'))"),
    ("attribute", False, "() => document.getElementById('plot').setAttribute('style', 'width:9px')"),
    ("body child", False,
     "() => document.body.appendChild(document.createElement('div'))"),
]


@pytest.fixture()
def page(browser):
    p = browser.new_page()
    p.set_content(PAGE)
    p.evaluate(PROBE_JS)
    p.evaluate(ANNOUNCER_JS)
    yield p
    p.close()


def last_change_after(page, change_js: str) -> tuple[float, float]:
    """(the probe's last change before, after) the change, with the clock moved on between."""
    page.wait_for_timeout(30)
    before = page.evaluate("() => window.__ofp.lastMut")
    page.wait_for_timeout(30)
    page.evaluate(change_js)
    page.wait_for_timeout(30)  # the observer's callback is a microtask: long since run
    return before, page.evaluate("() => window.__ofp.lastMut")


@pytest.mark.parametrize("name,unseen,js", CHANGES, ids=[c[0] for c in CHANGES])
def test_only_changes_a_person_can_see_move_the_last_change(page, name, unseen, js):
    if name in ("announcement removed", "log cleared"):
        page.evaluate(CHANGES[0][2])  # something to remove
    before, after = last_change_after(page, js)
    if unseen:
        assert after == before, f"{name}: the live announcer's change counted as a change"
        # ... but it is noted apart (the bench reports it when it came after the last change)
        assert page.evaluate("() => window.__ofp.lastUnseen") > before
    else:
        assert after > before, f"{name}: a visible change was not counted"


def test_a_batch_with_one_visible_change_counts(page):
    """An announcement and a visible change in the same task: one observer callback with both
    records, which must count."""
    both = ("() => { (" + CHANGES[0][2] + ")(); (" + CHANGES[4][2] + ")(); }")
    before, after = last_change_after(page, both)
    assert after > before


def test_adding_or_removing_the_announcer_itself_does_not_count(browser):
    p = browser.new_page()
    p.set_content(PAGE)
    p.evaluate(PROBE_JS)
    before, after = last_change_after(p, ANNOUNCER_JS)
    assert after == before
    before, after = last_change_after(
        p, "() => document.querySelector('[data-live-announcer]').remove()")
    assert after == before
    p.close()
