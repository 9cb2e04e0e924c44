"""Training runs started from the app: one background thread per server, watched by polling.

The app's Training page (app_pages/training.py) calls start(); the run generates a few small
scenes (overfeat.data.scenes.write_voc_dataset), trains a narrow model with overfeat.train
(the same loop as the command line) in a thread, and records what the training callback
reports in its Job. Pages poll Job.snapshot(): nothing here imports Streamlit.

One run at a time per server: the registry below is module state guarded by a lock, so every
browser session of one `streamlit run` shares it, and start() raises JobRunning while a run is
alive. stop() sets a flag; the callback raises StopTraining at the next event, and the trainer
keeps the checkpoint of the last finished epoch (overfeat.train.Trainer.run).

Finished runs leave ROOT/<run id>/model.pt; checkpoints() lists them for the sidebar.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..checkpoint import ASSETS

# Where runs write their scenes and checkpoints (git-ignored); tests point it elsewhere.
ROOT = Path(os.environ.get("OVERFEAT_APP_TRAIN_DIR", ASSETS.parent / "runs" / "app-train"))
KINDS = ("loc", "det")
# Stage 2's shuffle buffer (overfeat.train.ShuffleBuffer) cut down like the batches: the windows
# of ~4 images (2 steps of 2 images x 48 windows). The trainer's default 8192 rows hold all the
# windows of a few dozen scenes, so a run this small would learn everything in the epoch's
# last step (the drain) and draw one loss point per epoch.
SHUFFLE_BUFFER = 192


class JobRunning(RuntimeError):
    """start() while a run is alive; str(err) is one line for the user."""


@dataclass(frozen=True)
class JobSpec:
    """What the Training page lets a learner choose: small enough to finish in a minute or two."""

    stages: tuple[int, ...] = (1,)  # paper stages: 1 classifier, 2 regressor, 3 detection
    epochs: int = 1  # per chosen stage
    n_scenes: int = 12  # generated training scenes (all in the train split)
    kind: str = "det"  # "loc" (one object) or "det" (several): det scenes also feed stage 3
    width: float = 0.0625  # channel multiplier of the demo preset (0.125 ships; 1/16 is quick)
    seed: int = 0  # scene series and training seed
    lr: float = 0.002  # peak learning rate (AdamW, the demo recipe's optimizer)

    def __post_init__(self) -> None:
        stages = tuple(sorted(set(int(s) for s in self.stages)))
        if not stages or any(s not in (1, 2, 3) for s in stages):
            raise ValueError(f"stages must be among 1, 2, 3, got {self.stages}")
        object.__setattr__(self, "stages", stages)
        if not 1 <= self.epochs <= 20:
            raise ValueError(f"epochs must be in 1..20, got {self.epochs}")
        if not 2 <= self.n_scenes <= 500:
            raise ValueError(f"n_scenes must be in 2..500, got {self.n_scenes}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not 0 < self.width <= 0.25:
            raise ValueError(f"width must be in (0, 0.25], got {self.width}")

    def options(self, data: Path, out: Path):
        """The TrainOptions of this run (batch sizes cut down to a few scenes)."""
        from ..train import TrainOptions

        return TrainOptions(data=(str(data),), out=str(out), preset="demo", width=self.width,
                            stages=self.stages, epochs=(self.epochs,) * 3,
                            lr=(self.lr, self.lr / 2, self.lr / 4), batch_size=8,
                            images_per_step=2, crops_per_image=6, optimizer="adamw",
                            weight_decay=0.05, dropout=0.3, seed=self.seed,
                            shuffle_buffer=SHUFFLE_BUFFER)


@dataclass
class Job:
    """One run: its state is written by the training thread and read through snapshot()."""

    id: str
    spec: JobSpec
    folder: Path
    status: str = "preparing"  # preparing -> running -> done | stopped | failed
    message: str = "generating scenes"
    progress: float = 0.0  # 0..1 over all chosen stages
    # One per step: stage, epoch, step, steps, x, loss, rows (stage 2: rows learned; its loss
    # is None for a step that only filled the shuffle buffer, see overfeat.train).
    losses: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)  # the trainer's epoch records
    error: str | None = None
    checkpoint: Path | None = None  # written and complete (None while none is)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def out(self) -> Path:
        return self.folder / "model.pt"

    @property
    def alive(self) -> bool:
        return self.status in ("preparing", "running")

    def stop(self) -> None:
        """Ask the run to stop: the callback raises StopTraining at the next event."""
        self._stop.set()

    def snapshot(self) -> dict:
        """A consistent copy of the state, safe to read from any thread."""
        with self._lock:
            return {"id": self.id, "status": self.status, "message": self.message,
                    "progress": self.progress, "losses": list(self.losses),
                    "epochs": list(self.epochs), "error": self.error,
                    "checkpoint": str(self.checkpoint) if self.checkpoint else None,
                    "stop_requested": self._stop.is_set(), "spec": self.spec,
                    "seconds": (self.finished or time.time()) - self.started}

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (tests); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    # -- the training thread ---------------------------------------------------------------
    def callback(self, ev: dict) -> None:
        """overfeat.train's progress callback: record the event; raise StopTraining when asked."""
        from ..train import StopTraining

        kind = ev.get("event")
        stages = self.spec.stages
        with self._lock:
            if kind == "step":
                si = stages.index(ev["stage"])
                within = (ev["epoch"] + ev["step"] / ev["steps"]) / ev["epochs"]
                self.progress = min(1.0, (si + within) / len(stages))
                n = len(self.losses)
                # loss None: a stage-2 step that only filled the shuffle buffer (learned nothing)
                loss = None if ev["loss"] is None else float(ev["loss"])
                self.losses.append({"stage": ev["stage"], "epoch": ev["epoch"],
                                    "step": ev["step"], "steps": ev["steps"], "x": n + 1,
                                    "loss": loss, "rows": ev.get("rows")})
                self.message = (f"stage {ev['stage']} epoch {ev['epoch'] + 1}/{ev['epochs']}, "
                                f"step {ev['step']}/{ev['steps']}, " +
                                ("filling the shuffle buffer" if loss is None
                                 else f"loss {loss:.4f}"))
            elif kind == "epoch":
                self.epochs.append({k: v for k, v in ev.items() if k != "event"})
            elif kind == "checkpoint":
                self.checkpoint = Path(ev["path"])
            elif kind == "stage":
                self.message = f"stage {ev['stage']} ({ev['name']}): {ev['epochs']} epoch(s)"
        if self._stop.is_set() and kind != "done":
            raise StopTraining()

    def _run(self) -> None:
        from ..data.scenes import write_voc_dataset
        from ..train import Trainer

        try:
            data = self.folder / "data"
            write_voc_dataset(data, self.spec.kind, self.spec.n_scenes, self.spec.seed,
                              split_fractions=(1.0, 0.0, 0.0), workers=1)
            if self._stop.is_set():
                self._finish("stopped", "stopped before training started")
                return
            with self._lock:
                self.status, self.message = "running", "building the model"
            trainer = Trainer(self.spec.options(data, self.out), self.callback)
            trainer.run()
            if trainer.stopped:
                where = (f"the checkpoint holds stage {trainer.saved[0]} epoch "
                         f"{trainer.saved[1] + 1}" if trainer.saved else "no epoch finished, "
                         "no checkpoint")
                self._finish("stopped", f"stopped: {where}")
            else:
                self._finish("done", f"done in {time.time() - self.started:.0f} s")
        except Exception as e:  # shown on the page; the server goes on
            traceback.print_exc()
            with self._lock:
                self.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            self._finish("failed", "failed")

    def _finish(self, status: str, message: str) -> None:
        with self._lock:
            self.status, self.message, self.finished = status, message, time.time()
            if status == "done":
                self.progress = 1.0
            if self.checkpoint is not None and not self.checkpoint.exists():
                self.checkpoint = None


