"""Training: the paper's three stages on any Pascal VOC-layout folder (paper §4.2, §5, §3.1).

    python -m overfeat train --preset demo --data data/train_loc data/train_det --out run.pt

Stage 1, classifier (paper §3.1, §5). The trunk and the classifier learn from square crops resized
to the network's window (221 px for the accurate geometry): crops around objects with scale
jitter (crop sides spanning what one window sees over the six scales, overfeat.data.loader)
and position jitter, horizontal flips, and, when the config has a background class, crops
that show no object labelled "background". Cross-entropy, SGD with momentum.

Stage 2, regressor (paper §4.2). The trunk is FROZEN (the paper's "features frozen from
classification"). Each image is resized to one of the six scales (overfeat.multiscale.
scale_sizes, drawn at random per image and epoch) and maybe flipped; the trunk runs once over
it and the last pool is done at every offset (overfeat.offsets, as in view_windows), so the windows
are exactly those of the dense evaluation at the fine stride (12 px). A window is trained on
when its field of view overlaps a ground-truth box by at least 50%, the overlap being
    overlap(window, box) = max(coverage(window, box), coverage(box, window))
with overfeat.boxes.coverage (the part of the box inside the window): the larger of "the part
of the object the window sees" and "the part of the window the object fills", i.e.
intersection / min(area of box, area of window). The second term keeps windows that lie inside
an object larger than the window (such objects occur at the larger scales, and the dense
evaluation regresses boxes from those windows too). Its target is the box of the object whose
visible area in the window is largest, encoded in the window's frame (overfeat.boxes.encode);
the loss is the mean squared error (L2). A per-class regressor (the demo preset's) trains each
class's 4 outputs instead: a window gets one target per class it overlaps by >= 50%, that
class's object with the largest visible area (regression_pairs), so a window seeing a cow and a
dog learns both boxes where a shared regressor learns only the larger one. The rows of 8 images
per step pass through a shuffle buffer (ShuffleBuffer) that mixes the windows of ~170 images (at
the default 8192 rows; the demo recipe holds 32768), so a step does not learn from the nearly
identical neighbours of a few images only; the rows still in it at an epoch's end are learned too.

Stage 3, detection fine-tuning (paper §5). Needs the background class (the config's last
class). Images are again taken whole at a random scale and flip, and every window of the fine
map is labelled: an object (overlap >= 0.5, as above), background (overlap < 0.2 with every
object, difficult ones included), or unused. The classifier scores every window (no gradient,
dropout off), and the loss takes a few positives per image plus the negatives mined on the fly:
the background windows the current model scores worst (highest object probability), and one
random background window.

Order and freezing, so that ONE checkpoint serves all three tasks: stage 1 trains the trunk
and the classifier; stages 2 and 3 keep the trunk frozen, so the regressor trained in stage 2
on the stage-1 trunk stays valid after stage 3, which fine-tunes the classifier head only. The
trunk never changes after stage 1, and the classifier of stage 3 is the one that classifies
(top-1/top-5), localizes (its scores rank the regressor's boxes) and detects.

Mechanics. Progress goes through a callback receiving dicts ({"event": "step", "stage",
"epoch", "epochs", "step", "steps", "loss", "lr", "images_per_s"}, and "epoch", "checkpoint",
"stage", "done" events), so the CLI draws a text progress bar and an app can draw its own.
A stage-2 step event also has "rows" (the rows it learned from), its "loss" is their mean, or
None for a step that only filled the shuffle buffer, and the epoch's last step includes the
buffer's drain: an epoch's loss is the rows-weighted mean of its steps' losses.
A callback may raise StopTraining to end the run early (an app's stop button): Trainer.run
then returns normally with trainer.stopped set, and the checkpoint of the last finished epoch
stays on disk (see Trainer.run). A diverged run (a non-finite loss or weights) stops with a
ValueError before it can overwrite that checkpoint.
A checkpoint is written atomically at the end of every epoch (overfeat.checkpoint), with a
train_state of tensors and primitives only (optimizer state, stage, epoch, the global RNG
state), so `--resume` continues bit for bit: every epoch's sampling comes from a generator
seeded by (seed, stage, epoch, rank), and the learning rate is a function of the step. Under
`torchrun --nproc_per_node=N` the same code runs DistributedDataParallel (gloo on CPU, nccl
on CUDA), each rank on its DistributedSampler share; only rank 0 writes and prints.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import boxes as box_ops
from .checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from .config import VOC_CLASSES, ModelConfig, preset
from .model import OverFeat
from .multiscale import scale_sizes
from .offsets import deinterleave, offsets

STAGE_NAMES = {1: "classifier", 2: "regressor", 3: "detection"}
# Window labels in the dense stages (see the module docstring).
POSITIVE_OVERLAP = 0.5
BACKGROUND_OVERLAP = 0.2

Callback = Callable[[dict], None]


@dataclass
class TrainOptions:
    """Everything a run depends on; stored in the checkpoint's meta."""

    data: tuple[str, ...]  # VOC-layout folders; their `split` images are pooled
    out: str = "runs/overfeat.pt"
    split: str = "train"
    preset: str = "demo"
    width: float | None = None  # override the preset's channel multiplier
    dropout: float | None = None  # override the preset's dropout on the first two FC layers
    stages: tuple[int, ...] = (1, 2, 3)
    epochs: tuple[int, int, int] = (12, 3, 2)  # per stage 1, 2, 3
    lr: tuple[float, float, float] = (0.02, 0.01, 0.002)  # peak learning rate per stage
    batch_size: int = 64  # stage 1: crops per step
    images_per_step: int = 8  # stages 2 and 3: whole images per step
    crops_per_image: int = 8  # stage 1: crops drawn from each image per epoch
    background_fraction: float = 0.3  # stage 1: share of background crops
    windows_per_image: int = 48  # stage 2: windows drawn from each image view
    shuffle_buffer: int = 8192  # stage 2: rows mixed across images before a step (ShuffleBuffer)
    # Stage 1 under bfloat16 autocast (weights, optimizer and stages 2-3 stay float32). On this
    # project's 2-core CPU (AMD EPYC with AVX512-BF16) a stage-1 step of the demo model takes
    # 0.25 s instead of 0.39 s; on a CPU without BF16 instructions it is slower, not faster.
    bf16: bool = False
    positives_per_image: int = 8  # stage 3
    negatives_per_image: int = 4  # stage 3: hard (worst-scored) background windows
    # "sgd" (momentum, Nesterov; the paper's family) or "adamw". The demo recipe uses AdamW:
    # on a 2-core CPU budget of ~100k crops it learns much faster from scratch than SGD.
    optimizer: str = "sgd"
    momentum: float = 0.9  # SGD only
    weight_decay: float = 5e-4
    seed: int = 0
    max_images: int | None = None
    threads: int | None = None
    device: str = "auto"
    on_error: str = "raise"  # bad VOC records: "raise" or "skip"

    def __post_init__(self) -> None:
        self.data = tuple(str(d) for d in self.data)
        self.stages = tuple(sorted(set(int(s) for s in self.stages)))
        if not self.data:
            raise ValueError("expected at least one --data folder")
        if not self.stages or any(s not in STAGE_NAMES for s in self.stages):
            raise ValueError(f"stages must be among 1,2,3, got {self.stages}")
        self.epochs = _per_stage(self.epochs, "epochs", int)
        self.lr = _per_stage(self.lr, "lr", float)
        if any(e < 0 for e in self.epochs):
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if any(v <= 0 for v in self.lr):
            raise ValueError(f"learning rates must be > 0, got {self.lr}")
        for name in ("batch_size", "images_per_step", "crops_per_image", "windows_per_image",
                     "positives_per_image"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be >= 0, got {self.shuffle_buffer}")
        if self.negatives_per_image < 0:
            raise ValueError(f"negatives_per_image must be >= 0, got {self.negatives_per_image}")
        if not 0 <= self.background_fraction < 1:
            raise ValueError(f"background_fraction must be in [0, 1), got {self.background_fraction}")
        if self.max_images is not None and self.max_images < 1:
            raise ValueError(f"max_images must be >= 1, got {self.max_images}")
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be sgd or adamw, got {self.optimizer!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _per_stage(v, name: str, kind) -> tuple:
    v = tuple(kind(x) for x in (v if isinstance(v, (tuple, list)) else (v,)))
    if len(v) == 1:
        v = v * 3
    if len(v) != 3:
        raise ValueError(f"{name}: expected one value or three (stage 1,2,3), got {len(v)}")
    return v


def model_config(opts: TrainOptions) -> ModelConfig:
    """The preset, with the width override; a preset without class names (the paper's
    1000-class models) gets the 20 VOC classes plus background."""
    cfg = preset(opts.preset)
    if opts.width is not None:
        cfg = cfg.replace(width=opts.width)
    if opts.dropout is not None:
        cfg = cfg.replace(dropout=opts.dropout)
    if not cfg.class_names:
        cfg = cfg.replace(num_classes=len(VOC_CLASSES) + 1, background=True,
                          class_names=VOC_CLASSES + ("background",))
    return cfg


# --- distributed ------------------------------------------------------------------------------

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup_distributed(device: str) -> Dist:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; without them this is a single process."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but CUDA is not available")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        if use_cuda:
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
        return Dist(rank=dist.get_rank(), world=dist.get_world_size(), device=dev)
    return Dist(device=torch.device("cuda") if use_cuda else torch.device("cpu"))


def _wrap(module: nn.Module, d: Dist) -> nn.Module:
    """DistributedDataParallel around the module being trained (its trainable parameters)."""
    if not d.active:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [d.device.index] if d.device.type == "cuda" else None
    return DDP(module, device_ids=ids)


def _epoch_indices(n: int, d: Dist, seed: int, stage: int, epoch: int) -> list[int]:
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=d.world, rank=d.rank, shuffle=True,
                                 seed=seed)
    sampler.set_epoch(stage * 100_003 + epoch)
    return list(sampler)


