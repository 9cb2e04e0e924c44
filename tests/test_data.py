"""The scene generator (overfeat.data.scenes), the VOC reader (overfeat.data.voc) and the `data`
command: determinism, valid labels, an exact XML round trip, and bad folders (issue: a bad record
is named in one line, or skipped and counted; the CLI never tracebacks)."""

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from overfeat.checkpoint import save_checkpoint
from overfeat.cli import main
from overfeat.data.loader import SceneSet
from overfeat.data.scenes import MAX_SIDE, MIN_SIDE, make_scene, write_voc_dataset
from overfeat.data.voc import VOC_CLASSES, read_split

ROOT = Path(__file__).resolve().parent.parent


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def box_iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih)


# --- the generator --------------------------------------------------------------------------------


@pytest.mark.slow  # four folders written, one by two worker processes (~3 s CPU)
def test_same_arguments_give_byte_identical_folders(tmp_path):
    a, b, c, short = (tmp_path / n for n in ("a", "b", "c", "short"))
    write_voc_dataset(a, "det", 6, seed=7, workers=1)
    write_voc_dataset(b, "det", 6, seed=7, workers=1)
    write_voc_dataset(c, "det", 6, seed=7, workers=2)  # worker processes change nothing
    files = tree_bytes(a)
    assert len([f for f in files if f.endswith(".jpg")]) == 6
    assert tree_bytes(b) == files
    assert tree_bytes(c) == files
    # A scene does not depend on n: the first three images of a shorter series are the same.
    write_voc_dataset(short, "det", 3, seed=7, workers=1)
    for name, data in tree_bytes(short).items():
        if not name.startswith("ImageSets"):
            assert files[name] == data, name
    assert len(tree_bytes(short)) == 3 * 2 + 3
    # The seed and the kind do matter.
    for kind, seed in (("det", 8), ("loc", 7)):
        image, _ = make_scene(kind, seed, 0)
        assert image.tobytes() != make_scene("det", 7, 0)[0].tobytes()


def test_make_scene_is_deterministic_in_memory():
    for kind in ("loc", "det"):
        im1, obj1 = make_scene(kind, 5, 3)
        make_scene(kind, 5, 4)  # other scenes in between change nothing
        im2, obj2 = make_scene(kind, 5, 3)
        assert im1.tobytes() == im2.tobytes() and obj1 == obj2


@pytest.mark.parametrize("kind", ["loc", "det"])
def test_annotations_are_valid(kind):
    counts = []
    for index in range(40):
        image, objects = make_scene(kind, 11, index)
        w, h = image.size
        assert image.mode == "RGB"
        assert MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE
        assert 3 / 4 <= w / h <= 4 / 3
        for o in objects:
            x1, y1, x2, y2 = o["box"]
            assert o["name"] in VOC_CLASSES
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (index, o)
            assert all(float(v).is_integer() for v in o["box"])  # whole pixels: exact in XML
            if o["truncated"]:  # cut by the border, so the box reaches it
                assert x1 == 0 or y1 == 0 or x2 == w or y2 == h, (index, o)
        for i, p in enumerate(objects):  # two objects of one class stay separable
            for q in objects[i + 1:]:
                if p["name"] == q["name"]:
                    assert box_iou(p["box"], q["box"]) <= 0.5, (index, p, q)
        counts.append(len(objects))
    if kind == "loc":
        assert set(counts) == {1}
    else:
        assert set(counts) <= set(range(6))
        assert max(counts) >= 2  # several objects do occur


def test_make_scene_bad_arguments():
    with pytest.raises(ValueError, match="expected kind in"):
        make_scene("cls", 0, 0)
    with pytest.raises(ValueError, match="seed >= 0"):
        make_scene("loc", -1, 0)
    with pytest.raises(ValueError, match="at least one image"):
        write_voc_dataset("/nonexistent/never", "loc", 0, 0)


