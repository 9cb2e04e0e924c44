"""One reader for any folder in Pascal VOC layout: the synthetic scenes and real VOC 2007/2012.

Layout (as in VOCdevkit/VOC2007):
    root/ImageSets/Main/<split>.txt   one image id per line (extra columns are ignored)
    root/Annotations/<id>.xml          size, and one <object> per labelled object
    root/JPEGImages/<filename>         the file named by the XML's <filename> (else <id>.jpg)

Box convention. VOC XML stores pixel indices, 1-based and inclusive: xmin=1 is the first
column, xmax=width the last. This reader returns 0-based float boxes (x1, y1, x2, y2) with
    x1 = xmin - 1,  y1 = ymin - 1,  x2 = xmax,  y2 = ymax,
i.e. continuous coordinates where a box covering the whole image is (0, 0, width, height) and
x2 - x1 is the box's width in pixels. scenes.py writes its XML with the inverse rule, so a
round trip is exact.

Bad input. A missing image file, an unreadable or malformed XML file, a <filename> that is not
a bare file name, an object of a class not in class_names, or a box outside the image (valid:
1 <= xmin < xmax <= width, same for y; a box may touch the border) is a bad record. With
on_error="raise" the first one raises ValueError with a one-line message naming the file and
the problem; with on_error="skip" the whole record is left out and (file, reason) is appended
to the returned `skipped` list. A missing or empty split file always raises, whatever on_error
says: there is nothing to skip to.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


@dataclass(frozen=True)
class VOCObject:
    """One labelled object. box is (x1, y1, x2, y2), 0-based floats, x2 = VOC xmax."""

    name: str
    label: int  # index of name in the class_names given to read_split
    box: tuple[float, float, float, float]
    difficult: bool  # VOC's evaluation ignores these (neither a hit nor a miss)
    truncated: bool  # the object is cut by the image border


@dataclass(frozen=True)
class VOCRecord:
    """One image of a split with all its objects (possibly none)."""

    image_id: str
    image_path: Path
    width: int
    height: int
    objects: list[VOCObject]


class _BadRecord(Exception):
    """Internal: a record that on_error decides to raise or skip."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _text(node: ET.Element, tag: str, path: Path) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise _BadRecord(path, f"expected a <{tag}> element with text in <{node.tag}>, got none")
    return child.text.strip()


def _number(node: ET.Element, tag: str, path: Path) -> float:
    text = _text(node, tag, path)
    try:
        return float(text)  # some VOC 2011/2012 files write "273.0"
    except ValueError:
        raise _BadRecord(path, f"expected a number in <{tag}>, got {text!r}") from None


def _flag(node: ET.Element, tag: str, path: Path) -> bool:
    """A 0/1 flag that may be missing (then 0), as in many VOC files."""
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        return False
    try:
        return int(float(child.text)) != 0
    except ValueError:
        raise _BadRecord(path, f"expected 0 or 1 in <{tag}>, got {child.text.strip()!r}") from None


