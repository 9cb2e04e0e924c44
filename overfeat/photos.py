"""Real photos with hand-drawn boxes (assets/photos/boxes.json): the Objects model's check.

For each photo, the app's answer at its default settings (what `predict --model objects` prints
and the Detection page shows) is matched to the hand-drawn boxes the VOC way
(overfeat.compare.match_truth, IoU >= 0.5, the right class): found objects, missed objects,
wrong boxes (a box on no object of its class, or a second box on one). Objects marked
"difficult" in boxes.json (too small or too hidden to require) are neither missed when not
found nor wrong when found. `python -m overfeat photo-eval` prints the table docs/OBJECTS.md
reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .checkpoint import ASSETS

BOXES = ASSETS / "photos" / "boxes.json"


@dataclass
class PhotoResult:
    photo: str
    objects: int  # required objects (not difficult)
    found: int
    missed: list[str]  # class names of the required objects no box found
    wrong: list[str]  # "class (score)" of the wrong boxes
    shown: int  # boxes in the answer
    seconds: float = 0.0
    answer: list[dict] = field(default_factory=list)  # the answer's boxes (Detection.to_dict)


def load_truth(path: str | Path = BOXES) -> dict[str, dict]:
    """{photo: {"width", "height", "objects": [{"class", "box", "difficult"?}], "note"?}},
    validated: a malformed file raises ValueError naming the problem."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of photos")
    for photo, entry in data.items():
        objs = entry.get("objects") if isinstance(entry, dict) else None
        if not isinstance(objs, list):
            raise ValueError(f"{path}: {photo} has no list of objects")
        for o in objs:
            box = o.get("box") if isinstance(o, dict) else None
            if (not isinstance(o, dict) or not isinstance(o.get("class"), str)
                    or not isinstance(box, list) or len(box) != 4
                    or not all(isinstance(v, (int, float)) for v in box)
                    or not (box[0] < box[2] and box[1] < box[3])):
                raise ValueError(f"{path}: {photo}: malformed object {o!r}")
    return data


def truth_of(entry: dict) -> list[dict]:
    """One photo's objects as match_truth takes them."""
    return [{"name": o["class"], "box": tuple(o["box"]), "difficult": bool(o.get("difficult"))}
            for o in entry["objects"]]


def evaluate_photo(model, photo: str, entry: dict, answer_fn) -> PhotoResult:
    """answer_fn(model, image) -> (Detections of the answer, class names)."""
    import time

    from .compare import match_truth
    from .images import load_image

    image = load_image(ASSETS / "photos" / photo)
    if image.size != (entry["width"], entry["height"]):
        raise ValueError(f"{photo} is {image.size[0]}x{image.size[1]}, boxes.json says "
                         f"{entry['width']}x{entry['height']}")
    t = time.perf_counter()
    dets, names = answer_fn(model, image)
    dt = time.perf_counter() - t
    truth = truth_of(entry)
    m = match_truth(dets, truth, names)
    recs = dets.records(names)
    wrong = [f"{r.name} ({r.score if r.score is not None else r.confidence:.2f})"
             for r, s in zip(recs, m.status) if s == "FP"]
    required = [t for t in truth if not t["difficult"]]
    return PhotoResult(photo, len(required), m.tp, [truth[j]["name"] for j in m.missed], wrong,
                       len(dets), dt, [r.to_dict() for r in recs])


def evaluate_photos(model, answer_fn, path: str | Path = BOXES,
                    photos: list[str] | None = None) -> list[PhotoResult]:
    truth = load_truth(path)
    names = photos or list(truth)
    unknown = [p for p in names if p not in truth]
    if unknown:
        raise ValueError(f"no boxes for {', '.join(unknown)} in {path}")
    return [evaluate_photo(model, p, truth[p], answer_fn) for p in names]


def table(results: list[PhotoResult]) -> str:
    """A Markdown table: photo, objects, found, missed, wrong boxes."""
    rows = ["| photo | objects | found | missed | wrong boxes | time (s) |", "|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.photo} | {r.objects} | {r.found} | {', '.join(r.missed) or '-'} | "
                    f"{len(r.wrong)}{': ' + ', '.join(r.wrong) if r.wrong else ''} | {r.seconds:.2f} |")
    return "\n".join(rows)


def app_answer(model, image):
    """The app's answer at its default settings for this model (the sidebar's defaults with the
    model's own knob values, all six scales with flips, the corrected match score and its
    default t): what `predict` prints and the Detection page shows. -> (Detections, names)."""
    from .app.state import MODEL_KNOBS, Knobs
    from .detection import answer_boxes
    from .models.registry import card_of
    from .multiscale import analyze

    name = getattr(model, "name", "pictogram")
    knobs = Knobs(**MODEL_KNOBS.get(name, {}))
    a = analyze(model, image, knobs.settings(), keep_maps=False)
    r = a.merge(score=knobs.score, threshold=knobs.threshold(knobs.score), by_class=knobs.by_class,
                average=knobs.average)
    return answer_boxes(r.final, card_of(model).min_box_score), a.class_names


def register(sub) -> None:
    p = sub.add_parser("photo-eval", help="the objects model's answers vs hand-drawn boxes",
                       description="Runs a model at the app's default settings on the sample "
                       "photos with hand-drawn boxes (assets/photos/boxes.json) and prints, per "
                       "photo, the objects found (IoU >= 0.5, right class), missed and the wrong "
                       "boxes (docs/OBJECTS.md's table).")
    p.add_argument("--model", default="objects", choices=["objects", "faces", "pictogram"])
    p.add_argument("--boxes", default=str(BOXES), help="default: assets/photos/boxes.json")
    p.add_argument("--photo", action="append", help="only these photos (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd)


def _cmd(args) -> int:
    from .models import registry

    model = registry.load(args.model)
    res = evaluate_photos(model, app_answer, args.boxes, args.photo)
    if args.json:
        print(json.dumps([r.__dict__ for r in res], indent=1))
        return 0
    print(table(res))
    n, f = sum(r.objects for r in res), sum(r.found for r in res)
    w = sum(len(r.wrong) for r in res)
    print(f"\n{f} of {n} objects found, {w} wrong boxes; at most "
          f"{max((len(r.wrong) for r in res), default=0)} wrong on one photo")
    return 0
