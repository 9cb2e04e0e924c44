"""Issue 16: what makes a page switch cheap (app_pages/common.py: built figures and derived
analyses kept per key of what they show; overfeat.geometry's memoised map sizes) must never
show a stale figure. AppTest runs the pages in this process, so a counting wrapper around a
package figure tells how often the app built it."""

from __future__ import annotations

import json

import pytest
import torch

from apptest_helpers import ctx, figures, ok, page, pictures, start
from app_pages import common
from overfeat import geometry
from overfeat.app import figures as figmod
from overfeat.app import state as appstate
from overfeat.app import share
from overfeat.predict import load_model


@pytest.fixture
def counted(monkeypatch):
    """{name: calls} of some package figures, wrapped (the pages call figures.<name>)."""
    calls: dict[str, int] = {}

    def wrap(name):
        real = getattr(figmod, name)

        def build(*args, **kw):
            calls[name] = calls.get(name, 0) + 1
            return real(*args, **kw)
        build.__qualname__ = real.__qualname__
        monkeypatch.setattr(figmod, name, build)

    for name in ("merge_figure", "final_boxes_figure", "scale_maps_figure", "window_figure"):
        wrap(name)
    common._figure.clear()
    return calls


def test_key_part_keeps_plain_values_and_marks_objects():
    assert common._key_part(("a", 1, 2.5, None, True)) == ("a", 1, 2.5, None, True)
    rows = [{"class": "dog", "score": 0.5}, {"class": "cat", "score": 0.25}]
    assert common._key_part(rows) == ((("class", "dog"), ("score", 0.5)),
                                      (("class", "cat"), ("score", 0.25)))
    assert common._key_part(rows) != common._key_part(rows[:1])
    assert common._key_part(torch.zeros(3)) == "*"
    assert common._key_part([1, torch.zeros(3)]) == "*"  # a list holding a tensor is an object
    assert common._key_part({"box": torch.zeros(4)}) == "*"


def test_a_page_switch_reuses_the_figures_and_a_new_step_or_mode_rebuilds_them(counted):
    # Issue 27: the Merge page's step picture and final boxes are JPEGs (figures.raster), not
    # Plotly figures: no figure is built for them, and the same view gives the same image (its
    # URL names its bytes, so the browser keeps it), a new step or mode a new one.
    at = ok(start())
    on_overview = counted.get("final_boxes_figure", 0)  # the Overview's answer
    ok(page(at, "merge"))
    assert counted.get("merge_figure", 0) == 0
    assert counted.get("final_boxes_figure", 0) == on_overview
    first = pictures(at)
    assert sorted(first) == ["merge_fig_corrected", "merge_final_corrected"]
    ok(page(at, "overview"))
    ok(page(at, "merge"))
    assert {k: v["url"] for k, v in pictures(at).items()} == {
        k: v["url"] for k, v in first.items()}  # the same images again

    ok(at.button(key="merge_next").click().run())
    step1 = pictures(at)["merge_fig_corrected"]
    assert step1["url"] != first["merge_fig_corrected"]["url"]  # step 1 is a new picture
    assert step1["title"].startswith("corrected: step 1/")
    ok(page(at, "overview"))
    ok(page(at, "merge"))
    assert pictures(at)["merge_fig_corrected"]["title"] == step1["title"]  # kept step

    at.sidebar.toggle(key="presenter").set_value(True).run()
    ok(at)
    big = pictures(at)["merge_fig_corrected"]["font_size"]
    assert big > first["merge_fig_corrected"]["font_size"]  # drawn in presenter style



def test_a_sidebar_change_rebuilds_and_a_new_image_never_shows_the_old_figure(counted):
    at = ok(page(start(), "scales"))
    before = figures(at)["scales_maps"]
    n = counted["scale_maps_figure"]
    at.sidebar.button_group(key="scales").set_value([0, 2])
    ok(at.run())
    assert counted["scale_maps_figure"] == n + 1
    names = [t["name"] for t in figures(at)["scales_maps"]["data"] if t["type"] == "heatmap"]
    assert names == ["scale 1", "scale 3"]
    assert ctx(at).analysis().settings.scales == (0, 2)

    # Another image (a sample scene): its own figure, the first image's nowhere.
    at.sidebar.radio(key="img_source").set_value("gallery")
    ok(at.run())
    after = figures(at)["scales_maps"]
    assert json.dumps(after) != json.dumps(before)
    src = [im["source"] for im in after["layout"].get("images", [])]
    assert src and src[0] == ctx(at).backdrop(figmod.PANEL_SIDE).uri


