"""The state table (overfeat.app.share): every value is checked before it reaches a page or the
link, and the link round-trips. Properties on random values (Hypothesis), no app.

Issue 25: the class picker's display text 'ox (0.103)' reached the int key `cls` and the link
writer raised on every run. Here: any value at all goes into encode() and clean_state(), and
neither raises; every valid state survives encode -> decode unchanged.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overfeat.app import share
from overfeat.app import state as appstate

N_GALLERY = len(appstate.GALLERY)
ANY = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**12),
                st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                st.lists(st.one_of(st.integers(-3, 1200), st.text(max_size=3)), max_size=5),
                st.just("ox (0.103)"), st.just(["1: 221x257"]))


def valid(p: share.Param):
    """A strategy of values the session may hold for p."""
    hi = N_GALLERY - 1 if p.hi is None else p.hi
    if p.kind == "flag":
        return st.booleans()
    if p.kind == "choice":
        return st.sampled_from(p.options + p.session_only) if p.options else st.text(
            "abc/._-", min_size=1, max_size=8)
    if p.kind == "ints":
        return st.lists(st.integers(int(p.lo), int(min(hi, 10**6))), max_size=6)
    if p.options:
        return st.sampled_from(p.options)
    if p.kind == "int":
        return st.integers(int(p.lo), int(min(hi, 10**9)))
    if p.grid:
        n = round((p.hi - p.lo) / p.grid)
        return st.integers(0, n).map(lambda i: round(p.lo + i * p.grid, 2))
    return st.floats(p.lo, p.hi, allow_nan=False)


@st.composite
def states(draw, junk: bool = False):
    """A session: every linked key valid (or, with junk, anything at all)."""
    out = {"img_source": draw(st.sampled_from(("gallery", "generate", "photo", "upload")))}
    for p in share.LINKED:
        if draw(st.booleans()):
            out[p.key] = draw(ANY if junk and draw(st.booleans()) else valid(p))
    return out


@given(states(junk=True), st.sampled_from(share.PAGES))
@settings(max_examples=400, deadline=None, derandomize=True, database=None)
def test_encode_never_raises_and_writes_only_what_decodes(state, page):
    q = share.encode(state, page, N_GALLERY)
    got, got_page, notes = share.decode(q, N_GALLERY)
    assert notes == [] and got_page == page
    for k, v in got.items():  # what the link carries is the session's value, checked
        if k == "photo" and not state.get(k):
            assert v == 0  # a sample photo not picked yet (None, or any falsy value) is the first
        elif k != "img_source":
            assert v == share.check(share.BY_KEY[k], state[k], N_GALLERY)


@given(states())
@settings(max_examples=400, deadline=None, derandomize=True, database=None)
def test_a_valid_state_round_trips(state):
    q = share.encode(state, "merge", N_GALLERY)
    got, _, notes = share.decode(q, N_GALLERY)
    assert not notes
    assert share.encode(got | {"img_source": state["img_source"]}, "merge", N_GALLERY) == q
    for k, v in got.items():
        if k == "img_source" or (k == "photo" and k not in state and v == 0):
            continue
        want = share.check(share.BY_KEY[k], state[k], N_GALLERY)
        assert v == want or (isinstance(v, float) and math.isclose(v, want)), (k, v, want)


@given(st.dictionaries(st.sampled_from([p.key for p in share.PARAMS]), ANY, max_size=8))
@settings(max_examples=400, deadline=None, derandomize=True, database=None)
def test_clean_state_replaces_exactly_the_invalid_values(state):
    fixes = share.clean_state(state, N_GALLERY)
    for k, v in state.items():
        p = share.BY_KEY[k]
        try:
            share.check(p, v, N_GALLERY)
            ok = True
        except ValueError:
            ok = False
        if v is None or ok:
            assert k not in fixes
        else:
            d = p.default
            assert fixes[k] == (None if d is share.PAGE_DEFAULT else d)
            if fixes[k] is not None:  # the default itself is valid
                share.check(p, fixes[k], N_GALLERY)


@pytest.mark.parametrize("key, value", [
    ("cls", "ox (0.103)"), ("cls", True), ("cls", 2.5), ("cls", 1000), ("scales", ["1: 221x257"]),
    ("scales", [0, "1"]), ("scales", "0,1"), ("flips", "yes"), ("flips", 2),
    ("min_score", float("nan")), ("min_score", 1.5), ("model_source", "resnet"),
    ("merge_jump", 3), ("gallery", N_GALLERY), ("reg_pick", "#3: dog 0.9, scale 1"),
    ("min_box_score", 0.33), ("min_box_score", "0.35"), ("min_box_score", 1.5),
    ("photo", share.N_PHOTOS), ("model_source", "pictogram")])
def test_check_names_the_key_and_the_value(key, value):
    with pytest.raises(ValueError) as e:
        share.check(share.BY_KEY[key], value, N_GALLERY)
    assert str(e.value).startswith(f"{key}: expected") and repr(value) in str(e.value)


def test_session_only_models_are_kept_but_never_linked():
    p = share.BY_KEY["model_source"]
    for m in p.session_only:
        assert share.check(p, m) == m and share.clean_state({"model_source": m}) == {}
        assert "model" not in share.encode({"model_source": m})
        assert share.decode({"model": m}, N_GALLERY)[2]  # a link cannot ask for it


def test_floats_are_written_exactly():
    q = share.encode({"t_corrected": -0.123456789012, "t_literal": 50.0})
    assert q["tc"] == "-0.123456789012" and q["tl"] == "50"
    got = share.decode(q, N_GALLERY)[0]
    assert got["t_corrected"] == -0.123456789012 and got["t_literal"] == 50.0


def test_floats_off_the_grid_snap_as_a_link_reads_them():
    """Property test find (CI, 2026-12-05): min_score 0.125 was written as 0.125 and read back
    as 0.12 (decode snaps to the slider's grid); check() snaps too, so both agree."""
    p = share.BY_KEY["min_score"]
    assert share.check(p, 0.125) == 0.12 and share.check(p, 0.37) == 0.37
    q = share.encode({"min_score": 0.125})
    assert q["min"] == "0.12" and share.decode(q, N_GALLERY)[0]["min_score"] == 0.12


def test_empty_scales_round_trip():
    """No scale chosen is a state (the sidebar says to choose one): its link keeps it."""
    q = share.encode({"scales": []})
    assert q["scales"] == "" and share.decode(q, N_GALLERY)[0]["scales"] == []


def test_every_registry_model_travels_in_a_link():
    """The sidebar's pretrained nets are the registry's (Objects included); "default" is the
    shipped pictogram checkpoint."""
    from overfeat.models import registry as zoo

    assert share.MODELS == ("default",) + tuple(n for n in zoo.MODEL_NAMES if n != "pictogram")
    for m in share.MODELS:
        q = share.encode({"model_source": m})
        assert q.get("model") == (None if m == "default" else m)
        assert share.decode({"model": m}, N_GALLERY)[0]["model_source"] == m


def test_the_minimum_box_score_travels_and_holds_every_cards_default():
    from overfeat.models import registry as zoo

    steps = share.BOX_SCORE_STEPS
    assert steps == tuple(sorted(steps)) and 0 < steps[0] and steps[-1] < 1
    for card in zoo.CARDS.values():
        if card.min_box_score is not None:
            assert card.min_box_score in steps, card.name
    for v in steps:
        q = share.encode({"min_box_score": v})
        assert share.decode(q, N_GALLERY) == ({"min_box_score": v}, None, [])
    state, _, notes = share.decode({"bscore": "0.33"}, N_GALLERY)
    assert state == {} and notes and notes[0].startswith("link parameter bscore='0.33' ignored")
    # The page computes its default (the model's card): a new session holds none.
    assert "min_box_score" not in share.defaults()


def test_every_sample_photo_can_be_linked():
    assert share.N_PHOTOS == len(appstate.PHOTOS) >= 8
    q = share.encode({"img_source": "photo", "photo": share.N_PHOTOS - 1})
    assert share.decode(q, N_GALLERY)[0] == {"img_source": "photo", "photo": share.N_PHOTOS - 1}
