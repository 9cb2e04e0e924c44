"""Streamlit-free helpers behind the app: knobs -> Settings, image sources, cache keys, tables.

The app (app.py, app_pages/) only lays out what these functions return, so everything here can be
tested without a browser or a Streamlit runtime. The one piece of logic the app
adds to the package is derive(): the network runs once per image at all six scales with flips,
and every choice of scales, flips, top-k and min score is then cut out of that one evaluation
without running the network again (a view's maps do not depend on the other views).
"""

from __future__ import annotations

import base64
import collections
import functools
import hashlib
import io
from dataclasses import dataclass
from typing import NamedTuple

import torch
from PIL import Image

from ..checkpoint import ASSETS
from ..config import ModelConfig
from ..evaluate import EVAL_MIN_SCORE, EVAL_TOP_K
from ..geometry import layer_table, meta_model, scale_geometry
from ..merge import AVERAGES, DEFAULT_AVERAGE, DEFAULT_THRESHOLD, SCORES, MergeResult
from ..models.overfeat import OverFeat
from ..boxes import Detections
from ..multiscale import ALL_SCALES, SCALE_RULES, Analysis, BoxTable, Settings, View, derive, scale_sizes, view_score  # noqa: F401
from ..offsets import offsets
from ..models.registry import CARDS, ZooConfig, card_of, describe_net

# Uploads whose shorter side exceeds twice the largest scale's shorter side (461 px) are
# shrunk first: the network never sees more detail than that, and resizing a 24-megapixel
# photo twelve times would dominate the analysis time.
MAX_SHORT_SIDE = 922
# A model bigger than this is not run on the CPU by the app (the paper's full-width models have
# about 145M parameters: several seconds per scale here, and untrained they only show noise).
MAX_RUN_PARAMS = 20_000_000


# --- knobs ----------------------------------------------------------------------------------
# Cache keys (st.cache_resource hashes them by value): named fields, so no page slices a tuple.
class AnalysisKey(NamedTuple):
    """What the derived analysis depends on (besides the model and the image)."""

    scales: tuple[int, ...]
    flips: bool
    fine: bool
    rule: str
    top_k: int
    min_score: float  # rounded to 6 decimals


def analysis_key(s: Settings) -> AnalysisKey:
    return AnalysisKey(s.scales, s.flips, s.fine, s.rule, s.top_k, round(s.min_score, 6))


class MergeKey(NamedTuple):
    """One greedy merge of an analysis."""

    analysis: AnalysisKey
    score: str  # "literal" or "corrected"
    threshold: float
    by_class: bool
    average: str


class CompareKey(NamedTuple):
    """The Greedy vs NMS page's four methods on an analysis."""

    analysis: AnalysisKey
    t_literal: float
    t_corrected: float
    iou: float  # NMS IoU threshold, rounded to 4 decimals
    by_class: bool
    average: str


class DetectionKey(NamedTuple):
    """The Detection page's detections (its top-k and min score: analysis.top_k, .min_score)."""

    analysis: AnalysisKey
    score: str
    threshold: float
    by_class: bool
    average: str
    min_confidence: float
    # A model whose card sets min_box_score is answered by the probability-like score
    # (detection.answer_boxes): the page's minimum of it; None for the other models.
    min_box_score: float | None = None


