"""Model configuration: the paper's two geometries (paper §3.1) as typed presets.

A geometry fixes kernels, strides, pools and paddings; a config adds the channel width
multiplier, the number of classes and the heads. The project's trainable models keep one of the
paper's geometries exactly and only scale channel widths (paper §3.1, last paragraph).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

# Release input normalisation (paper §3.1): one scalar for all channels.
PIXEL_MEAN = 118.380948
PIXEL_STD = 61.896913


@dataclass(frozen=True)
class ConvSpec:
    """One trunk layer: a convolution, ReLU, and optionally a non-overlapping max pool."""

    channels: int  # output channels at width 1.0
    kernel: int
    stride: int
    padding: int
    pool: int = 0  # max-pool size and stride after the ReLU; 0 = no pool


@dataclass(frozen=True)
class Geometry:
    """Kernels, strides, pools and paddings of one of the paper's networks (paper §3.1)."""

    name: str
    input_size: int  # the window the paper trains on (221 accurate, 231 fast)
    trunk: tuple[ConvSpec, ...]  # the last entry's pool is the one done with offsets (paper §3.3, Fig. 3)
    fc_channels: tuple[int, ...]  # hidden "fully connected" layers, run as convolutions
    # Paper's six scales (paper §3.3), as (height, width); the shorter sides are used for images
    # of any aspect (see overfeat.multiscale.scale_sizes).
    scales: tuple[tuple[int, int], ...]

    @property
    def offset_pool(self) -> int:
        """k of the offset max pooling: the last trunk layer's pool size."""
        return self.trunk[-1].pool


GEOMETRIES: dict[str, Geometry] = {
    # Fast model, paper §3.1, Table 1: total stride 32, last pool 2x2.
    "fast": Geometry(
        name="fast",
        input_size=231,
        trunk=(
            ConvSpec(96, kernel=11, stride=4, padding=0, pool=2),
            ConvSpec(256, kernel=5, stride=1, padding=0, pool=2),
            ConvSpec(512, kernel=3, stride=1, padding=1),
            ConvSpec(1024, kernel=3, stride=1, padding=1),
            ConvSpec(1024, kernel=3, stride=1, padding=1, pool=2),
        ),
        fc_channels=(3072, 4096),
        # The paper lists sizes for the accurate model only; these are its shorter sides
        # snapped to the fast model's grid 231 + 16k (the project's choice (?)).
        scales=((247, 247), (279, 311), (311, 391), (391, 455), (423, 487), (455, 567)),
    ),
    # Accurate model, paper §3.1, Table 3: total stride 36, last pool 3x3.
    "accurate": Geometry(
        name="accurate",
        input_size=221,
        trunk=(
            ConvSpec(96, kernel=7, stride=2, padding=0, pool=3),
            ConvSpec(256, kernel=7, stride=1, padding=0, pool=2),
            ConvSpec(512, kernel=3, stride=1, padding=1),
            ConvSpec(512, kernel=3, stride=1, padding=1),
            ConvSpec(1024, kernel=3, stride=1, padding=1),
            ConvSpec(1024, kernel=3, stride=1, padding=1, pool=3),
        ),
        fc_channels=(4096, 4096),
        scales=((245, 245), (281, 317), (317, 389), (389, 461), (425, 497), (461, 569)),
    ),
}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored inside every checkpoint."""

    geometry: str = "accurate"  # key of GEOMETRIES: kernels/strides/pools are never changed
    width: float = 1.0  # channel multiplier for the trunk and the FC layers
    num_classes: int = 1000  # classifier outputs, background included when background=True
    class_names: tuple[str, ...] = ()  # len == num_classes, or empty for anonymous classes
    background: bool = False  # detection (paper §5): the LAST class is "background"
    padding: bool = True  # False = padding-free variant, where dense == crop-by-crop exactly
    # Batch normalisation after every trunk convolution: NOT in the paper (2013, before BN).
    # The project's choice for the small demo model, which must learn from scratch in minutes on
    # a 2-core CPU; without it the plain 9-layer net learns several times slower. In evaluation
    # BN is a fixed per-channel affine map, so dense evaluation and the geometry are unchanged.
    batch_norm: bool = False
    regressor: str = "shared"  # "shared": one 4-vector per window; "per_class": one per class
    regressor_channels: tuple[int, ...] = (4096, 1024)  # paper §4.2: FC 4096, FC 1024, then 4
    dropout: float = 0.5  # on the first two FC layers in training (paper §3.1)
    pixel_mean: float = PIXEL_MEAN
    pixel_std: float = PIXEL_STD

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"unknown geometry {self.geometry!r}; expected one of {sorted(GEOMETRIES)}")
        if not (0 < self.width <= 4):
            raise ValueError(f"width multiplier must be in (0, 4], got {self.width}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{len(self.class_names)} class names given for {self.num_classes} classes")
        if self.regressor not in ("shared", "per_class"):
            raise ValueError(f"regressor must be 'shared' or 'per_class', got {self.regressor!r}")
        if self.background and self.num_classes < 2:
            raise ValueError("a background class needs at least one object class besides it")

    @property
    def geo(self) -> Geometry:
        return GEOMETRIES[self.geometry]

    def channels(self, c: int) -> int:
        """Width-scaled channel count (at least 1)."""
        return max(1, int(round(c * self.width)))

    @property
    def names(self) -> tuple[str, ...]:
        """Class names, generated as class_0.. when none were given."""
        return self.class_names or tuple(f"class_{i}" for i in range(self.num_classes))

    @property
    def object_classes(self) -> list[int]:
        """Indices of real object classes (the background class excluded)."""
        return list(range(self.num_classes - 1 if self.background else self.num_classes))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        d["regressor_channels"] = list(self.regressor_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config fields {sorted(unknown)}")
        d = dict(d)
        if "class_names" in d:
            d["class_names"] = tuple(d["class_names"])
        if "regressor_channels" in d:
            d["regressor_channels"] = tuple(d["regressor_channels"])
        return cls(**d)

    def replace(self, **changes) -> "ModelConfig":
        return replace(self, **changes)


# The 20 Pascal VOC classes, in the order of the VOC devkit; the demo model adds "background".
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)

# Named presets in one table.
PRESETS: dict[str, ModelConfig] = {
    "fast": ModelConfig(geometry="fast"),  # the paper's fast model, ~145M parameters
    "accurate": ModelConfig(geometry="accurate"),  # the paper's accurate model, ~144M
    # The shipped demo: the accurate geometry exactly (so the paper's map sizes hold) with 1/8 of
    # the channels, 20 VOC classes + background, batch norm in the trunk; small enough to train
    # on a 2-core CPU. Its regressor is per class (the paper's class-specific last layer; paper §4.2
    # notes the paper found a shared one better on ImageNet's one-object images): in scenes of
    # several objects a window often sees two, and the shared regressor can give only one box.
    # Measured on 300 val scenes of the det training folder, with the previous (shared)
    # checkpoint's frozen trunk and classifier: det mAP@0.5 0.52 with its shared regressor,
    # 0.61-0.62 with per-class regressors trained on cached, fully shuffled windows (two seeds;
    # shuffling alone, shared regressor: 0.58 against 0.56 on 120 of those scenes).
    "demo": ModelConfig(geometry="accurate", width=0.125, num_classes=21, background=True,
                        class_names=VOC_CLASSES + ("background",), batch_norm=True,
                        regressor="per_class"),
}


def preset(name: str) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]