def _generator(seed: int, stage: int, epoch: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed(((seed * 1_000_003 + stage) * 10_007 + epoch) * 101 + rank)


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


# --- windows of a dense view ------------------------------------------------------------------

@dataclass
class ViewWindows:
    """All windows of one image view at the fine stride: for each window, which offset map
    and which cell of it, and the window box in the view's pixels."""

    pooled: list[Tensor]  # k*k maps [C, h, w] (ordered as offsets(k)), no gradient
    offset: Tensor  # [N] index into pooled
    j: Tensor  # [N] coarse row of the window's top-left cell in its offset map
    i: Tensor  # [N] coarse column
    boxes: Tensor  # [N, 4] window x1 y1 x2 y2 in the view's pixels
    pooled1: Tensor  # the stride-1 max pooled map [C, H'-k+1, W'-k+1]; pooled are its slices


def view_windows(model: OverFeat, x: Tensor) -> ViewWindows:
    """Trunk (no gradient) on one normalised image [3, H, W], offset max pooling, and the list
    of every window (paper §3.3, Fig. 3: window (dx, dy, j, i) has its top-left corner at
    prepool_stride * (k*i + dx, k*j + dy)). As at inference (multiscale.run_view), the k*k
    offset maps are the slices [dy::k, dx::k] of one max pooling with stride 1 (the same
    values as offset_pool)."""
    with torch.no_grad():
        f = model.features(x[None])  # [1, C, H', W']
        pooled1 = F.max_pool2d(f, kernel_size=model.k, stride=1)[0]
    pooled = deinterleave(pooled1, model.k)  # k*k x [C, h, w]
    K, k, s, win = model.fc_kernel, model.k, model.prepool_stride, model.window
    offs, js, is_ = [], [], []
    for o, (dx, dy) in enumerate(offsets(k)):
        h, w = pooled[o].shape[-2:]
        if h < K or w < K:
            continue
        jj, ii = torch.meshgrid(torch.arange(h - K + 1), torch.arange(w - K + 1), indexing="ij")
        offs.append(torch.full((jj.numel(),), o))
        js.append(jj.flatten())
        is_.append(ii.flatten())
    if not offs:
        z = torch.zeros(0, dtype=torch.long)
        return ViewWindows(pooled, z, z, z, torch.zeros(0, 4), pooled1)
    off, j, i = torch.cat(offs), torch.cat(js), torch.cat(is_)
    dxs = torch.tensor([dx for dx, _ in offsets(k)])[off]
    dys = torch.tensor([dy for _, dy in offsets(k)])[off]
    x1 = (s * (k * i + dxs)).float()
    y1 = (s * (k * j + dys)).float()
    return ViewWindows(pooled, off, j, i, torch.stack([x1, y1, x1 + win, y1 + win], dim=1), pooled1)


def offset_class_probs(model: OverFeat, vw: ViewWindows) -> list[Tensor]:
    """Class probabilities [K, h', w'] of the view's k*k offset maps (no gradient), computed
    as at inference (multiscale.run_view, paper §3.3, Fig. 3): the classifier over the stride-1 pooled map
    with its first layer dilated by k, one call instead of k*k; offset (dx, dy)'s map is the
    slice [dy::k, dx::k]. For the demo model on a 461x569 view on this 2-core CPU:
    13 ms against 25 ms for the k*k separate calls (stage 3 scores every view this way)."""
    with torch.no_grad():
        probs = torch.softmax(model.classify(vw.pooled1[None], dilation=model.k), dim=1)[0]
    return deinterleave(probs, model.k)


def gather_patches(vw: ViewWindows, sel: Tensor, K: int) -> Tensor:
    """The KxK pooled patches of the selected windows: [len(sel), C, K, K] (what the first FC
    layer, a KxK convolution, sees for each window)."""
    out = []
    for n in sel.tolist():
        o, j, i = int(vw.offset[n]), int(vw.j[n]), int(vw.i[n])
        out.append(vw.pooled[o][:, j:j + K, i:i + K])
    return torch.stack(out) if out else vw.pooled[0].new_zeros(0, vw.pooled[0].shape[0], K, K)


def overlap(windows: Tensor, boxes: Tensor) -> Tensor:
    """Pairwise overlap [N, M] = max(coverage(window, box), coverage(box, window)), i.e.
    intersection / min(box area, window area) (see the module docstring)."""
    n, m = len(windows), len(boxes)
    if n == 0 or m == 0:
        return windows.new_zeros(n, m)
    w = windows[:, None, :].expand(n, m, 4).reshape(-1, 4)
    b = boxes[None, :, :].expand(n, m, 4).reshape(-1, 4)
    return torch.maximum(box_ops.coverage(w, b), box_ops.coverage(b, w)).reshape(n, m)


def _positive_visible(windows: Tensor, boxes: Tensor, ov: Tensor) -> Tensor:
    """[N, M] area of each box visible in each window where their overlap ov is >=
    POSITIVE_OVERLAP, -1 elsewhere (the ranking both target rules below use)."""
    lt = torch.maximum(windows[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(windows[:, None, 2:], boxes[None, :, 2:])
    visible = (rb - lt).clamp(min=0).prod(dim=2)
    return torch.where(ov >= POSITIVE_OVERLAP, visible, torch.full_like(visible, -1.0))


def assign_windows(windows: Tensor, boxes: Tensor, ignore: Tensor) -> tuple[Tensor, Tensor]:
    """(target [N] index into boxes or -1, background [N] bool) for each window.

    target: among the objects the window overlaps by >= POSITIVE_OVERLAP, the one with the
    largest visible area in the window. background: overlap < BACKGROUND_OVERLAP with every
    object, difficult ("ignore") ones included.
    """
    n = len(windows)
    allb = torch.cat([boxes, ignore])
    ov_all = overlap(windows, allb)
    background = (ov_all < BACKGROUND_OVERLAP).all(dim=1) if len(allb) else torch.ones(n, dtype=torch.bool)
    if len(boxes) == 0:
        return torch.full((n,), -1, dtype=torch.long), background
    visible = _positive_visible(windows, boxes, ov_all[:, :len(boxes)])
    best_v, best = visible.max(dim=1)
    target = torch.where(best_v >= 0, best, torch.full_like(best, -1))
    return target, background


def regression_pairs(windows: Tensor, boxes: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """The (window, object) pairs a per-class regressor trains on: (window index [P], object
    index [P]), sorted by window.

    For every window and every class, the object of that class with the largest visible area
    in the window among those it overlaps by >= POSITIVE_OVERLAP (assign_windows' rule, applied
    to each class's own 4 outputs). A window that sees a cow and a dog thus teaches the cow
    outputs the cow's box and the dog outputs the dog's box, where a shared regressor learns
    only the larger of the two.
    """
    n = len(windows)
    z = torch.zeros(0, dtype=torch.long)
    if n == 0 or len(boxes) == 0:
        return z, z
    visible = _positive_visible(windows, boxes, overlap(windows, boxes))
    wins, objs = [], []
    for c in torch.unique(labels).tolist():
        cols = torch.nonzero(labels == c).flatten()
        best_v, best = visible[:, cols].max(dim=1)
        keep = torch.nonzero(best_v >= 0).flatten()
        wins.append(keep)
        objs.append(cols[best[keep]])
    w, o = torch.cat(wins), torch.cat(objs)
    order = torch.argsort(w, stable=True)
    return w[order], o[order]


class ShuffleBuffer:
    """Stage 2's training rows (pooled patch, encoded target, class), mixed across many images
    before they are learned from.

    Consecutive windows of one image at one scale are nearly the same sample, so a step made of
    8 images x 48 windows is a poor estimate of the gradient. The buffer holds `capacity` rows;
    once it is full, every new row takes the place of a row drawn at random, and the drawn rows
    are what the step learns from, so a step mixes windows of the last ~capacity/48 images.
    Each row is learned from once: the steps that only fill the buffer learn nothing (they are
    skipped), and at the end of an epoch drain() hands out the rows still held (the buffer
    starts empty every epoch, so --resume stays exact). Measured on 300 val scenes of the demo
    recipe's det training folder, same frozen trunk and classifier, per-class regressor: det
    mAP@0.5 0.534 with 8-image batches (4 epochs), 0.572 with this buffer at 8192 rows (3
    epochs; final stage-2 loss 0.023 against 0.028); 0.572 again with 32768 rows and the drain
    (final loss 0.021). capacity = 0: every step learns from its own rows (no mixing).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.store: tuple[Tensor, ...] | None = None
        self.filled = 0

    def __len__(self) -> int:
        return self.filled

    def push(self, rows: tuple[Tensor, ...], gen: torch.Generator) -> tuple[Tensor, ...] | None:
        """Add rows (tensors of equal length); return the rows to learn from now, or None while
        the buffer fills."""
        n = len(rows[0])
        if self.capacity == 0:
            return rows if n else None
        if self.store is None:
            self.store = tuple(v.new_empty((self.capacity, *v.shape[1:])) for v in rows)
        k = min(n, self.capacity - self.filled)  # fill free places first
        for s, v in zip(self.store, rows):
            s[self.filled:self.filled + k] = v[:k]
        self.filled += k
        if n - k == 0:
            return None
        m = min(n - k, self.capacity)  # rows to swap in; any beyond capacity pass straight out
        slots = torch.randperm(self.capacity, generator=gen)[:m]
        out = tuple(torch.cat([s[slots], v[k + m:]]) for s, v in zip(self.store, rows))
        for s, v in zip(self.store, rows):
            s[slots] = v[k:k + m]
        return out

    def drain(self, size: int, gen: torch.Generator) -> list[tuple[Tensor, ...]]:
        """The rows still held, in random order, as chunks of at most `size` rows; the buffer
        is empty afterwards (the end of an epoch: every pushed row is then learned once)."""
        if not self.filled:
            return []
        order = torch.randperm(self.filled, generator=gen)
        rows = tuple(s[order] for s in self.store)
        self.store, self.filled = None, 0
        return [tuple(v[i:i + size] for v in rows) for i in range(0, len(order), size)]


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
        from .data.loader import SceneSet

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
        blob = read_checkpoint(path)
        label = Path(path).name
        ts = blob.get("train_state")
        if not isinstance(ts, dict) or not {"stage", "epoch", "rng", "history"} <= set(ts):
            raise CheckpointError(f"{label}: holds no training state to resume from "
                                  "(a final or exported checkpoint?)")
        try:
            cfg = ModelConfig.from_dict(blob["config"])
            model = OverFeat(cfg)
            model.load_state_dict(blob["state_dict"], strict=True)
        except (TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{label}: weights do not fit its config ({' '.join(str(e).split())[:160]})") from None
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
            params = [p for p in part.parameters() if p.requires_grad]
            if o.optimizer == "adamw":
                opt = torch.optim.AdamW(params, lr=o.lr[stage - 1], weight_decay=o.weight_decay)
            else:
                opt = torch.optim.SGD(params, lr=o.lr[stage - 1], momentum=o.momentum,
                                      weight_decay=o.weight_decay, nesterov=True)
            if first > 0 and self.optim_state:
                opt.load_state_dict(self.optim_state)
            self.optim_state = None
            wrapped = _wrap(part, self.dist)
            step_fn = {1: self._epoch_classifier, 2: self._epoch_regressor,
                       3: self._epoch_detection}[stage]
            for epoch in range(first, o.epochs[stage - 1]):
                t0 = time.time()
                stats = step_fn(wrapped, opt, epoch)
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

    # -- stage 1 -------------------------------------------------------------------------------
    def _crop_list(self, epoch: int) -> list[tuple[int, Tensor, int, bool]]:
        """(scene index, crop box, label, flip) for this rank and epoch: crops_per_image per
        image, background_fraction of them background when the model has that class."""
        from .data.loader import sample_background_crop, sample_object_crop

        o, d = self.opts, self.dist
        gen = _generator(o.seed, 1, epoch, d.rank)
        bg = self.cfg.num_classes - 1 if self.cfg.background else None
        out = []
        for idx in _epoch_indices(len(self.scenes), d, o.seed, 1, epoch):
            sc = self.scenes[idx]
            for _ in range(o.crops_per_image):
                want_bg = bg is not None and float(torch.rand((), generator=gen)) < o.background_fraction
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
                if got is not None:
                    flip = bool(torch.rand((), generator=gen) < 0.5)
                    out.append((idx, got[0], got[1], flip))
        perm = torch.randperm(len(out), generator=gen).tolist()
        return [out[i] for i in perm]

    def _epoch_classifier(self, net: nn.Module, opt, epoch: int) -> dict:
        from .data.loader import render_crops

        o, dev = self.opts, self.dist.device
        crops = self._crop_list(epoch)
        # Every rank must take the same number of steps (DDP): computed from the intended
        # number of crops; a short list is cycled.
        per_rank = math.ceil(len(self.scenes) / self.dist.world) * o.crops_per_image
        steps = max(1, per_rank // o.batch_size)
        if not crops:
            raise ValueError("no training crops could be drawn (no objects and no background class?)")
        total = self._total_steps(1, steps)
        self.model.train()
        t0, seen = time.time(), 0
        loss_sum, correct, count = 0.0, 0, 0
        for step in range(steps):
            batch = [crops[(step * o.batch_size + b) % len(crops)] for b in range(o.batch_size)]
            x = render_crops([self.scenes[b[0]] for b in batch], [b[1] for b in batch],
                             [b[3] for b in batch], self.model.window).to(dev)
            y = torch.tensor([b[2] for b in batch], device=dev)
            lr = lr_at(epoch * steps + step, total, o.lr[0])
            for g in opt.param_groups:
                g["lr"] = lr
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
        from .data.loader import dense_view

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

    def _epoch_regressor(self, net: nn.Module, opt, epoch: int) -> dict:
        o, dev, K = self.opts, self.dist.device, self.model.fc_kernel
        per_class = self.cfg.regressor == "per_class"
        self.model.eval()  # trunk frozen, no dropout anywhere in this stage
        net.train()
        loss_sum, count, t0, seen = 0.0, 0, time.time(), 0
        total = None

        def learn(rows: tuple[Tensor, ...] | None) -> tuple[float, int] | None:
            """One optimizer step on (patches, targets, labels): (its loss, rows learned), or
            None when nothing was learned (rows None: the buffer is filling). A step with
            nothing to learn is skipped, except under DDP, where a zero-weight step keeps the
            ranks' collective calls in step (and also answers None)."""
            nonlocal loss_sum, count
            if rows is None and not self.dist.active:
                return None
            if rows is not None:
                p, t, lab = (v.to(dev) for v in rows)
                weight = 1.0
            else:
                p = self._empty_patch()
                t, lab, weight = p.new_zeros(1, 4), torch.zeros(1, dtype=torch.long, device=dev), 0.0
            out = net(p).flatten(1)  # [P, 4] or [P, 4 * K_obj]: one row per (window, target)
            if per_class:
                out = out.view(len(out), -1, 4)[torch.arange(len(out), device=dev), lab]
            loss = F.mse_loss(out, t) * weight
            _check_finite(loss, 2, epoch, step)
            _optimize(opt, loss)
            if not weight:
                return None
            loss_sum += loss.item() * len(t)
            count += len(t)
            return loss.item(), len(t)

        def event(step: int, steps: int, learned: list, lr: float) -> None:
            """View step `step`'s event: the rows-weighted mean loss of what it learned (loss
            None and rows 0 when it only filled the buffer), so that the epoch's loss is the
            rows-weighted mean of its steps' losses."""
            done = [x for x in learned if x is not None]
            n = sum(r for _, r in done)
            self._step_events(2, epoch, step, steps, sum(v * r for v, r in done) / n if n else None,
                              lr, seen, t0, rows=n)

        # Each epoch starts with an empty buffer, so --resume stays exact, and ends by learning
        # the rows still in it (drain), so every window drawn is learned once. The drain belongs
        # to the epoch's last step, whose event waits for it: a small run whose rows all fit in
        # the buffer learns everything there (it used to report a loss of 0 at every step,
        # having learned nothing yet, and never the drain's).
        buf = ShuffleBuffer(o.shuffle_buffer)
        gen, step, last = None, 0, None
        for step, steps, batch in self._views(2, epoch):
            total = total or self._total_steps(2, steps)
            patches, rows, targets, labels, n_rows = [], [], [], [], 0
            for x, boxes, ignore, labs, gen in batch:
                vw = view_windows(self.model, x)
                tgt, _ = assign_windows(vw.boxes, boxes, ignore)
                valid = torch.nonzero(tgt >= 0).flatten()
                if len(valid) > o.windows_per_image:
                    valid = valid[torch.randperm(len(valid), generator=gen)[:o.windows_per_image]]
                if len(valid) == 0:
                    continue
                if per_class:  # every class the window overlaps trains its own outputs
                    w, obj = regression_pairs(vw.boxes[valid], boxes, labs)
                else:  # the object with the largest visible area
                    w, obj = torch.arange(len(valid)), tgt[valid]
                patches.append(gather_patches(vw, valid, K))
                rows.append(w + n_rows)
                n_rows += len(valid)
                targets.append(box_ops.encode(boxes[obj], vw.boxes[valid][w]))
                labels.append(labs[obj])
            seen += len(batch)
            lr = lr_at(epoch * steps + step, total, o.lr[1])
            for g in opt.param_groups:
                g["lr"] = lr
            got = learn(buf.push((torch.cat(patches)[torch.cat(rows)], torch.cat(targets),
                                  torch.cat(labels)), gen) if patches else None)
            if step < steps - 1:
                event(step, steps, [got], lr)
            else:
                last = (step, steps, [got], lr)
        # The drain runs at the epoch's last learning rate. Under DDP every rank takes the same
        # number of drain steps (the most a full buffer needs), padded with zero-weight steps.
        size = o.images_per_step * o.windows_per_image
        chunks = buf.drain(size, gen)
        n = math.ceil(o.shuffle_buffer / size) if self.dist.active else len(chunks)
        drained = [learn(chunks[c] if c < len(chunks) else None) for c in range(n)]
        if last is not None:
            event(last[0], last[1], last[2] + drained, last[3])
        return {"loss": loss_sum / max(1, count), "windows": count}

    def _epoch_detection(self, net: nn.Module, opt, epoch: int) -> dict:
        o, dev, K = self.opts, self.dist.device, self.model.fc_kernel
        bg = self.cfg.num_classes - 1
        n_obj = len(self.cfg.object_classes)
        loss_sum, count, correct, t0, seen = 0.0, 0, 0, time.time(), 0
        total = None
        for step, steps, batch in self._views(3, epoch):
            total = total or self._total_steps(3, steps)
            patches, labels = [], []
            self.model.eval()
            for x, boxes, ignore, labs, gen in batch:
                vw = view_windows(self.model, x)
                if len(vw.boxes) == 0:
                    continue
                tgt, is_bg = assign_windows(vw.boxes, boxes, ignore)
                # Score every window with the current classifier (dropout off, no gradient).
                obj_score = _window_scores(offset_class_probs(self.model, vw), vw, n_obj)  # [N]
                pos = torch.nonzero(tgt >= 0).flatten()
                if len(pos) > o.positives_per_image:
                    pos = pos[torch.randperm(len(pos), generator=gen)[:o.positives_per_image]]
                neg = torch.nonzero(is_bg).flatten()
                hard = neg[torch.argsort(obj_score[neg], descending=True, stable=True)[:o.negatives_per_image]]
                rand = neg[torch.randperm(len(neg), generator=gen)[:1]] if len(neg) else neg
                sel = torch.cat([pos, hard, rand])
                if len(sel) == 0:
                    continue
                y = torch.cat([labs[tgt[pos]], torch.full((len(hard) + len(rand),), bg)])
                patches.append(gather_patches(vw, sel, K))
                labels.append(y)
            seen += len(batch)
            lr = lr_at(epoch * steps + step, total, o.lr[2])
            for g in opt.param_groups:
                g["lr"] = lr
            net.train()
            if patches:
                p, y, weight = torch.cat(patches), torch.cat(labels).to(dev), 1.0
            else:
                p = self._empty_patch()
                y, weight = torch.full((1,), bg, device=dev), 0.0
            logits = net(p).flatten(1)
            loss = F.cross_entropy(logits, y) * weight
            _check_finite(loss, 3, epoch, step)
            _optimize(opt, loss)
            if weight:
                loss_sum += loss.item() * len(y)
                count += len(y)
                correct += int((logits.argmax(1) == y).sum())
            self._step_events(3, epoch, step, steps, loss.item(), lr, seen, t0)
        return {"loss": loss_sum / max(1, count), "accuracy": correct / max(1, count)}


def _window_scores(probs: list[Tensor], vw: ViewWindows, n_obj: int) -> Tensor:
    """Highest object-class probability of every window [N] (probs: k*k maps [K, h', w']).
    The window list lives on the CPU (view_windows), the maps on the training device."""
    out = torch.empty(len(vw.boxes))
    best = [p[:n_obj].amax(dim=0).cpu() for p in probs]  # k*k x [h', w']
    for o in range(len(probs)):
        m = vw.offset == o
        if m.any():
            out[m] = best[o][vw.j[m], vw.i[m]]
    return out


def train(opts: TrainOptions, callback: Callback | None = None,
          resume: str | Path | None = None) -> OverFeat:
    """Run the stages of opts (optionally continuing a checkpoint written by a run with the
    same options); the checkpoint at opts.out is rewritten after every epoch. Returns the
    model (in eval mode), also when a callback stopped the run with StopTraining (Trainer.run)."""
    return Trainer(opts, callback, resume).run()


# --- command line -----------------------------------------------------------------------------

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


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.02 or 0.02,0.01,0.002, got {text!r}") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,2,3, got {text!r}") from None


def cmd_train(args) -> int:
    opts = TrainOptions(
        data=tuple(args.data), out=args.out, split=args.split, preset=args.preset,
        width=args.width, stages=args.stages, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, images_per_step=args.images_per_step,
        crops_per_image=args.crops_per_image, shuffle_buffer=args.shuffle_buffer, bf16=args.bf16,
        seed=args.seed, max_images=args.max_images,
        optimizer=args.optimizer, weight_decay=args.weight_decay, dropout=args.dropout,
        threads=args.threads, device=args.device,
        on_error="skip" if args.skip_bad else "raise")
    if args.resume and not Path(args.resume).exists():
        raise CheckpointError(f"{Path(args.resume).name}: no such checkpoint file")
    t0 = time.time()
    trainer = Trainer(opts, None if args.quiet else ProgressBar(), resume=args.resume)
    if trainer.dist.main:
        n = sum(p.numel() for p in trainer.model.parameters())
        print(f"{len(trainer.scenes)} training images from {', '.join(opts.data)} "
              f"({len(trainer.skipped)} skipped); model {opts.preset} width {trainer.cfg.width} "
              f"({n:,} parameters) on {trainer.dist.device}"
              + (f" x{trainer.dist.world} processes" if trainer.dist.active else ""), file=sys.stderr)
        for f, why in trainer.skipped[:5]:
            print(f"  skipped {f}: {why}", file=sys.stderr)
    trainer.run()
    if trainer.dist.main:
        print(f"wrote {opts.out} in {time.time() - t0:.0f} s")
    if trainer.dist.active:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


def register(sub) -> None:
    d = TrainOptions(data=("x",))
    p = sub.add_parser(
        "train", help="train a model in the paper's three stages",
        description="Stage 1 trains the trunk and classifier on 221x221 crops (scale jitter, "
        "flips, background crops); stage 2 the box regressor on the frozen trunk's windows at "
        "the six scales (windows overlapping a box by >= 50%%); stage 3 fine-tunes the "
        "classifier for detection with negatives mined on the fly. A checkpoint is written "
        "atomically after every epoch; --resume continues one. Runs under torchrun too.")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR",
                   help="VOC-layout folder(s) (generated scenes or a real VOC2007/2012)")
    p.add_argument("--split", default=d.split, help="split file to train on (default train)")
    p.add_argument("--out", default=d.out, help=f"checkpoint path (default {d.out})")
    p.add_argument("--preset", default=d.preset, choices=["demo", "accurate", "fast"])
    p.add_argument("--width", type=float, help="channel multiplier (default: the preset's)")
    p.add_argument("--stages", type=_ints, default=d.stages, help="default 1,2,3")
    p.add_argument("--epochs", type=_ints, default=d.epochs,
                   help="epochs per stage: one value or three (default %s)" % ",".join(map(str, d.epochs)))
    p.add_argument("--lr", type=_floats, default=d.lr,
                   help="peak learning rate: one value or three (default %s)" % ",".join(map(str, d.lr)))
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="stage 1 crops per step")
    p.add_argument("--images-per-step", type=int, default=d.images_per_step,
                   help="stages 2-3: whole images per step")
    p.add_argument("--crops-per-image", type=int, default=d.crops_per_image,
                   help="stage 1: crops per image per epoch")
    p.add_argument("--shuffle-buffer", type=int, default=d.shuffle_buffer,
                   help="stage 2: windows mixed across images before each step (0 = none; "
                   "default %(default)s)")
    p.add_argument("--bf16", action="store_true",
                   help="stage 1 under bfloat16 autocast (faster on CPUs with AVX512-BF16 and on "
                   "recent GPUs; the other stages and the weights stay float32)")
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default=d.optimizer)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--dropout", type=float, help="dropout on FC layers (default: the preset's)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--max-images", type=int, help="use only the first N images of each folder")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--resume", metavar="PATH", help="continue from a checkpoint of this command")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable images/annotations instead of stopping")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
