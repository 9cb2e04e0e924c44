"""The benchmark's --quick run: every figure present with its target, merge results identical.
(No timing is asserted: speed targets are checked by reading the benchmark, not by tests.)"""

import json

from overfeat.cli import main


def test_bench_quick_json(capsys):
    assert main(["bench", "--quick", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for name in ("demo", "padding_free_accurate", "imagenet", "imagenet_padding_free"):
        d = r["dense_vs_crop"][name]
        for key in ("windows", "dense_s", "crop_s", "speedup", "mac_ratio", "fraction_of_ideal",
                    "target_fraction"):
            assert key in d, key
        assert d["windows"] > 0 and d["mac_ratio"] > 1  # sharing windows must save work
        assert abs(d["fraction_of_ideal"] - d["speedup"] / d["mac_ratio"]) < 1e-9
    free = r["dense_vs_crop"]["imagenet_padding_free"]
    assert free["target_fraction"] == 0.8 and r["dense_vs_crop"]["imagenet"]["target_fraction"] is None
    assert all(h >= 1043 and (h - 1043) % 16 == 0 for h, _ in free["sizes"])  # whole windows
    il = r["imagenet_latency"]
    assert il["offsets_s"] > 0 and il["no_offsets_s"] > 0 and il["target_median_s"] == 1.0
    assert r["merge"] and all(m["identical"] for m in r["merge"])
    assert all(m["steps"] > 0 for m in r["merge"])
    lat = r["latency"]
    assert lat["median_s"] > 0 and lat["target_median_s"] == 1.0 and lat["raw_boxes"] > 0
    ml = r["machine_limit"]
    assert ml["macs"] > 1e9 and 0 < ml["fraction"]
    app = r["app"]
    assert "error" not in app and "skipped" not in app, app
    names = [row["interaction"] for row in app["rows"]]
    assert names[0].startswith("first analysis") and len(names) == 13
    assert {row["target_s"] for row in app["rows"][1:]} == {1.0} and app["rows"][0]["target_s"] == 3.0
    for row in app["rows"]:
        assert 0 < row["median_s"] <= row["max_s"] and row["met"] == (row["max_s"] <= row["target_s"])
    assert app["all_met"] == all(row["met"] for row in app["rows"])
    b = r["browser"]  # part 6: one round in Chromium
    assert "error" not in b and "skipped" not in b, b
    assert b["rounds"] == 1 and b["errors"] == [], b["errors"]
    names = [row["interaction"] for row in b["rows"]]
    assert names[0].startswith("first results of a new 500x500 upload")
    assert any(n.startswith("page switch: ") for n in names) and "merge step: Next (Merge)" in names
    assert names[-2:] == ["image source: new scene from a seed (Overview; seed 0)",
                          "new scene from a seed (Overview; cold: never prefetched)"]
    for row in b["rows"]:
        assert 0 < row["median_s"] <= row["max_s"] and row["met"] == (row["max_s"] <= row["target_s"])


# --- part 6's parsing and formatting, without a browser ------------------------------------
def _result(browser) -> dict:
    """A bench result with every part filled in by hand (format_table reads them all)."""
    d = {"windows": 10, "sampled": False, "speedup": 5.0, "mac_ratio": 6.0,
         "fraction_of_ideal": 5 / 6, "target_fraction": 0.5}
    return {"dense_vs_crop": {"demo": d},
            "merge": [{"boxes": 500, "steps": 9, "speedup": 60.0, "fast_s": 0.01,
                       "reference_s": 0.6, "identical": True, "target_speedup": None}],
            "latency": {"median_s": 0.6, "peak_rss_mb": 900.0},
            "machine_limit": {"scales": [0], "macs_per_s": 4e10, "fraction": 0.4,
                              "matmul_macs_per_s": 1e11},
            "app": {"rounds": 1, "rows": [{"interaction": "page switch: Scales", "median_s": 0.2,
                                           "max_s": 0.25, "target_s": 1.0, "met": True}]},
            "browser": browser}


BROWSER = {"rounds": 2, "errors": [], "rows": [
    {"interaction": "first results of a new 500x500 upload (Overview)", "n": 2, "median_s": 1.31,
     "max_s": 1.42, "target_s": 1.5, "met": True, "script_median_s": 1.2, "ws_kb_median": 90.0},
    {"interaction": "page switch: Merge", "n": 2, "median_s": 0.93, "max_s": 1.24,
     "target_s": 0.5, "met": False, "script_median_s": 0.8, "ws_kb_median": 410.0}]}


def test_format_table_prints_the_browser_rows_beside_their_targets():
    from overfeat.bench import format_table

    lines = format_table(_result(BROWSER)).splitlines()
    server = [x for x in lines if x.startswith("server time (AppTest): page switch: Scales")]
    assert len(server) == 1 and "<= 1 s" in server[0]
    assert not any(x.startswith("app: ") for x in lines)  # part 5 is labelled server time
    up = [x for x in lines if x.startswith("browser: first results of a new 500x500 upload")]
    assert len(up) == 1
    assert "median 1.31 s, max 1.42 s" in up[0] and "<= 1.5 s" in up[0] and "MISSED" not in up[0]
    merge = [x for x in lines if x.startswith("browser: page switch: Merge")]
    assert len(merge) == 1
    assert "median 0.93 s, max 1.24 s" in merge[0] and "410 kB" in merge[0]
    assert "MISSED" in merge[0] and merge[0].rstrip().endswith("<= 0.5 s")
    # An interaction that failed while the others ran: its error is a row too.
    lines = format_table(_result({**BROWSER, "errors": ["class change (Scales): TimeoutError"]}))
    assert "browser: error" in lines and "class change (Scales): TimeoutError" in lines


def test_a_failing_browser_part_gives_an_error_row(tmp_path):
    from overfeat import bench

    crash = tmp_path / "crash.py"
    crash.write_text("import sys\nprint('Traceback: boom', file=sys.stderr)\nsys.exit(3)\n")
    noise = tmp_path / "noise.py"
    noise.write_text("print('not json at all')\n")
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(30)\n")
    empty = tmp_path / "empty.py"
    empty.write_text("import json\nprint(json.dumps({'rows': [], 'errors': ['no chromium']}))\n")
    for script, words in ((crash, "exit status 3): Traceback: boom"),
                          (noise, "not json at all"), (slow, "did not finish within 2 s"),
                          (empty, "no chromium"), (tmp_path / "missing.py", None)):
        res = bench.browser_latency(1, script=script, timeout=2)
        if words is None:
            assert "skipped" in res
        else:
            assert "error" in res and words in res["error"], res
        table = bench.format_table(_result(res))  # never a crash
        row = [x for x in table.splitlines() if x.startswith("browser: app interactions")]
        assert len(row) == 1 and (words or "not found") in row[0]
    assert [x for x in bench.format_table(_result(None)).splitlines()
            if x.startswith("browser: app interactions")]  # not run at all
