"""A seeded random walk through the app in a real browser (issue 25, part 4): tests/browser_walk.py
clicks, types, uploads (good and bad files), switches pages and models and opens share links
and garbage links, and checks after every action that the run ended, with no exception, no
"This app has encountered an error", no traceback on the page or in the server's log, no
JavaScript error and no error box but a bad file's one-line message.

Two fixed seeds, 44 actions together (about 2 minutes on a 2-core machine); a
failure names the seed and step to replay:

    .venv/bin/python tests/browser_walk.py --seed SEED --steps STEP

The walk must also have covered a minimum: 5 pages, 2 models, a good upload and a bad file
(the seeds below do; a change in the app that makes them miss it fails here, so pick other
seeds then). The server and browser fixtures are in tests/conftest.py.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from browser_helpers import ARTIFACTS, server_log_name
from browser_walk import VIEWPORT, Walker, WalkFailure, format_summary, walk

# Chosen for their coverage (see the module docstring): on the app of 2026-12-05, 25 steps of
# seed 15 visit 7 pages, 2 models, an upload and a bad file; seed 19 4 models and 2 bad files.
SEEDS = (15, 19)
STEPS = 22  # (30, then 25, until the suite neared CI's 20 minutes)


def test_random_walk(server, browser):
    records = []
    for seed in SEEDS:
        try:
            records.append(walk(browser, server, seed, STEPS,
                                server_log=ARTIFACTS / server_log_name(__name__),
                                timeout_s=180))
        except WalkFailure as e:
            raise AssertionError(str(e)) from None
    print(format_summary(records, sum(r.seconds for r in records)))
    assert all(r.steps == STEPS and not r.failures for r in records)
    pages = set().union(*(r.pages for r in records))
    models = set().union(*(r.models for r in records))
    assert len(pages) >= 5, f"the walk visited only {sorted(pages)}"
    assert len(models) >= 2, f"the walk used only {sorted(models)}"
    assert sum(r.uploads for r in records) >= 1, "the walk uploaded no image"
    assert sum(r.bad_files for r in records) >= 1, "the walk uploaded no bad file"


# What the page holds, for a scripted step whose action is not offered.
_STATE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const side = document.querySelector('[data-testid="stSidebar"]');
  const user = document.querySelector('[data-testid="stSidebarUserContent"]');
  return {state: app && app.getAttribute('data-test-script-state'),
          sidebar_collapsed: side && side.getAttribute('data-collapsed'),
          sidebar_elements: side ? side.querySelectorAll('[data-testid="stElementContainer"]').length : null,
          sidebar_text: user ? user.innerText.slice(0, 200) : null,
          main_text: (document.querySelector('[data-testid="stMain"]') || {innerText: ''}).innerText.slice(0, 200)};
}"""


class _Scripted(Walker):
    """A walk whose actions are given (each must be one the walk offers at that step) and whose
    file picks take truncated.jpg whenever it is on offer: the replay does not depend on the
    random path, which a page's timing can change."""

    def __init__(self, *a, script, **kw):
        super().__init__(*a, **kw)
        self.script = script

    def offered(self, w):
        """The script's action, once the page offers it. In CI (session 45, a loaded 2-core
        machine) step 1 once found the sidebar without a widget (the navigation and one
        expander only) right after the start had settled; not seen since in 25 starts here.
        So the scan is repeated for up to 15 s, and a miss reports what the page held."""
        want = self.script[self.step - 1]
        kinds = super().offered(w)
        t0 = time.monotonic()
        while want not in kinds and time.monotonic() < t0 + 15:
            self.page.wait_for_timeout(500)
            w.clear()
            w.update(self.scan())
            kinds = super().offered(w)
            if want in kinds:  # pytest shows it with the test's output (-s, or a failure)
                self.out(f"step {self.step}: {want} offered after {time.monotonic() - t0:.1f} s")
        assert want in kinds, (self.step, want, sorted(kinds), self.page.evaluate(_STATE_JS))
        return {want: 1}

    def pick(self, items):
        names = [getattr(x, "name", None) for x in items]
        return items[names.index("truncated.jpg")] if "truncated.jpg" in names \
            else super().pick(items)


def test_walk_seed_40_uploads_another_file_than_the_one_held(server, browser):
    """Replays the browser walk's seed 40 step 14 (a 3 x 60-step run, session 40): after
    truncated.jpg was uploaded and the source switched to a sample scene, the walk chose
    truncated.jpg again. Chromium fires no change event for the file an input already holds,
    so the app never saw it, and the walk's check wanted its error box. The walk now picks
    among the other files (browser_walk.Walker._held). Scripted (upload_bad, source,
    upload_bad), truncated.jpg preferred whenever offered: the same situation on every run."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    folder = Path(tempfile.mkdtemp(prefix="walk-held-"))
    try:
        page = context.new_page()
        page.set_default_timeout(180_000)
        walker = _Scripted(page, server, 40, 3, ARTIFACTS / server_log_name(__name__), 180,
                           folder, keep_going=True, script=["upload_bad", "source", "upload_bad"])
        r = walker.run()
    finally:
        context.close()
        shutil.rmtree(folder, ignore_errors=True)
    assert r.steps == 3 and not r.failures, r.failures
    step = {int(x.split()[3]): x for x in r.log if x.startswith("seed 40 step")}
    assert "upload_bad" in step[1] and "truncated.jpg" in step[1], step[1]  # held since then
    assert "upload_bad" in step[3] and "truncated.jpg" not in step[3], step[3]
