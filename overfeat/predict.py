"""The whole pipeline on one image: load the model, dense multi-scale evaluation, greedy merge,
final boxes. Shared by the CLI's predict command, evaluation and the app."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from .boxes import Detection
from .checkpoint import DEMO_CHECKPOINT, load_checkpoint
from .config import preset
from .merge import DEFAULT_AVERAGE, MergeResult
from .models.overfeat import OverFeat
from .multiscale import Analysis, Settings, analyze


def load_model(checkpoint: str | Path | None = None) -> tuple[OverFeat, str]:
    """(model, description). No checkpoint given: the shipped demo checkpoint, or, when the repo
    has none yet, a randomly initialised demo-preset model (said plainly in the description)."""
    if checkpoint is not None:
        model, meta = load_checkpoint(checkpoint)
        return model, f"checkpoint {Path(checkpoint).name}"
    if DEMO_CHECKPOINT.exists():
        model, meta = load_checkpoint(DEMO_CHECKPOINT)
        return model, f"shipped checkpoint {DEMO_CHECKPOINT.name}"
    # Seeded (without touching the caller's random state): every process gets the same random
    # weights, so the app's answers can be reproduced outside it (tests/load_app.py does).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = OverFeat(preset("demo")).eval()
    model.trained = False  # the sidebar warns that scores and boxes are noise
    return model, "RANDOMLY INITIALISED demo model (no trained checkpoint found): boxes are noise"


def detections(analysis: Analysis, merged: MergeResult, n: int | None = None) -> list[Detection]:
    """Final boxes as records (boxes.Detection), most confident first (at most n)."""
    return merged.final.top(n).records(analysis.class_names)


def run(model: OverFeat, image: Image.Image, settings: Settings | None = None,
        score: str = "corrected", threshold: float | None = None,
        average: str = DEFAULT_AVERAGE, by_class: bool = True) -> tuple[Analysis, MergeResult]:
    a = analyze(model, image, settings)
    return a, a.merge(score=score, threshold=threshold, average=average, by_class=by_class)


PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#bfef45", "#469990", "#9a6324", "#800000", "#808000", "#000075", "#a9a9a9"]


def annotate(image: Image.Image, dets: list[Detection]) -> Image.Image:
    """A copy of the image with the boxes drawn and labelled."""
    im = image.convert("RGB").copy()
    d = ImageDraw.Draw(im)
    lw = max(2, round(min(im.size) / 200))
    for i, det in enumerate(dets):
        c = PALETTE[det.label % len(PALETTE)]
        d.rectangle(det.box, outline=c, width=lw)
        text = f"{det.name} {det.score if det.score is not None else det.confidence:.2f}"
        x, y = det.box[0], max(0.0, det.box[1] - 12)
        d.rectangle(d.textbbox((x, y), text), fill=c)
        d.text((x, y), text, fill="white")
    return im


def save_image_atomic(im: Image.Image, path: str | Path) -> None:
    """Write to a temporary file beside `path`, then rename: never a partial output file."""
    path = Path(path)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"--out must end in .png, .jpg or .jpeg, got {path.name!r}")
    if not path.parent.exists():
        raise ValueError(f"output folder {str(path.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            im.save(f, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
