"""The server's side of "a run trains while students click" (issue 25, part 5), without a
browser: how long one image's analysis (the network at every scale and flip, both greedy
merges: what a new scene costs the server) takes in this process while a training run of the
browser cap's largest size trains

  idle:   with no run;
  thread: in a thread of this process, as the app trained before (Job.train in-process, the
          process's PyTorch threads, normal priority);
  worker: in the app's worker process (overfeat.app.jobs.start: nice 19, one thread).

    .venv/bin/python tests/train_contention.py [--reps 12] [--cycles 2] [--json]

The three conditions take turns, `cycles` times, `reps` analyses each, so that a shared
machine's changing load falls on all three alike. Training's own progress in each condition
(steps per second) is reported too: the worker's low priority is paid for by the run. Prints
the median and max per condition; --json one object. The figures are in
docs/TRAINING_ISOLATION.md beside the browser bench (tests/browser_latency.py --training).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def analyse_once(model, image) -> float:
    """Seconds for one analysis with the app's default knobs and both merges."""
    from overfeat.multiscale import Settings, analyze

    t = time.perf_counter()
    a = analyze(model, image, Settings(top_k=5, min_score=0.5))
    for score in ("literal", "corrected"):
        a.merge(score=score)
    return time.perf_counter() - t


def steps(job) -> int:
    return len(job.snapshot()["losses"])


def wait_training(job, timeout: float = 300) -> None:
    """Until the run has taken a few steps (the scenes made, the model built)."""
    t = time.monotonic() + timeout
    while steps(job) < 3:
        if not job.alive or time.monotonic() > t:
            raise RuntimeError(f"the run is not training: {job.snapshot()['message']}")
        time.sleep(0.2)


def measure(reps: int = 12, cycles: int = 2) -> dict:
    from overfeat.app import jobs
    from overfeat.app import state as appstate
    from overfeat.predict import load_model

    model, _ = load_model()
    image, _ = appstate.make_scene("det", 7, 0)
    analyse_once(model, image)  # warm: the first call allocates
    cap = jobs.CAP
    spec = jobs.JobSpec(stages=(1, 2, 3), epochs=cap.epochs, n_scenes=cap.n_scenes,
                        width=cap.width)
    times: dict[str, list[float]] = {"idle": [], "thread": [], "worker": []}
    rate: dict[str, list[float]] = {"thread": [], "worker": []}
    with tempfile.TemporaryDirectory(prefix="train_contention-") as tmp:
        jobs.ROOT = Path(tmp)
        for c in range(cycles):
            for cond in times:
                job = None
                if cond == "thread":
                    job = jobs.Job(id=f"thread-{c}", spec=spec, folder=Path(tmp) / f"thread-{c}")
                    job._thread = threading.Thread(target=job.train, daemon=True)
                    job._thread.start()
                elif cond == "worker":
                    job = jobs.start(spec, owner="bench")
                if job is not None:
                    wait_training(job)
                    s0, t0 = steps(job), time.perf_counter()
                times[cond] += [analyse_once(model, image) for _ in range(reps)]
                if job is not None:
                    rate[cond].append((steps(job) - s0) / (time.perf_counter() - t0))
                    if cond == "worker":
                        job.stop(by="bench")  # its owner
                    else:
                        job._stop.set()  # the in-process run's callback stops at its next event
                    job._thread.join(120)
    return {"reps": reps, "cycles": cycles, "spec": str(spec),
            "rows": [{"condition": k, "n": len(v), "median_s": statistics.median(v),
                      "max_s": max(v), "training_steps_per_s":
                      statistics.median(rate[k]) if k in rate else None}
                     for k, v in times.items()]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=12, help="analyses per condition and cycle")
    p.add_argument("--cycles", type=int, default=2, help="turns of the three conditions")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if not 1 <= args.reps <= 200 or not 1 <= args.cycles <= 20:
        p.error("--reps must be in 1..200 and --cycles in 1..20")
    res = measure(args.reps, args.cycles)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{'condition':10s} {'n':>4s} {'median':>8s} {'max':>8s} {'train steps/s':>14s}")
        for r in res["rows"]:
            sp = r["training_steps_per_s"]
            print(f"{r['condition']:10s} {r['n']:4d} {r['median_s']:7.2f}s {r['max_s']:7.2f}s "
                  f"{'' if sp is None else f'{sp:14.2f}'}")
        print(f"training: {res['spec']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
