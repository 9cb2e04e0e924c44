"""Evaluation with the paper's metrics (paper §2, §3.3, §4.3, §5) on any VOC-layout folder.

    python -m overfeat evaluate --checkpoint assets/demo.pt --data data/val_loc data/val_det \
        --split val --json

Every image is analysed ONCE at all six scales with flips and fine stride
(overfeat.multiscale.analyze); each row of the Table 2 analogue is cut out of that analysis
with overfeat.multiscale.derive, except the coarse-stride row, which needs its own (single
view) run. Per folder:

- Classification (top-1, top-5 error): on the images whose labelled objects are all of ONE
  class (every image of a "loc" folder; the ILSVRC setting). The score of a class is its
  spatial maximum averaged over the views (paper §3.3); the background class is never a guess.
- Localization error (ILSVRC rule, overfeat.metrics.localization_correct): on the same images;
  the 5 guesses are the 5 most confident boxes of the greedy merge (paper §4.3) of the boxes of
  the top EVAL_TOP_K classes of every scale; right class and IoU >= 0.5 with a true box.
- Detection mAP at IoU 0.5 (VOC all-point AP, overfeat.metrics.mean_ap): on every image of the
  split; the detections are all boxes the merge leaves, their confidence the sum of their
  members' class scores (paper §4.3), not non-maximum suppression (paper §5).
- The merge settings differ by task (MERGE, a project choice, chosen on the val splits of the
  demo model's TRAINING folders, see overfeat.merge): localization's five guesses do best when
  the merge leaves several candidate boxes (plain average, t = -0.5: 11.7% error there, 13.3%
  with the detection settings), detection when each object's boxes end in one (weighted
  average, t = -0.3: mAP 0.49 there, 0.39 with the localization settings).
- Table 2 analogue (paper §3.4, Table 2): classification and localization errors for
  1 scale coarse stride, 1 scale fine, 3 scales fine, 6 scales fine, 6 scales fine + flips.
  The paper does not say which single scale or which three (?): we use the third scale
  (shorter side 317, index 2) alone, and the first, third and sixth (indices 0, 2, 5) for three
  scales, so that the three span the whole range of object sizes.

Bad records of a folder (missing image, malformed XML, unknown class, box outside the image)
stop the evaluation with an error naming the file, or, with --skip-bad, are left out and
counted in the report ("skipped"), so a metric is never silently computed on fewer images.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .merge import AVERAGES, DEFAULT_AVERAGE, DEFAULT_THRESHOLD, MergeResult
from .metrics import (GroundTruth, PRCurve, localization_correct, mean_ap,
                      precision_recall, topk_error)
from .models.overfeat import OverFeat
from .multiscale import ALL_SCALES, Settings, analyze, derive

EVAL_TOP_K = 5  # merge step (a): classes per scale whose boxes are merged (5 guesses need 5)
# Windows below this class probability give no box (as `predict`). Chosen with the merge's
# t on the val splits of the demo model's training folders (see overfeat.merge).
EVAL_MIN_SCORE = 0.5
# Per task: box_merge and t of the corrected score (see the module docstring).
MERGE = {"localization": {"average": "plain", "threshold": -0.5},
         "detection": {"average": DEFAULT_AVERAGE, "threshold": DEFAULT_THRESHOLD["corrected"]}}
SINGLE_SCALE = (2,)  # the Table 2 analogue's "1 scale" (see the module docstring)
THREE_SCALES = (0, 2, 5)


@dataclass(frozen=True)
class Approach:
    """One row of the Table 2 analogue."""

    name: str
    scales: tuple[int, ...]
    fine: bool
    flips: bool

    def settings(self) -> Settings:
        return Settings(scales=self.scales, flips=self.flips, fine=self.fine,
                        top_k=EVAL_TOP_K, min_score=EVAL_MIN_SCORE)


TABLE2 = (
    Approach("1 scale, coarse stride", SINGLE_SCALE, fine=False, flips=False),
    Approach("1 scale, fine stride", SINGLE_SCALE, fine=True, flips=False),
    Approach("3 scales, fine stride", THREE_SCALES, fine=True, flips=False),
    Approach("6 scales, fine stride", ALL_SCALES, fine=True, flips=False),
    Approach("6 scales, fine stride, flips", ALL_SCALES, fine=True, flips=True),
)
FULL = TABLE2[-1]  # what classification, localization and detection are reported for

Callback = Callable[[dict], None]


def merge_args(task: str, score: str = "corrected", threshold: float | None = None,
               average: str | None = None) -> dict:
    """Analysis.merge keyword arguments for a task; threshold and average override MERGE's
    (whose t is for the corrected score: the literal score takes its own default)."""
    d = dict(MERGE[task])
    if score != "corrected":
        d["threshold"] = None
    if threshold is not None:
        d["threshold"] = threshold
    if average is not None:
        d["average"] = average
    return {"score": score, **d}


def _nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 5)


def evaluate_folder(model: OverFeat, root: str | Path, split: str, max_images: int | None = None,
                    on_error: str = "raise", score: str = "corrected",
                    threshold: float | None = None, average: str | None = None,
                    callback: Callback | None = None) -> dict:
    """All metrics of one VOC-layout folder's split, as a JSON-ready dict."""
    from .data.voc import read_split
    from .data.loader import load_scene

    names = model.cfg.names[:len(model.cfg.object_classes)]
    records, skipped = read_split(root, split, names, on_error=on_error)
    if max_images is not None:
        records = records[:max_images]
    loc_args = merge_args("localization", score, threshold, average)
    det_args = merge_args("detection", score, threshold, average)
    t0 = time.time()
    single: list[dict] = []  # per single-class image: label, scores and guesses per approach
    dets: list[list[tuple[int, float, tuple]]] = []
    truths: list[GroundTruth] = []
    for n, rec in enumerate(records):
        try:
            scene = load_scene(rec)
        except ValueError as e:
            if on_error == "raise":
                raise
            skipped.append((str(rec.image_path), str(e)))
            continue
        img = scene.image.float()
        full = analyze(model, img, Settings(top_k=EVAL_TOP_K, min_score=EVAL_MIN_SCORE),
                       keep_maps=False)
        dets.append(image_detections(full, det_args))
        truths.append(GroundTruth(labels=[o.label for o in rec.objects],
                                  boxes=[o.box for o in rec.objects],
                                  difficult=[o.difficult for o in rec.objects]))
        row = _single_class_row(model, img, full, rec, loc_args)
        if row is not None:
            single.append(row)
        if callback is not None:
            callback({"event": "image", "done": n + 1, "total": len(records), "folder": str(root)})
    if not truths:
        raise ValueError(f"{root}: split {split!r} has no usable images ({len(skipped)} skipped)")

    obj = model.cfg.object_classes
    out: dict = {"folder": str(root), "split": split, "images": len(truths),
                 "single_class_images": len(single), "skipped": len(skipped),
                 "skipped_files": [f"{Path(f).name}: {why}" for f, why in skipped[:20]]}
    if single:
        table = _table2(single, obj)
        full_row = table[-1]
        out["classification"] = {"top1_error": full_row["top1_error"],
                                 "top5_error": full_row["top5_error"]}
        out["localization"] = {"error": full_row["localization_error"], "guesses": 5,
                               "iou": 0.5}
        out["table2"] = table
    out["detection"] = _detection(dets, truths, model.cfg.names, obj)
    out["seconds"] = round(time.time() - t0, 1)
    return out


