"""Fixtures shared by several test files, and the `slow` marker.

Fixtures: `server` and `browser` for the browser tests (one Streamlit subprocess and one
Chromium per test module; the helpers they use are in tests/browser_helpers.py), `train_root`
for the app's training jobs, and a tiny random OverFeat (`tiny_config`, `tiny_model`,
`tiny_ckpt`) for the tests that need a real model or checkpoint but not a trained one. The
AppTest helpers are in tests/apptest_helpers.py.

`pytest -m "not slow"` runs the fast unit tests (under a minute on two cores); `bash
tests/run.sh` runs everything.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

# The app analyses the other sample scenes in the background while a sample scene is shown
# (app_pages/common.py, prefetch_gallery): off in the tests (AppTest and the servers they start
# inherit it), so that background work neither competes with them nor shows up in their counts;
# test_app_caches.py turns it on where it tests it.
os.environ["OVERFEAT_PREFETCH_GALLERY"] = "0"

# Test modules marked slow as a whole (file names without .py, fnmatch patterns): the app in
# AppTest (minutes together), the app in a browser, the benchmark, training runs, the load
# driver and the replica set-up. Single slow tests elsewhere carry @pytest.mark.slow.
SLOW_MODULES = ("test_app*", "test_browser*", "test_lesson_pages", "test_bench", "test_train",
                "test_load", "test_deploy")


# The longest modules (a minute or more each on two cores), run first: tests/run.sh runs two
# pytest workers that take whole modules in this order (pytest-xdist, --dist loadfile), so a
# long module started last would leave one worker running it alone at the end.
LONG_FIRST = ("test_browser_walk", "test_bench", "test_random_walk", "test_browser_lesson",
              "test_load", "test_browser_models", "test_browser_scales", "test_browser",
              "test_browser_legends")


def pytest_collection_modifyitems(config, items):
    slow = pytest.mark.slow
    for item in items:
        if any(fnmatch.fnmatch(item.path.stem, p) for p in SLOW_MODULES):
            item.add_marker(slow)
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: a module's
    # tests keep their order, and the other modules theirs


# --- browser -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(request):
    """The app (`streamlit run app.py`) on a free port; yields its URL, stopped at the end.
    Its output goes to test-artifacts/streamlit-<module>.log."""
    from browser_helpers import server_log_name, streamlit_server

    with streamlit_server(server_log_name(request.module.__name__)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (tests/run.sh installs it)."""
    from playwright.sync_api import sync_playwright

    from browser_helpers import CHROMIUM, LAUNCH_ARGS

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: tests/run.sh installs it (apt)"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


# --- the app's training jobs ---------------------------------------------------------------------
@pytest.fixture()
def train_root(tmp_path, monkeypatch) -> Path:
    """Runs write under a temporary folder; the registry is restored afterwards."""
    from overfeat.app import jobs

    monkeypatch.setattr(jobs, "ROOT", tmp_path)
    monkeypatch.setattr(jobs, "_CURRENT", None)
    return tmp_path


# --- a tiny random OverFeat ----------------------------------------------------------------------
# The accurate geometry at 1/32 of the channels: the shapes are the real network's, the
# arithmetic cheap. The last class is the background.
TINY = dict(geometry="accurate", width=1 / 32, num_classes=3, class_names=("a", "b", "bg"),
            background=True, regressor_channels=(32, 8))


@pytest.fixture()
def tiny_config():
    """tiny_config(**overrides) -> the tiny model's ModelConfig with those fields changed."""
    from overfeat.config import ModelConfig

    def make(**kw):
        return ModelConfig(**{**TINY, **kw})

    return make


@pytest.fixture()
def tiny_model(tiny_config):
    """tiny_model(names=("a", "b", "bg"), **overrides) -> the tiny OverFeat with those classes
    (the last one the background), random weights drawn after torch.manual_seed(0), in eval
    mode."""
    import torch

    from overfeat.models.overfeat import OverFeat

    def make(names=TINY["class_names"], **kw):
        torch.manual_seed(0)
        return OverFeat(tiny_config(num_classes=len(names), class_names=names, **kw)).eval()

    return make


@pytest.fixture()
def tiny_ckpt(tmp_path, tiny_model):
    """(path, model): tiny_model() saved as tmp_path/tiny.pt with meta {"note": "test"}."""
    from overfeat.checkpoint import save_checkpoint

    model = tiny_model()
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, model, meta={"note": "test"})
    return path, model