@dataclass(frozen=True)
class Knobs:
    """The sidebar's choices, shared by every page."""

    scales: tuple[int, ...] = ALL_SCALES  # which of the six scales feed scores and boxes
    flips: bool = True  # horizontal flips double the views (paper §3.3)
    fine: bool = True  # offset max pooling (paper §3.3, Fig. 3); False = one pool, stride 36
    rule: str = "aspect"  # how an image becomes each scale's size (project choice, paper §3.3 (?))
    # The settings `evaluate` measures with (overfeat.evaluate): the merge opens on the boxes
    # that count, not on hundreds of near-zero windows burying the object.
    top_k: int = EVAL_TOP_K  # merge step (a): classes per scale whose boxes are kept
    min_score: float = EVAL_MIN_SCORE  # drop boxes of windows below this class probability
    score: str = "corrected"  # the match score of the "answer" merge (both are shown)
    t_literal: float = DEFAULT_THRESHOLD["literal"]  # t for the literal score (pixels)
    t_corrected: float = DEFAULT_THRESHOLD["corrected"]  # t for the corrected score (unitless)
    by_class: bool = True  # merge only boxes of the same class (project choice, paper §4.3 (?))
    average: str = DEFAULT_AVERAGE  # box_merge: weighted by confidence or plain (paper §4.3 (?))

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"match score must be one of {SCORES}, got {self.score!r}")
        if self.rule not in SCALE_RULES:
            raise ValueError(f"scale rule must be one of {SCALE_RULES}, got {self.rule!r}")
        if self.average not in AVERAGES:
            raise ValueError(f"box average must be one of {AVERAGES}, got {self.average!r}")

    def settings(self) -> Settings:
        """The Settings of the analysis the pages show (raises ValueError for no scales)."""
        return Settings(scales=self.scales, flips=self.flips, fine=self.fine, rule=self.rule,
                        top_k=self.top_k, min_score=self.min_score)

    def full_settings(self) -> Settings:
        """What the network actually runs: all six scales with flips (derive() cuts the rest)."""
        return Settings(scales=ALL_SCALES, flips=True, fine=self.fine, rule=self.rule)

    def threshold(self, kind: str) -> float:
        return {"literal": self.t_literal, "corrected": self.t_corrected}[kind]

    def analysis_key(self) -> AnalysisKey:
        return analysis_key(self.settings())

    def merge_key(self, kind: str) -> MergeKey:
        return MergeKey(self.analysis_key(), kind, float(self.threshold(kind)), self.by_class,
                        self.average)

    def compare_key(self, iou: float) -> CompareKey:
        return CompareKey(self.analysis_key(), self.t_literal, self.t_corrected,
                          round(float(iou), 4), self.by_class, self.average)

    def detection_key(self, min_confidence: float,
                      min_box_score: float | None = None) -> DetectionKey:
        return DetectionKey(self.analysis_key(), self.score, self.threshold(self.score),
                            self.by_class, self.average, min_confidence,
                            None if min_box_score is None else round(float(min_box_score), 4))


# --- images ---------------------------------------------------------------------------------
def digest(data: bytes) -> str:
    """Content hash of an upload: the cache key of everything computed from it."""
    return hashlib.sha1(data).hexdigest()[:16]


def prepare(im: Image.Image) -> tuple[Image.Image, str | None]:
    """Shrink an image whose shorter side exceeds MAX_SHORT_SIDE: (image, note or None)."""
    w, h = im.size
    if min(w, h) <= MAX_SHORT_SIDE:
        return im, None
    f = MAX_SHORT_SIDE / min(w, h)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return (im.resize(size, Image.Resampling.LANCZOS),
            f"shrunk from {w}x{h} to {size[0]}x{size[1]} (the largest scale needs no more)")


# The gallery: fixed seeds, rendered at run time (no image binaries in the repository).
GALLERY: tuple[tuple[str, int, int], ...] = (
    # det scenes with 3, 4 and 5 objects (a test checks that each holds several)
    ("loc", 7, 0), ("loc", 11, 1), ("loc", 23, 2), ("det", 7, 0), ("det", 6, 1), ("det", 38, 2),
)


# Sample photos shipped in assets/photos (sources and licences: assets/photos/CREDITS.md): real
# photos for the Objects, ImageNet and Faces models; assets/photos/boxes.json holds hand-drawn
# boxes of their objects (photo_truth). The order is the link's (p=index): append only.
PHOTO_DIR = ASSETS / "photos"
PHOTOS: tuple[tuple[str, str], ...] = (
    ("cat.jpg", "a cat"), ("coffee.jpg", "a coffee cup"), ("astronaut.jpg", "an astronaut"),
    ("dog.jpg", "a dog, a bicycle and a truck"), ("person.jpg", "a person, a dog and a horse"),
    ("horses.jpg", "five horses"), ("kite.jpg", "kites and people on a beach"),
    ("giraffe.jpg", "a giraffe and a zebra"),
)
# Knob values a model needs to be useful, applied when it is chosen in the sidebar. P-Net's
# fine stride is 1 px: at min score 0 every one of ~100,000 windows would enter the merge.
# NanoDet's: measured on the sample photos with hand-drawn boxes (docs/OBJECTS.md); its boxes
# are class-agnostic (one per cell), so they merge across classes.
MODEL_KNOBS: dict[str, dict] = {"faces": {"min_score": 0.6, "top_k": 1},
                                "objects": {"min_score": 0.4, "top_k": 5, "by_class": False}}
