"""Many users at once (issue 5): tests/load_app.py with 3 simultaneous browser sessions, each
uploading its own image, visiting the pages and stepping the merge; every session must show the
package's results for its own image, and every page switch and merge step must be timed.

The browser run needs Debian's Chromium (tests/run.sh installs it), so it runs wherever the
suite runs; the first tests check the comparison itself without a browser.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import load_app
from load_app import Results, compare, fingerprint

A = Results(model="m", image="upload a.png", size=(300, 260),
            top=[("horse", 0.1012), ("cat", 0.0853), ("dog", 0.0853), ("car", 0.05),
                 ("bus", 0.04)],
            views=12, raw_boxes=2952, steps={"literal": 2911, "corrected": 1123},
            final_boxes={"literal": 41, "corrected": 1829})
B = replace(A, image="upload b.png", size=(404, 353), top=[("horse", 0.1197)] + A.top[1:],
            raw_boxes=3444, steps={"literal": 3022, "corrected": 2386},
            final_boxes={"literal": 422, "corrected": 1058})


def test_compare_accepts_the_same_numbers():
    assert compare(A, A) == []
    # The page prints scores to 4 decimals; classes tied at that precision come in either order.
    page = replace(A, top=[(n, round(s + 4e-5, 4)) for n, s in A.top])
    page.top[1], page.top[2] = page.top[2], page.top[1]
    assert compare(page, A) == []


def test_compare_catches_another_sessions_results():
    assert compare(B, A)  # a session showing the other session's image and numbers
    assert compare(replace(B, image=A.image, size=A.size), A)  # its numbers under our name
    for change in ({"raw_boxes": 2953}, {"views": 6}, {"model": "other"},
                   {"steps": {"literal": 2911, "corrected": 1124}},
                   {"final_boxes": {"literal": 40, "corrected": 1829}},
                   {"top": [("cat", 0.1012)] + A.top[1:]},
                   {"top": [("horse", 0.1015)] + A.top[1:]}, {"top": A.top[:4]}):
        assert compare(replace(A, **change), A), change
    assert compare(None, A) == ["no results read from the page"]
    assert fingerprint(A) != fingerprint(B)
    assert fingerprint(replace(B, image=A.image)) == fingerprint(B)  # the name alone is not enough


def test_percentiles():
    v = [0.3, 0.1, 0.4, 0.2]
    assert load_app.percentile(v, 50) == pytest.approx(0.25)  # the median
    assert load_app.percentile(v, 100) == 0.4 and load_app.percentile(v, 0) == 0.1
    assert load_app.percentile(v, 95) == pytest.approx(0.385)  # between the two largest
    assert load_app.percentile([0.7], 95) == 0.7
    st = load_app._stats(v)
    assert st["n"] == 4 and st["p50"] == st["median"] and st["min"] <= st["p50"] <= st["p95"] <= st["max"]
    assert load_app._stats([]) == {"n": 0}


def test_arguments_are_bounded():
    for bad in (["--sessions", "0"], ["--sessions", str(load_app.MAX_SESSIONS + 1)],
                ["--timeout", "0"]):
        with pytest.raises(SystemExit) as e:
            load_app.main(bad)
        assert e.value.code == 2
    with pytest.raises(ValueError):
        load_app.run_load(sessions=load_app.MAX_SESSIONS + 1)


def test_three_sessions_each_get_their_own_results(tmp_path: Path):
    assert Path(load_app.CHROMIUM).exists(), "tests/run.sh installs Debian's chromium"
    report = load_app.run_load(sessions=3, timeout=300, log_path=tmp_path / "streamlit.log")
    assert report["ok"], load_app.summary(report)
    assert report["failures"] == []
    # Each session read its own image's numbers, equal to the package's, before and after the
    # other sessions finished; the three images' numbers differ, so no session saw another's.
    detail = report["sessions_detail"]
    assert len(detail) == 3 and all(s["ok"] for s in detail)
    for s in detail:
        for seen in (s["seen"], s["seen_after_all"]):
            assert seen["image"] == f"upload {s['image']}"
            assert compare(Results(**seen), Results(**s["expected"])) == []
    assert report["expected_distinct"] and report["seen_distinct"]
    assert len({s["image"] for s in detail}) == 3
    # The server stayed healthy; memory and latencies were measured.
    assert report["health"]["polls"] > 0 and report["health"]["failures"] == 0
    assert report["health_after"] == "ok"
    assert report["memory_mb"]["server_vmhwm"] > 100
    lat = report["latency_s"]
    for key in ("upload_to_results", "upload_settled", "upload_to_idle", "merge_page"):
        assert lat[key]["n"] == 3
    # Every session timed every page switch and every merge step.
    pages, steps = len(load_app.LOAD_PAGES), load_app.MERGE_STEPS
    assert report["timed"]["page_switch"] == lat["page_switch"]["n"] == 3 * pages
    assert report["timed"]["merge_step"] == lat["merge_step"]["n"] == 3 * steps
    for s in detail:
        assert list(s["page_switch_s"]) == list(load_app.LOAD_PAGES)
        assert len(s["merge_step_s"]) == steps and s["errors"] == []
    for name in load_app.LOAD_PAGES:
        assert report["page_switch_by_page_s"][name]["n"] == 3
    for key in ("upload_to_results", "upload_settled", "page_switch", "merge_step"):
        st = lat[key]
        assert 0 < st["min"] <= st["p50"] <= st["p95"] <= st["max"], (key, st)
    # The websocket brought something for every interaction (figures, at least the deltas).
    for key in ("upload", "page_switch", "merge_step"):
        assert report["ws_kb"][key]["n"] > 0 and report["ws_kb"][key]["min"] > 0
    assert report["errors"] == 0 and report["server_exceptions"] == 0
    ct = report["cross_talk"]
    assert ct["ok"] and ct["sessions_checked"] == 3 and ct["sessions_mismatched"] == []
    mem = report["memory_mb"]
    assert mem["tree_peak_rss_sampled"] > 100 and mem["tree_vmhwm_sum"] >= mem["server_vmhwm"]
