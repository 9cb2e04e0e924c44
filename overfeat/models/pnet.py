"""MTCNN's P-Net (Zhang et al., 2016), a face detector built like a tiny OverFeat.

P-Net is a fully convolutional 12x12 window classifier (face or not) with a box regressor,
slid over an image pyramid: the OverFeat recipe (paper sections 3.3-4) at a small scale. Its
weights come from facenet-pytorch 2.6.0 (MIT licence; assets/weights/LICENSE-facenet-pytorch),
shipped as the 28 KB assets/weights/mtcnn_pnet.pt and loaded here with weights_only=True. None
of facenet-pytorch's code is used: the network is rebuilt below, and MTCNN's own second and third
stages (R-Net, O-Net) and its non-maximum suppression are replaced by the OverFeat pipeline
(six scales, offset pooling, the greedy merge), so a photo of people shows the paper's steps
on real boxes.

    conv1 3x3 -> PReLU -> max pool 2x2, stride 2  (done with offsets: k = 2, 4 maps)
    conv2 3x3 -> PReLU -> conv3 3x3 -> PReLU -> { conv4_1 1x1: face / background
                                                  conv4_2 1x1: box }

No padding anywhere, so dense evaluation equals window-by-window evaluation exactly, as for the
OverFeat nets' padding-free variant. Differences from MTCNN: its pool rounds up (ceil_mode) at
the map's edge, this one drops the last odd row/column; its boxes are refined by two more nets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import NetConfig

WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "weights" / "mtcnn_pnet.pt"
CLASS_NAMES = ("face", "background")
PIXEL_MEAN = 127.5  # MTCNN's input: (x - 127.5) / 128
PIXEL_STD = 128.0
EXPECTED = {"conv1.weight": (10, 3, 3, 3), "conv1.bias": (10,), "prelu1.weight": (10,),
            "conv2.weight": (16, 10, 3, 3), "conv2.bias": (16,), "prelu2.weight": (16,),
            "conv3.weight": (32, 16, 3, 3), "conv3.bias": (32,), "prelu3.weight": (32,),
            "conv4_1.weight": (2, 32, 1, 1), "conv4_1.bias": (2,),
            "conv4_2.weight": (4, 32, 1, 1), "conv4_2.bias": (4,)}


class PNet(nn.Module):
    """P-Net with the OverFeat nets' interface (see overfeat.models.overfeat.OverFeat).

    features(x):  [B, 3, H, W] normalised -> [B, 10, H-2, W-2] (conv1 + PReLU)
    pool(f):      2x2 max pool, stride 2; pool_fine(f): stride 1 (the 4 offsets interleaved)
    classify(p, dilation): conv2, conv3 (dilated), conv4_1 -> [B, 2, h, w] (face, background)
    regress(p, dilation):  conv2, conv3, conv4_2 -> [B, 4, h, w], in overfeat.boxes' encoding
    """

    name = "faces"
    # Six pyramid levels (shorter side, px; project choice): a face of 1/2 to 1/18 of the
    # image's shorter side becomes about one 12x12 window at one of them. MTCNN itself uses
    # more levels, 0.709 apart, down to a 20 px face.
    scales = ((24, 24), (36, 36), (56, 56), (88, 88), (136, 136), (212, 212))
    k = 2
    prepool_stride = 1
    stride = 2
    window = 12
    fc_kernel = 5  # pooled cells under one window: conv2 and conv3 (3x3 each) see 5x5
    has_regressor = True
    background = True
    padding = False

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)  # face, background (reordered at load)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)
        self.cfg = NetConfig("faces", PNet)

    def layers(self) -> list[tuple[str, str, nn.Module | None, Callable[[Tensor], Tensor], int, int]]:
        """(name, kind, module, fn, kernel, stride) in order, as EfficientNetLite0.layers."""
        return [("conv1", "conv", nn.ModuleList([self.conv1, self.prelu1]), self.features, 3, 1),
                ("pool1 (offsets)", "pool", None, self.pool, 2, 2),
                ("conv2", "conv", nn.ModuleList([self.conv2, self.prelu2]),
                 lambda x: self.prelu2(self.conv2(x)), 3, 1),
                ("conv3", "conv", nn.ModuleList([self.conv3, self.prelu3]),
                 lambda x: self.prelu3(self.conv3(x)), 3, 1),
                ("conv4_1", "fc", self.conv4_1, self.conv4_1, 1, 1)]

    @property
    def names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    @property
    def object_classes(self) -> list[int]:
        return [0]

    def normalize(self, images: Tensor) -> Tensor:
        return (images - PIXEL_MEAN) / PIXEL_STD

    def features(self, x: Tensor) -> Tensor:
        return self.prelu1(self.conv1(x))

    def pool(self, f: Tensor) -> Tensor:
        return F.max_pool2d(f, kernel_size=2, stride=2)

    def pool_fine(self, f: Tensor) -> Tensor:
        return F.max_pool2d(f, kernel_size=2, stride=1)

    def _body(self, p: Tensor, dilation: int) -> Tensor:
        x = self.prelu2(F.conv2d(p, self.conv2.weight, self.conv2.bias, dilation=dilation))
        return self.prelu3(F.conv2d(x, self.conv3.weight, self.conv3.bias, dilation=dilation))

    def classify(self, pooled: Tensor, dilation: int = 1) -> Tensor:
        span = dilation * (self.fc_kernel - 1) + 1
        h, w = pooled.shape[-2:]
        if h < span or w < span:
            return pooled.new_zeros(pooled.shape[0], 2, max(0, h - span + 1), max(0, w - span + 1))
        return self.conv4_1(self._body(pooled, dilation))

    def regress(self, pooled: Tensor, dilation: int = 1) -> Tensor:
        span = dilation * (self.fc_kernel - 1) + 1
        h, w = pooled.shape[-2:]
        if h < span or w < span:
            return pooled.new_zeros(pooled.shape[0], 4, max(0, h - span + 1), max(0, w - span + 1))
        return self.conv4_2(self._body(pooled, dilation))

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.pool(self.features(x)))

    def load_reference_weights(self, sd: dict[str, Tensor]) -> None:
        """facenet-pytorch's P-Net state dict. Two changes, both exact:
        - conv4_1's outputs are (not face, face) there; here class 0 is "face" and the last
          class "background", as for the project's detection models;
        - conv4_2 gives MTCNN's edge offsets in window sides (x1 + d1*s, ..., x2 + d3*s); adding
          (0, 0, 1, 1) to its bias turns them into overfeat.boxes' encoding (edges measured from
          the window's top-left corner), so boxes.decode serves both models.
        """
        bad = [k for k, shape in EXPECTED.items() if k not in sd or tuple(sd[k].shape) != shape]
        extra = sorted(set(sd) - set(EXPECTED))
        if bad or extra:
            raise ValueError(f"not an MTCNN P-Net state dict: wrong or missing {bad}, "
                             f"unexpected {extra}")
        sd = dict(sd)
        sd["conv4_1.weight"] = sd["conv4_1.weight"].flip(0)
        sd["conv4_1.bias"] = sd["conv4_1.bias"].flip(0)
        sd["conv4_2.bias"] = sd["conv4_2.bias"] + torch.tensor([0.0, 0.0, 1.0, 1.0])
        self.load_state_dict(sd)


def load_pnet(path: str | Path = WEIGHTS) -> PNet:
    sd = torch.load(path, map_location="cpu", weights_only=True)
    model = PNet()
    model.load_reference_weights(sd)
    return model.eval()
