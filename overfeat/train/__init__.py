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

The package, module by module: options (TrainOptions, model_config), targets (the windows of a
dense view and their labels and regression targets), buffer (stage 2's ShuffleBuffer),
distributed (one process or one torchrun rank, seeded per-epoch sampling), trainer (Trainer,
the schedule, train()), progress (the text ProgressBar) and cli (`python -m overfeat train`,
its flags generated from TrainOptions). The names below are re-exported here.
"""

from .buffer import ShuffleBuffer
from .cli import FIELD_FLAGS, _floats, _ints, cmd_train, register
from .distributed import Dist, _epoch_indices, _generator, _wrap, setup_distributed
from .options import STAGE_NAMES, TrainOptions, _per_stage, model_config
from .progress import ProgressBar
from .targets import (BACKGROUND_OVERLAP, POSITIVE_OVERLAP, ViewWindows, _positive_visible,
                      _window_scores, assign_windows, detection_windows, gather_patches,
                      offset_class_probs, overlap, regression_pairs, regression_rows, view_windows)
from .trainer import Callback, StopTraining, Trainer, _check_finite, _optimize, lr_at, train

__all__ = [
    "BACKGROUND_OVERLAP", "Callback", "Dist", "FIELD_FLAGS", "POSITIVE_OVERLAP", "ProgressBar",
    "STAGE_NAMES", "ShuffleBuffer", "StopTraining", "TrainOptions", "Trainer", "ViewWindows",
    "assign_windows", "cmd_train", "detection_windows", "gather_patches", "lr_at",
    "model_config", "offset_class_probs", "overlap", "register", "regression_pairs",
    "regression_rows", "setup_distributed", "train", "view_windows",
]
