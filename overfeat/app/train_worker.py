"""The process one training run of the app trains in; overfeat.app.jobs starts it and reads it.

    python -m overfeat.app.train_worker '<order as JSON>'

The order (jobs.Job._order): the run's id, folder, start time, JobSpec fields, and the nice
increment and PyTorch thread count to run with. Before anything else the process lowers its
priority (os.nice) and sets the threads, so neither the import of torch nor the scenes compete
with the server's sessions (jobs' docstring says why). Then a jobs.Job trains (Job.train) with
its callback sending every event to the server.

stdout: one JSON object per line, the trainer's events and the Job's "state" events, first a
"worker" event (pid, nice, threads; again after the run with its peak memory, peak_mb), last
{"event": "end", "status", "message", "error"}.
Anything else the run prints goes to stderr (the server's log). stdin: a line "stop", or its
end (the server has gone), stops the run after the current step; the checkpoint of the last
finished epoch stays (overfeat.train.Trainer.run). Exit status 0 once the end is sent, also
for a run stopped or failed (the end says so); 2 for a bad order.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        order = json.loads(argv[0]) if len(argv) == 1 else None
        nice, threads = int(order["nice"]), int(order["threads"])
        if nice < 0 or threads < 1:
            raise ValueError(f"nice must be >= 0 and threads >= 1, got {nice} and {threads}")
    except (ValueError, TypeError, KeyError) as e:
        print(f"usage: python -m overfeat.app.train_worker '<order JSON>' (from overfeat.app."
              f"jobs): {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    os.nice(nice)
    # The event stream is a copy of the original stdout; fd 1 then points at stderr, so a stray
    # print (or a library's) cannot break the stream's lines.
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)  # nothing runs in parallel between operators here
    except RuntimeError:  # already set by an earlier parallel call (not in a fresh process)
        pass
    from .jobs import Job, JobSpec

    spec = JobSpec(**{**order["spec"], "stages": tuple(order["spec"]["stages"])})
    job = Job(id=order["id"], spec=spec, folder=Path(order["folder"]),
              started=float(order["started"]))
    lock = threading.Lock()  # the stdin watcher never sends, but keep lines whole regardless

    def send(ev: dict) -> None:
        line = json.dumps(ev, default=str)
        with lock:
            try:
                events.write(line + "\n")
                events.flush()
            except (OSError, ValueError):  # the server has gone: stop after this step
                job._stop.set()

    def watch_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        job._stop.set()  # "stop", or the end of stdin: the server has gone

    job._sink = send
    threading.Thread(target=watch_stdin, name="stop-watcher", daemon=True).start()
    me = {"event": "worker", "pid": os.getpid(), "nice": os.nice(0),
          "threads": torch.get_num_threads()}
    send(me)
    end = job.train()
    # Its peak memory (docs/DEPLOY.md sizes a replica with it), then the result.
    send({**me, "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})
    send({"event": "end", **end})
    return 0


if __name__ == "__main__":
    sys.exit(main())
