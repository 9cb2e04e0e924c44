"""Training data built on the VOC reader: images in memory, crops and dense views to train on.

Any folder in Pascal VOC layout works the same way (the generated pictogram scenes, or a real
VOCdevkit/VOC2007): overfeat.data.voc.read_split lists the records, SceneSet decodes every image
once into a uint8 tensor, and the samplers below draw what each training stage needs
(overfeat.train, paper §4.2, §5, §3.1):

- stage 1 (classifier): square crops resized to the network's window (221 px for the accurate
  geometry), around objects with scale jitter and flips, and background crops that show no
  object (sample_object_crop, sample_background_crop, render_crops);
- stages 2 and 3 (regressor, detection): a whole image resized to one of the six scales and
  maybe flipped, with its boxes mapped into that frame (dense_view).

Crop sizes follow the dense evaluation (overfeat.multiscale): at the six scales an image's
shorter side becomes 245..461 px, so one 221-px window sees 221/461 = 0.48 to 221/245 = 0.90 of
the original shorter side. Crops are drawn with sides in that range (CROP_SIDES), so stage 1
shows the classifier objects at the sizes it will meet in evaluation.

All randomness comes from the torch.Generator passed in, so a seed fixes every sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..boxes import coverage
from ..images import ImageError, load_image, to_tensor
from .voc import VOCRecord, read_split

# Crop side as a fraction of the image's shorter side (see the module docstring).
CROP_SIDES = (0.45, 0.95)
# A crop is labelled with an object when it sees at least this part of the object's area...
POSITIVE_COVERAGE = 0.5
# ...and is background when it sees less than this part of every object (between: not used).
BACKGROUND_COVERAGE = 0.2


@dataclass
class Scene:
    """One training image and its objects.

    image (Tensor[3, H, W] uint8); boxes (Tensor[M, 4] float, x1 y1 x2 y2 0-based pixels) and
    labels (Tensor[M] int64) of the objects to learn; ignore (Tensor[D, 4]): "difficult"
    objects, neither positives nor allowed inside background crops (VOC's rule).
    """

    image_id: str
    image: Tensor
    boxes: Tensor
    labels: Tensor
    ignore: Tensor

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[2])

    @property
    def all_boxes(self) -> Tensor:
        return torch.cat([self.boxes, self.ignore])


class SceneSet:
    """A split of a VOC-layout folder, every image decoded into memory once.

    Args:
        root: folder with Annotations/, JPEGImages/, ImageSets/Main/.
        split: name of the split file ("train", "val", "trainval", ...).
        class_names: object classes; their index is the label (background is not listed).
        max_images: keep only the first N records of the split (tiny runs).
        on_error: "raise" (ValueError naming the file) or "skip" (count it in .skipped), for a
            bad annotation (see overfeat.data.voc) and for an image that cannot be decoded.
    """

    def __init__(self, root: str | Path, split: str, class_names: tuple[str, ...] | list[str],
                 max_images: int | None = None, on_error: str = "raise") -> None:
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"expected a VOC-layout folder at {root}, got no such folder")
        records, skipped = read_split(root, split, class_names, on_error=on_error)
        if max_images is not None:
            if max_images < 1:
                raise ValueError(f"max_images must be >= 1, got {max_images}")
            records = records[:max_images]
        self.root, self.split, self.class_names = root, split, tuple(class_names)
        self.skipped: list[tuple[str, str]] = list(skipped)
        self.records: list[VOCRecord] = []
        self.scenes: list[Scene] = []
        for rec in records:
            try:
                scene = load_scene(rec)
            except ValueError as e:
                if on_error == "raise":
                    raise
                self.skipped.append((str(rec.image_path), str(e)))
                continue
            self.records.append(rec)
            self.scenes.append(scene)
        if not self.scenes:
            raise ValueError(f"{root}: split {split!r} has no usable images "
                             f"({len(self.skipped)} skipped)")

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> Scene:
        return self.scenes[i]

    @property
    def n_objects(self) -> int:
        return sum(len(s.labels) for s in self.scenes)


def load_scene(rec: VOCRecord) -> Scene:
    """Decode a record's image; ValueError naming the file when it cannot be used."""
    try:
        im = load_image(rec.image_path)
    except ImageError as e:
        raise ValueError(f"{rec.image_path}: {str(e).split(': ', 1)[-1]}") from None
    if im.size != (rec.width, rec.height):
        raise ValueError(f"{rec.image_path}: expected {rec.width}x{rec.height} as its annotation "
                         f"says, got {im.size[0]}x{im.size[1]}")
    img = to_tensor(im).to(torch.uint8)  # [3, H, W]
    keep = [o for o in rec.objects if not o.difficult]
    hard = [o for o in rec.objects if o.difficult]
    return Scene(
        image_id=rec.image_id, image=img,
        boxes=torch.tensor([o.box for o in keep], dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor([o.label for o in keep], dtype=torch.int64),
        ignore=torch.tensor([o.box for o in hard], dtype=torch.float32).reshape(-1, 4))


# --- stage 1: crops ---------------------------------------------------------------------------

def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _crop_side(scene: Scene, gen: torch.Generator) -> float:
    return _uniform(gen, *CROP_SIDES) * min(scene.size)


def _clamp_crop(x1: float, y1: float, side: float, hw: tuple[int, int]) -> Tensor:
    """Shift a square crop inside the image (it always fits: side <= the shorter side)."""
    h, w = hw
    x1 = min(max(x1, 0.0), w - side)
    y1 = min(max(y1, 0.0), h - side)
    return torch.tensor([x1, y1, x1 + side, y1 + side])


def crop_label(scene: Scene, crop: Tensor, background: int | None) -> int | None:
    """Label of a crop (x1 y1 x2 y2): the object whose visible area is largest among those the
    crop sees at least POSITIVE_COVERAGE of; `background` when it sees less than
    BACKGROUND_COVERAGE of every object (difficult ones included); None otherwise (ambiguous,
    or background when the model has no background class)."""
    allb = scene.all_boxes
    if len(allb):
        cov_all = coverage(crop.expand(len(allb), 4), allb)
        if float(cov_all.max()) < BACKGROUND_COVERAGE:
            return background
    else:
        return background
    if len(scene.boxes) == 0:
        return None
    cov = coverage(crop.expand(len(scene.boxes), 4), scene.boxes)
    wh = (scene.boxes[:, 2:] - scene.boxes[:, :2]).prod(dim=1)
    visible = torch.where(cov >= POSITIVE_COVERAGE, cov * wh, torch.zeros_like(wh))
    if float(visible.max()) <= 0:
        return None
    return int(scene.labels[int(visible.argmax())])


def sample_object_crop(scene: Scene, gen: torch.Generator) -> tuple[Tensor, int] | None:
    """A square crop around a random object of the scene: (crop box, label) or None.

    Scale jitter: the crop side is drawn from CROP_SIDES (times the shorter side). Position
    jitter: the object's centre falls anywhere in the middle half of the crop (then the crop
    is shifted inside the image). The label follows crop_label (None: try another).
    """
    if len(scene.boxes) == 0:
        return None
    j = int(torch.randint(len(scene.boxes), (), generator=gen))
    b = scene.boxes[j]
    side = _crop_side(scene, gen)
    cx = float(b[0] + b[2]) / 2 + _uniform(gen, -0.25, 0.25) * side
    cy = float(b[1] + b[3]) / 2 + _uniform(gen, -0.25, 0.25) * side
    crop = _clamp_crop(cx - side / 2, cy - side / 2, side, scene.size)
    label = crop_label(scene, crop, None)
    return None if label is None else (crop, label)


def sample_background_crop(scene: Scene, gen: torch.Generator, background: int,
                           tries: int = 10) -> Tensor | None:
    """A square crop that sees less than BACKGROUND_COVERAGE of every object, or None."""
    h, w = scene.size
    for _ in range(tries):
        side = _crop_side(scene, gen)
        crop = _clamp_crop(_uniform(gen, 0, w - side), _uniform(gen, 0, h - side), side, (h, w))
        if crop_label(scene, crop, background) == background:
            return crop
    return None


def render_crops(scenes: list[Scene], crops: list[Tensor], flips: list[bool],
                 out: int) -> Tensor:
    """Cut each crop (x1 y1 x2 y2, pixels) out of its scene's image and resize it to out x out
    (bilinear with antialiasing, as the dense evaluation resizes whole images); flip where
    asked. Returns Tensor[B, 3, out, out] float, pixels 0..255."""
    batch = []
    for sc, cr, fl in zip(scenes, crops, flips):
        x1, y1, x2, y2 = (int(round(float(v))) for v in cr)
        h, w = sc.size
        x1, y1 = max(0, x1), max(0, y1)
        x2, y2 = min(w, max(x2, x1 + 1)), min(h, max(y2, y1 + 1))
        patch = sc.image[:, y1:y2, x1:x2].float()[None]  # [1, 3, h', w']
        patch = F.interpolate(patch, size=(out, out), mode="bilinear", antialias=True,
                              align_corners=False)
        batch.append(patch.flip(-1) if fl else patch)
    return torch.cat(batch)


# --- stages 2 and 3: dense views --------------------------------------------------------------

def dense_view(scene: Scene, size: tuple[int, int], flip: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The scene's image resized to size (height, width) and maybe flipped, like one view of
    overfeat.multiscale.analyze: (image Tensor[3, h, w] float 0..255, boxes Tensor[M, 4] and
    ignore Tensor[D, 4] in that view's pixels)."""
    h, w = scene.size
    x = scene.image.float()
    if (h, w) != tuple(size):
        x = F.interpolate(x[None], size=size, mode="bilinear", antialias=True,
                          align_corners=False)[0]
    fy, fx = size[0] / h, size[1] / w

    def move(b: Tensor) -> Tensor:
        b = b * torch.tensor([fx, fy, fx, fy])
        if flip:
            b = torch.stack([size[1] - b[:, 2], b[:, 1], size[1] - b[:, 0], b[:, 3]], dim=1)
        return b

    if flip:
        x = x.flip(-1)
    return x, move(scene.boxes), move(scene.ignore)