def test_voc_xml_round_trip_is_exact(tmp_path):
    out = tmp_path / "voc"
    summary = write_voc_dataset(out, "det", 8, seed=3, split_fractions=(0.5, 0.25, 0.25))
    assert summary["splits"] == {"train": 4, "val": 2, "test": 2}
    ids = []
    for split in ("train", "val", "test"):
        records, skipped = read_split(out, split)
        assert skipped == [] and len(records) == summary["splits"][split]
        for rec in records:
            image, objects = make_scene("det", 3, int(rec.image_id))
            assert (rec.width, rec.height) == image.size
            with Image.open(rec.image_path) as im:
                assert im.size == image.size
            assert [o.name for o in rec.objects] == [o["name"] for o in objects]
            assert [o.box for o in rec.objects] == [tuple(o["box"]) for o in objects]
            assert [o.truncated for o in rec.objects] == [o["truncated"] for o in objects]
            assert [o.label for o in rec.objects] == [VOC_CLASSES.index(o["name"]) for o in objects]
            assert not any(o.difficult for o in rec.objects)
        ids += [r.image_id for r in records]
    assert ids == [f"{i:06d}" for i in range(8)]  # contiguous splits, train first
    assert sum(summary["objects_per_class"].values()) == sum(
        len(make_scene("det", 3, i)[1]) for i in range(8))


def test_reader_box_convention_on_a_hand_written_file(tmp_path):
    """VOC's 1-based inclusive pixels: xmin=1..xmax=width is the whole image (0, 0, w, h)."""
    root = voc_folder(tmp_path, [("a", [("cat", (1, 1, 40, 30)), ("dog", (5, 6, 7, 9))])],
                      size=(40, 30))
    (rec,), _ = read_split(root, "train")
    assert rec.objects[0].box == (0.0, 0.0, 40.0, 30.0)
    assert rec.objects[1].box == (4.0, 5.0, 7.0, 9.0)  # 3 x 4 pixels
    (rec,), _ = read_split(root, "train", class_names=("dog", "cat"))
    assert [o.label for o in rec.objects] == [1, 0]


# --- the data command ---------------------------------------------------------------------------


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def split_ids(root: Path) -> dict[str, list[str]]:
    return {s: (root / "ImageSets" / "Main" / f"{s}.txt").read_text().split()
            for s in ("train", "val", "test")}


def test_data_command_writes_a_voc_folder(tmp_path, capsys):
    out = tmp_path / "loc"
    code, stdout, err = run_cli(["data", "--out", out, "--kind", "loc", "--n", 10, "--seed", 2],
                                capsys)
    assert code == 0, err
    assert "wrote 10 loc scenes" in stdout
    jpgs = sorted(p.stem for p in (out / "JPEGImages").glob("*.jpg"))
    xmls = sorted(p.stem for p in (out / "Annotations").glob("*.xml"))
    assert jpgs == xmls == [f"{i:06d}" for i in range(10)]
    ids = split_ids(out)
    assert {k: len(v) for k, v in ids.items()} == {"train": 8, "val": 1, "test": 1}
    assert sorted(ids["train"] + ids["val"] + ids["test"]) == jpgs
    assert not list(out.rglob(".*.tmp"))  # no temporary left behind
    # The command writes what the library writes.
    write_voc_dataset(tmp_path / "lib", "loc", 10, seed=2)
    assert tree_bytes(tmp_path / "lib") == tree_bytes(out)

    # Refuses a non-empty folder without --force; with it, replaces it.
    code, _, err = run_cli(["data", "--out", out, "--n", 4, "--splits", "0.5,0.25,0.25"], capsys)
    assert code == 2 and err.startswith("error: ") and "--force" in err
    assert len(list((out / "JPEGImages").glob("*.jpg"))) == 10
    code, _, err = run_cli(["data", "--out", out, "--n", 4, "--splits", "0.5,0.25,0.25",
                            "--force"], capsys)
    assert code == 0, err
    assert {k: len(v) for k, v in split_ids(out).items()} == {"train": 2, "val": 1, "test": 1}
    assert len(list((out / "JPEGImages").glob("*.jpg"))) == 4