def parse_annotation(xml_path: Path, root: Path, image_id: str,
                     class_names: tuple[str, ...] | list[str]) -> VOCRecord:
    """Parse one VOC XML file into a VOCRecord; raises _BadRecord on any problem."""
    try:
        tree = ET.parse(xml_path)
    except FileNotFoundError:
        raise _BadRecord(xml_path, "expected an annotation file, got no such file") from None
    except ET.ParseError as exc:
        raise _BadRecord(xml_path, f"expected well-formed XML, got a parse error ({exc})") from None
    ann = tree.getroot()
    if ann.tag != "annotation":
        raise _BadRecord(xml_path, f"expected root element <annotation>, got <{ann.tag}>")

    filename_node = ann.find("filename")
    filename = (filename_node.text or "").strip() if filename_node is not None else ""
    if filename and (Path(filename).name != filename or filename in (".", "..")):
        # A path here ("../x.jpg", "/etc/x") would read a file outside JPEGImages/.
        raise _BadRecord(xml_path, f"expected a bare file name in <filename>, got {filename!r}")
    image_path = root / "JPEGImages" / (filename or f"{image_id}.jpg")
    if not image_path.is_file():
        raise _BadRecord(xml_path, f"expected image file {image_path}, got no such file")

    size = ann.find("size")
    width = int(_number(size, "width", xml_path)) if size is not None else 0
    height = int(_number(size, "height", xml_path)) if size is not None else 0
    if width <= 0 or height <= 0:
        # A few hand-made files lack <size>: read it from the image header (no decoding).
        try:
            with Image.open(image_path) as im:
                width, height = im.size
        except OSError as exc:
            raise _BadRecord(image_path, f"expected a readable image, got {exc}") from None

    objects = []
    for obj in ann.iter("object"):
        name = _text(obj, "name", xml_path)
        if name not in class_names:
            raise _BadRecord(xml_path, f"expected a class in {list(class_names)}, "
                                       f"got unknown class {name!r}")
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise _BadRecord(xml_path, f"expected <bndbox> in object {name!r}, got none")
        xmin, ymin, xmax, ymax = (_number(bndbox, t, xml_path)
                                  for t in ("xmin", "ymin", "xmax", "ymax"))
        if not (1 <= xmin < xmax <= width and 1 <= ymin < ymax <= height):
            raise _BadRecord(xml_path, f"expected 1 <= xmin < xmax <= {width} and "
                                       f"1 <= ymin < ymax <= {height} for object {name!r}, "
                                       f"got xmin={xmin:g} ymin={ymin:g} xmax={xmax:g} "
                                       f"ymax={ymax:g}")
        objects.append(VOCObject(
            name=name,
            label=list(class_names).index(name),
            box=(xmin - 1.0, ymin - 1.0, xmax, ymax),  # 1-based inclusive -> 0-based, x2 = xmax
            difficult=_flag(obj, "difficult", xml_path),
            truncated=_flag(obj, "truncated", xml_path),
        ))
    return VOCRecord(image_id=image_id, image_path=image_path, width=width, height=height,
                     objects=objects)


def read_split_ids(root: str | Path, split: str) -> list[str]:
    """Image ids listed in root/ImageSets/Main/<split>.txt; raises ValueError if none."""
    split_path = Path(root) / "ImageSets" / "Main" / f"{split}.txt"
    if not split_path.is_file():
        raise ValueError(f"{split_path}: expected a split file listing image ids, "
                         "got no such file")
    # First column only: class-specific files (aeroplane_train.txt) add a +-1 column.
    ids = [line.split()[0] for line in split_path.read_text().splitlines() if line.strip()]
    if not ids:
        raise ValueError(f"{split_path}: expected at least one image id, got an empty split")
    return ids


def read_split(root: str | Path, split: str,
               class_names: tuple[str, ...] | list[str] = VOC_CLASSES,
               on_error: str = "raise") -> tuple[list[VOCRecord], list[tuple[str, str]]]:
    """Read every record of one split of a VOC-layout folder.

    Args:
        root: the folder holding Annotations/, JPEGImages/ and ImageSets/Main/.
        split: "train", "val", "test", "trainval", ... (the name of a file in ImageSets/Main).
        class_names: the label of an object is its name's index here; other names are bad.
        on_error: "raise" (ValueError at the first bad record) or "skip" (leave it out).
    Returns:
        (records, skipped): records in split-file order, each object's box (x1, y1, x2, y2)
        0-based floats (x1 = xmin - 1, x2 = xmax); skipped = [(file, reason), ...] ("skip" only).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"expected on_error 'raise' or 'skip', got {on_error!r}")
    if len(set(class_names)) != len(class_names) or not class_names:
        raise ValueError(f"expected a non-empty list of distinct class names, got {class_names}")
    root = Path(root)
    records: list[VOCRecord] = []
    skipped: list[tuple[str, str]] = []
    for image_id in read_split_ids(root, split):
        xml_path = root / "Annotations" / f"{image_id}.xml"
        try:
            records.append(parse_annotation(xml_path, root, image_id, class_names))
        except _BadRecord as bad:
            if on_error == "raise":
                raise ValueError(str(bad)) from None
            skipped.append((str(bad.path), bad.reason))
    return records, skipped
