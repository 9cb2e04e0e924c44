"""Evaluation (overfeat.evaluate): the plumbing from analyses to metrics checked where the
answer is known: a fake analysis whose rankings and boxes the test chose (so every table entry
has a hand-computed value), a crafted model whose scores are fixed by its biases, derive()
against a fresh analyze(), and the command's JSON against the function."""

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from overfeat.boxes import Detections
from overfeat.checkpoint import save_checkpoint
from overfeat.cli import main
from overfeat.data.scenes import write_voc_dataset
from overfeat.data.voc import VOC_CLASSES, read_split
from overfeat.evaluate import FULL, TABLE2, evaluate, evaluate_folder
from overfeat.metrics import GroundTruth, mean_ap
from overfeat.models.overfeat import OverFeat
from overfeat.multiscale import analyze, derive

import overfeat.evaluate as evaluate_mod

# --- a fake analysis: the plumbing with answers chosen by the test -------------------------------

NAMES = tuple(f"c{i}" for i in range(7)) + ("bg",)
BG = 7
OBJ = list(range(7))
FAR = (90.0, 70.0, 98.0, 78.0)  # overlaps no ground-truth box below
# Image index -> objects (class, VOC box 1-based inclusive, difficult). Boxes within an image
# are disjoint, so a guessed box has IoU 1 with its copy and 0 with every other.
IMAGES = {
    0: [(0, (1, 1, 20, 20), False)],  # single class 0
    1: [(1, (21, 1, 40, 20), False)],  # single class 1
    2: [(2, (1, 1, 20, 20), False), (2, (41, 41, 60, 60), False)],  # single class 2, twice
    3: [(0, (1, 1, 20, 20), False), (1, (41, 41, 60, 60), False)],  # two classes: detection only
    4: [],  # empty: detection only
    5: [(3, (1, 1, 20, 20), True), (4, (41, 41, 60, 60), False)],  # single class 4 (3 difficult)
    6: [(5, (21, 21, 40, 40), True)],  # only a difficult object: detection only
}
BAD = {7: "unknown class", 8: "missing image", 9: "undecodable image"}


def zero_based(box):
    return (box[0] - 1.0, box[1] - 1.0, float(box[2]), float(box[3]))


