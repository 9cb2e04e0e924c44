"""Training runs started from the app: one run at a time per server, each in its own process at
the lowest CPU priority, watched by polling.

The app's Training page (app_pages/training.py) calls start(); a thread of the server starts the
run's worker process (`python -m overfeat.app.train_worker`, see there), which generates a few
small scenes (overfeat.data.scenes.write_voc_dataset), trains a narrow model with overfeat.train
(the same loop as the command line) and reports what the training callback sees, one JSON line
per event; the thread records those events in the run's Job. Pages poll Job.snapshot(): nothing
here imports Streamlit.

Why a process (issue 25, part 5): in a thread of the server, training shared the server's
interpreter lock and PyTorch's threads with every session's inference, and the students'
clicks waited for it (docs/TRAINING_ISOLATION.md has the figures). The worker runs at nice 19
with one PyTorch thread, so the kernel gives the server's work the cores first and a run only
uses what the sessions leave; a run takes longer on a busy server.

One run at a time per server: the registry below is module state guarded by a lock, so every
browser session of one `streamlit run` shares it, and start() raises JobRunning while a run is
alive. Who may stop it: the session that started it (start(owner=) records that session's
token) or whoever gives the teacher key (OVERFEAT_TEACHER_KEY, read when the server starts);
Job.stop raises NotYourRun otherwise. stop() tells the worker, whose callback raises
StopTraining at the next event, and the trainer keeps the checkpoint of the last finished epoch
(overfeat.train.Trainer.run). How large a run a browser may start: CAP, unless the teacher key
is given (then MAXIMA, which JobSpec always checks); start() raises OverCap otherwise.

Finished runs leave ROOT/<run id>/model.pt; checkpoints() lists them for the sidebar.
"""

from __future__ import annotations

import hmac
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
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

# The teacher key: whoever gives it may stop any run and start runs over CAP. Read once, when
# the server starts (the first import of this module); unset or empty, nobody holds one. Never
# shown or sent anywhere: pages ask teacher_key_set() and is_teacher(key).
TEACHER_KEY_ENV = "OVERFEAT_TEACHER_KEY"
TEACHER_KEY: str | None = os.environ.get(TEACHER_KEY_ENV) or None

# The worker process: nice 19 (the kernel's lowest priority short of SCHED_IDLE: against the
# server's threads at nice 0 it gets about 1.5% of a core while they are busy, all of it while
# they are idle) and one PyTorch thread (two threads on two cores wait for each other at every
# operation as soon as anything else runs: a stage-1 epoch of 200 scenes took 63 s with two
# threads and 14 s with one, measured here with another engineer's tests running). It stays in
# the server's session: with autogroups (Linux, sched(7)) nice weighs within a session, which
# is what is wanted here; a session of its own at autogroup nice 19, and SCHED_IDLE, measured
# worse (docs/TRAINING_ISOLATION.md).
WORKER_NICE = 19
WORKER_THREADS = 1
WORKER_MODULE = "overfeat.app.train_worker"


class JobRunning(RuntimeError):
    """start() while a run is alive; str(err) is one line for the user."""


class NotYourRun(PermissionError):
    """Job.stop by a session that did not start the run, without the teacher key; str(err) is
    one line for the user."""


class OverCap(ValueError):
    """start() of a run over CAP without the teacher key; str(err) is one line naming the
    limit."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds on the size of a run (JobSpec.over checks a spec against them)."""

    n_scenes: int  # generated training scenes
    epochs: int  # epochs per chosen stage (any of the three stages may be chosen)
    width: float  # channel multiplier of the demo preset


# What any run may be: JobSpec refuses more.
MAXIMA = Limits(n_scenes=500, epochs=20, width=0.25)
# What a browser may start without the teacher key: small enough that one finishes in a few
# minutes on the project's 2-core CPU and a class cannot hold the server's cores for an hour
# (MAXIMA's largest run, 500 scenes x 3 stages x 20 epochs at width 0.25, would take hours).
# The cap's largest run (stages 1, 2, 3 x 5 epochs, 120 det scenes, width 0.125) took 89 s
# and 92 s in the worker (nice 19, one thread; 87 and 93 CPU s, peak memory 1.1 GB), start to
# final checkpoint, on the project's 2-core CPU with no browser session busy and another
# engineer's tests on the other core (2026-12-05; stage-1 epochs 7.4 to 8.2 s, stages 2 and 3
# 4.2 to 4.9 s; docs/TRAINING_ISOLATION.md). One thread needs one free core, so an idle
# machine takes about as long; while sessions keep both cores busy it takes longer.
CAP = Limits(n_scenes=120, epochs=5, width=0.125)
CAP_LARGEST_RUN_S = 90  # those measurements, for the page's note


