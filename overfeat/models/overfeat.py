"""The OverFeat networks (paper §3.1): a conv trunk and FC heads run as convolutions.

Because the fully-connected layers are convolutions (the first a KxK conv over the last pooled
map, the others 1x1), the same module classifies one 221x221 window or slides over a whole
image in one pass (paper §3.3). The trunk stops before its last max pool, which is done with
offsets by overfeat.offsets (paper §3.3, Fig. 3).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig


class OverFeat(nn.Module):
    """Trunk + classifier + box regressor (paper §3.1, §4.2).

    features(x):  [B, 3, H, W] normalised image -> [B, C, H', W'] pre-pool map (last conv's ReLU)
    pool(f):      the last max pool, k x k stride k (k = 3 accurate, 2 fast)
    classify(p):  pooled map -> class logits, one cell per window  [B, num_classes, h, w]
    regress(p):   pooled map -> box per window [B, 4, h, w] (shared) or [B, 4 * C, h, w]
    forward(x):   classify(pool(features(x))), the plain coarse-stride network used in training
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        geo = cfg.geo
        ch = cfg.channels

        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = 3
        for i, spec in enumerate(geo.trunk, start=1):
            # The padding-free variant drops every padding so that each output cell depends on
            # its own window only: dense evaluation then equals crop-by-crop exactly (paper §3.3, Fig. 3).
            layers[f"conv{i}"] = nn.Conv2d(
                c_in, ch(spec.channels), kernel_size=spec.kernel, stride=spec.stride,
                padding=spec.padding if cfg.padding else 0, bias=not cfg.batch_norm)
            if cfg.batch_norm:  # project's choice for the demo model (see ModelConfig)
                layers[f"bn{i}"] = nn.BatchNorm2d(ch(spec.channels))
            layers[f"relu{i}"] = nn.ReLU(inplace=True)
            if spec.pool and i < len(geo.trunk):
                layers[f"pool{i}"] = nn.MaxPool2d(kernel_size=spec.pool, stride=spec.pool)
            c_in = ch(spec.channels)
        self.features = nn.Sequential(layers)
        self.k = geo.offset_pool
        self.trunk_channels = c_in

        # Side of the last pooled map at the paper's input size: the first FC layer's kernel
        # (5 for accurate, 6 for fast). Kept when padding is removed, so the window grows.
        self.fc_kernel = _padded_pooled_side(cfg)
        n_trunk = len(geo.trunk)

        def fc_head(widths: tuple[int, ...], out: int, dropout: float, first: int) -> nn.Sequential:
            mods: OrderedDict[str, nn.Module] = OrderedDict()
            c = c_in
            for j, w in enumerate(widths):
                name = f"fc{first + j}"
                mods[name] = nn.Conv2d(c, ch(w), kernel_size=self.fc_kernel if j == 0 else 1)
                mods[f"relu{first + j}"] = nn.ReLU(inplace=True)
                if dropout > 0:
                    mods[f"drop{first + j}"] = nn.Dropout(dropout)
                c = ch(w)
            mods[f"fc{first + len(widths)}"] = nn.Conv2d(c, out, kernel_size=1)
            return nn.Sequential(mods)

        self.classifier = fc_head(geo.fc_channels, cfg.num_classes, cfg.dropout, n_trunk + 1)
        n_box = 4 * (len(cfg.object_classes) if cfg.regressor == "per_class" else 1)
        self.regressor = fc_head(cfg.regressor_channels, n_box, 0.0, n_trunk + 1)

        # paper §3.1: weights from N(0, 1e-2) in the paper; we use Kaiming init, which trains from
        # scratch reliably at small widths (the project's own recipe)...
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # ...except the heads' output layers, which feed no ReLU: Kaiming there gives logits of
        # std ~3 (a first loss of 10-15 instead of ln K) and a short run at full learning rate
        # diverges. The paper's N(0, 1e-2) starts the classifier near uniform and the regressor
        # near the zero box.
        for head in (self.classifier, self.regressor):
            nn.init.normal_(head[-1].weight, std=0.01)

    # --- the interface every dense model shares (EfficientNetLite0 and PNet have it too) ------
    name = "pictogram"
    has_regressor = True

    @property
    def names(self) -> tuple[str, ...]:
        return self.cfg.names

    @property
    def object_classes(self) -> list[int]:
        return self.cfg.object_classes

    @property
    def background(self) -> bool:
        return self.cfg.background

    @property
    def padding(self) -> bool:
        return self.cfg.padding

    @property
    def scales(self) -> tuple[tuple[int, int], ...]:
        """The paper's six input sizes (height, width) for this geometry."""
        return self.cfg.geo.scales

    # --- geometry -------------------------------------------------------------------------
    @property
    def prepool_stride(self) -> int:
        """Pixels between neighbouring cells of the pre-pool map (12 accurate, 16 fast)."""
        s = 1
        for i, spec in enumerate(self.cfg.geo.trunk, start=1):
            s *= spec.stride
            if spec.pool and i < len(self.cfg.geo.trunk):
                s *= spec.pool
        return s

    @property
    def stride(self) -> int:
        """Total stride of the coarse output map (36 accurate, 32 fast)."""
        return self.prepool_stride * self.k

    @property
    def window(self) -> int:
        """Side of the input window behind one output cell: the smallest input giving a 1x1
        output (221 accurate, 231 fast; larger for the padding-free variant)."""
        return _window_side(self.cfg, self.fc_kernel)

    # --- the network ----------------------------------------------------------------------
    def normalize(self, images: Tensor) -> Tensor:
        """[B, 3, H, W] pixels in 0..255 -> network input (paper §3.1 release normalisation)."""
        return (images - self.cfg.pixel_mean) / self.cfg.pixel_std

    def pool(self, f: Tensor) -> Tensor:
        return F.max_pool2d(f, kernel_size=self.k, stride=self.k)

    def pool_fine(self, f: Tensor) -> Tensor:
        """The last max pool at stride 1: its slices [dy::k, dx::k] are the k*k offset maps."""
        return F.max_pool2d(f, kernel_size=self.k, stride=1)

    def classify(self, pooled: Tensor, dilation: int = 1) -> Tensor:
        return self._slide(self.classifier, pooled, dilation)

    def regress(self, pooled: Tensor, dilation: int = 1) -> Tensor:
        return self._slide(self.regressor, pooled, dilation)

    def _slide(self, head: nn.Sequential, pooled: Tensor, dilation: int = 1) -> Tensor:
        """Run a head over a pooled map, its first (KxK) layer dilated by `dilation`.

        dilation=k over the stride-1 pooled map computes all k*k offset maps at once, already
        interleaved (paper §3.3, Fig. 3), reading the big FC weights once instead of k*k times.
        A map smaller than one window gives an empty map rather than an error (an offset map
        can be one row short of a window at sizes off the 221 + 12n grid).
        """
        h, w = pooled.shape[-2:]
        span = dilation * (self.fc_kernel - 1) + 1
        if h < span or w < span:
            out = head[-1].out_channels
            return pooled.new_zeros(pooled.shape[0], out, max(0, h - span + 1), max(0, w - span + 1))
        first, rest = head[0], head[1:]
        x = F.conv2d(pooled, first.weight, first.bias, dilation=dilation)
        return rest(x)

    def forward(self, x: Tensor) -> Tensor:
        """[B, 3, H, W] normalised input -> [B, num_classes, h, w] logits at coarse stride."""
        return self.classify(self.pool(self.features(x)))


def _padded_pooled_side(cfg: ModelConfig) -> int:
    """Side of the last pooled map of the padded network at the paper's input size."""
    s = cfg.geo.input_size
    for spec in cfg.geo.trunk:
        s = (s + 2 * spec.padding - spec.kernel) // spec.stride + 1
        if spec.pool:
            s //= spec.pool
    return s


def _window_side(cfg: ModelConfig, fc_kernel: int) -> int:
    """Smallest input side whose classifier output is 1x1: walk the layers backwards."""
    s = fc_kernel
    for spec in reversed(cfg.geo.trunk):
        if spec.pool:
            s *= spec.pool
        pad = spec.padding if cfg.padding else 0
        s = (s - 1) * spec.stride + spec.kernel - 2 * pad
    return s