# --- the registry: module state shared by every session of the server ------------------------
_LOCK = threading.Lock()
_CURRENT: Job | None = None


def start(spec: JobSpec, root: Path | None = None) -> Job:
    """Start a run in a background thread; JobRunning if one is alive on this server."""
    global _CURRENT
    with _LOCK:
        if _CURRENT is not None and _CURRENT.alive:
            raise JobRunning(f"a training run ({_CURRENT.id}, {_CURRENT.message}) is already "
                             f"running on this server: one at a time. Watch it on the Training "
                             f"page, or stop it first.")
        root = Path(root or ROOT)
        job_id = time.strftime("run-%Y%m%d-%H%M%S") + f"-{os.getpid() % 1000:03d}"
        folder = root / job_id
        n = 1
        while folder.exists():
            n += 1
            folder = root / f"{job_id}-{n}"
        folder.mkdir(parents=True)
        job = Job(id=folder.name, spec=spec, folder=folder)
        job._thread = threading.Thread(target=job._run, name=f"overfeat-{job.id}", daemon=True)
        _CURRENT = job
        job._thread.start()
        return job


def current() -> Job | None:
    """The server's latest run (alive or finished), or None."""
    return _CURRENT


def checkpoints(root: Path | None = None) -> list[Path]:
    """Checkpoints of finished app runs (newest first); the live run's is left out while it
    is still being written."""
    root = Path(root or ROOT)
    live = _CURRENT.out.resolve() if _CURRENT is not None and _CURRENT.alive else None
    found = [p for p in root.glob("*/model.pt") if p.resolve() != live]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def checkpoint_label(path: Path) -> str:
    """'run-... (stages 1,2: done)' from a checkpoint's meta, for the sidebar's list."""
    from ..checkpoint import CheckpointError, read_checkpoint

    try:
        meta = read_checkpoint(path).get("meta") or {}
    except CheckpointError:
        return f"{path.parent.name} (unreadable)"
    stages = ",".join(str(s) for s in (meta.get("options") or {}).get("stages", []))
    state = "complete" if meta.get("complete") else f"stopped after stage {meta.get('stage')}"
    return f"{path.parent.name} (stages {stages}, {state})"