def test_the_offsets_window_follows_the_picked_cell(counted):
    at = ok(page(start(), "offsets"))
    t0 = figures(at)["off_window"]["layout"]["title"]["text"]
    r = at.number_input(key="off_row")
    r.set_value(0 if r.value else 1)
    ok(at.run())
    t1 = figures(at)["off_window"]["layout"]["title"]["text"]
    assert t1 != t0 and t1.startswith(f"cell ({at.number_input(key='off_row').value},")


def test_derived_analyses_are_the_same_object_until_a_choice_changes():
    at = ok(start())
    a1 = ctx(at).analysis()
    ok(page(at, "scales"))
    assert ctx(at).analysis() is a1  # cached: figures built from it stay valid
    at.sidebar.checkbox(key="flips").uncheck()
    ok(at.run())
    a2 = ctx(at).analysis()
    assert a2 is not a1 and not a2.settings.flips and len(a2.views) == len(a1.views) // 2


def test_memoised_geometry_matches_a_fresh_computation_and_hands_out_copies():
    cfg = load_model()[0].cfg
    m = geometry.meta_model(cfg)
    for size in [(221, 221), (257, 301), (400, 333)]:
        got = geometry.scale_geometry(m, size)
        geometry._scale_geometry.cache_clear()
        assert geometry.scale_geometry(m, list(size)) == got  # the same as computed afresh
        got.windows = -1  # a caller's copy: the cache keeps its own
        assert geometry.scale_geometry(m, size).windows != -1
        rows = geometry.layer_table(cfg, size)
        rows[0].macs = -1
        assert geometry.layer_table(cfg, size)[0].macs != -1
    geometry._dense_macs.cache_clear()
    fresh = geometry.dense_macs(cfg, (257, 301))
    assert geometry.dense_macs(cfg, (257, 301)) == fresh > geometry.dense_macs(cfg, (221, 221))


def test_the_server_config_skips_the_full_gc_and_keeps_large_messages():
    """.streamlit/config.toml: no gc.collect(2) after each run (0.15 s of CPU a click), and
    the browser keeps large messages for 50 runs (a page seen again arrives as hashes). A
    misspelt option would be ignored without a word, so the names are checked against
    Streamlit's own."""
    import tomllib
    from pathlib import Path

    from streamlit import config

    cfg = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml")
                        .read_text())
    assert cfg["runner"]["postScriptGC"] is False
    assert cfg["global"]["maxCachedMessageAge"] >= 10
    known = config._config_options_template
    for section, opts in cfg.items():
        for name in opts:
            assert f"{section}.{name}" in known, f"{section}.{name} is not a Streamlit option"


def test_the_other_merge_is_prefetched_after_the_overview_and_merge_finds_both(monkeypatch):
    """The Overview runs only the answer merge; the other one is computed in the background
    after the page (common.prefetch_merges), so the Merge page runs no merge at all."""
    import time

    from overfeat.multiscale import Analysis

    calls: list[str] = []
    real = Analysis.merge

    def counting(self, *args, **kw):
        calls.append(kw.get("score"))
        return real(self, *args, **kw)

    def drain():
        deadline = time.monotonic() + 120  # the worker finishes; not a timing assertion
        while common._prefetch_pending and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not common._prefetch_pending

    drain()  # other tests' prefetches are done before counting
    assert not common.PREFETCH_GALLERY  # off in the tests (conftest): the next test has it
    monkeypatch.setattr(Analysis, "merge", counting)
    common.merged.clear()
    at = ok(start(None, all_windows=False))  # one run: the sample scene at the defaults
    drain()
    assert sorted(calls) == ["corrected", "literal"]  # each merge once: the page's, the prefetch's
    ok(page(at, "merge"))
    assert sorted(calls) == ["corrected", "literal"]  # Merge found both in the cache
    assert pictures(at)["merge_fig_corrected"]["title"].startswith("corrected: step 0/")


def test_the_prefetch_starts_after_the_browser_has_drawn_the_page(monkeypatch):
    """The other merge is not computed while the browser draws the page the run sent: the
    prefetch starts PREFETCH_DELAY_S after the run (set long here, so that the check right
    after the run cannot race it), then fills the cache as before."""
    import time

    from overfeat.multiscale import Analysis

    calls: list[str] = []
    real = Analysis.merge

    def counting(self, *args, **kw):
        calls.append(kw.get("score"))
        return real(self, *args, **kw)

    deadline = time.monotonic() + 120  # other tests' prefetches end first
    while common._prefetch_pending and time.monotonic() < deadline:
        time.sleep(0.05)
    monkeypatch.setattr(common, "PREFETCH_DELAY_S", 5.0)
    monkeypatch.setattr(Analysis, "merge", counting)
    common.merged.clear()
    ok(start(None, all_windows=False))
    time.sleep(1.0)  # a merge takes 0.1 to 0.5 s here: started at once, it would be done
    assert len(calls) == 1 and len(common._prefetch_pending) == 1  # the page's merge only
    deadline = time.monotonic() + 120
    while common._prefetch_pending and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(calls) == ["corrected", "literal"]  # then the other one, in the background


