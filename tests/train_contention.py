"""The server's side of "a run trains while students click" (issue 25, part 5), without a
browser: how long one image's analysis (the network at every scale and flip, both greedy
merges: what a new scene costs the server) takes in this process while a training run of the
browser cap's largest size trains

  idle:   with no run training;
  thread: in a thread of this process, as the app trained before this change (Job.train
          in-process: the process's PyTorch threads, normal priority, the same interpreter);
  worker: in the app's worker process (overfeat.app.jobs.start: nice 19, one thread).

    .venv/bin/python tests/train_contention.py [--reps 20] [--json]

Both runs are started once and paused while the other condition is timed (the thread's
callback waits on an event, the worker gets SIGSTOP), and the conditions take turns analysis by
analysis, their order rotated each turn: a shared machine's load, which changes from one minute
to the next, falls on the three alike. Also reported: the training steps per second each run
made while it was let run (the worker's low priority is paid for by the run) and the CPU the
rest of the machine used meanwhile. Prints the median and max per condition; --json one
object. The figures are in docs/TRAINING_ISOLATION.md beside the browser bench
(tests/browser_latency.py --training).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONDITIONS = ("idle", "thread", "worker")


def analyse_once(model, image) -> float:
    """Seconds for one analysis with the app's default knobs and both merges."""
    from overfeat.multiscale import Settings, analyze

    t = time.perf_counter()
    a = analyze(model, image, Settings(top_k=5, min_score=0.5))
    for score in ("literal", "corrected"):
        a.merge(score=score)
    return time.perf_counter() - t


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores; /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steps(job) -> int:
    return len(job.snapshot()["losses"])


def wait_steps(job, n: int, timeout: float = 600) -> None:
    """Until the run has made n steps (the scenes made, the model built)."""
    t = time.monotonic() + timeout
    while steps(job) < n:
        if not job.alive or time.monotonic() > t:
            raise RuntimeError(f"the run is not training: {job.snapshot()['message']}")
        time.sleep(0.1)


class PausableThreadRun:
    """The cap's largest run in a thread of this process (the app before this change), whose
    callback waits while `go` is clear (so it holds neither the CPU nor the interpreter)."""

    def __init__(self, spec, folder: Path):
        from overfeat.app import jobs

        self.go = threading.Event()
        self.waiting = threading.Event()  # set while the callback waits on go
        self.job = jobs.Job(id="thread", spec=spec, folder=folder)

        def gated(ev, job=self.job, base=jobs.Job.callback):
            if not self.go.is_set():
                self.waiting.set()
                self.go.wait()
                self.waiting.clear()
            base(job, ev)

        self.job.callback = gated  # Job.train hands self.callback to the trainer
        self.job._thread = threading.Thread(target=self.job.train, daemon=True)

    def pause(self) -> None:
        self.go.clear()
        if self.job.alive:
            self.waiting.wait(60)  # its current step done


def measure(reps: int = 20) -> dict:
    from overfeat.app import jobs
    from overfeat.app import state as appstate
    from overfeat.predict import load_model

    model, _ = load_model()
    image, _ = appstate.make_scene("det", 7, 0)
    analyse_once(model, image)  # warm: the first call allocates
    cap = jobs.CAP
    spec = jobs.JobSpec(stages=(1, 2, 3), epochs=cap.epochs, n_scenes=cap.n_scenes,
                        width=cap.width)
    times = {c: [] for c in CONDITIONS}
    made = {"thread": [0, 0.0], "worker": [0, 0.0]}  # steps, seconds let run
    with tempfile.TemporaryDirectory(prefix="train_contention-") as tmp:
        jobs.ROOT = Path(tmp)
        worker = jobs.start(spec, owner="bench")
        wait_steps(worker, 3)
        pid = worker.snapshot()["worker"]["pid"]
        os.kill(pid, signal.SIGSTOP)
        thread = PausableThreadRun(spec, Path(tmp) / "thread")
        thread.go.set()
        thread.job._thread.start()
        wait_steps(thread.job, 3)
        thread.pause()
        b0, own0 = machine_busy_s(), os.times()
        w0, t_start = proc_cpu_s(pid), time.perf_counter()
        try:
            for r in range(reps):
                order = CONDITIONS[r % 3:] + CONDITIONS[:r % 3]
                for cond in order:
                    if cond == "thread":
                        thread.go.set()
                    if cond == "worker":
                        os.kill(pid, signal.SIGCONT)
                    time.sleep(0.3)  # under way again
                    job = {"thread": thread.job, "worker": worker}.get(cond)
                    s0, t0 = (steps(job), time.perf_counter()) if job else (0, 0.0)
                    times[cond].append(analyse_once(model, image))
                    if job is not None:
                        if not job.alive:
                            raise RuntimeError(f"the {cond} run ended during the measurement")
                        made[cond][0] += steps(job) - s0
                        made[cond][1] += time.perf_counter() - t0
                    if cond == "thread":
                        thread.pause()
                    if cond == "worker":
                        os.kill(pid, signal.SIGSTOP)
            wall = time.perf_counter() - t_start
            own1 = os.times()
            ours = (own1.user + own1.system - own0.user - own0.system
                    + proc_cpu_s(pid) - w0)
            others = machine_busy_s() - b0 - ours
        finally:
            os.kill(pid, signal.SIGCONT)
            worker.stop(by="bench")
            thread.job._stop.set()
            thread.go.set()
            worker.wait(120)
            thread.job._thread.join(120)
    return {"reps": reps, "spec": str(spec), "wall_s": round(wall, 1),
            "others_cpu_s": round(others, 1), "cores": os.cpu_count(),
            "rows": [{"condition": c, "n": len(v), "median_s": statistics.median(v),
                      "max_s": max(v), "training_steps_per_s":
                      made[c][0] / made[c][1] if c in made and made[c][1] else None}
                     for c, v in times.items()]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=20, help="analyses per condition (1..200)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if not 1 <= args.reps <= 200:
        p.error("--reps must be in 1..200")
    res = measure(args.reps)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{'condition':10s} {'n':>4s} {'median':>8s} {'max':>8s} {'train steps/s':>14s}")
    for r in res["rows"]:
        sp = r["training_steps_per_s"]
        print(f"{r['condition']:10s} {r['n']:4d} {r['median_s']:7.2f}s {r['max_s']:7.2f}s "
              f"{'' if sp is None else f'{sp:14.2f}'}")
    print(f"training: {res['spec']}; {res['wall_s']} s in all, while the rest of the machine "
          f"used {res['others_cpu_s']} CPU s of its {res['cores']} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
