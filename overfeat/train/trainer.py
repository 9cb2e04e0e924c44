"""The trainer: the three stages' loops, the learning-rate schedule, checkpoints and --resume
(paper §3.1, §4.2, §5; what each stage learns from is in overfeat.train's docstring)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..models.overfeat import OverFeat
from ..multiscale import scale_sizes
from .buffer import ShuffleBuffer
from .distributed import _epoch_indices, _generator, _wrap, setup_distributed
from .options import STAGE_NAMES, TrainOptions, model_config
from .targets import detection_windows, regression_rows

Callback = Callable[[dict], None]


# --- schedule ---------------------------------------------------------------------------------

def lr_at(step: int, total: int, peak: float) -> float:
    """Linear warm-up over the first 5% of the stage's steps (at least 1), then a cosine decay
    to 1% of the peak: a function of the step only, so a resumed run follows the same curve."""
    warm = max(1, int(0.05 * total))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _optimize(opt: torch.optim.Optimizer, loss: Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _check_finite(loss: Tensor, stage: int, epoch: int, step: int) -> None:
    """Stop a diverged run at once (before the step); with the check of the weights at the end
    of every epoch, a run never writes NaN weights over the last good checkpoint."""
    value = loss.item()
    if not math.isfinite(value):
        raise ValueError(f"training diverged: stage {stage} epoch {epoch + 1} step {step + 1} "
                         f"gave loss {value}; the checkpoint of the last finished epoch is kept "
                         "(try a lower --lr)")


@dataclass
class _Sums:
    """An epoch's running sums: loss * rows, rows, correct classifications."""

    loss: float = 0.0
    count: int = 0
    correct: int = 0


# --- the trainer ------------------------------------------------------------------------------

class StopTraining(Exception):
    """Raised by a callback to stop a run cleanly (tests, an app's stop button).

    Trainer.run catches it: see there for what is on disk afterwards. Raised from the
    "checkpoint" event, it stops right after that epoch's checkpoint was written. Under
    torchrun only rank 0 sees callbacks, so only single-process runs should raise it.
    """


