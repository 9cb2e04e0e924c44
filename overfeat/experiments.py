"""The Table 2 analogue of the loaded checkpoint (paper §3.4, Table 2) beside the paper's.

The checkpoint's numbers come from the committed evaluation JSON (EVAL_JSON, written by
`python -m overfeat evaluate ... --json`, format: overfeat.evaluate.evaluate), or are
recomputed on a small generated validation folder (recompute). The paper's own numbers are
PAPER_TABLE2, copied from its ablation (fast model, ImageNet validation, top-5 error).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .data.voc import VOC_CLASSES
from .evaluate import Callback, evaluate
from .models.overfeat import OverFeat

EVAL_JSON = Path(__file__).resolve().parent.parent / "assets" / "demo_eval.json"
# Sermanet et al. 2014, Table 2 (section 4.4): the fast model on the ImageNet 2012 validation
# set, errors in %. Its scales are numbered as its Table 5, 1 the smallest input (245x245 for the
# accurate model) to 6 the largest; "fine" = the 3x3 offsets, "coarse" = offset (0, 0) only.
PAPER_TABLE2 = (
    {"approach": "1 scale, coarse stride", "scales": (1,), "fine": False, "flips": False,
     "top1_error": 39.28, "top5_error": 17.12},
    {"approach": "1 scale, fine stride", "scales": (1,), "fine": True, "flips": False,
     "top1_error": 39.01, "top5_error": 16.97},
    {"approach": "4 scales, fine stride", "scales": (1, 2, 4, 6), "fine": True, "flips": False,
     "top1_error": 38.57, "top5_error": 16.39},
    {"approach": "6 scales, fine stride", "scales": (1, 2, 3, 4, 5, 6), "fine": True,
     "flips": False, "top1_error": 38.12, "top5_error": 16.27},
)
PAPER_SOURCE = ("Sermanet et al., OverFeat (ICLR 2014), Table 2: fast model, ImageNet 2012 "
                "validation; scale 1 is the smallest of the six input sizes")
RECOMPUTE_SEED = 3  # training used scene seeds 1 and 2: these scenes are new to the model
RECOMPUTE_IMAGES = 20


def load_eval(path: str | Path | None = None) -> dict | None:
    """The evaluation JSON, or None when it does not exist yet; ValueError when malformed."""
    path = Path(EVAL_JSON if path is None else path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path.name} is not readable JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), list):
        raise ValueError(f"{path.name}: expected an object with a 'datasets' list "
                         "(the output of `python -m overfeat evaluate --json`)")
    return data


def paper_row(row: dict) -> int | None:
    """The index into PAPER_TABLE2 of the paper's row a Table 2 row (evaluate's JSON: scales
    1-based, fine, flips) answers to: the same stride and number of views (one scale, several,
    all six), whatever its scale set; None for a row the paper's fast-model ablation lacks
    (flips)."""
    n = len(row["scales"])
    if row["flips"]:
        return None
    if n == 1:
        return 0 if not row["fine"] else 1
    if not row["fine"]:
        return None
    return 3 if n == 6 else 2


def _scales(v) -> str:
    return ", ".join(str(s) for s in v)


def table_rows(dataset: dict) -> list[dict]:
    """A dataset's Table 2 analogue as table rows, errors in % (None stays None), each beside
    the paper's row it lines up with (paper_row): that row's name, scales and top-5 error (as
    text; "none" where the paper has no such row)."""
    pct = lambda v: None if v is None else round(100 * float(v), 2)  # noqa: E731
    rows = []
    for r in dataset.get("table2", []):
        i = paper_row(r)
        p = PAPER_TABLE2[i] if i is not None else None
        rows.append({"approach": r["approach"], "scales": _scales(r["scales"]), "fine": r["fine"],
                     "flips": r["flips"], "top-1 error %": pct(r["top1_error"]),
                     "top-5 error %": pct(r["top5_error"]),
                     "localization error %": pct(r["localization_error"]),
                     "paper's row": p["approach"] if p else "none",
                     "paper's scales": _scales(p["scales"]) if p else "none",
                     "paper top-5 error %": f"{p['top5_error']:.2f}" if p else "none"})
    return rows


def scale_differences(dataset: dict) -> list[str]:
    """One line per row of the dataset whose scale set differs from its paper row's, and per
    row the paper does not have."""
    out = []
    for r in dataset.get("table2", []):
        i = paper_row(r)
        if i is None:
            out.append(f"'{r['approach']}' has no row of its own in the paper's Table 2 (flips "
                       "are not one of its steps).")
        elif tuple(r["scales"]) != tuple(PAPER_TABLE2[i]["scales"]):
            n = len(r["scales"])
            out.append(f"'{r['approach']}' uses scale{'s' if n > 1 else ''} {_scales(r['scales'])}"
                       f"; the paper's '{PAPER_TABLE2[i]['approach']}' uses "
                       f"{_scales(PAPER_TABLE2[i]['scales'])}.")
    return out


METRICS = (("top1_error", "top-1 error"), ("top5_error", "top-5 error"),
           ("localization_error", "localization error"))


def _step_name(a: dict, b: dict) -> str:
    """What changes from row a to row b of Table 2."""
    if a["fine"] != b["fine"]:
        return "offsets (coarse → fine stride)"
    if a["flips"] != b["flips"]:
        return "flips"
    return f"{len(a['scales'])} → {len(b['scales'])} scales"


def steps(dataset: dict) -> list[dict]:
    """Each step of the dataset's Table 2 (row to next row) and what it does to each error:
    {"step", "metric", "before", "after" (in %), "change": "lower", "higher" or "same",
    "images": how many single-class images the difference is}."""
    rows = dataset.get("table2", [])
    n = int(dataset.get("single_class_images") or 0)
    out = []
    for a, b in zip(rows, rows[1:]):
        for key, label in METRICS:
            if a.get(key) is None or b.get(key) is None:
                continue
            before, after = 100 * float(a[key]), 100 * float(b[key])
            images = round(abs(float(b[key]) - float(a[key])) * n) if n else None
            change = ("same" if round(before, 2) == round(after, 2)
                      else "lower" if after < before else "higher")
            out.append({"step": _step_name(a, b), "metric": label, "before": before,
                        "after": after, "change": change, "images": images})
    return out


def _imgs(k: int | None, n: int) -> str:
    return "" if k is None else f", {k} image{'' if k == 1 else 's'} of {n}"


def findings(dataset: dict) -> dict:
    """What the checkpoint's Table 2 shows on one dataset, written from its numbers:
    {"steps": one line per step (each error before → after), "against": one line per step that
    raises an error (where it does not follow the paper, whose every step lowers its error),
    "noise": what one image is worth here}."""
    n = int(dataset.get("single_class_images") or 0)
    by_step: dict[str, list[dict]] = {}
    for s in steps(dataset):
        by_step.setdefault(s["step"], []).append(s)
    lines = []
    for name, ss in by_step.items():
        parts = [f"{s['metric']} {s['before']:.2f}% → {s['after']:.2f}% ({s['change']})"
                 for s in ss]
        lines.append(f"{name}: " + ", ".join(parts))
    against = [f"{s['step']} raises the {s['metric']} from {s['before']:.2f}% to "
               f"{s['after']:.2f}%{_imgs(s['images'], n)}"
               for s in steps(dataset) if s["change"] == "higher"]
    noise = (f"One image is {100 / n:.2f} points of error on these {n} single-class images: a "
             "difference of an image or two is within chance." if n else "")
    return {"steps": lines, "against": against, "noise": noise}


def paper_trend() -> str:
    """The paper's rows in one line, from PAPER_TABLE2: its top-1 and top-5 errors, first row
    to last."""
    a, b = PAPER_TABLE2[0], PAPER_TABLE2[-1]
    falls = all(q["top5_error"] < p["top5_error"] and q["top1_error"] < p["top1_error"]
                for p, q in zip(PAPER_TABLE2, PAPER_TABLE2[1:]))
    return (f"In the paper {'every step lowers both errors' if falls else 'the errors change'}"
            f" a little: top-1 {a['top1_error']:.2f}% → {b['top1_error']:.2f}%, top-5 "
            f"{a['top5_error']:.2f}% → {b['top5_error']:.2f}% from '{a['approach']}' to "
            f"'{b['approach']}'.")


def can_recompute(model) -> bool:
    """True when the model knows every class the generated scenes hold (the 20 pictogram
    classes): only then do the scenes' truths mean anything to it. Faces, ImageNet and an
    uploaded checkpoint of other classes cannot be measured on them."""
    return set(VOC_CLASSES) <= set(model.names)


def recompute(model: OverFeat, n_images: int = RECOMPUTE_IMAGES, seed: int = RECOMPUTE_SEED,
              callback: Callback | None = None, workdir: str | Path | None = None) -> dict:
    """Evaluate the model on n_images fresh one-object ("loc") scenes of `seed`, written as a
    VOC folder in a temporary directory (all of them in the val split): evaluate()'s dict."""
    from .data.scenes import write_voc_dataset

    if n_images < 1:
        raise ValueError(f"expected at least one image, got {n_images}")
    if not can_recompute(model):
        raise ValueError(f"expected a model of the {len(VOC_CLASSES)} pictogram classes, got "
                         f"one of {', '.join(model.names[:3])}{'...' if len(model.names) > 3 else ''}")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        folder = Path(tmp) / f"val_loc_seed{seed}"
        write_voc_dataset(folder, "loc", n_images, seed, split_fractions=(0.0, 1.0, 0.0),
                          workers=1)
        res = evaluate(model, [str(folder)], "val", callback=callback)
    for d in res["datasets"]:
        d["folder"] = f"{n_images} generated loc scenes, seed {seed}"
    return res