def write_folder(root: Path) -> Path:
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    ids = sorted(IMAGES) + sorted(BAD)
    for i in ids:
        objects = IMAGES.get(i, [(0, (1, 1, 20, 20), False)])
        name = f"{i:06d}"
        xml_objects = "".join(
            f"<object><name>{'zebra' if i == 7 else NAMES[c]}</name><difficult>{int(d)}</difficult>"
            f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
            f"<ymax>{b[3]}</ymax></bndbox></object>" for c, b, d in objects)
        (root / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.png</filename><size><width>100</width>"
            f"<height>80</height><depth>3</depth></size>{xml_objects}</annotation>")
        if i == 8:
            continue  # missing image
        if i == 9:
            (root / "JPEGImages" / f"{name}.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
            continue
        # The red channel encodes the index, so the fake analysis knows which image it sees.
        Image.new("RGB", (100, 80), (20 * i, 0, 0)).save(root / "JPEGImages" / f"{name}.png")
    (root / "ImageSets" / "Main" / "val.txt").write_text("".join(f"{i:06d}\n" for i in ids))
    return root


def answers(seed=0):
    """(image, approach) -> (class ranking best first, background included; 6 guesses
    [(class, box)] most confident first)."""
    rng = random.Random(seed)
    out = {}
    for i, objects in IMAGES.items():
        label_boxes = [zero_based(b) for _, b, _ in objects]
        for j in range(len(TABLE2)):
            ranking = list(range(8))
            rng.shuffle(ranking)
            guesses = []
            for _ in range(6):
                c = rng.choice(OBJ + [c for c, _, _ in objects] * 3)  # often a true class
                box = rng.choice(label_boxes + [FAR]) if label_boxes else FAR
                guesses.append((c, box))
            out[i, j] = (ranking, guesses)
    # Edge cases on purpose, in the full row: image 0 right only with its 6th guess (ignored),
    # image 1 right only with its 5th (counted).
    box0, box1 = zero_based(IMAGES[0][0][1]), zero_based(IMAGES[1][0][1])
    full = len(TABLE2) - 1
    out[0, full] = (out[0, full][0], [(1, box0), (0, FAR)] * 2 + [(2, box0), (0, box0)])
    out[1, full] = (out[1, full][0], [(0, box1), (1, FAR)] * 2 + [(1, box1), (5, FAR)])
    return out


class FakeMerge:
    def __init__(self, guesses):
        self.final = Detections(boxes=torch.tensor([b for _, b in guesses]),
                                confs=torch.arange(len(guesses), 0, -1).float(),  # most confident first
                                labels=torch.tensor([c for c, _ in guesses]))


class FakeAnalysis:
    def __init__(self, image: int, approach: int, table):
        self.image, self.approach = image, approach
        ranking, self.guesses = table[image, approach]
        self.scores = torch.zeros(8)
        for r, c in enumerate(ranking):
            self.scores[c] = 1.0 - r / 10
        self.merges: list[dict] = []

    def merge(self, **kw):
        self.merges.append(kw)
        return FakeMerge(self.guesses)


def approach_of(settings) -> int:
    key = (settings.scales, settings.fine, settings.flips)
    (j,) = [j for j, ap in enumerate(TABLE2) if (ap.scales, ap.fine, ap.flips) == key]
    return j


@pytest.fixture
def fake(monkeypatch):
    table, calls = answers(), []

    def fake_analyze(model, image, settings=None, keep_maps=True):
        i = int(image[0, 0, 0]) // 20
        j = approach_of(settings)
        assert j in (0, len(TABLE2) - 1)  # analyze runs only for the full and coarse rows
        assert (settings.top_k, settings.min_score) == (evaluate_mod.EVAL_TOP_K,
                                                    evaluate_mod.EVAL_MIN_SCORE)
        calls.append(("analyze", i, j))
        made.append(FakeAnalysis(i, j, table))
        return made[-1]

    def fake_derive(full, settings):
        assert full.approach == len(TABLE2) - 1  # cut out of the full analysis only
        calls.append(("derive", full.image, approach_of(settings)))
        made.append(FakeAnalysis(full.image, approach_of(settings), table))
        return made[-1]

    made: list[FakeAnalysis] = []  # every analysis handed out

    monkeypatch.setattr(evaluate_mod, "analyze", fake_analyze)
    monkeypatch.setattr(evaluate_mod, "derive", fake_derive)
    return table, calls, made


def test_plumbing_against_hand_computed_answers(fake, tmp_path, tiny_model):
    table, calls, made = fake
    root = write_folder(tmp_path / "voc")
    res = evaluate_folder(tiny_model(NAMES), root, "val", on_error="skip")
    # Merges per task: the full analysis of every image is merged for detection, and, on
    # single-class images, every Table 2 row is merged for localization (MERGE's settings).
    loc = {"score": "corrected", **evaluate_mod.MERGE["localization"]}
    det = {"score": "corrected", **evaluate_mod.MERGE["detection"]}
    assert loc != det
    for a in made:
        if a.approach == len(TABLE2) - 1:  # an image's full analysis
            assert a.merges == [det] + ([loc] if a.image in (0, 1, 2, 5) else []), a.image
        else:  # another Table 2 row of a single-class image
            assert a.merges == [loc], (a.image, a.approach)

    single = {0: 0, 1: 1, 2: 2, 5: 4}  # image -> its one non-difficult class
    assert res["images"] == 7 and res["single_class_images"] == 4 and res["skipped"] == 3
    assert sorted(f.split(":")[0] for f in res["skipped_files"]) == [
        "000007.xml", "000008.xml", "000009.png"]
    # Each usable image is analysed once in full; single-class ones also once coarse and three
    # times derived.
    assert sorted(c for c in calls if c[0] == "analyze") == sorted(
        [("analyze", i, 4) for i in IMAGES] + [("analyze", i, 0) for i in single])
    assert sorted(c for c in calls if c[0] == "derive") == sorted(
        ("derive", i, j) for i in single for j in (1, 2, 3))

    assert [r["approach"] for r in res["table2"]] == [ap.name for ap in TABLE2]
    assert [r["scales"] for r in res["table2"]] == [[3], [3], [1, 3, 6], [1, 2, 3, 4, 5, 6],
                                                    [1, 2, 3, 4, 5, 6]]
    for j, row in enumerate(res["table2"]):
        top1 = top5 = loc = 0
        for i, label in single.items():
            ranking, guesses = table[i, j]
            objects_first = [c for c in ranking if c != BG]  # background is never a guess
            top1 += objects_first[0] != label
            top5 += label not in objects_first[:5]
            truths = {zero_based(b) for c, b, d in IMAGES[i] if c == label and not d}
            loc += not any(c == label and box in truths for c, box in guesses[:5])
        assert row["top1_error"] == pytest.approx(top1 / 4, abs=1e-5), j
        assert row["top5_error"] == pytest.approx(top5 / 4, abs=1e-5), j
        assert row["localization_error"] == pytest.approx(loc / 4, abs=1e-5), j
    assert res["classification"] == {k: res["table2"][-1][k] for k in ("top1_error", "top5_error")}
    assert res["localization"]["error"] == res["table2"][-1]["localization_error"]
    # The answers are not degenerate: rows differ, and errors are neither all 0 nor all 1.
    rows = {(r["top1_error"], r["top5_error"], r["localization_error"]) for r in res["table2"]}
    assert len(rows) > 1 and any(0 < v < 1 for r in rows for v in r)

    # Detection: every usable image, the full approach's boxes with their confidences.
    dets, truths = [], []
    for i, objects in IMAGES.items():
        guesses = table[i, len(TABLE2) - 1][1]
        dets.append([(c, float(6 - r), box) for r, (c, box) in enumerate(guesses)])
        truths.append(GroundTruth([c for c, _, _ in objects], [zero_based(b) for _, b, _ in objects],
                                  [d for _, _, d in objects]))
    m, per = mean_ap(dets, truths, OBJ)
    assert res["detection"]["mAP"] == pytest.approx(m, abs=1e-5)
    positives = {0: 2, 1: 2, 2: 2, 3: 0, 4: 1, 5: 0, 6: 0}  # non-difficult objects, by hand
    for c in OBJ:
        got = res["detection"]["per_class"][NAMES[c]]
        assert got["positives"] == positives[c]
        assert got["detections"] == per[c].n_detections
        assert got["true_positives"] == per[c].true_positives
        assert (got["ap"] is None) == (positives[c] == 0)
    assert "bg" not in res["detection"]["per_class"]


def test_bad_record_raises_when_not_skipping(fake, tmp_path, tiny_model):
    root = write_folder(tmp_path / "voc")
    with pytest.raises(ValueError) as e:
        evaluate_folder(tiny_model(NAMES), root, "val")
    assert "000007.xml" in str(e.value) and "zebra" in str(e.value)
    # Only the image that cannot be decoded (read_split cannot see it) left:
    for i in (7, 8):
        (root / "Annotations" / f"{i:06d}.xml").unlink()
    (root / "ImageSets" / "Main" / "val.txt").write_text(
        "".join(f"{i:06d}\n" for i in (0, 9, 1)))
    with pytest.raises(ValueError, match="000009.png"):
        evaluate_folder(tiny_model(NAMES), root, "val")
    res = evaluate_folder(tiny_model(NAMES), root, "val", on_error="skip")
    assert res["images"] == 2 and res["skipped"] == 1


# --- the real pipeline with a crafted model -------------------------------------------------------


def fixed_score_model(tiny_model, order: list[int]) -> OverFeat:
    """A demo-like model whose class probabilities are the same for every window: the
    classifier's output layer has zero weights, and biases ranking the classes as `order`
    (background first and far ahead, so every object probability is below min_score and the
    merge gets no box at all). tiny_model: the conftest fixture."""
    names = VOC_CLASSES + ("background",)
    model = tiny_model(names)
    last = model.classifier[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-10.0)
        last.bias[20] = 10.0
        for r, c in enumerate(order):
            last.bias[c] = 5.0 - r
    return model


@pytest.fixture(scope="module")
def loc_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval") / "loc"
    write_voc_dataset(root, "loc", 4, seed=4, split_fractions=(0.0, 1.0, 0.0))
    return root


def test_crafted_model_known_errors(loc_folder, tiny_model):
    records, _ = read_split(loc_folder, "val")
    labels = [r.objects[0].label for r in records]
    others = [c for c in range(20) if c not in labels]
    # Best class: image 0's; then three never-true classes; 5th: image 1's (if different).
    order = [labels[0]] + others[:3] + ([labels[1]] if labels[1] != labels[0] else others[3:4])
    order += [c for c in range(20) if c not in order]
    want_top1 = sum(y != order[0] for y in labels) / len(labels)
    want_top5 = sum(y not in order[:5] for y in labels) / len(labels)
    assert want_top5 < want_top1 and 0 < want_top1  # the case is not degenerate

    events = []
    res = evaluate_folder(fixed_score_model(tiny_model, order), loc_folder, "val",
                          callback=events.append)
    assert [e["done"] for e in events] == [1, 2, 3, 4] and events[0]["total"] == 4
    assert res["images"] == res["single_class_images"] == 4 and res["skipped"] == 0
    for row in res["table2"]:  # every approach sees the same constant scores
        assert row["top1_error"] == pytest.approx(want_top1, abs=1e-5), row
        assert row["top5_error"] == pytest.approx(want_top5, abs=1e-5), row
        assert row["localization_error"] == 1.0  # no box passed min_score: nothing localized
    det = res["detection"]
    assert det["mAP"] == 0.0
    assert all(v["detections"] == 0 for v in det["per_class"].values())
    assert sum(v["positives"] for v in det["per_class"].values()) == 4
    assert len(det["per_class"]) == 20  # background is not scored


def test_derive_equals_a_fresh_analysis(tiny_model):
    """evaluate cuts the fine-stride rows out of one full analysis; that must be what analyze
    computes from scratch with the row's settings."""
    model = tiny_model(VOC_CLASSES + ("background",))
    with torch.no_grad():
        model.classifier[-1].bias.normal_(0, 2)  # spread the classes so rankings are strict
    image = Image.effect_noise((300, 260), 60).convert("RGB")
    # min_score 0: every window's box is kept, so the boxes are compared too (a tiny random
    # model's probabilities stay below evaluate's own min score)
    full = analyze(model, image, replace(FULL.settings(), min_score=0.0), keep_maps=False)
    for ap in TABLE2[1:-1]:
        s = replace(ap.settings(), min_score=0.0)
        cut, fresh = derive(full, s), analyze(model, image, s)
        assert torch.allclose(cut.scores, fresh.scores, atol=1e-6), ap.name
        assert cut.top_classes == fresh.top_classes, ap.name
        assert len(cut.table) == len(fresh.table) > 0, ap.name
        assert torch.allclose(cut.table.boxes, fresh.table.boxes, atol=1e-4), ap.name
    with pytest.raises(ValueError, match="run analyze\\(\\) again"):
        derive(full, TABLE2[0].settings())  # coarse stride cannot be cut out of a fine analysis


def test_evaluate_command_json_matches_the_function(loc_folder, tmp_path, capsys, tiny_model):
    model = fixed_score_model(tiny_model, list(range(20)))
    ckpt = tmp_path / "crafted.pt"
    save_checkpoint(ckpt, model)
    code = main(["evaluate", "--checkpoint", str(ckpt), "--data", str(loc_folder),
                 "--max-images", "2", "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    res = json.loads(out)
    assert res["checkpoint"] == "crafted.pt" and res["split"] == "val"
    (d,) = res["datasets"]
    direct = evaluate(model, [str(loc_folder)], "val", max_images=2)["datasets"][0]
    for key in ("images", "classification", "localization", "table2", "detection", "skipped"):
        assert d[key] == direct[key], key
    assert d["images"] == 2