# Why each model's knobs are set (the sidebar's caption says what was set and why).
MODEL_KNOBS_WHY: dict[str, str] = {
    "faces": "its windows are 1 px apart: about 100,000 per photo, most of them weak",
    "objects": "measured on the sample photos with hand-drawn boxes; its boxes are "
               "class-agnostic, one per cell, so they merge across classes",
}
# How the sidebar's caption names a knob value: a number's name, or a flag's (on, off) words.
KNOB_NAMES = {"min_score": "min score of a window", "top_k": "top-k",
              "by_class": ("merging within a class only", "merging across classes")}


def model_knobs(source: str) -> dict:
    """The knob values the sidebar sets when model `source` (a sidebar choice: "default",
    a registry name, "upload"...) is chosen: its MODEL_KNOBS, and the minimum box score of the
    Detection and Greedy vs NMS pages where its card answers by score (min_box_score)."""
    out = dict(MODEL_KNOBS.get(source, {}))
    card = CARDS.get(source)
    if card is not None and card.min_box_score is not None:
        out["min_box_score"] = card.min_box_score
    return out


def knobs_note(source: str) -> str | None:
    """One line for the sidebar: which knob values model `source` set, and why (None for a
    model without its own values)."""
    knobs = MODEL_KNOBS.get(source)
    if not knobs:
        return None

    def value(k, v):
        name = KNOB_NAMES.get(k, k)
        if isinstance(v, bool):
            return name[0 if v else 1] if isinstance(name, tuple) else f"{name} {'on' if v else 'off'}"
        return f"{name} {v:g}"

    label = CARDS[source].label if source in CARDS else source
    why = MODEL_KNOBS_WHY.get(source)
    return (f"Set for {label}: " + ", ".join(value(k, v) for k, v in knobs.items())
            + (f" ({why})." if why else "."))


def photo_truth(index: int, entries: dict) -> list[dict] | None:
    """The hand-drawn objects of sample photo `index` (entries: overfeat.photos.load_truth()),
    in compare.match_truth's format, or None for a photo without an entry."""
    from ..photos import truth_of

    entry = entries.get(PHOTOS[index][0])
    return None if entry is None else truth_of(entry)


def load_photo(index: int) -> Image.Image:
    from ..images import load_image

    name = PHOTOS[index][0]
    return load_image(PHOTO_DIR / name)


def photo_label(index: int) -> str:
    name, what = PHOTOS[index]
    return f"{name} ({what})"


def scene_key(kind: str, seed: int, index: int) -> str:
    """The cache key of a generated scene (a sample scene or a new one)."""
    return f"scene:{kind}:{seed}:{index}"


def gallery_label(kind: str, seed: int, index: int) -> str:
    what = {"loc": "one object", "det": "several objects"}[kind]
    return f"{kind} scene {index + 1} ({what}, seed {seed})"


def make_scene(kind: str, seed: int, index: int = 0) -> tuple[Image.Image, list[dict]]:
    """A synthetic scene and its objects from overfeat.data.scenes."""
    if kind not in ("loc", "det"):
        raise ValueError(f"scene kind must be 'loc' or 'det', got {kind!r}")
    from ..data import scenes

    im, objects = scenes.make_scene(kind=kind, seed=int(seed), index=int(index))
    return im.convert("RGB"), list(objects)


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def data_uri(im: Image.Image, max_side: int = 560, quality: int = 80) -> tuple[str, tuple[int, int]]:
    """A JPEG data URI of the image shrunk to max_side, and the thumbnail's (width, height)."""
    th = im.convert("RGB")
    th.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    th.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), th.size


# --- models ---------------------------------------------------------------------------------
def n_params(cfg: ModelConfig) -> int:
    return sum(p.numel() for p in meta_model(cfg).parameters())


def runnable(cfg: ModelConfig) -> bool:
    """Whether the app runs this model on the CPU (small enough to answer within seconds)."""
    return n_params(cfg) <= MAX_RUN_PARAMS