def _single_class_row(model: OverFeat, img, full, rec, loc_args: dict) -> dict | None:
    """For an image whose labelled objects are all of one class: its label and, per approach
    of TABLE2, (class scores, localization guesses, true boxes); None for any other image."""
    classes = {o.label for o in rec.objects if not o.difficult}
    if len(classes) != 1:
        return None
    true_boxes = [(o.label, o.box) for o in rec.objects if not o.difficult]
    row = {"label": classes.pop(), "approaches": []}
    for ap in TABLE2:
        if ap == FULL:
            a = full
        elif ap.fine:
            a = derive(full, ap.settings())
        else:
            a = analyze(model, img, ap.settings(), keep_maps=False)
        m = a.merge(**loc_args)
        row["approaches"].append((a.scores.tolist(), _guesses(m), true_boxes))
    return row


def _table2(single: list[dict], obj) -> list[dict]:
    """The Table 2 analogue's rows from the single-class images' rows (_single_class_row)."""
    labels = [r["label"] for r in single]
    table = []
    for i, ap in enumerate(TABLE2):
        scores = [r["approaches"][i][0] for r in single]
        loc_ok = [localization_correct(r["approaches"][i][1], r["approaches"][i][2])
                  for r in single]
        table.append({"approach": ap.name, "scales": [s + 1 for s in ap.scales],
                      "fine": ap.fine, "flips": ap.flips,
                      "top1_error": round(topk_error(scores, labels, 1, obj), 5),
                      "top5_error": round(topk_error(scores, labels, 5, obj), 5),
                      "localization_error": round(1 - sum(loc_ok) / len(loc_ok), 5)})
    return table


