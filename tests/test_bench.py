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