def describe(cfg: ModelConfig | ZooConfig) -> str:
    """One line: geometry, width, classes, parameters."""
    if isinstance(cfg, ZooConfig):
        return describe_net(meta_model(cfg))
    bg = " + background" if cfg.background else ""
    n_obj = len(cfg.object_classes)
    return (f"{cfg.geometry} geometry, width x{cfg.width:g}, {n_obj} classes{bg}, "
            f"{n_params(cfg) / 1e6:.1f}M parameters")


# --- tables ---------------------------------------------------------------------------------
def fmt_size(hw) -> str:
    return f"{hw[0]}x{hw[1]}"


def layer_rows(cfg: ModelConfig) -> list[dict]:
    """Per-layer table at one window (the paper's Tables 1-2): sizes, RF, stride, costs."""
    rows = []
    for r in layer_table(cfg, head="both"):  # every parameter: trunk, classifier, regressor
        rows.append({"layer": r.name, "kind": r.kind, "channels": r.channels,
                     "kernel": r.kernel, "stride": r.stride, "padding": r.padding,
                     "output": fmt_size(r.out_size), "receptive field": r.receptive_field,
                     "jump (px)": r.jump, "parameters": r.params, "multiply-adds": r.macs})
    return rows


def scale_rows(cfg: ModelConfig, image_hw: tuple[int, int], rule: str = "aspect") -> list[dict]:
    """The Table 5 analogue for this image: per scale, the map sizes from input to fine map."""
    m = meta_model(cfg)
    rows = []
    for s, size in enumerate(scale_sizes(image_hw, m, rule)):
        g = scale_geometry(m, size)
        ph = sorted({p[0] for p in g.pooled})
        pw = sorted({p[1] for p in g.pooled})
        ch = sorted({c[0] for c in g.classifier})
        cw = sorted({c[1] for c in g.classifier})
        rows.append({
            "scale": s + 1, "input": fmt_size(g.input), "last conv (pre-pool)": fmt_size(g.prepool),
            f"pooled, {m.k}x{m.k} offsets": f"{_span(ph)}x{_span(pw)}",
            "classifier map per offset": f"{_span(ch)}x{_span(cw)}",
            "fine map": fmt_size(g.fine), "windows": g.windows,
            "coarse map": fmt_size(g.classifier[0]),
        })
    return rows


def _span(v: list[int]) -> str:
    return str(v[0]) if len(v) == 1 else f"{v[0]}-{v[-1]}"


def layer_sizes_by_scale(cfg: ModelConfig, image_hw: tuple[int, int], rule: str = "aspect") -> list[dict]:
    """Rows = layers, columns = the six scales: each layer's output size at each scale."""
    m = meta_model(cfg)
    sizes = scale_sizes(image_hw, m, rule)
    tables = [layer_table(cfg, size) for size in sizes]
    rows = []
    for i, r in enumerate(tables[0]):
        row = {"layer": r.name}
        for s, t in enumerate(tables):
            row[f"scale {s + 1}"] = fmt_size(t[i].out_size)
        rows.append(row)
    return rows


def strongest_channel(view: View) -> int:
    """The last conv layer's channel with the highest activation anywhere in this view."""
    return int(view.features.flatten(1).amax(dim=1).argmax())


def best_cell(view: View, cls: int) -> tuple[int, int]:
    """(row, col) of the fine map's most confident cell for a class (the first of ties)."""
    m = view.fine[cls]
    i = int(m.flatten().argmax())
    return i // m.shape[1], i % m.shape[1]


def largest_scale(analysis: Analysis) -> int:
    """The chosen scale whose fine map has the most cells (the first of ties): the Offsets
    page opens there, where the maps show the most."""
    cells = {v.scale: v.fine.shape[-2] * v.fine.shape[-1] for v in analysis.views}
    return max(analysis.settings.scales, key=lambda s: (cells[s], -s))


@dataclass
class Cell:
    """One cell of a view's fine map, as the Offsets page describes it."""

    row: int
    col: int
    prob: float  # the class probability of its window
    window: torch.Tensor  # [4] x1 y1 x2 y2, original-image pixels
    box: torch.Tensor | None  # [4] the box the regressor predicts from it (the class's, if per
    # class); None for a model without a regressor (the ImageNet net)
    top_left: tuple[int, int]  # (x, y) of the window in the (flipped) resized image
    where: str  # which offset map and cell it comes from