def _drain_gallery(deadline_s: float = 300) -> None:
    import time

    deadline = time.monotonic() + deadline_s  # the worker finishes; not a timing assertion
    while (common._gallery_jobs or common._prefetch_pending) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not common._gallery_jobs and not common._prefetch_pending


def test_the_other_sample_scenes_are_analysed_once_the_server_is_idle(monkeypatch):
    """On a sample scene, the other samples and the first scene of "New scene from a seed"
    are analysed and merged in the background (common.prefetch_gallery), but only while no
    script run is in progress: a switch to another sample, or to the seed source, then runs
    neither the network nor a merge."""
    import time

    from overfeat.multiscale import Analysis

    _drain_gallery()
    monkeypatch.setattr(common, "PREFETCH_GALLERY", True)
    monkeypatch.setattr(common, "GALLERY_IDLE_S", 0.0)
    monkeypatch.setattr(common, "GALLERY_RETRY_S", 0.05)
    common.full_analysis.clear()
    common.merged.clear()
    common._gallery_done.clear()
    common.run_started()  # a script run in progress: the gallery job must wait
    try:
        at = ok(start(None, all_windows=False))  # the default sample scene
        deadline = time.monotonic() + 120  # the page's own merge prefetch ends first
        while common._prefetch_pending and time.monotonic() < deadline:
            time.sleep(0.05)
        analysed: list[tuple[int, int]] = []
        real_analyze, real_merge = common.analyze, Analysis.merge
        merges: list[str] = []

        def counting_analyze(model, image, *args, **kw):
            analysed.append(image.size)
            return real_analyze(model, image, *args, **kw)

        def counting_merge(self, *args, **kw):
            merges.append(kw.get("score"))
            return real_merge(self, *args, **kw)

        monkeypatch.setattr(common, "analyze", counting_analyze)
        monkeypatch.setattr(Analysis, "merge", counting_merge)
        time.sleep(1.0)
        assert analysed == []  # a run is in progress (ours): nothing started
        assert common._gallery_jobs  # but the job is waiting
    finally:
        common.run_ended()
    _drain_gallery()
    shown = share.BY_KEY["gallery"].default  # the first screen's scene
    seeded = (share.BY_KEY["scene_kind"].default, share.BY_KEY["scene_seed"].default, 0)
    others = [appstate.make_scene(*g)[0].size for i, g in enumerate(appstate.GALLERY)
              if i != shown] + [appstate.make_scene(*seeded)[0].size]
    assert sorted(analysed) == sorted(others)  # each other sample once, the one shown not again
    assert sorted(merges) == sorted(["literal", "corrected"] * len(others))
    analysed.clear()
    merges.clear()
    other = 0 if shown != 0 else 3
    at.sidebar.selectbox(key="gallery").set_value(other)
    ok(at.run())
    assert ctx(at).image_key == appstate.scene_key(*appstate.GALLERY[other])
    assert analysed == [] and merges == []  # the switch found the analysis and merges cached
    at.sidebar.radio(key="img_source").set_value("generate")
    ok(at.run())
    assert ctx(at).image_key == appstate.scene_key(*seeded)
    assert analysed == [] and merges == []  # so did the seed source's first scene
    _drain_gallery()
    assert analysed == [] and merges == []  # and nothing is analysed again


def test_a_fragments_rerun_counts_as_a_run_for_background_work(monkeypatch):
    """A fragment reruns alone, without app.py's count of runs: common.counted_run counts its
    body, so the gallery prefetch waits while the Merge page steps or plays (it ran a scene's
    analysis beside every step). Inside, the server is busy; after, idle again; an exception
    (st.rerun is one) still ends the count."""
    monkeypatch.setattr(common, "GALLERY_IDLE_S", 0.0)
    _drain_gallery()
    seen = []
    body = common.counted_run(lambda x: seen.append(common._server_idle()) or x + 1)
    assert common._server_idle() and body(1) == 2 and seen == [False]
    assert common._server_idle()

    def fails():
        assert not common._server_idle()
        raise RuntimeError("a rerun")

    with pytest.raises(RuntimeError):
        common.counted_run(fails)()
    assert common._server_idle() and common._runs["active"] == 0

    # The Merge page's stepper is such a body: a run of that page counts two (app.py's and
    # the fragment's), the Overview's one.
    at = ok(start(None, all_windows=False))
    counts = []
    real = common.run_started
    monkeypatch.setattr(common, "run_started", lambda: counts.append(1) or real())
    ok(page(at, "merge"))
    merge_runs = len(counts)
    counts.clear()
    ok(page(at, "overview"))
    assert (merge_runs, len(counts)) == (2, 1)


