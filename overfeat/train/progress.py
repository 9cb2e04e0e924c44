"""The command line's progress display: a text progress bar fed by the trainer's callback
events (overfeat.train, "Mechanics")."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Plain-text progress on a stream (stderr), redrawn in place with \\r; epoch summaries and
    checkpoint notes on their own lines."""

    def __init__(self, stream=None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self._last = 0.0

    def __call__(self, ev: dict) -> None:
        kind = ev.get("event")
        w = self.stream
        if kind == "step":
            now = time.time()
            if ev["step"] != ev["steps"] and now - self._last < 0.2:
                return
            self._last = now
            frac = ev["step"] / ev["steps"]
            bar = "#" * int(frac * self.width) + "-" * (self.width - int(frac * self.width))
            loss = "(filling buffer)" if ev["loss"] is None else f"{ev['loss']:.4f}"
            w.write(f"\rstage {ev['stage']} epoch {ev['epoch'] + 1}/{ev['epochs']} [{bar}] "
                    f"{ev['step']}/{ev['steps']} loss {loss} lr {ev['lr']:.2g} "
                    f"{ev['images_per_s']:.0f}/s ")
        elif kind == "stage":
            w.write(f"stage {ev['stage']} ({ev['name']}): {ev['epochs']} epochs\n")
        elif kind == "epoch":
            extra = "  ".join(f"{k} {v}" for k, v in ev.items()
                              if k not in ("event", "stage", "epoch", "epochs"))
            w.write(f"\rstage {ev['stage']} epoch {ev['epoch'] + 1}/{ev['epochs']} done: {extra}"
                    + " " * 20 + "\n")
        elif kind == "checkpoint":
            w.write(f"  checkpoint -> {ev['path']}\n")
        elif kind == "done" and ev.get("stopped"):
            where = (f"{ev['path']} holds stage {ev['checkpoint'][0]} epoch "
                     f"{ev['checkpoint'][1] + 1}" if ev.get("checkpoint") else "no checkpoint written")
            w.write(f"\nstopped: {where}\n")
        elif kind == "done":
            w.write(f"done: {ev['path']}\n")
        w.flush()
