"""What a training run depends on (TrainOptions) and the model it trains (model_config).

The command line's flags are generated from TrainOptions' fields (overfeat.train.cli), so a
field's comment here and its --help line there describe the same knob.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..config import VOC_CLASSES, ModelConfig, preset

STAGE_NAMES = {1: "classifier", 2: "regressor", 3: "detection"}


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