def test_a_background_scene_stops_within_a_step_when_a_run_starts(monkeypatch):
    """The gallery prefetch asks, before each of a scene's four steps (network, the sidebar's
    cut, two merges) and inside the two long ones (before each scale, every STOP_EVERY merge
    steps), whether the server is still idle: a run that starts meanwhile shares the CPU with
    one scale or a few merge steps, not with a whole step (~0.5 s on 2 cores). What was done
    stays cached, a step stopped half-way is not, and the scene goes on from there."""
    from overfeat.multiscale import Analysis

    _drain_gallery()
    at = ok(start(None, all_windows=False))
    _drain_gallery()
    c = ctx(at)
    shown = share.BY_KEY["gallery"].default
    g = appstate.GALLERY[0 if shown != 0 else 1]
    key, image = appstate.scene_key(*g), appstate.make_scene(*g)[0]
    common.full_analysis.clear()
    common.merged.clear()
    analysed: list = []
    merges: list = []
    real_analyze, real_merge = common.analyze, Analysis.merge
    monkeypatch.setattr(common, "analyze",
                        lambda *a, **kw: analysed.append(1) or real_analyze(*a, **kw))
    monkeypatch.setattr(Analysis, "merge",
                        lambda self, *a, **kw: merges.append(kw.get("score"))
                        or real_merge(self, *a, **kw))

    def after(n: int):
        """A stop that says 'a run started' from its n-th question on."""
        asked = []
        return lambda: asked.append(1) or len(asked) >= n, asked

    # idle before the step and for two scales; then a run starts: stopped in the network pass
    stop, asked = after(4)
    assert common._analyse_and_merge(c.model_key, key, c.knobs, c.model, image,
                                     stop=stop) is False
    assert len(analysed) == 1 and merges == [] and len(asked) == 4
    # nothing half-done was cached: the next try runs the network again, to the end
    stop, asked = after(10 ** 6)
    assert common._analyse_and_merge(c.model_key, key, c.knobs, c.model, image,
                                     stop=stop) is True
    assert len(analysed) == 2 and sorted(merges) == ["corrected", "literal"]
    assert len(asked) > 3 + len(appstate.Knobs().full_settings().scales)  # asked inside too
    # the analysis cached, a run starts during the first merge: it stops inside that merge
    common.merged.clear()
    merges.clear()
    stop, asked = after(4)  # before the network (cached), the cut, the merge; in the merge
    assert common._analyse_and_merge(c.model_key, key, c.knobs, c.model, image,
                                     stop=stop) is False
    assert len(analysed) == 2 and merges == ["literal"]
    stop, asked = after(10 ** 6)
    assert common._analyse_and_merge(c.model_key, key, c.knobs, c.model, image,
                                     stop=stop) is True
    assert len(analysed) == 2  # the network pass came from the cache
    assert merges == ["literal", "literal", "corrected"]  # the stopped merge done again


def test_magic_is_off_and_no_page_needs_it():
    """.streamlit/config.toml turns Streamlit's magic off (its syntax-tree rewrite cost each
    page's first run 5 to 25 ms): so no page may hold a bare expression that magic would have
    written to the page (checked with Streamlit's own rewrite: it adds no write call)."""
    import ast
    import tomllib
    from pathlib import Path

    from streamlit.runtime.scriptrunner import magic

    root = Path(__file__).resolve().parents[1]
    cfg = tomllib.loads((root / ".streamlit" / "config.toml").read_text())
    assert cfg["runner"]["magicEnabled"] is False
    scripts = [root / "app.py", *sorted((root / "app_pages").glob("*.py"))]
    assert len(scripts) > 10
    for path in scripts:
        tree = magic.add_magic(path.read_text(), str(path))
        writes = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call)
                  and "transparent_write" in ast.unparse(n.func)]
        assert not writes, f"{path.name}: a bare expression magic would write, line {writes}"
    # the check itself finds one
    probe = magic.add_magic("import streamlit as st\nx = 1\nx\n", "probe.py")
    assert "transparent_write" in ast.unparse(probe)