def image_detections(analysis, det_args: dict) -> list[tuple[int, float, tuple]]:
    """One image's detections as the mAP ranks them: every final box of the greedy merge
    (Analysis.merge(**det_args), merge_args("detection") here), as (class, confidence, box)."""
    return analysis.merge(**det_args).final.as_tuples()


def images_detections(model: OverFeat, images: list, settings: Settings,
                      merge: dict) -> list[list[tuple[int, float, tuple]]]:
    """image_detections of each image (PIL or Tensor[3, H, W] in 0..255), analysed with
    `settings` (keep_maps off: only the boxes are kept) and merged with `merge` (Analysis.merge
    keywords): a set of images the app has no cached analyses for (its sample photos)."""
    with torch.no_grad():
        return [image_detections(analyze(model, im, settings, keep_maps=False), merge)
                for im in images]


def scene_truth(objects: list[dict], class_names) -> GroundTruth:
    """A generated scene's objects ([{"name", "box", ...}], overfeat.data.scenes.make_scene)
    as the GroundTruth a VOC folder of it gives (none is difficult)."""
    index = {n: i for i, n in enumerate(class_names)}
    unknown = sorted({o["name"] for o in objects} - set(index))
    if unknown:
        raise ValueError(f"truth classes {unknown} are not among the model's classes")
    return GroundTruth(labels=[index[o["name"]] for o in objects],
                       boxes=[tuple(float(v) for v in o["box"]) for o in objects],
                       difficult=[bool(o.get("difficult", False)) for o in objects])


def detection_report(dets: list, truths: list[GroundTruth], names, obj) -> dict:
    """The report's "detection" entry for these images' detections (mean_ap): what
    `python -m overfeat evaluate` prints for a folder, for any set of images (the app's
    sample scenes)."""
    return _detection(dets, truths, names, obj)


def detection_differences(settings: Settings, merge: dict) -> list[str]:
    """What differs from the settings `evaluate` measures detection with (FULL's views,
    EVAL_TOP_K, EVAL_MIN_SCORE, the "aspect" scale rule and merge_args("detection")), in
    words ("scales 1, 3", "min score 0.3", ...); [] when they are the same. merge: the
    Analysis.merge keywords used (score, threshold, average, by_class)."""
    ref, want = FULL.settings(), merge_args("detection")
    out = []
    if settings.scales != ref.scales:
        out.append("scales " + ", ".join(str(s + 1) for s in settings.scales))
    for name, attr in (("flips", "flips"), ("fine stride", "fine")):
        if getattr(settings, attr) != getattr(ref, attr):
            out.append(f"{name} {'on' if getattr(settings, attr) else 'off'}")
    if settings.rule != ref.rule:
        out.append(f"scale rule {settings.rule}")
    if settings.top_k != ref.top_k:
        out.append(f"top-{settings.top_k}")
    if round(settings.min_score, 6) != round(ref.min_score, 6):
        out.append(f"min score {settings.min_score:g}")
    if merge.get("score", "corrected") != want["score"]:
        out.append(f"{merge['score']} match score")
    elif merge.get("threshold") is not None and float(merge["threshold"]) != want["threshold"]:
        out.append(f"t = {float(merge['threshold']):g}")
    if merge.get("average", want["average"]) != want["average"]:
        out.append(f"{merge['average']} average")
    if not merge.get("by_class", True):
        out.append("merging across classes")
    return out


