"""`python -m overfeat train`: the three stages from the command line.

    python -m overfeat train --preset demo --data data/train_loc data/train_det --out run.pt

The flags that set a TrainOptions field are generated from the dataclass (FIELD_FLAGS below
names them, in --help order, with their help texts): the type comes from the field's type
(a per-stage tuple is parsed by _ints / _floats, "0.02" or "0.02,0.01,0.002"; a bool is a
switch), the default from the field's default, and a field without a default is required.
--resume, --skip-bad (on_error="skip") and --quiet are the command's own.
"""

from __future__ import annotations

import argparse
import sys
import time
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path

from ..checkpoint import CheckpointError
from .options import TrainOptions
from .progress import ProgressBar
from .trainer import Trainer

# TrainOptions fields that are flags, in --help order: argparse keywords beyond those derived
# from the field (help, choices, metavar). "{default}" in a help text is the field's default
# (a tuple written as 1,2,3); "%(default)s" is argparse's own.
FIELD_FLAGS: dict[str, dict] = {
    "data": {"metavar": "DIR",
             "help": "VOC-layout folder(s) (generated scenes or a real VOC2007/2012)"},
    "split": {"help": "split file to train on (default {default})"},
    "out": {"help": "checkpoint path (default {default})"},
    "preset": {"choices": ["demo", "accurate", "fast"]},
    "width": {"help": "channel multiplier (default: the preset's)"},
    "stages": {"help": "default {default}"},
    "epochs": {"help": "epochs per stage: one value or three (default {default})"},
    "lr": {"help": "peak learning rate: one value or three (default {default})"},
    "batch_size": {"help": "stage 1 crops per step"},
    "images_per_step": {"help": "stages 2-3: whole images per step"},
    "crops_per_image": {"help": "stage 1: crops per image per epoch"},
    "shuffle_buffer": {"help": "stage 2: windows mixed across images before each step (0 = none; "
                       "default %(default)s)"},
    "bf16": {"help": "stage 1 under bfloat16 autocast (faster on CPUs with AVX512-BF16 and on "
             "recent GPUs; the other stages and the weights stay float32)"},
    "optimizer": {"choices": ["sgd", "adamw"]},
    "weight_decay": {},
    "dropout": {"help": "dropout on FC layers (default: the preset's)"},
    "seed": {},
    "max_images": {"help": "use only the first N images of each folder"},
    "threads": {"help": "torch CPU threads (default: torch's choice)"},
    "device": {"choices": ["auto", "cpu", "cuda"]},
}


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


def _field_kwargs(hint, default) -> dict:
    """argparse keywords for a field of type `hint` with `default` (MISSING: required)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    kw: dict = {"required": True} if default is MISSING else {"default": default}
    if hint is bool:
        return {**kw, "action": "store_true"}
    if typing.get_origin(hint) is tuple:
        elem = typing.get_args(hint)[0]
        if elem is str:
            return {**kw, "nargs": "+"}
        return {**kw, "type": {int: _ints, float: _floats}[elem]}
    return {**kw, "type": hint}


def _add_field_flags(p: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(TrainOptions)
    by_name = {f.name: f for f in fields(TrainOptions)}
    for name, extra in FIELD_FLAGS.items():
        default = by_name[name].default
        kw = {**_field_kwargs(hints[name], default), **extra}
        if "help" in kw and default is not MISSING:
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
            kw["help"] = kw["help"].replace("{default}", shown)
        p.add_argument("--" + name.replace("_", "-"), **kw)


def cmd_train(args) -> int:
    opts = TrainOptions(**{name: getattr(args, name) for name in FIELD_FLAGS},
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
    p = sub.add_parser(
        "train", help="train a model in the paper's three stages",
        description="Stage 1 trains the trunk and classifier on 221x221 crops (scale jitter, "
        "flips, background crops); stage 2 the box regressor on the frozen trunk's windows at "
        "the six scales (windows overlapping a box by >= 50%); stage 3 fine-tunes the "
        "classifier for detection with negatives mined on the fly. A checkpoint is written "
        "atomically after every epoch; --resume continues one. Runs under torchrun too.")
    _add_field_flags(p)
    p.add_argument("--resume", metavar="PATH", help="continue from a checkpoint of this command")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable images/annotations instead of stopping")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
