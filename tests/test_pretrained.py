"""The two pretrained nets (EfficientNet-Lite0 on ImageNet, MTCNN's P-Net on faces), run the
OverFeat way: checked against naive references and against what their weights must know."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from overfeat.models import registry as zoo
from overfeat.boxes import box_iou
from overfeat.models.efficientnet import EfficientNetLite0, same_pads
from overfeat.geometry import dense_macs, layer_table, meta_model, scale_geometry
from overfeat.images import load_image
from overfeat.multiscale import Settings, analyze, run_view, scale_sizes
from overfeat.models.pnet import load_pnet
from references import interleave_loops

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "assets" / "photos"
# Drawn by hand on the shipped photos (x1, y1, x2, y2): hairline to chin, cheek to cheek;
# the cup with its saucer.
ASTRONAUT_FACE = (180.0, 62.0, 268.0, 170.0)
COFFEE_CUP = (75.0, 15.0, 480.0, 390.0)
CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def imagenet():
    return zoo.load("imagenet")


@pytest.fixture(scope="module")
def faces():
    return zoo.load("faces")


def test_same_pads_give_ceil_size_on_random_sizes():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        n, k, s = (int(torch.randint(1, 60, (1,), generator=g)), int(torch.randint(1, 4, (1,),
                   generator=g)) * 2 + 1, int(torch.randint(1, 3, (1,), generator=g)))
        a, b = same_pads(n, k, s)
        assert 0 <= a <= b <= a + 1  # TF puts the odd pixel after
        assert (n + a + b - k) // s + 1 == -(-n // s)


def test_atrous_equals_interleaved_offsets(imagenet):
    """Paper Fig. 3 for this net: the 4 offset maps, classified one by one and interleaved
    (a literal loop), equal the stride-1 layer with every later spatial op dilated by 2."""
    torch.manual_seed(1)
    x = torch.rand(1, 3, 288, 336) * 255
    with torch.no_grad():
        f = imagenet.features(imagenet.normalize(x))
        p1 = imagenet.pool_fine(f)
        atrous = imagenet.classify(p1, dilation=2)
        offsets = [imagenet.classify(p1[..., dy::2, dx::2].contiguous())
                   for dy in range(2) for dx in range(2)]
        coarse = imagenet.classify(imagenet.pool(f))
    ref = interleave_loops(offsets, 2)
    assert atrous.shape == ref.shape == (1, 1000, 5, 9)  # 336 px: an odd 21-cell map
    assert not torch.isnan(ref).any()
    torch.testing.assert_close(atrous, ref, atol=1e-4, rtol=1e-4)
    # offset (0, 0) is the plain stride-32 network, SAME pads and all
    torch.testing.assert_close(coarse, atrous[..., 0::2, 0::2], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(imagenet.classify_offsets(p1), atrous, atol=1e-4, rtol=1e-4)


@pytest.mark.slow  # EfficientNet-Lite0 on every window's crop, one by one (~4 s CPU)
def test_dense_equals_crops_only_without_padding(imagenet):
    """Padding-free variant, the same weights: every fine cell equals the network on its own
    window crop. With padding the two differ (a cell sees context beyond its crop)."""
    free = EfficientNetLite0(imagenet.class_names, padding=False)
    free.load_state_dict(imagenet.state_dict())
    free.eval()
    w = free.window
    assert w > 224  # every "valid" convolution eats border pixels
    torch.manual_seed(2)
    size = (w + 16, w + 16)
    img = torch.rand(3, *size) * 255
    d = run_view(free, img, size, flip=False, fine=True, keep_maps=False)
    assert tuple(d["fine"].shape[-2:]) == (2, 2)
    with torch.no_grad():
        for r in range(2):
            for c in range(2):
                crop = img[None, :, 16 * r:16 * r + w, 16 * c:16 * c + w]
                p = torch.softmax(free(free.normalize(crop)), dim=1)[0, :, 0, 0]
                torch.testing.assert_close(d["fine"][:, r, c], p, atol=1e-5, rtol=1e-4)
        # the padded net on the same kind of check: dense and crop disagree near borders
        size = (224 + 32, 224 + 32)
        img = torch.rand(3, *size) * 255
        d = run_view(imagenet, img, size, flip=False, fine=False, keep_maps=False)
        crop = img[None, :, :224, :224]
        p = torch.softmax(imagenet(imagenet.normalize(crop)), dim=1)[0, :, 0, 0]
        assert (d["fine"][:, 0, 0] - p).abs().max() > 1e-3


def test_pnet_dense_equals_windows(faces):
    """P-Net has no padding: each fine cell is P-Net on its own 12x12 window, for the face score
    and for the box. Its pre-pool stride is 1, so with offsets a window starts at every pixel."""
    torch.manual_seed(3)
    size = (30, 26)
    img = torch.rand(3, *size) * 255
    d = run_view(faces, img, size, flip=False, fine=True, keep_maps=True)
    Hf, Wf = d["fine"].shape[-2:]
    assert (Hf, Wf) == (30 - 12 + 1, 26 - 12 + 1)
    with torch.no_grad():
        for r in range(Hf):
            for c in range(Wf):
                crop = faces.normalize(img[None, :, r:r + 12, c:c + 12])
                p = faces.pool(faces.features(crop))
                prob = torch.softmax(faces.classify(p), dim=1)[0, :, 0, 0]
                torch.testing.assert_close(d["fine"][:, r, c], prob, atol=1e-6, rtol=1e-5)
                t = faces.regress(p)[0, :, 0, 0]
                x1, y1 = c, r
                box = torch.stack([x1 + 12 * t[0], y1 + 12 * t[1], x1 + 12 * t[2], y1 + 12 * t[3]])
                box = torch.cat([torch.minimum(box[:2], box[2:]), torch.maximum(box[:2], box[2:])])
                torch.testing.assert_close(d["boxes"][r, c, 0], box, atol=1e-4, rtol=1e-5)


def test_pnet_loader_matches_mtcnn_layout_and_refuses_others(tmp_path):
    m = load_pnet()
    raw = torch.load(ROOT / "assets" / "weights" / "mtcnn_pnet.pt", weights_only=True)
    # class 0 is face: MTCNN's second output, moved first
    torch.testing.assert_close(m.conv4_1.bias, raw["conv4_1.bias"].flip(0))
    # the box encoding: MTCNN's edge offsets + (0, 0, 1, 1)
    torch.testing.assert_close(m.conv4_2.bias - raw["conv4_2.bias"], torch.tensor([0., 0., 1., 1.]))
    bad = dict(raw)
    bad["conv2.weight"] = torch.zeros(3, 3)
    path = tmp_path / "foreign.pt"
    torch.save(bad, path)
    with pytest.raises(ValueError, match="not an MTCNN P-Net state dict"):
        load_pnet(path)


def test_imagenet_knows_the_shipped_photos(imagenet):
    """The loaded weights give the known classes (a centre-crop rebuild gave the same)."""
    cat = analyze(imagenet, load_image(PHOTOS / "cat.jpg"), Settings(scales=(0, 2, 4)))
    names = [imagenet.names[c] for c, _ in cat.top(5)]
    assert CAT_CLASSES & set(names[:2]), names
    coffee = analyze(imagenet, load_image(PHOTOS / "coffee.jpg"), Settings(scales=(0, 2, 4)))
    names = [imagenet.names[c] for c, _ in coffee.top(5)]
    assert names[0] == "espresso" and "cup" in names, names
    # the top class's map peaks on the cup at most views (window centre inside the cup)
    top = coffee.top(1)[0][0]
    on = 0
    for v in coffee.views:
        m = v.fine[top]
        r, c = divmod(int(m.argmax()), m.shape[1])
        x1, y1, x2, y2 = v.windows[r, c].tolist()
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        on += COFFEE_CUP[0] <= cx <= COFFEE_CUP[2] and COFFEE_CUP[1] <= cy <= COFFEE_CUP[3]
    assert on >= len(coffee.views) * 2 / 3
    assert len(coffee.table) == 0  # no regressor: no boxes


def test_faces_box_the_astronaut(faces):
    im = load_image(PHOTOS / "astronaut.jpg")
    a = analyze(faces, im, Settings(top_k=1, min_score=0.5))
    r = a.merge()
    assert len(a.table) > 100 and r.n_steps > 0  # real raw boxes, a real merge
    best = r.final.boxes[0:1]
    iou = float(box_iou(best, torch.tensor([ASTRONAUT_FACE]))[0, 0])
    assert iou >= 0.5, (best, iou)


def test_geometry_tables_read_off_the_pretrained_nets():
    for name in ("imagenet", "faces"):
        cfg = zoo.config(name)
        m = meta_model(cfg)
        rows = layer_table(cfg)
        assert rows[-1].out_size == (1, 1)  # one window -> one output cell
        assert sum(r.params for r in rows) == sum(p.numel() for p in m.parameters()) - (
            4 * 32 + 4 if name == "faces" else 0)  # P-Net's box layer is not in the class path
        size = (m.window + 4 * m.stride, m.window + 2 * m.stride)
        g = scale_geometry(m, size)
        assert g.classifier[0] == (5, 3)  # the coarse map: one cell per stride
        assert g.fine == (9, 5)  # k = 2: 2n - 1 cells per side
        assert dense_macs(cfg, size) > dense_macs(cfg, size, fine=False)
    sizes = scale_sizes((500, 500), meta_model(zoo.config("imagenet")))
    assert all((s - 224) % 16 == 0 for hw in sizes for s in hw)


@pytest.mark.slow  # subprocess CLI runs loading both pretrained nets (~14 s CPU)
def test_predict_cli_imagenet_json_and_faces():
    py = [sys.executable, "-m", "overfeat", "predict"]
    out = subprocess.run(py + [str(PHOTOS / "cat.jpg"), "--model", "imagenet", "--json",
                               "--scales", "0,3"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    j = json.loads(out.stdout)
    assert len(j["classes"]) == 5 and set(j["classes"][0]) == {"name", "score"}
    assert CAT_CLASSES & {c["name"] for c in j["classes"]}
    assert len(j["maps"]) == 4 and j["detections"] == []
    out = subprocess.run(py + [str(PHOTOS / "astronaut.jpg"), "--model", "faces", "--json"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    box = torch.tensor([json.loads(out.stdout)["detections"][0]["box"]])
    assert float(box_iou(box, torch.tensor([ASTRONAUT_FACE]))[0, 0]) >= 0.5
    bad = subprocess.run(py + [str(ROOT / "README.md"), "--model", "imagenet"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "README.md" in bad.stderr
    bad = subprocess.run(py + [str(PHOTOS / "cat.jpg"), "--model", "faces", "--checkpoint", "x.pt"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "--checkpoint" in bad.stderr