def detection_curves(dets: list, truths: list[GroundTruth], obj,
                     iou_threshold: float = 0.5) -> dict[int, PRCurve]:
    """Each object class's precision-recall curve over these images (metrics.precision_recall,
    the curve whose envelope mean_ap integrates), for the classes with ground truth."""
    out = {}
    for c in obj:
        d = [(i, float(conf), box) for i, ds in enumerate(dets) for lab, conf, box in ds
             if lab == c]
        curve = precision_recall(d, truths, c, iou_threshold)
        if curve.n_positives:
            out[c] = curve
    return out


def _detection(dets: list, truths: list[GroundTruth], names, obj) -> dict:
    """The detection report: mAP at IoU 0.5 and each class's AP and counts."""
    m_ap, per_class = mean_ap(dets, truths, obj)
    return {
        "mAP": _nan_to_none(m_ap), "iou": 0.5,
        "per_class": {names[c]: {"ap": _nan_to_none(v.ap), "positives": v.n_positives,
                                 "detections": v.n_detections, "true_positives": v.true_positives}
                      for c, v in per_class.items()}}


def _guesses(m: MergeResult, n: int = 5) -> list[tuple[int, tuple]]:
    """The n most confident merged boxes as (class, box): the localization guesses."""
    return m.final.top(n).as_tuples(confs=False)


def evaluate(model: OverFeat, folders: list[str], split: str, **kw) -> dict:
    """evaluate_folder for each folder, with the settings that produced the numbers."""
    t0 = time.time()
    with torch.no_grad():
        results = [evaluate_folder(model, f, split, **kw) for f in folders]
    score = kw.get("score", "corrected")
    merges = {task: merge_args(task, score, kw.get("threshold"), kw.get("average"))
              for task in MERGE}
    return {"split": split, "settings": {"top_k": EVAL_TOP_K, "min_score": EVAL_MIN_SCORE,
                                        "merge": merges},
            "datasets": results, "seconds": round(time.time() - t0, 1)}


# --- command line -----------------------------------------------------------------------------

def _fmt(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def cmd_evaluate(args) -> int:
    from .checkpoint import load_checkpoint

    model, _ = load_checkpoint(args.checkpoint)
    if args.threads:
        torch.set_num_threads(args.threads)

    def progress(ev: dict) -> None:
        if not args.quiet:
            print(f"\r{ev['folder']}: {ev['done']}/{ev['total']} images", end="", file=sys.stderr,
                  flush=True)
            if ev["done"] == ev["total"]:
                print(file=sys.stderr)

    res = evaluate(model, args.data, args.split, max_images=args.max_images,
                   on_error="skip" if args.skip_bad else "raise", score=args.score,
                   threshold=args.threshold, average=args.average, callback=progress)
    res = {"checkpoint": Path(args.checkpoint).name, **res}
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    for d in res["datasets"]:
        print(f"{d['folder']} ({d['split']}): {d['images']} images, "
              f"{d['single_class_images']} single-class, {d['skipped']} skipped, {d['seconds']} s")
        if "table2" in d:
            print(f"  {'approach':<30} {'top-1':>7} {'top-5':>7} {'loc':>7}")
            for r in d["table2"]:
                print(f"  {r['approach']:<30} {_fmt(r['top1_error']):>7} "
                      f"{_fmt(r['top5_error']):>7} {_fmt(r['localization_error']):>7}")
        print(f"  detection mAP@0.5: {_fmt(d['detection']['mAP'])}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="top-1/top-5, localization error, mAP and the Table 2 analogue",
        description="Evaluate a checkpoint on the split of one or more VOC-layout folders with "
        "the paper's metrics: classification top-1/top-5 error and ILSVRC localization error "
        "(on single-class images), VOC detection mAP@0.5 (all images), and the errors for "
        "1 scale coarse, 1 scale fine, 3 scales, 6 scales, 6 scales + flips.")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="VOC-layout folder(s)")
    p.add_argument("--split", default="val")
    p.add_argument("--max-images", type=int, help="only the first N images of each split")
    p.add_argument("--score", choices=["corrected", "literal"], default="corrected",
                   help="match score of the greedy merge")
    p.add_argument("--threshold", type=float,
                   help="merge threshold t for both tasks (default: per task and score)")
    p.add_argument("--average", choices=AVERAGES,
                   help="box_merge for both tasks (default: plain for localization, weighted "
                        "for detection)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip bad records (counted in the report) instead of stopping")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_evaluate)