class Trainer:
    """Runs the stages of TrainOptions on one process (or one rank of torchrun)."""

    def __init__(self, opts: TrainOptions, callback: Callback | None = None,
                 resume: str | Path | None = None) -> None:
        from ..data.loader import SceneSet

        self.opts = opts
        self.callback = callback
        self.dist = setup_distributed(opts.device)
        if opts.threads:
            torch.set_num_threads(opts.threads)
        torch.manual_seed(opts.seed)
        self.start = (opts.stages[0], 0)  # (stage, first epoch to run)
        state = None
        if resume is not None:
            self.model, state = self._load_resume(resume)
        else:
            self.model = OverFeat(model_config(opts))
        # Channels-last (NHWC) weights, so the convolutions run in oneDNN's preferred layout
        # (and cuDNN's for bf16 on GPUs). Measured on 96 images on this 2-core CPU: a stage-1
        # epoch 6.5 -> 5.4 s, stage 2 5.0 -> 3.3 s. Same values up to float summation order;
        # checkpoints are saved contiguous.
        self.model.to(self.dist.device, memory_format=torch.channels_last)
        self.cfg = self.model.cfg
        if 3 in opts.stages and not self.cfg.background:
            raise ValueError("stage 3 (detection) needs a config with a background class")
        names = self.cfg.names[:len(self.cfg.object_classes)]
        self.sets = [SceneSet(d, opts.split, names, opts.max_images, opts.on_error)
                     for d in opts.data]
        self.scenes = [s for ds in self.sets for s in ds.scenes]
        self.skipped = [x for ds in self.sets for x in ds.skipped]
        self.history: list[dict] = list(state["history"]) if state else []
        self.optim_state = state.get("optimizer") if state else None
        if state:
            torch.set_rng_state(state["rng"])
        self.stopped = False  # set by run() when a callback raised StopTraining
        self.saved: tuple[int, int] | None = None  # (stage, epoch) of this run's last checkpoint

    # -- resume --------------------------------------------------------------------------------
    def _load_resume(self, path: str | Path) -> tuple[OverFeat, dict]:
        """The model and train_state of a checkpoint written by save() (read and checked by
        overfeat.checkpoint.load_checkpoint); sets self.start after its last finished epoch."""
        model, meta = load_checkpoint(path)
        label = Path(path).name
        ts = meta.get("_train_state")
        if not isinstance(ts, dict) or not {"stage", "epoch", "rng", "history"} <= set(ts):
            raise CheckpointError(f"{label}: holds no training state to resume from "
                                  "(a final or exported checkpoint?)")
        stage, epoch = int(ts["stage"]), int(ts["epoch"])
        if ts.get("seed") is not None and int(ts["seed"]) != self.opts.seed:
            raise ValueError(f"{label} was trained with --seed {ts['seed']}, not {self.opts.seed}; "
                             "resume with the same seed")
        # Continue after the last finished epoch: in the same stage, or the next one.
        if stage in self.opts.stages and epoch + 1 < self.opts.epochs[stage - 1]:
            self.start = (stage, epoch + 1)
        else:
            later = [s for s in self.opts.stages if s > stage]
            self.start = (later[0], 0) if later else (99, 0)
            ts = {**ts, "optimizer": None}  # a new stage starts a new optimizer
        return model, ts

    # -- plumbing ------------------------------------------------------------------------------
    def emit(self, **event) -> None:
        if self.callback is not None and self.dist.main:
            self.callback(event)

    def save(self, stage: int, epoch: int, optimizer: torch.optim.Optimizer | None,
             final: bool = False) -> None:
        if not self.dist.main:
            return
        meta = {"stage": stage, "epoch": epoch, "stage_name": STAGE_NAMES.get(stage, ""),
                "options": self.opts.to_dict(), "history": self.history,
                "train_images": len(self.scenes), "skipped_files": len(self.skipped),
                "complete": final}
        ts = {"stage": stage, "epoch": epoch, "seed": self.opts.seed, "history": self.history,
              "rng": torch.get_rng_state(),
              "optimizer": None if (final or optimizer is None) else optimizer.state_dict()}
        save_checkpoint(self.opts.out, self.model, meta=meta, train_state=ts)
        self.saved = (stage, epoch)
        self.emit(event="checkpoint", path=str(self.opts.out), stage=stage, epoch=epoch)

    def _set_trainable(self, stage: int) -> nn.Module:
        m = self.model
        for p in m.parameters():
            p.requires_grad_(False)
        part = {1: m, 2: m.regressor, 3: m.classifier}[stage]
        for name, p in part.named_parameters():
            if stage == 1 and name.startswith("regressor."):
                continue
            p.requires_grad_(True)
        return part

    def _optimizer(self, stage: int, part: nn.Module) -> torch.optim.Optimizer:
        """The stage's optimizer over the trainable parameters of part."""
        o = self.opts
        params = [p for p in part.parameters() if p.requires_grad]
        if o.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=o.lr[stage - 1], weight_decay=o.weight_decay)
        return torch.optim.SGD(params, lr=o.lr[stage - 1], momentum=o.momentum,
                               weight_decay=o.weight_decay, nesterov=True)

    # -- main loop -----------------------------------------------------------------------------
    def run(self) -> OverFeat:
        """Train the remaining epochs of every stage; returns the model in eval mode.

        A callback raising StopTraining ends the run early, without an exception: run() sets
        self.stopped and returns the model as it is in memory (mid-epoch weights if raised from
        a "step" event). On disk, opts.out then holds the checkpoint of the last finished epoch
        (self.saved = its (stage, epoch); None when no epoch of this run finished, in which
        case opts.out was not written by this run), which `resume=` continues bit for bit.
        The final "done" event carries stopped=True/False and checkpoint=self.saved.
        """
        try:
            self._run_stages()
        except StopTraining:
            self.stopped = True
        # Back to the default layout, so the returned model computes exactly as the same
        # weights loaded from the checkpoint (which is saved contiguous).
        self.model.to(memory_format=torch.contiguous_format).eval()
        try:
            self.emit(event="done", path=str(self.opts.out), stopped=self.stopped,
                      checkpoint=list(self.saved) if self.saved else None)
        except StopTraining:
            self.stopped = True  # a stop asked for at the very end: nothing left to stop
        return self.model

    def _run_stages(self) -> None:
        o = self.opts
        for stage in o.stages:
            if stage < self.start[0] or o.epochs[stage - 1] == 0:
                continue
            first = self.start[1] if stage == self.start[0] else 0
            self.emit(event="stage", stage=stage, name=STAGE_NAMES[stage],
                      epochs=o.epochs[stage - 1])
            part = self._set_trainable(stage)
            opt = self._optimizer(stage, part)
            if first > 0 and self.optim_state:
                opt.load_state_dict(self.optim_state)
            self.optim_state = None
            wrapped = _wrap(part, self.dist)
            step_fn = {1: self._epoch_classifier, 2: self._epoch_regressor,
                       3: self._epoch_detection}[stage]
            for epoch in range(first, o.epochs[stage - 1]):
                self._run_epoch(stage, epoch, step_fn, wrapped, opt)

    def _run_epoch(self, stage: int, epoch: int, step_fn, net: nn.Module,
                   opt: torch.optim.Optimizer) -> None:
        """One epoch of a stage, its history record, the divergence check, its "epoch" event
        and its checkpoint (written also when the event's callback raises StopTraining)."""
        o = self.opts
        t0 = time.time()
        stats = step_fn(net, opt, epoch)
        stats = {k: round(float(v), 5) for k, v in stats.items()}
        rec = {"stage": stage, "epoch": epoch, **stats, "seconds": round(time.time() - t0, 1)}
        self.history.append(rec)
        if not all(bool(torch.isfinite(t).all()) for t in self.model.state_dict().values()):
            raise ValueError(f"training diverged: stage {stage} epoch {epoch + 1} ended "
                             "with non-finite weights; the checkpoint of the last "
                             "finished epoch is kept (try a lower --lr)")
        last = stage == o.stages[-1] and epoch == o.epochs[stage - 1] - 1
        try:
            self.emit(event="epoch", epochs=o.epochs[stage - 1], **rec)
        except StopTraining:
            self.save(stage, epoch, opt, final=last)  # the epoch is complete: keep it
            raise
        self.save(stage, epoch, opt, final=last)

    def _empty_patch(self) -> Tensor:
        """A [1, C, K, K] zero patch: the input of a zero-weight step, which a rank with nothing
        to learn takes so that DDP's collective calls stay in step."""
        K = self.model.fc_kernel
        return self.model.features[0].weight.new_zeros(1, self.model.trunk_channels, K, K)

    def _step_events(self, stage: int, epoch: int, step: int, steps: int, loss: float | None,
                     lr: float, items: int, t0: float, rows: int | None = None) -> None:
        dt = max(1e-6, time.time() - t0)
        extra = {} if rows is None else {"rows": rows}
        self.emit(event="step", stage=stage, epoch=epoch, epochs=self.opts.epochs[stage - 1],
                  step=step + 1, steps=steps, loss=loss, lr=lr,
                  images_per_s=items * self.dist.world / dt, **extra)

    def _total_steps(self, stage: int, per_epoch: int) -> int:
        return per_epoch * self.opts.epochs[stage - 1]

    def _set_lr(self, opt: torch.optim.Optimizer, stage: int, epoch: int, step: int,
                steps: int) -> float:
        """Set the learning rate of step `step` of `steps` in this epoch (lr_at over the
        stage's steps, peak opts.lr of the stage) on every parameter group; returns it."""
        lr = lr_at(epoch * steps + step, self._total_steps(stage, steps), self.opts.lr[stage - 1])
        for g in opt.param_groups:
            g["lr"] = lr
        return lr

    def _dense_step(self, net: nn.Module, opt: torch.optim.Optimizer, stage: int, epoch: int,
                    step: int, p: Tensor | None, targets: tuple[Tensor, ...],
                    loss_fn) -> tuple[Tensor, Tensor]:
        """One optimizer step of stage 2 or 3 on pooled patches p [P, C, K, K]: the loss
        loss_fn(net(p).flatten(1), *targets), checked (_check_finite), then the step; returns
        (loss, outputs). p None is the zero-weight step that a rank with nothing to learn takes
        under DDP, so that the ranks' collective calls stay in step: one zero patch
        (_empty_patch) against the caller's dummy targets, the loss multiplied by 0."""
        weight = 1.0
        if p is None:
            p, weight = self._empty_patch(), 0.0
        out = net(p).flatten(1)
        loss = loss_fn(out, *targets) * weight
        _check_finite(loss, stage, epoch, step)
        _optimize(opt, loss)
        return loss, out

    # -- stage 1 -------------------------------------------------------------------------------
    def _crop_list(self, epoch: int) -> list[tuple[int, Tensor, int, bool]]:
        """(scene index, crop box, label, flip) for this rank and epoch: crops_per_image per
        image, background_fraction of them background when the model has that class."""
        o, d = self.opts, self.dist
        gen = _generator(o.seed, 1, epoch, d.rank)
        bg = self.cfg.num_classes - 1 if self.cfg.background else None
        out = []
        for idx in _epoch_indices(len(self.scenes), d, o.seed, 1, epoch):
            sc = self.scenes[idx]
            for _ in range(o.crops_per_image):
                want_bg = bg is not None and float(torch.rand((), generator=gen)) < o.background_fraction
                got = _draw_crop(sc, gen, bg, want_bg)
                if got is not None:
                    flip = bool(torch.rand((), generator=gen) < 0.5)
                    out.append((idx, got[0], got[1], flip))
        perm = torch.randperm(len(out), generator=gen).tolist()
        return [out[i] for i in perm]

    def _epoch_classifier(self, net: nn.Module, opt, epoch: int) -> dict:
        from ..data.loader import render_crops

        o, dev = self.opts, self.dist.device
        crops = self._crop_list(epoch)
        # Every rank must take the same number of steps (DDP): computed from the intended
        # number of crops; a short list is cycled.
        per_rank = math.ceil(len(self.scenes) / self.dist.world) * o.crops_per_image
        steps = max(1, per_rank // o.batch_size)
        if not crops:
            raise ValueError("no training crops could be drawn (no objects and no background class?)")
        self.model.train()
        t0, seen = time.time(), 0
        loss_sum, correct, count = 0.0, 0, 0
        for step in range(steps):
            batch = [crops[(step * o.batch_size + b) % len(crops)] for b in range(o.batch_size)]
            x = render_crops([self.scenes[b[0]] for b in batch], [b[1] for b in batch],
                             [b[3] for b in batch], self.model.window).to(dev)
            y = torch.tensor([b[2] for b in batch], device=dev)
            lr = self._set_lr(opt, 1, epoch, step, steps)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=o.bf16):
                logits = net(self.model.normalize(x)).flatten(1)  # [B, K] (1x1 output per crop)
            loss = F.cross_entropy(logits.float(), y)
            _check_finite(loss, 1, epoch, step)
            _optimize(opt, loss)
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            count += len(y)
            seen += len(y)
            self._step_events(1, epoch, step, steps, loss.item(), lr, seen, t0)
        return {"loss": loss_sum / count, "accuracy": correct / count}

    # -- stages 2 and 3: dense views ----------------------------------------------------------
    def _views(self, stage: int, epoch: int):
        """Yield (step, steps, [(scene, x normalised [3,H,W], boxes, ignore, labels)]) batches of
        images_per_step whole images, each at a random one of the six scales and flip."""
        from ..data.loader import dense_view

        o, d = self.opts, self.dist
        gen = _generator(o.seed, stage, epoch, d.rank)
        idx = _epoch_indices(len(self.scenes), d, o.seed, stage, epoch)
        steps = math.ceil(len(idx) / o.images_per_step)
        for step in range(steps):
            batch = []
            for n in idx[step * o.images_per_step:(step + 1) * o.images_per_step]:
                sc = self.scenes[n]
                sizes = scale_sizes(sc.size, self.model)
                s = int(torch.randint(len(sizes), (), generator=gen))
                flip = bool(torch.rand((), generator=gen) < 0.5)
                x, boxes, ignore = dense_view(sc, sizes[s], flip)
                batch.append((self.model.normalize(x.to(d.device)), boxes, ignore, sc.labels, gen))
            yield step, steps, batch

    # -- stage 2 -------------------------------------------------------------------------------
    def _epoch_regressor(self, net: nn.Module, opt, epoch: int) -> dict:
        o = self.opts
        self.model.eval()  # trunk frozen, no dropout anywhere in this stage
        net.train()
        sums, t0, seen = _Sums(), time.time(), 0
        # Each epoch starts with an empty buffer, so --resume stays exact, and ends by learning
        # the rows still in it (drain), so every window drawn is learned once. The drain belongs
        # to the epoch's last step, whose event waits for it: a small run whose rows all fit in
        # the buffer learns everything there (it used to report a loss of 0 at every step,
        # having learned nothing yet, and never the drain's).
        buf = ShuffleBuffer(o.shuffle_buffer)
        gen, step, last = None, 0, None
        for step, steps, batch in self._views(2, epoch):
            rows = regression_rows(self.model, batch, o.windows_per_image)
            gen = batch[-1][4] if batch else gen
            seen += len(batch)
            lr = self._set_lr(opt, 2, epoch, step, steps)
            got = self._regress(net, opt, epoch, step, sums,
                                buf.push(rows, gen) if rows is not None else None)
            if step < steps - 1:
                self._regressor_event(epoch, step, steps, [got], lr, seen, t0)
            else:
                last = (step, steps, [got], lr)
        # The drain runs at the epoch's last learning rate. Under DDP every rank takes the same
        # number of drain steps (the most a full buffer needs), padded with zero-weight steps.
        size = o.images_per_step * o.windows_per_image
        chunks = buf.drain(size, gen)
        n = math.ceil(o.shuffle_buffer / size) if self.dist.active else len(chunks)
        drained = [self._regress(net, opt, epoch, step, sums, chunks[c] if c < len(chunks) else None)
                   for c in range(n)]
        if last is not None:
            self._regressor_event(epoch, last[0], last[1], last[2] + drained, last[3], seen, t0)
        return {"loss": sums.loss / max(1, sums.count), "windows": sums.count}

    def _regression_loss(self, out: Tensor, t: Tensor, lab: Tensor) -> Tensor:
        """L2 loss of the regressor's outputs out [P, 4] or [P, 4 * K_obj] (one row per
        (window, target); a per-class regressor is scored on its target class's 4 outputs)."""
        if self.cfg.regressor == "per_class":
            out = out.view(len(out), -1, 4)[torch.arange(len(out), device=out.device), lab]
        return F.mse_loss(out, t)

    def _regress(self, net: nn.Module, opt, epoch: int, step: int, sums: _Sums,
                 rows: tuple[Tensor, ...] | None) -> tuple[float, int] | None:
        """One optimizer step on (patches, targets, labels): (its loss, rows learned), or
        None when nothing was learned (rows None: the buffer is filling). A step with
        nothing to learn is skipped, except under DDP, where a zero-weight step keeps the
        ranks' collective calls in step (and also answers None)."""
        dev = self.dist.device
        if rows is None and not self.dist.active:
            return None
        if rows is not None:
            p, t, lab = (v.to(dev) for v in rows)
        else:
            p, t = None, torch.zeros(1, 4, device=dev)
            lab = torch.zeros(1, dtype=torch.long, device=dev)
        loss, _ = self._dense_step(net, opt, 2, epoch, step, p, (t, lab), self._regression_loss)
        if p is None:
            return None
        sums.loss += loss.item() * len(t)
        sums.count += len(t)
        return loss.item(), len(t)

    def _regressor_event(self, epoch: int, step: int, steps: int, learned: list, lr: float,
                         seen: int, t0: float) -> None:
        """View step `step`'s event: the rows-weighted mean loss of what it learned (loss
        None and rows 0 when it only filled the buffer), so that the epoch's loss is the
        rows-weighted mean of its steps' losses."""
        done = [x for x in learned if x is not None]
        n = sum(r for _, r in done)
        self._step_events(2, epoch, step, steps, sum(v * r for v, r in done) / n if n else None,
                          lr, seen, t0, rows=n)

    # -- stage 3 -------------------------------------------------------------------------------
    def _epoch_detection(self, net: nn.Module, opt, epoch: int) -> dict:
        o, dev = self.opts, self.dist.device
        bg = self.cfg.num_classes - 1
        sums, t0, seen = _Sums(), time.time(), 0
        for step, steps, batch in self._views(3, epoch):
            self.model.eval()
            picked = [detection_windows(self.model, *view, o.positives_per_image,
                                        o.negatives_per_image) for view in batch]
            picked = [s for s in picked if s is not None]
            seen += len(batch)
            lr = self._set_lr(opt, 3, epoch, step, steps)
            net.train()
            if picked:
                p, y = torch.cat([s[0] for s in picked]), torch.cat([s[1] for s in picked]).to(dev)
            else:
                p, y = None, torch.full((1,), bg, device=dev)
            loss, logits = self._dense_step(net, opt, 3, epoch, step, p, (y,), F.cross_entropy)
            if p is not None:
                sums.loss += loss.item() * len(y)
                sums.count += len(y)
                sums.correct += int((logits.argmax(1) == y).sum())
            self._step_events(3, epoch, step, steps, loss.item(), lr, seen, t0)
        return {"loss": sums.loss / max(1, sums.count), "accuracy": sums.correct / max(1, sums.count)}


def _draw_crop(sc, gen: torch.Generator, bg: int | None, want_bg: bool) -> tuple[Tensor, int] | None:
    """One stage-1 crop of scene sc: (crop box, label), a background crop first when want_bg
    (else an object crop first), the other kind when six tries of the first fail; None when
    neither comes."""
    from ..data.loader import sample_background_crop, sample_object_crop

    got = None
    for kind in ((True, False) if want_bg else (False, True)):
        for _try in range(6):
            if kind and bg is not None:
                c = sample_background_crop(sc, gen, bg, tries=1)
                got = None if c is None else (c, bg)
            elif not kind:
                got = sample_object_crop(sc, gen)
            if got is not None:
                break
        if got is not None:
            break
    return got


def train(opts: TrainOptions, callback: Callback | None = None,
          resume: str | Path | None = None) -> OverFeat:
    """Run the stages of opts (optionally continuing a checkpoint written by a run with the
    same options); the checkpoint at opts.out is rewritten after every epoch. Returns the
    model (in eval mode), also when a callback stopped the run with StopTraining (Trainer.run)."""
    return Trainer(opts, callback, resume).run()
