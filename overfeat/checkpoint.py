"""Checkpoints: a plain dict of tensors and primitives, loaded with weights_only=True.

Layout (FORMAT "overfeat-teach/1"):
    {"format": str, "config": ModelConfig.to_dict(), "state_dict": {name: Tensor},
     "meta": {...free-form primitives: stage, epoch, metrics...},
     "train_state": optional {optimizer state, epoch, rng} for --resume}
The config carries class names and the input normalisation, so a checkpoint is self-contained.
Nothing is ever unpickled: torch.load(weights_only=True) refuses any object that carries code.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

from .config import ModelConfig
from .models.overfeat import OverFeat

FORMAT = "overfeat-teach/1"
ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEMO_CHECKPOINT = ASSETS / "demo.pt"


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint; str(err) is one line for the user."""


def save_checkpoint(path: str | Path, model: OverFeat, meta: dict | None = None,
                    train_state: dict | None = None) -> None:
    """Write atomically: a temporary file in the same folder, then os.replace, so a crash
    never leaves a half-written checkpoint under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "config": model.cfg.to_dict(),
            "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
            "meta": meta or {}}
    if train_state is not None:
        blob["train_state"] = train_state
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(blob, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_checkpoint(source: str | Path | bytes, name: str | None = None) -> dict:
    """Load and validate the raw dict (no model built). Raises CheckpointError."""
    import io

    label = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    try:
        f = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except FileNotFoundError:
        raise CheckpointError(f"{label}: no such checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{label}: cannot read ({e.strerror or e})") from None
    head = f.read(4)
    f.seek(0)
    # torch.save writes a zip archive (PK..); the legacy format starts with a pickle protocol
    # byte (0x80). Anything else is not a checkpoint at all (a text file, an image...).
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        f.close()
        what = "an empty file" if not head else "a file of another kind"
        raise CheckpointError(f"{label}: not a PyTorch checkpoint file ({what})")
    try:
        with f:
            blob = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" in str(e) or "Unsupported global" in str(e):
            raise CheckpointError(f"{label}: refused: the file holds Python objects beyond "
                                  f"tensors (code could run if unpickled)") from None
        raise CheckpointError(f"{label}: not a PyTorch checkpoint file") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError,
            IndexError, TypeError, AttributeError) as e:
        msg = (str(e).splitlines() or [""])[0][:120]
        msg = msg if isinstance(e, (RuntimeError, ValueError)) and msg else type(e).__name__
        raise CheckpointError(f"{label}: not a readable checkpoint (truncated or corrupt: {msg})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise CheckpointError(f"{label}: not an OverFeat teaching checkpoint (expected format "
                              f"{FORMAT!r}, found {found!r})")
    if not isinstance(blob.get("state_dict"), dict) or not isinstance(blob.get("config"), dict):
        raise CheckpointError(f"{label}: checkpoint lacks its config or state_dict")
    return blob


def load_checkpoint(source: str | Path | bytes, name: str | None = None,
                    expect_geometry: str | None = None) -> tuple[OverFeat, dict]:
    """Build the model a checkpoint describes and load its weights: (model in eval mode, meta)."""
    label = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    blob = read_checkpoint(source, name)
    try:
        cfg = ModelConfig.from_dict(blob["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{label}: invalid model config ({e})") from None
    if expect_geometry and cfg.geometry != expect_geometry:
        raise CheckpointError(f"{label}: checkpoint is for the {cfg.geometry!r} geometry, "
                              f"expected {expect_geometry!r}")
    model = OverFeat(cfg)
    try:
        model.load_state_dict(blob["state_dict"], strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())[:160]
        raise CheckpointError(f"{label}: weights do not fit its {cfg.geometry} config ({detail})") from None
    model.eval()
    meta = blob.get("meta") or {}
    if "train_state" in blob:
        meta = {**meta, "_train_state": blob["train_state"]}
    return model, meta
