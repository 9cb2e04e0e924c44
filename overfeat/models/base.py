"""What every network file and the registry share, with no network imported here.

ModelCard: one row of the models table (the README's and the app's): what a model knows, where
its weights come from, its licence, its capabilities (the pages follow these, never the name).
NetConfig: rebuilds a pretrained net (meta or real weights); the geometry tables' stand-in for
overfeat.config.ModelConfig. A network file builds its NetConfig from its own class, so the
networks never import the registry and the registry imports the networks: no import circle.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ModelCard:
    """One row of the README's and the app's models table."""

    name: str
    label: str  # the sidebar's choice
    knows: str
    weights: str
    licence: str
    boxes: bool  # has a box regressor (Regressor, Merge, Greedy vs NMS, Detection)
    paper_net: bool  # one of the paper's geometries (Training, Experiments)
    differs: str = ""  # where running it the OverFeat way differs from the paper (shown in the app)
    photos: bool = False  # made for photos of things: the suggestion for a photo upload
    pyramid: bool = False  # a feature pyramid (several strides per scale) instead of offsets
    # The answer's final boxes: None = those whose summed confidence reaches the Detection
    # page's minimum (the paper's confidence); a number = those whose probability-like score
    # (multiscale.view_score) reaches it, for a net whose summed confidences do not transfer.
    min_box_score: float | None = None


@dataclass(frozen=True)
class NetConfig:
    """A pretrained net's description: its registry name, its class, and (EfficientNet only)
    whether its convolutions are zero-padded."""

    name: str
    net: type
    padding: bool = True  # False: the padding-free variant (EfficientNet only)

    def build(self) -> nn.Module:
        """The network with uninitialised weights (call under torch.device('meta') for shapes)."""
        return self.net() if self.padding else self.net(padding=False)

    @property
    def background(self) -> bool:
        return bool(self.net.background)

    @property
    def regressor(self) -> str:
        """"shared" (one box per window for every class), or "none"."""
        return "shared" if self.net.has_regressor else "none"
