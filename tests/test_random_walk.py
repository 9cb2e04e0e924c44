"""The seeded random walk through the whole app (tests/random_walk.py) in CI: several seeds,
a few hundred actions together, two sessions side by side, every page and model. The long run
(thousands of actions) is a documented command: docs/ROBUSTNESS.md.

A failure names the seed, the step and the command that replays it; each failure the walk has
found is also replayed by a test of its own (tests/test_app_robust.py).
"""

from __future__ import annotations

import pytest

from random_walk import PAGES, walk

SEEDS = (101, 102, 103, 104)
STEPS = 65  # per seed: ~1 s an action on two cores (75 until the suite neared CI's 20 minutes)


@pytest.fixture(scope="module")
def results() -> list[dict]:
    out = []
    for seed in SEEDS:
        res = walk(seed, STEPS, per_example=STEPS)
        print(f"random walk seed {seed}: {res['actions']} actions in {res['seconds']} s, "
              f"pages {res['pages']}, models {res['models']}")
        out.append(res)
    return out


def test_the_walk_passes_and_covers_the_app(results):
    assert sum(r["actions"] for r in results) >= 0.95 * len(SEEDS) * STEPS
    pages = set().union(*(r["pages"] for r in results))
    models = set().union(*(r["models"] for r in results))
    assert pages == set(PAGES), f"pages never visited: {set(PAGES) - pages}"
    assert {"default", "zoo:imagenet", "zoo:faces", "zoo:objects"} <= models, models
    kinds = set().union(*(r["by_kind"] for r in results))
    assert {"page", "upload", "image", "model", "sidebar", "widget", "interrupted", "link",
            "garbage", "checkpoint", "rerun", "section"} <= kinds, kinds
