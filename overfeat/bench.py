"""`python -m overfeat bench`: OverFeat's efficiency claim and the app's speed, measured.

Every figure is measured in one run on this machine, as a ratio or against a reference measured
in the same run (the machines are shared and noisy: no absolute number is a test). Each figure
is printed beside its target; --json prints them all.

1. dense vs crop: dense multi-scale evaluation against evaluating every window as its own crop
   (batched), at the six scales: measured speedup, multiply-add ratio (the ideal speedup), and
   their quotient (target >= 0.5). The same for the ImageNet EfficientNet-Lite0 (reported
   only: its zero padding makes dense != crops) and for its padding-free variant at sizes of
   its 1043 px window + 16n (target >= 0.8).
2. merge: the incremental greedy merge against the literal loop at 500/1000/2000 boxes:
   identical results and the speedup (target >= 50x at 2000).
3. latency: the whole analysis (six scales, flips, all maps, boxes and the merge trace) of one
   500x500 image with the shipped checkpoint: median and peak memory (target <= 1.0 s); the
   ImageNet net's six scales and flips with and without the offset trick (target <= 1.0 s with).
4. machine limit: the full-width accurate model's multiply-adds per second at the six scales
   against a large matrix multiply measured in the same run.
5. app: the app's interaction latency with the shipped checkpoint, driven by Streamlit's
   AppTest in a subprocess (tests/app_latency.py; this package never imports Streamlit): the
   first analysis of a new 500x500 upload (target <= 3 s) and each later interaction, page
   switches, a class change, scale changes, merge steps (target <= 1 s), max over the rounds.
   This is the server's time only (labelled "server time (AppTest)").
6. browser: the same interactions as a student waits for them, in Chromium (tests/browser_latency.py
   in a subprocess: it starts `streamlit run app.py` and drives one page with Playwright; this
   package imports neither), each timed from the action to a settled page (script done, every
   Plotly figure drawn): the first results of a new 500x500 upload and a switch to a new sample
   scene (target <= 1.5 s), every page switch, class change, scale toggle, merge step (Next,
   and the presenter's Right arrow key; target <= 0.5 s), max over the rounds; with the
   websocket bytes and figure JSON per interaction. The Merge page draws its step and its final
   boxes as pictures (JPEGs fetched over HTTP, counted as img kB; issue 27): compare its page
   switch and steps with an older commit by running that commit's app under the same
   tests/browser_latency.py (--pages Regressor,Merge --no-keyboard) in the same session
   (docs/BENCHMARKS.md, "Merge page, issue 27").
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from .config import preset
from .geometry import crop_macs, dense_macs, scale_geometry, meta_model
from .merge import merge, merge_reference
from .models.overfeat import OverFeat
from .multiscale import ALL_SCALES, Settings, analyze, run_view, scale_sizes


def _timeit(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _peak_rss_reset() -> None:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process, where Linux allows it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def clustered_boxes(n: int, seed: int, classes: int = 3):
    """Random boxes around a few objects, like a regressor's output: (boxes, scores, labels)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(6, 2, generator=g) * 450
    which = torch.randint(0, 6, (n,), generator=g)
    c = centres[which] + torch.randn(n, 2, generator=g) * 20
    wh = 60 + torch.rand(n, 2, generator=g) * 100
    return (torch.cat([c - wh / 2, c + wh / 2], 1), torch.rand(n, generator=g),
            torch.randint(0, classes, (n,), generator=g))