def cell(view: View, cls: int, row: int, col: int, k: int, fine: bool) -> Cell:
    """Cell (row, col) of the fine map: fine[k*j + dy, k*i + dx] = map(dx, dy)[j, i] (paper §3.3, Fig. 3)."""
    Hf, Wf = view.fine.shape[-2:]
    if not (0 <= row < Hf and 0 <= col < Wf):
        raise ValueError(f"cell ({row}, {col}) is outside the {Hf}x{Wf} fine map")
    per_class = view.boxes.shape[2] > 1
    box = view.boxes[row, col, cls if per_class else 0] if view.boxes.shape[2] else None
    where = (f"offset ({col % k},{row % k}), cell ({row // k},{col // k}) of its map" if fine
             else "the coarse map")
    return Cell(row=row, col=col, prob=float(view.fine[cls, row, col]),
                window=view.windows[row, col], box=box,
                top_left=(view.stride * col, view.stride * row), where=where)


def offset_label(index: int, k: int) -> str:
    """'(dx, dy)' of an offset index into offsets(k); 'none' for -1 (fine stride off)."""
    if index < 0:
        return "none"
    dx, dy = offsets(k)[index]
    return f"({dx},{dy})"


def filter_boxes(table: BoxTable, scales=None, offsets_=None, classes=None,
                 flips=None) -> torch.Tensor:
    """Indices of the rows of `table` matching every filter given (None = no filter)."""
    keep = torch.ones(len(table), dtype=torch.bool)
    if scales is not None:
        keep &= torch.isin(table.scale, torch.tensor(list(scales), dtype=torch.long))
    if offsets_ is not None:
        keep &= torch.isin(table.offset, torch.tensor(list(offsets_), dtype=torch.long))
    if classes is not None:
        keep &= torch.isin(table.labels, torch.tensor(list(classes), dtype=torch.long))
    if flips is not None:
        keep &= torch.isin(table.flip, torch.tensor(list(flips), dtype=torch.bool))
    return torch.nonzero(keep).flatten()


def most_confident(scores: torch.Tensor, idx: torch.Tensor, n: int | None) -> torch.Tensor:
    """The at most n indices of idx with the highest scores (all of them for n=None)."""
    if n is None or len(idx) <= n:
        return idx
    order = torch.argsort(scores[idx], descending=True, stable=True)[:n]
    return idx[order]


def box_label(table: BoxTable, i: int, class_names) -> str:
    """One line naming raw box i: '#i: class score, scale s'."""
    return (f"#{i}: {class_names[int(table.labels[i])]} {float(table.scores[i]):.3f}, "
            f"scale {int(table.scale[i]) + 1}")


def box_rows(table: BoxTable, idx, class_names, k: int) -> list[dict]:
    """One dict per raw box (its provenance, paper §4.2), in the order of idx (Tensor or list)."""
    rows = []
    for i in (idx.tolist() if isinstance(idx, torch.Tensor) else list(idx)):
        b = table.boxes[i].tolist()
        w = table.windows[i].tolist()
        rows.append({
            "box #": i, "class": class_names[int(table.labels[i])],
            "score": round(float(table.scores[i]), 4), "scale": int(table.scale[i]) + 1,
            "flip": bool(table.flip[i]), "offset": offset_label(int(table.offset[i]), k),
            "cell": f"({int(table.row[i])},{int(table.col[i])})",
            "window": "(" + ", ".join(f"{v:.0f}" for v in w) + ")",
            "box": "(" + ", ".join(f"{v:.0f}" for v in b) + ")",
        })
    return rows


def n_confident(result: MergeResult, min_confidence: float, cap: int = 10) -> int:
    """How many of a merge's final boxes (most confident first) reach min_confidence, at most
    cap: the boxes the Overview draws."""
    return min(len(result.final.above(min_confidence)), cap)


