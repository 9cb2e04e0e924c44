"""The `data` command: write a seeded folder of pictogram scenes in Pascal VOC layout.

    python -m overfeat data --out data/train_loc --kind loc --n 2000 --seed 1

The folder is read back by overfeat.data.voc (train, evaluate), exactly like a real VOC 2007.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path


def _fractions(text: str) -> tuple[float, float, float]:
    import argparse

    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three fractions like 0.8,0.1,0.1, got {text!r}") from None
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three fractions (train,val,test), got {text!r}")
    return parts  # type: ignore[return-value]


def cmd_data(args) -> int:
    from .scenes import split_sizes, write_voc_dataset

    out = Path(args.out)
    # Every argument is checked before --force deletes anything.
    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    split_sizes(args.n, args.splits)  # ValueError for fractions that do not sum to 1
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not args.force:
            raise ValueError(f"--out {str(out)!r} is not empty; use --force to replace it")
        shutil.rmtree(out)
    t0 = time.time()
    summary = write_voc_dataset(out, kind=args.kind, n=args.n, seed=args.seed,
                                split_fractions=args.splits, workers=args.workers)
    dt = time.time() - t0
    splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
    n_obj = sum(summary["objects_per_class"].values())
    print(f"wrote {summary['n']} {summary['kind']} scenes (seed {summary['seed']}) to "
          f"{summary['out_dir']} in {dt:.1f} s")
    print(f"splits: {splits}")
    print(f"objects: {n_obj} ({summary['truncated_objects']} truncated); images without "
          f"objects: {summary['images_without_objects']}")
    per = summary["objects_per_class"]
    print("per class: " + ", ".join(f"{c} {k}" for c, k in per.items()))
    sys.stdout.flush()
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "data", help="generate a seeded VOC-layout folder of pictogram scenes",
        description="Write N synthetic scenes (20 VOC classes as pictograms) as JPEGImages/, "
        "Annotations/ (VOC XML) and ImageSets/Main/{train,val,test}.txt. 'loc' scenes hold one "
        "main object (ILSVRC-like), 'det' scenes 0-5 objects (VOC-like). The same --kind, --n "
        "and --seed always give byte-identical files.")
    p.add_argument("--out", required=True, help="output folder (must be empty or new)")
    p.add_argument("--kind", choices=["loc", "det"], default="loc")
    p.add_argument("--n", type=int, default=1000, help="number of images (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="series seed (default 0)")
    p.add_argument("--splits", type=_fractions, default=(0.8, 0.1, 0.1), metavar="TR,VA,TE",
                   help="train,val,test fractions (default 0.8,0.1,0.1)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes (default: all CPUs from 100 images on)")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(func=cmd_data)