def teacher_key_set() -> bool:
    """Whether the server was started with a teacher key (the key itself is never returned)."""
    return bool(TEACHER_KEY)


def is_teacher(key: str | None) -> bool:
    """True when key is the server's teacher key; False for None, "" and every key when the
    server has none. Compared in constant time (hmac.compare_digest)."""
    if key is not None and not isinstance(key, str):
        raise ValueError(f"key must be a string or None, got {type(key).__name__}")
    if not TEACHER_KEY or not key:
        return False
    return hmac.compare_digest(key.encode(), TEACHER_KEY.encode())


def limits_for(key: str | None) -> Limits:
    """The limits a run started with this key must keep: MAXIMA for the teacher key, else CAP."""
    return MAXIMA if is_teacher(key) else CAP


@dataclass(frozen=True)
class JobSpec:
    """What the Training page lets a learner choose (within CAP without the teacher key)."""

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
        if not 1 <= self.epochs <= MAXIMA.epochs:
            raise ValueError(f"epochs must be in 1..{MAXIMA.epochs}, got {self.epochs}")
        if not 2 <= self.n_scenes <= MAXIMA.n_scenes:
            raise ValueError(f"n_scenes must be in 2..{MAXIMA.n_scenes}, got {self.n_scenes}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not 0 < self.width <= MAXIMA.width:
            raise ValueError(f"width must be in (0, {MAXIMA.width}], got {self.width}")

    def over(self, limits: Limits) -> str | None:
        """None when this run keeps within limits; else one line naming the first limit it
        passes ("n_scenes 200 is over the limit of 120")."""
        if not isinstance(limits, Limits):
            raise ValueError(f"limits must be a Limits, got {type(limits).__name__}")
        for name in ("n_scenes", "epochs", "width"):
            value, limit = getattr(self, name), getattr(limits, name)
            if value > limit:
                return f"{name} {value:g} is over the limit of {limit:g}"
        return None

    def options(self, data: Path, out: Path):
        """The TrainOptions of this run (batch sizes cut down to a few scenes)."""
        from ..train import TrainOptions

        return TrainOptions(data=(str(data),), out=str(out), preset="demo", width=self.width,
                            stages=self.stages, epochs=(self.epochs,) * 3,
                            lr=(self.lr, self.lr / 2, self.lr / 4), batch_size=8,
                            images_per_step=2, crops_per_image=6, optimizer="adamw",
                            weight_decay=0.05, dropout=0.3, seed=self.seed,
                            shuffle_buffer=SHUFFLE_BUFFER)


def _same(a: str | None, b: str | None) -> bool:
    """Two tokens or keys equal (constant time); None or "" equals nothing."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


@dataclass
class Job:
    """One run. In the server its state is written by the thread that watches the worker
    process and read through snapshot(); in the worker (train_worker) the same class trains,
    and its callback sends every event to the server."""

    id: str
    spec: JobSpec
    folder: Path
    status: str = "preparing"  # preparing -> running -> done | stopped | failed
    message: str = "starting the training process"
    progress: float = 0.0  # 0..1 over all chosen stages
    # One per step: stage, epoch, step, steps, x, loss, rows (stage 2: rows learned; its loss
    # is None for a step that only filled the shuffle buffer, see overfeat.train).
    losses: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)  # the trainer's epoch records
    error: str | None = None
    checkpoint: Path | None = None  # written and complete (None while none is)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    # The token of the session that started the run (start(owner=)); None: started by code
    # (tests, a script), which only the teacher key stops. Never in snapshot() or repr.
    owner: str | None = field(default=None, repr=False)
    # What the worker process reported of itself: pid, nice, threads, and once the run has
    # ended its peak memory in MB, peak_mb (None before it has reported).
    worker: dict | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _proc: subprocess.Popen | None = field(default=None, repr=False)  # the worker (server side)
    _sink: Callable[[dict], None] | None = field(default=None, repr=False)  # to the server

    @property
    def out(self) -> Path:
        return self.folder / "model.pt"

    @property
    def alive(self) -> bool:
        return self.status in ("preparing", "running")

    def may_stop(self, by: str | None = None, key: str | None = None) -> bool:
        """Whether stop(by, key) would be accepted: by is the token of the session that started
        the run, or key is the teacher key."""
        for name, v in (("by", by), ("key", key)):
            if v is not None and not isinstance(v, str):
                raise ValueError(f"{name} must be a string or None, got {type(v).__name__}")
        return _same(by, self.owner) or is_teacher(key)

    def stop(self, by: str | None = None, key: str | None = None) -> None:
        """Ask the run to stop (the worker's callback raises StopTraining at its next event):
        only the session that started it (by = its token) or the teacher key may; NotYourRun
        otherwise."""
        if not self.may_stop(by, key):
            raise NotYourRun(f"run {self.id} was started by another session: only that "
                             "session or the teacher key can stop it")
        with self._lock:
            self._stop.set()
            self._tell_worker()

    def snapshot(self) -> dict:
        """A consistent copy of the state, safe to read from any thread."""
        with self._lock:
            return {"id": self.id, "status": self.status, "message": self.message,
                    "progress": self.progress, "losses": list(self.losses),
                    "epochs": list(self.epochs), "error": self.error,
                    "checkpoint": str(self.checkpoint) if self.checkpoint else None,
                    "stop_requested": self._stop.is_set(), "spec": self.spec,
                    "worker": dict(self.worker) if self.worker else None,
                    "seconds": (self.finished or time.time()) - self.started}

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (tests); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    # -- events: the trainer's (in the worker) and what the server's Job records -------------
    def callback(self, ev: dict) -> None:
        """overfeat.train's progress callback (in the worker process): record the event, send
        it to the server, raise StopTraining when asked."""
        from ..train import StopTraining

        self.record(ev)
        if self._sink is not None:
            self._sink(ev)
        if self._stop.is_set() and ev.get("event") != "done":
            raise StopTraining()

    def record(self, ev: dict) -> None:
        """Update the state from one event (a trainer event, or the worker's "state" and
        "worker" events)."""
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
            elif kind == "state":
                self.status, self.message = ev["status"], ev["message"]
            elif kind == "worker":
                self.worker = {k: v for k, v in ev.items() if k != "event"}

    def _state(self, status: str, message: str) -> None:
        """(worker) A new status, recorded and sent to the server."""
        ev = {"event": "state", "status": status, "message": message}
        self.record(ev)
        if self._sink is not None:
            self._sink(ev)

    # -- the worker process: the run itself -----------------------------------------------
    def train(self) -> dict:
        """Generate the scenes and train (in the worker process; overfeat.app.train_worker);
        returns how it ended: {"status": done | stopped | failed, "message", "error"}."""
        from ..data.scenes import write_voc_dataset
        from ..train import Trainer

        try:
            self._state("preparing", "generating scenes")
            data = self.folder / "data"
            write_voc_dataset(data, self.spec.kind, self.spec.n_scenes, self.spec.seed,
                              split_fractions=(1.0, 0.0, 0.0), workers=1)
            if self._stop.is_set():
                return {"status": "stopped", "message": "stopped before training started"}
            self._state("running", "building the model")
            trainer = Trainer(self.spec.options(data, self.out), self.callback)
            trainer.run()
            if trainer.stopped:
                where = (f"the checkpoint holds stage {trainer.saved[0]} epoch "
                         f"{trainer.saved[1] + 1}" if trainer.saved else "no epoch finished, "
                         "no checkpoint")
                return {"status": "stopped", "message": f"stopped: {where}"}
            return {"status": "done", "message": f"done in {time.time() - self.started:.0f} s"}
        except Exception as e:  # shown on the page; the server goes on
            traceback.print_exc()
            return {"status": "failed", "message": "failed", "error": _one_line(e)}

    # -- the server's side: a thread that starts and watches the worker ----------------------
    def _order(self) -> dict:
        """What the worker is told to do (its only argument, as JSON)."""
        return {"id": self.id, "folder": str(self.folder.resolve()), "started": self.started,
                "spec": asdict(self.spec), "nice": WORKER_NICE, "threads": WORKER_THREADS}

    def _tell_worker(self) -> None:
        """(under _lock) Pass a stop on to the worker, if it runs: one line on its stdin."""
        proc = self._proc
        if self._stop.is_set() and proc is not None and proc.poll() is None:
            try:
                proc.stdin.write("stop\n")
                proc.stdin.flush()
            except (OSError, ValueError):  # it has just ended, or its stdin is closed
                pass

    def _run(self) -> None:
        """Start the worker process, record each event it reports, end with its result."""
        proc = None
        try:
            # The package's parent folder on the path: the worker imports this package as the
            # server did, whatever the server's working directory.
            top = str(Path(__file__).resolve().parents[2])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                [top] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
            proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE,
                                     json.dumps(self._order())],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                    text=True, bufsize=1)
            with self._lock:
                self._proc = proc
                self._tell_worker()  # a stop asked for while it was starting
            end = None
            for line in proc.stdout:
                ev = json.loads(line)
                if ev.get("event") == "end":
                    end = ev
                else:
                    self.record(ev)
            code = proc.wait()
            if end is None:
                raise RuntimeError(f"the training process ended with exit status {code} "
                                   "before it reported a result")
            with self._lock:
                self.error = end.get("error")
            self._finish(end["status"], end["message"])
        except Exception as e:  # shown on the page; the server goes on
            traceback.print_exc()
            with self._lock:
                self.error = _one_line(e)
            self._finish("failed", "failed")
        finally:
            if proc is not None:
                if proc.poll() is None:  # the server's side failed: the worker goes too
                    proc.kill()
                    proc.wait()
                for pipe in (proc.stdin, proc.stdout):
                    try:
                        pipe.close()
                    except OSError:  # a stop line the ended worker never read
                        pass

    def _finish(self, status: str, message: str) -> None:
        with self._lock:
            self.status, self.message, self.finished = status, message, time.time()
            if status == "done":
                self.progress = 1.0
            if self.checkpoint is not None and not self.checkpoint.exists():
                self.checkpoint = None


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


# --- the registry: module state shared by every session of the server ------------------------
_LOCK = threading.Lock()
_CURRENT: Job | None = None


def start(spec: JobSpec, root: Path | None = None, owner: str | None = None,
          key: str | None = None) -> Job:
    """Start a run (its worker process, watched by a thread); owner: the token of the session
    starting it (it alone may stop it; None: started by code), key: the teacher key, which
    lifts CAP to MAXIMA. JobRunning if a run is alive on this server, OverCap if spec is over
    CAP without the key."""
    global _CURRENT
    if not isinstance(spec, JobSpec):
        raise ValueError(f"spec must be a JobSpec, got {type(spec).__name__}")
    if owner is not None and (not isinstance(owner, str) or not owner):
        raise ValueError(f"owner must be a non-empty string or None, got {owner!r}")
    over = spec.over(CAP) if not is_teacher(key) else None
    if over:
        raise OverCap(f"{over}: a run started without the teacher key is capped at "
                      f"{CAP.n_scenes} scenes, {CAP.epochs} epochs per stage and width "
                      f"{CAP.width:g} (overfeat.app.jobs.CAP)")
    with _LOCK:
        if _CURRENT is not None and _CURRENT.alive:
            raise JobRunning(f"a training run ({_CURRENT.id}, {_CURRENT.message}) is already "
                             f"running on this server: one at a time. Watch it on the Training "
                             f"page; the session that started it (or the teacher) can stop it.")
        root = Path(root or ROOT)
        job_id = time.strftime("run-%Y%m%d-%H%M%S") + f"-{os.getpid() % 1000:03d}"
        folder = root / job_id
        n = 1
        while folder.exists():
            n += 1
            folder = root / f"{job_id}-{n}"
        folder.mkdir(parents=True)
        job = Job(id=folder.name, spec=spec, folder=folder, owner=owner)
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
