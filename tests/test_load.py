"""Many users at once (issue 5): tests/load_app.py with 3 simultaneous browser sessions, each
uploading its own image; every session must show the package's results for its own image.

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
    for key in ("upload_to_results", "upload_to_idle", "merge_page"):
        assert report["latency_s"][key]["n"] == 3