def test_data_command_checks_arguments_before_deleting(tmp_path, capsys):
    out = tmp_path / "keep"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    for bad, words in ((["--splits", "0.5,0.5,0.5"], "summing to 1"), (["--n", "0"], "--n"),
                       (["--seed", "-3"], "--seed")):
        code, _, err = run_cli(["data", "--out", out, "--force", *bad], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and words in err
        assert (out / "precious.txt").exists(), bad


# --- bad folders --------------------------------------------------------------------------------


def voc_folder(tmp_path: Path, images, size=(60, 50), name="voc", split="train") -> Path:
    """A hand-made VOC folder: images = [(id, [(class, (xmin, ymin, xmax, ymax))])]."""
    root = tmp_path / name
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    w, h = size
    for image_id, objects in images:
        Image.new("RGB", (w, h), (90, 120, 30)).save(root / "JPEGImages" / f"{image_id}.jpg")
        objs = "".join(
            f"<object><name>{c}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin>"
            f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
            for c, b in objects)
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><filename>{image_id}.jpg</filename><size><width>{w}</width>"
            f"<height>{h}</height><depth>3</depth></size>{objs}</annotation>")
    (root / "ImageSets" / "Main" / f"{split}.txt").write_text(
        "".join(f"{i}\n" for i, _ in images))
    return root


def edit_xml(path: Path, fn) -> None:
    tree = ET.parse(path)
    fn(tree.getroot())
    tree.write(path)


def set_text(tag: str, value: str):
    def fn(root):
        root.find(f".//{tag}").text = value
    return fn


def collapse_box(root):
    root.find(".//xmax").text = root.find(".//xmin").text  # zero width


# name -> (how to break image 000001 of a 3-image loc folder, file the message names, words)
BREAKS = {
    "missing image": (lambda r: (r / "JPEGImages" / "000001.jpg").unlink(),
                      "000001.xml", "no such file"),
    "missing annotation": (lambda r: (r / "Annotations" / "000001.xml").unlink(),
                           "000001.xml", "no such file"),
    "malformed xml": (lambda r: (r / "Annotations" / "000001.xml").write_text(
        "<annotation><size><width>3"), "000001.xml", "parse error"),
    "unknown class": (lambda r: edit_xml(r / "Annotations" / "000001.xml",
                                         set_text("name", "unicorn")),
                      "000001.xml", "unknown class 'unicorn'"),
    "box outside": (lambda r: edit_xml(r / "Annotations" / "000001.xml",
                                       set_text("xmax", "100000")), "000001.xml", "xmax=100000"),
    "zero-based box": (lambda r: edit_xml(r / "Annotations" / "000001.xml",
                                          set_text("xmin", "0")), "000001.xml", "xmin=0"),
    "empty box": (lambda r: edit_xml(r / "Annotations" / "000001.xml", collapse_box),
                  "000001.xml", "xmin < xmax"),
    "not a number": (lambda r: edit_xml(r / "Annotations" / "000001.xml",
                                        set_text("ymin", "ten")), "000001.xml", "'ten'"),
    "path in filename": (lambda r: edit_xml(r / "Annotations" / "000001.xml",
                                            set_text("filename", "../../000001.jpg")),
                         "000001.xml", "bare file name"),
}