def detection_rows(dets: list, score: bool = False) -> list[dict]:
    """One row per final box (boxes.Detection), in order, for a table. The confidence is a
    sum over windows, so the table gives its parts a student can read: how many windows (raw
    boxes) it sums and their mean class probability. score: a column with each box's
    probability-like score (Detection.score) before the confidence."""
    rows = []
    for i, d in enumerate(dets):
        row = {"rank": i + 1, "class": d.name}
        if score:
            row["score"] = None if d.score is None else round(d.score, 3)
        row.update({"confidence": round(d.confidence, 2), "windows": d.members,
                    "mean p": round(d.confidence / max(d.members, 1), 3),
                    "box": "(" + ", ".join(f"{v:.0f}" for v in d.box) + ")"})
        rows.append(row)
    return rows


def with_scores(results: dict[str, Detections], table: BoxTable,
                n_views: int) -> dict[str, Detections]:
    """Every method's final boxes with the probability-like score (multiscale.view_score, the
    score the greedy merge's boxes carry already): NMS boxes get it from their members, the
    kept box and those it suppressed, by the same rule."""
    from dataclasses import replace

    return {name: d if d.score is not None else
            replace(d, score=view_score(table, d.members, n_views)) for name, d in results.items()}


@functools.lru_cache(maxsize=16)
def class_labels(class_names: tuple[str, ...]) -> tuple[str, ...]:
    """One label per class, unique and fixed for a model: the name, with the class index
    where two classes share a name (ImageNet has two 'crane's and two 'maillot's). A widget's
    labels must not change between runs (app_pages.common.class_picker)."""
    seen = collections.Counter(class_names)
    return tuple(n if seen[n] == 1 else f"{n} (class {i})" for i, n in enumerate(class_names))


def class_ranking(analysis: Analysis, n: int | None = None) -> list[tuple[int, str, float]]:
    """Object classes by final score: [(class index, name, score)], best first."""
    top = analysis.top(len(analysis.object_classes) if n is None else n)
    return [(c, analysis.class_names[c], s) for c, s in top]


def pipeline_info(analysis: Analysis, model: OverFeat) -> dict:
    """The numbers figures.pipeline_figure prints, for this analysis and its model, and what
    the model has (its capabilities: the figure and the Overview draw only those).

    regressor: it predicts boxes; pyramid: several output maps per input (strides) instead of
    offset pooling; offsets: it has offset pooling (k > 1; fine: the sidebar turned it on); inputs: (scale, flip) inputs;
    maps (= views): output maps, one per input or one per input and level; answer: which
    final boxes are the answer ("score" >= min_box_score, "confidence" >= the Detection
    page's default, or None without boxes)."""
    from ..detection import DEFAULT_MIN_CONFIDENCE
    from ..geometry import offset_layer

    a = analysis
    top = class_ranking(a, 1)
    card = card_of(model)
    regressor = bool(getattr(model, "has_regressor", True))
    pyramid = bool(getattr(model, "pyramid", False))
    layer = None if pyramid or a.k <= 1 else offset_layer(model.cfg)
    answer = None
    if regressor:
        answer = (("score", card.min_box_score) if card.min_box_score is not None
                  else ("confidence", DEFAULT_MIN_CONFIDENCE))
    return {
        "image": a.image_size, "sizes": [a.sizes[s] for s in a.settings.scales],
        "flips": a.settings.flips, "fine": a.settings.fine, "k": a.k,
        "prepool": model.prepool_stride,
        "stride": model.prepool_stride if a.settings.fine else model.stride,
        "coarse": model.stride,
        "windows": sum(int(v.fine[0].numel()) for v in a.views), "views": len(a.views),
        "per_class": model.cfg.regressor == "per_class", "boxes": len(a.table),
        "top": (top[0][1], top[0][2]) if top else None,
        "regressor": regressor, "pyramid": pyramid,
        "offsets": not pyramid and a.k > 1,
        # the layer the offset trick runs on: "pool" (a max pool) or "subsample" (a strided
        # convolution, EfficientNet's); None without offsets
        "offset_kind": None if layer is None else layer.kind,
        "strides": sorted({v.stride for v in a.views}), "inputs": a.n_views, "maps": len(a.views),
        "window": None if pyramid else model.window, "classes": len(a.object_classes),
        "answer": answer,
    }