@torch.no_grad()
def dense_vs_crop(model: OverFeat, image_hw: tuple[int, int], scales: tuple[int, ...],
                  max_crops: int | None = None, batch: int = 32,
                  sizes: list[tuple[int, int]] | None = None,
                  target: float | None = 0.5) -> dict:
    """Dense evaluation of the scales against running every window as its own crop.

    max_crops: time only that many crops (spread over the scales) and scale the time up to all
    windows; used by --quick, reported as 'sampled'. sizes: input sizes to use instead of the
    model's scales (the padding-free EfficientNet needs inputs of at least its 1043 px window).
    """
    model.eval()
    torch.manual_seed(0)
    img = torch.rand(3, *image_hw) * 255
    if sizes is None:
        sizes = [scale_sizes(image_hw, model)[s] for s in scales]

    def dense():
        for size in sizes:
            run_view(model, img, size, flip=False, fine=True, keep_maps=False)

    t_dense = min(_timeit(dense, 3))
    crops = []  # (size index, row, col)
    geo = meta_model(model.cfg)
    for si, size in enumerate(sizes):
        fh, fw = scale_geometry(geo, size).fine
        crops += [(si, r, c) for r in range(fh) for c in range(fw)]
    n_windows = len(crops)
    timed = crops
    if max_crops is not None and max_crops < n_windows:
        step = n_windows / max_crops
        timed = [crops[int(i * step)] for i in range(max_crops)]
    w, st = model.window, model.prepool_stride
    # Padded right and bottom: a zero-padded net ('SAME') has windows that overhang the image.
    resized = [torch.nn.functional.pad(torch.nn.functional.interpolate(
        img[None], size=s, mode="bilinear", antialias=True, align_corners=False)[0], (0, w, 0, w))
               for s in sizes]

    def by_crop():
        for i in range(0, len(timed), batch):
            x = torch.stack([resized[si][:, r * st:r * st + w, c * st:c * st + w]
                             for si, r, c in timed[i:i + batch]])
            p = model.pool(model.features(model.normalize(x)))
            model.classify(p)
            model.regress(p)

    t_crop = min(_timeit(by_crop, 1 if len(timed) > 200 else 2)) * n_windows / len(timed)
    ideal = crop_macs(model.cfg, n_windows) / sum(dense_macs(model.cfg, s) for s in sizes)
    speedup = t_crop / t_dense
    return {"windows": n_windows, "sizes": [list(x) for x in sizes],
            "timed_crops": len(timed), "dense_s": t_dense,
            "crop_s": t_crop, "speedup": speedup, "mac_ratio": ideal,
            "fraction_of_ideal": speedup / ideal, "target_fraction": target,
            "sampled": len(timed) < n_windows}


def merge_speed(sizes: tuple[int, ...]) -> list[dict]:
    out = []
    for n in sizes:
        b, s, l = clustered_boxes(n, seed=n)
        t_fast = min(_timeit(lambda: merge(b, s, l, "corrected", 0.3), 3))
        t0 = time.perf_counter()
        ref = merge_reference(b, s, l, "corrected", 0.3)
        t_ref = time.perf_counter() - t0
        fast = merge(b, s, l, "corrected", 0.3)
        same = (torch.equal(fast.pairs, ref.pairs) and torch.equal(fast.step_scores, ref.step_scores)
                and torch.equal(fast.final_boxes, ref.final_boxes)
                and fast.final_members == ref.final_members)
        out.append({"boxes": n, "steps": fast.n_steps, "identical": bool(same), "fast_s": t_fast,
                    "reference_s": t_ref, "speedup": t_ref / t_fast,
                    "target_speedup": 50.0 if n == 2000 else None})
    return out


def latency(repeat: int) -> dict:
    from .predict import load_model

    model, desc = load_model()
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 500, 500, generator=g) * 255
    settings = Settings()

    def once():
        a = analyze(model, img, settings)
        a.merge()

    once()  # warm-up: first-call allocations and kernel selection
    _peak_rss_reset()
    times = _timeit(once, repeat)
    a = analyze(model, img, settings)
    return {"model": desc, "median_s": statistics.median(times), "min_s": min(times),
            "runs": repeat, "peak_rss_mb": _peak_rss_mb(), "raw_boxes": len(a.table),
            "target_median_s": 1.0}


def imagenet_latency(model, repeat: int) -> dict:
    """The whole analysis of one 500x500 image with the ImageNet net: six scales and flips,
    with the offset trick (stride 16, 4 offset maps) and without it (stride 32)."""
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 500, 500, generator=g) * 255
    out = {"model": "EfficientNet-Lite0 (ImageNet)", "runs": repeat, "target_median_s": 1.0}
    for fine in (True, False):
        settings = Settings(fine=fine)
        analyze(model, img, settings)  # warm-up
        times = _timeit(lambda: analyze(model, img, settings), repeat)
        out["offsets_s" if fine else "no_offsets_s"] = statistics.median(times)
    return out