@pytest.fixture(scope="module")
def good_loc(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("good") / "loc"
    write_voc_dataset(root, "loc", 3, seed=1, split_fractions=(1.0, 0.0, 0.0))
    return root


def broken_copy(good: Path, tmp_path: Path, case: str) -> Path:
    root = tmp_path / case.replace(" ", "_")
    shutil.copytree(good, root)
    BREAKS[case][0](root)
    return root


@pytest.mark.parametrize("case", sorted(BREAKS))
def test_bad_record_raises_one_line_or_is_skipped(good_loc, tmp_path, case):
    root = broken_copy(good_loc, tmp_path, case)
    _, file_name, words = BREAKS[case]
    with pytest.raises(ValueError) as e:
        read_split(root, "train", on_error="raise")
    msg = str(e.value)
    assert "\n" not in msg and file_name in msg and words in msg, msg
    records, skipped = read_split(root, "train", on_error="skip")
    assert [r.image_id for r in records] == ["000000", "000002"]
    assert len(skipped) == 1 and Path(skipped[0][0]).name == file_name and words in skipped[0][1]
    # The training reader keeps the count too.
    ss = SceneSet(root, "train", VOC_CLASSES, on_error="skip")
    assert len(ss) == 2 and len(ss.skipped) == 1


def test_split_file_problems_always_raise(good_loc, tmp_path):
    root = tmp_path / "voc"
    shutil.copytree(good_loc, root)
    for on_error in ("raise", "skip"):
        with pytest.raises(ValueError) as e:
            read_split(root, "trainval", on_error=on_error)  # no such split file
        assert "trainval.txt" in str(e.value) and "no such file" in str(e.value)
    for on_error in ("raise", "skip"):  # the generator writes an empty val.txt for 0 images
        with pytest.raises(ValueError) as e:
            read_split(root, "val", on_error=on_error)
        assert "val.txt" in str(e.value) and "empty split" in str(e.value)
    (root / "ImageSets" / "Main" / "train.txt").write_text("\n  \n")
    for on_error in ("raise", "skip"):
        with pytest.raises(ValueError) as e:
            read_split(root, "train", on_error=on_error)
        assert "train.txt" in str(e.value) and "empty split" in str(e.value)
    with pytest.raises(ValueError, match="expected on_error 'raise' or 'skip'"):
        read_split(root, "train", on_error="ignore")


def test_undecodable_image_is_caught_by_the_training_reader(good_loc, tmp_path):
    root = tmp_path / "voc"
    shutil.copytree(good_loc, root)
    (root / "JPEGImages" / "000002.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ValueError) as e:
        SceneSet(root, "train", VOC_CLASSES)
    assert "000002.jpg" in str(e.value) and "\n" not in str(e.value)
    ss = SceneSet(root, "train", VOC_CLASSES, on_error="skip")
    assert [s.image_id for s in ss.scenes] == ["000000", "000001"] and len(ss.skipped) == 1
    # Every record bad: a clear error, not an empty training set.
    for i in (0, 1):
        (root / "JPEGImages" / f"00000{i}.jpg").unlink()
    with pytest.raises(ValueError, match="no usable images \\(3 skipped\\)"):
        SceneSet(root, "train", VOC_CLASSES, on_error="skip")


def test_train_cli_on_a_bad_folder_is_one_error_line(good_loc, tmp_path, capsys):
    root = broken_copy(good_loc, tmp_path, "unknown class")
    out = tmp_path / "never.pt"
    code, stdout, err = run_cli(["train", "--data", root, "--out", out, "--quiet"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: ") and "000001.xml" in lines[0] and "unicorn" in lines[0]
    assert not out.exists()
    code, _, err = run_cli(["train", "--data", tmp_path / "nowhere", "--out", out, "--quiet"],
                           capsys)
    assert code == 2 and err.startswith("error: ") and "no such folder" in err


@pytest.mark.slow  # a subprocess CLI run: imports torch and the package again (~2.5 s CPU)
def test_evaluate_cli_on_a_bad_folder_subprocess(good_loc, tmp_path, tiny_model):
    root = broken_copy(good_loc, tmp_path, "malformed xml")
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, tiny_model(VOC_CLASSES + ("background",)))
    r = subprocess.run([sys.executable, "-m", "overfeat", "evaluate", "--checkpoint", str(ckpt),
                        "--data", str(root), "--split", "train", "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), r.stderr
    assert "000001.xml" in r.stderr and "parse error" in r.stderr


@pytest.mark.slow  # spawns a worker pool: each worker imports torch (~2 s CPU)
def test_worker_pool_does_not_run_a_streamlit_main(tmp_path):
    """Under Streamlit (app or AppTest) __main__ is the app script; spawned workers re-import
    __main__, so without care each worker runs the app, dies and is respawned for ever (the
    whole suite once hung here after the AppTest tests)."""
    import sys
    import types

    script = tmp_path / "app.py"
    script.write_text("raise SystemExit('the app script must not run in a worker')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = fake
    try:
        summary = write_voc_dataset(tmp_path / "out", "det", 4, seed=7, workers=2)
    finally:
        sys.modules["__main__"] = saved
    assert summary["n"] == 4
    assert len(list((tmp_path / "out" / "JPEGImages").glob("*.jpg"))) == 4