def pipeline_stages(info: dict) -> list[tuple[str, str, str]]:
    """The pipeline as (stage, what it does for this image, the page that shows it), for
    the model's capabilities only (pipeline_info): no regressor, merge or raw boxes for a
    model without boxes, no offset pooling or window size for a feature pyramid."""
    H, W = info["image"]
    n = len(info["sizes"])
    flips = " with flips" if info["flips"] else ""
    out = [("Image", f"{W} px wide x {H} px high", "sidebar"),
           (f"{n} scale{'s' if n != 1 else ''}", f"{info['inputs']} inputs{flips} "
            f"(shorter sides {', '.join(str(min(s)) for s in info['sizes'])} px)", "Scales")]
    if info["pyramid"]:
        strides = ", ".join(str(s) for s in info["strides"])
        out.append(("Conv trunk and feature pyramid",
                    f"runs once per input on the whole image; {len(info['strides'])} output "
                    f"maps per input at strides {strides} px: {info['maps']} maps", "Offsets"))
        out.append(("Class scores and a box per cell",
                    f"{info['classes']} class probabilities and one box for every cell of "
                    f"every map: {info['windows']:,} cells", "Scales"))
    else:
        out.append(("Conv trunk", f"runs once per input on the whole image; stride "
                    f"{info['prepool']} px", "Architecture"))
        k = info["k"]
        if info["offsets"]:
            pool = info.get("offset_kind", "pool") == "pool"
            title = "Offset max pool" if pool else "Offsets on a strided convolution"
            layer = f"{k}x{k} pool" if pool else f"the last stride-{k} convolution"
            out.append((title, f"{layer}, {k * k} offsets: {k * k} maps, interleaved: stride "
                        f"{info['stride']} px (not {info['coarse']})" if info["fine"] else
                        f"{layer}, offsets off: one map, stride {info['coarse']} px", "Offsets"))
        out.append(("Classifier (FC as conv)", f"{info['classes']} class scores for every "
                    f"{info['window']}x{info['window']} window: {info['windows']:,} windows "
                    f"in {info['maps']} maps", "Scales"))
        if info["regressor"]:
            out.append(("Regressor", ("4 numbers per class and window" if info["per_class"]
                                      else "4 numbers per window"), "Regressor"))
    if info["regressor"]:
        kind, t = info["answer"]
        out.append(("Greedy merge", f"{info['boxes']:,} raw boxes; merge the pair with the "
                    f"lowest match score until it is > t; the answer: final boxes with {kind} "
                    f">= {t:g}", "Merge"))
    return out


# What a pipeline text must not mention for a model without it (pipeline_misfits).
_LACKS = {"regressor": ("Regressor", "raw boxes", "Greedy merge"),
          "offsets": ("Offset max pool", "offsets"), "window": ("windows<br>in",),
          "max pool": ("Offset max pool",)}


def pipeline_misfits(text: str, info: dict) -> list[str]:
    """The words of a pipeline picture's text that name what this model does not have (a
    regressor, offset pooling, windows of one size): [] when the picture fits the model."""
    lacks = [k for k in ("regressor", "offsets") if not info[k]]
    if info["window"] is None:
        lacks.append("window")
    if info["offsets"] and info.get("offset_kind") != "pool":
        lacks.append("max pool")  # offsets on a strided convolution, not a pool
    return [w for k in lacks for w in _LACKS[k] if w in text]


# --- the merge, step by step ----------------------------------------------------------------
def cost_rows(cfg: ModelConfig, image_hw: tuple[int, int], scales, rule: str = "aspect",
              fine: bool = True) -> list[dict]:
    """Per scale: windows evaluated and the multiply-adds of dense evaluation (trunk once,
    geometry.dense_macs) against evaluating each window as its own crop (geometry.crop_macs)."""
    from ..geometry import crop_macs, dense_macs

    m = meta_model(cfg)
    sizes = scale_sizes(image_hw, m, rule)
    rows = []
    for s in scales:
        g = scale_geometry(m, sizes[s])
        windows = g.windows if fine else g.classifier[0][0] * g.classifier[0][1]
        dense, crop = dense_macs(cfg, sizes[s], fine), crop_macs(cfg, windows)
        rows.append({"scale": s + 1, "input": fmt_size(sizes[s]), "windows": windows,
                     "dense multiply-adds": dense, "crop multiply-adds": crop,
                     "crop / dense": round(crop / dense, 2)})
    return rows