@torch.no_grad()
def objects_latency(repeat: int) -> dict:
    """The objects model (NanoDet) on a 640x480 photo (assets/photos/dog.jpg) at the app's
    default settings (six scales + flips, its own knobs): the network part of the analysis,
    the whole answer (analysis + greedy merge + answer boxes), the merge alone, and the
    analysis against the sum of the plain forward passes (model.dense on the same resized
    flipped batches) measured in the same run: the overhead of the OverFeat way."""
    from .app.state import MODEL_KNOBS, Knobs
    from .detection import answer_boxes
    from .images import load_image, to_tensor
    from .models.registry import CARDS, load
    from .multiscale import _resize

    model = load("objects")
    image = load_image(Path(__file__).resolve().parent.parent / "assets" / "photos" / "dog.jpg")
    knobs = Knobs(**MODEL_KNOBS["objects"])
    settings = knobs.settings()
    img = to_tensor(image)
    sizes = scale_sizes(tuple(img.shape[-2:]), model)
    batches = [torch.stack([x, x.flip(-1)]) for x in (_resize(img, sz) for sz in sizes)]

    def plain():
        for b in batches:
            model.dense(model.normalize(b))

    def network():
        return analyze(model, image, settings, keep_maps=False)

    def whole():
        a = network()
        r = a.merge(score=knobs.score, threshold=knobs.threshold(knobs.score),
                    by_class=knobs.by_class, average=knobs.average)
        return answer_boxes(r.final, CARDS["objects"].min_box_score)

    whole()  # warm-up
    t_plain, t_net, t_whole = [], [], []
    for _ in range(repeat):  # interleaved: the three see the same machine load
        t_plain += _timeit(plain, 1)
        t_net += _timeit(network, 1)
        t_whole += _timeit(whole, 1)
    a = network()
    t_merge = _timeit(lambda: a.merge(score=knobs.score, by_class=knobs.by_class,
                                      average=knobs.average), repeat)
    return {"photo": "dog.jpg 640x480", "sizes": sizes, "views": a.n_views, "maps": len(a.views),
            "raw_boxes": len(a.table), "answer_boxes": len(whole()), "runs": repeat,
            "plain_s": statistics.median(t_plain), "network_s": statistics.median(t_net),
            "whole_s": statistics.median(t_whole), "merge_s": statistics.median(t_merge),
            "overhead": statistics.median(t_net) / statistics.median(t_plain),
            "target_overhead": 1.2, "target_whole_s": 1.5}


@torch.no_grad()
def machine_limit(scales: tuple[int, ...]) -> dict:
    """Full-width accurate model, dense at the paper's sizes, against a big matmul."""
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t_mm = min(_timeit(lambda: a @ b, 5))
    mm_rate = n ** 3 / t_mm  # multiply-adds per second
    torch.manual_seed(0)
    model = OverFeat(preset("accurate")).eval()
    sizes = [model.cfg.geo.scales[s] for s in scales]
    imgs = [torch.rand(3, *s) * 255 for s in sizes]

    def dense():
        for img, size in zip(imgs, sizes):
            run_view(model, img, size, flip=False, fine=True, keep_maps=False)

    t = min(_timeit(dense, 2))
    macs = sum(dense_macs(model.cfg, s) for s in sizes)
    # The regressor head runs too: count it like the classifier's head.
    return {"scales": list(scales), "macs": macs, "seconds": t, "macs_per_s": macs / t,
            "matmul_macs_per_s": mm_rate, "fraction": macs / t / mm_rate,
            "note": "classifier multiply-adds only; the regressor head is run but not counted"}


APP_LATENCY = Path(__file__).resolve().parents[1] / "tests" / "app_latency.py"


