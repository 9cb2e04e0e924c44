"""The link follows every change at once (issue 27): on every page, each widget whose setting a
link carries is changed once; right after that run the URL holds the new value, and a new
session opened on that URL shows the same value. A page control that changes what is on the
screen but that no link carries fails the test too (known exceptions are named)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1.element_tree import (ButtonGroup, Checkbox, Multiselect, NumberInput,
                                               Radio, Selectbox, SelectSlider, Slider, Toggle)

from apptest_helpers import CHEAP, PAGES, ok, open_link
from overfeat.app import share
from overfeat.app import state as appstate

KINDS = (ButtonGroup, Checkbox, Multiselect, NumberInput, Radio, Selectbox, SelectSlider,
         Slider, Toggle)
# Widgets that are not a view of the lesson: the image and model pickers' own inputs (the
# link has img/g/p/model), presenter mode is linked but switches the whole layout, training
# and experiment settings (a link must not start a run), the figure-size cap of the Merge page.
NOT_VIEW = {"presenter", "img_source", "model_source", "gallery", "photo", "preset",
            "app_ckpt", "exp_n", "eff_scale", "train_stages", "train_epochs", "train_scenes",
            "train_kind", "train_width", "gloss_find", "scene_seed", "scene_kind",
            "lesson_paste", "link_name", "merge_playing"}  # Play: a link opens paused


def change(w, param) -> bool:
    """Set the widget to another valid value; False when it has none to offer."""
    v = w.value
    if isinstance(w, (Checkbox, Toggle)):
        w.set_value(not v)
    elif isinstance(w, Slider):
        w.set_value(w.max if v != w.max else w.min)
    elif isinstance(w, NumberInput):
        step = w.step or 1
        w.set_value(v + step if w.max is None or v + step <= w.max else v - step)
    elif isinstance(w, Selectbox):
        if len(w.options) < 2:
            return False
        w.select_index(len(w.options) - 1 if w.index != len(w.options) - 1 else 0)
    elif isinstance(w, (Radio, SelectSlider)) and param.options:
        others = [o for o in param.options if o != v]
        if not others:
            return False
        w.set_value(others[-1])
    elif isinstance(w, (ButtonGroup, Multiselect)) and isinstance(v, list):
        opts = [o for o in (param.options or range(param.lo, param.hi + 1))]
        new = v[:-1] if len(v) > 1 else [o for o in opts if o not in v][:1] + v
        if new == v:
            return False
        w.set_value(new)
    else:
        return False
    return True


def query(at) -> dict[str, str]:
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", [p for p in PAGES])
def test_each_linked_widget_writes_the_url_at_once(name):
    # The sidebar's knobs once (on the Overview, their folded section opened by the link),
    # each page's own controls on that page.
    link = {**CHEAP, "page": name, **({"knobs": "1"} if name == "overview" else {})}
    at = open_link(link)
    keys = {p.key: p for p in share.LINKED}
    checked, unlinked = [], []
    roots = ("main", "sidebar") if name == "overview" else ("main",)
    for root, w in [(r, x) for r in roots for x in getattr(at, r) if isinstance(x, KINDS)]:
        key = getattr(w, "key", None)
        if not key or key in NOT_VIEW or getattr(w.proto, "disabled", False):
            continue
        if key not in keys:
            unlinked.append(key)
            continue
        fresh = open_link(link)
        target = next((x for x in getattr(fresh, root) if getattr(x, "key", None) == key), None)
        if target is None or not change(target, keys[key]):
            continue
        ok(fresh.run())
        value = fresh.session_state[key]
        q = query(fresh)
        want = share.encode({k: fresh.session_state[k] if k in fresh.session_state else None
                             for k in share.SHARED_KEYS}, name, len(appstate.GALLERY))
        assert q.get(keys[key].name) == want.get(keys[key].name), (key, q.get(keys[key].name))
        again = open_link(q)
        assert again.session_state[key] == value, (key, value, again.session_state[key])
        checked.append(key)
    assert not unlinked, f"page controls no link carries on {name}: {unlinked}"
    if name == "overview":  # the folded knobs were there to change
        assert {"top_k", "min_score", "score", "t_corrected", "average"} <= set(checked), checked
    assert checked or name in QUIET, f"no linked widget found on {name}"


QUIET = {"training", "glossary", "experiments", "efficiency"}  # no view setting of their own