def app_latency(rounds: int) -> dict:
    """Part 5, in a fresh Python process (see tests/app_latency.py)."""
    if not APP_LATENCY.exists():
        return {"skipped": f"{APP_LATENCY} not found (part of the repository checkout)"}
    p = subprocess.run([sys.executable, str(APP_LATENCY), "--rounds", str(rounds)],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"tests/app_latency.py failed: {tail}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


BROWSER_LATENCY = Path(__file__).resolve().parents[1] / "tests" / "browser_latency.py"


def browser_latency(rounds: int, script: Path | None = None, timeout: float = 1800) -> dict:
    """Part 6, in a fresh Python process (see tests/browser_latency.py). Whatever goes wrong
    there (no Chromium, a timeout, a crash, output that is not JSON) gives {"error": ...}; an
    interaction that failed while others ran gives the rows and their "errors"."""
    script = BROWSER_LATENCY if script is None else Path(script)
    if not script.exists():
        return {"skipped": f"{script} not found (part of the repository checkout)"}
    try:
        p = subprocess.run([sys.executable, str(script), "--rounds", str(rounds), "--json"],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"{script.name} did not finish within {timeout:g} s"}
    lines = p.stdout.strip().splitlines()
    try:
        res = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        res = None
    if not isinstance(res, dict) or not isinstance(res.get("rows"), list):
        tail = (p.stderr.strip().splitlines() or lines or ["no output"])[-1]
        return {"error": f"{script.name} failed (exit status {p.returncode}): {tail}"}
    if not res["rows"]:
        return {"error": f"{script.name} timed nothing: "
                         f"{'; '.join(res.get('errors') or ['no rows'])[:300]}"}
    return res


def run_bench(quick: bool = False, log=print) -> dict:
    torch.set_num_threads(torch.get_num_threads())
    res: dict = {"quick": quick, "threads": torch.get_num_threads(), "torch": torch.__version__}
    all6 = ALL_SCALES
    log("1/6 dense vs crop-by-crop ...")
    demo = OverFeat(preset("demo")).eval()
    pf = OverFeat(preset("demo").replace(padding=False)).eval()
    res["dense_vs_crop"] = {
        "demo": dense_vs_crop(demo, (500, 500), all6, max_crops=150 if quick else None),
        "padding_free_accurate": dense_vs_crop(pf, (500, 500), all6, max_crops=150 if quick else None),
    }
    log("   ImageNet EfficientNet-Lite0 ...")
    from .models.efficientnet import load_efficientnet_lite0

    net = load_efficientnet_lite0()
    free = load_efficientnet_lite0(padding=False)
    w = free.window  # 1043 px: sizes window + 16n give whole numbers of windows
    res["dense_vs_crop"]["imagenet"] = dense_vs_crop(net, (500, 500), all6,
                                                     max_crops=60 if quick else 300, target=None)
    res["dense_vs_crop"]["imagenet_padding_free"] = dense_vs_crop(
        free, (500, 500), (), max_crops=6 if quick else 24, batch=4,
        sizes=[(w + 16 * n, w + 16 * n) for n in ((4,) if quick else (4, 8))], target=0.8)
    res["imagenet_latency"] = imagenet_latency(net, 2 if quick else 5)
    log("   objects (NanoDet) on a 640x480 photo ...")
    res["objects_latency"] = objects_latency(2 if quick else 7)
    log("2/6 merge ...")
    res["merge"] = merge_speed((500,) if quick else (500, 1000, 2000))
    log("3/6 latency ...")
    res["latency"] = latency(3 if quick else 9)
    log("4/6 machine limit ...")
    res["machine_limit"] = machine_limit((0,) if quick else all6)
    log("5/6 app interactions, server time (AppTest) ...")
    res["app"] = app_latency(1 if quick else 3)
    log("6/6 app interactions in the browser (Chromium) ...")
    res["browser"] = browser_latency(1 if quick else 3)
    return res


def format_table(r: dict) -> str:
    rows = [("figure", "measured", "target")]
    for name, d in r["dense_vs_crop"].items():
        rows.append((f"dense vs crop, {name} ({d['windows']} windows{', sampled' if d['sampled'] else ''})",
                     f"speedup {d['speedup']:.1f}x of ideal {d['mac_ratio']:.1f}x = {d['fraction_of_ideal']:.2f}",
                     f">= {d['target_fraction']:.2f} of ideal" if d["target_fraction"]
                     else "report (padded: dense != crops)"))
    for m in r["merge"]:
        rows.append((f"merge, {m['boxes']} boxes ({m['steps']} steps)",
                     f"{m['speedup']:.0f}x ({m['fast_s'] * 1e3:.0f} ms vs {m['reference_s']:.2f} s), "
                     f"identical={m['identical']}", ">= 50x at 2000" if m["target_speedup"] else "identical"))
    lat = r["latency"]
    rows.append(("latency, 500x500, 6 scales + flips + merge",
                 f"median {lat['median_s']:.2f} s, peak RSS {lat['peak_rss_mb']:.0f} MB",
                 "<= 1.0 s"))
    il = r.get("imagenet_latency")
    if il:
        rows.append(("latency, ImageNet net, 500x500, 6 scales + flips",
                     f"median {il['offsets_s']:.2f} s with offsets (stride 16), "
                     f"{il['no_offsets_s']:.2f} s without (stride 32)", "<= 1.0 s with offsets"))
    ol = r.get("objects_latency")
    if ol:
        rows.append((f"objects (NanoDet), {ol['photo']}, 6 scales + flips ({ol['maps']} maps)",
                     f"network {ol['network_s']:.2f} s = {ol['overhead']:.2f}x the plain "
                     f"forward passes ({ol['plain_s']:.2f} s)", "<= 1.2x"))
        rows.append(("objects: analysis + merge + answer",
                     f"median {ol['whole_s']:.2f} s ({ol['raw_boxes']} raw boxes -> "
                     f"{ol['answer_boxes']} shown)", "<= 1.5 s"))
        rows.append(("objects: the merge alone", f"{ol['merge_s'] * 1e3:.0f} ms", "report"))
    ml = r["machine_limit"]
    rows.append((f"full-width accurate, scales {ml['scales']}",
                 f"{ml['macs_per_s'] / 1e9:.1f} GMAC/s = {ml['fraction']:.2f} of matmul "
                 f"{ml['matmul_macs_per_s'] / 1e9:.1f} GMAC/s", "report"))
    app = r.get("app", {})
    for row in app.get("rows", []):
        rows.append((f"server time (AppTest): {row['interaction']}",
                     f"median {row['median_s']:.2f} s, max {row['max_s']:.2f} s "
                     f"({app['rounds']} rounds)", f"<= {row['target_s']:.0f} s"))
    if "rows" not in app:
        rows.append(("server time (AppTest): app interactions",
                     app.get("error") or app.get("skipped", "not run"), ""))
    rows += browser_rows(r.get("browser"))
    w = [max(len(x[i]) for x in rows) for i in range(3)]
    lines = [" | ".join(x[i].ljust(w[i]) for i in range(3)) for x in rows]
    lines.insert(1, "-+-".join("-" * x for x in w))
    return "\n".join(lines)


def _s(x) -> str:
    return "?" if x is None else f"{x:.2f} s"


def _pictures(row: dict) -> str:
    """The pictures an interaction fetched over HTTP (the Merge page's), beside the websocket's
    bytes, and the Chromium CPU the Merge rows are judged by (issue 27)."""
    img = row.get("img_kb_median") or 0
    cpu = row.get("browser_cpu_median_s")
    out = f" + {img:.0f} kB of pictures" if img else ""
    if "Merge" in row.get("interaction", "") and cpu is not None:
        out += f", Chromium CPU {cpu:.2f} s"
    return out


def browser_rows(b: dict | None) -> list[tuple[str, str, str]]:
    """Part 6's table rows: (figure, measured, target) per interaction, or one error row."""
    b = b or {}
    if not b.get("rows"):
        return [("browser: app interactions",
                 b.get("error") or b.get("skipped") or "; ".join(b.get("errors") or [])
                 or "not run", "")]
    out = []
    for row in b["rows"]:
        out.append((f"browser: {row['interaction']}",
                    f"median {row['median_s']:.2f} s, max {row['max_s']:.2f} s "
                    f"({row.get('n', b.get('rounds'))} runs; {row.get('ws_kb_median', 0):.0f} kB "
                    f"sent{_pictures(row)}, server {_s(row.get('server_median_s'))}, browser after it "
                    f"{_s(row.get('after_server_median_s'))})"
                    + ("" if row["max_s"] <= row["target_s"] else " MISSED"),
                    f"<= {row['target_s']:g} s"))
    for e in (b.get("errors") or [])[:3]:
        out.append(("browser: error", e[:200], ""))
    return out


def cmd_bench(args) -> int:
    r = run_bench(quick=args.quick, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(r, indent=1) if args.json else format_table(r))
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="measured speed ratios (dense vs crops, merge, latency)",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quick", action="store_true", help="a reduced run, under a minute")
    p.set_defaults(func=cmd_bench)
