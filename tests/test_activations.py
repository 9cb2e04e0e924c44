"""Inside the network (issue 28): overfeat.activations against references computed by hand.

For each of the four models on a small photo: every layer's map equals the model's modules run
one by one here (functional convolutions, batch norm and activations written out, max pools by
unfolding); the channels compute() keeps are the most active of that reference (by mean
activation; the class outputs by spatial maximum over the object classes); its thumbnails are
the reference's selected channels area-averaged and quantised (checked against a loop); the
output map equals the analysis' coarse map of the same scale, and a traced cell's window equals
offsets.cell_window (a pyramid net: the nominal windows of models.nanodet) and the analysis'
window in original pixels. Then the offset strip and differences against loops, and the figures
against the data they draw.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from overfeat import activations as A
from overfeat import geometry
from overfeat.app import figures
from overfeat.app.figures import layers as figlayers
from overfeat.images import load_image
from overfeat.models import registry as zoo
from overfeat.models.efficientnet import OFFSET_BLOCK
from overfeat.models.nanodet import windows as nanodet_windows
from overfeat.multiscale import Settings, _resize, analyze, scale_sizes
from overfeat.offsets import cell_window, offsets

NAMES = zoo.MODEL_NAMES


@pytest.fixture(scope="module")
def models():
    return {n: zoo.load(n) for n in NAMES}


@pytest.fixture(scope="module")
def image():
    """A small photo (the network resizes it to its middle scale)."""
    return load_image("assets/photos/dog.jpg").resize((200, 150))


@pytest.fixture(scope="module")
def acts(models, image):
    return {n: A.compute(models[n], image) for n in NAMES}


# --- references, by hand ------------------------------------------------------------------------
def maxpool(x, k, s):
    """Max pool by unfolding: every k x k window at stride s, its maximum."""
    return x.unfold(2, k, s).unfold(3, k, s).amax(dim=(-1, -2))


def batch_norm(x, bn):
    c = lambda t: t[None, :, None, None]  # noqa: E731
    return (x - c(bn.running_mean)) / torch.sqrt(c(bn.running_var) + bn.eps) * c(bn.weight) + c(bn.bias)


def prelu(x, a):
    return torch.where(x > 0, x, a[None, :, None, None] * x)


def ref_overfeat(m, x):
    out, h = [], x
    feats = m.features
    for i, _spec in enumerate(m.cfg.geo.trunk, start=1):
        conv = getattr(feats, f"conv{i}")
        h = F.conv2d(h, conv.weight, conv.bias, stride=conv.stride, padding=conv.padding)
        if hasattr(feats, f"bn{i}"):
            h = batch_norm(h, getattr(feats, f"bn{i}"))
        h = h.clamp_min(0)
        out.append((f"conv{i}", h))
        if hasattr(feats, f"pool{i}"):
            p = getattr(feats, f"pool{i}")
            h = maxpool(h, p.kernel_size, p.stride)
            out.append((f"pool{i}", h))
    h = maxpool(h, m.k, m.k)
    out.append((f"pool{len(m.cfg.geo.trunk)} (offsets)", h))
    convs = [(n, c) for n, c in m.classifier.named_children() if isinstance(c, torch.nn.Conv2d)]
    for j, (name, conv) in enumerate(convs):
        h = F.conv2d(h, conv.weight, conv.bias)
        if j < len(convs) - 1:
            h = h.clamp_min(0)
            out.append((name, h))
        else:
            out.append((f"{name}: class scores", torch.softmax(h, dim=1)))
    return out


def ref_pnet(m, x):
    h = prelu(F.conv2d(x, m.conv1.weight, m.conv1.bias), m.prelu1.weight)
    out = [("conv1", h)]
    h = maxpool(h, 2, 2)
    out.append(("pool1 (offsets)", h))
    h = prelu(F.conv2d(h, m.conv2.weight, m.conv2.bias), m.prelu2.weight)
    out.append(("conv2", h))
    h = prelu(F.conv2d(h, m.conv3.weight, m.conv3.bias), m.prelu3.weight)
    out.append(("conv3", h))
    out.append(("conv4_1: class scores",
                torch.softmax(F.conv2d(h, m.conv4_1.weight, m.conv4_1.bias), dim=1)))
    return out


def ref_efficientnet(m, x):
    h = F.relu6(m.stem(x))
    out = [("stem", h)]
    for i in range(OFFSET_BLOCK):
        h = m.blocks[i](h)
        out.append((f"block{i}", h))
    last = m.blocks[OFFSET_BLOCK]
    h = F.relu6(last.expand(h))
    out.append((f"block{OFFSET_BLOCK}.expand", h))
    assert torch.allclose(h, m.features(x), atol=1e-5)  # the net's own split
    h = F.relu6(last.depthwise(h))
    out.append((f"block{OFFSET_BLOCK}.depthwise (offsets)", h))
    h = last.project(h)
    out.append((f"block{OFFSET_BLOCK}.project", h))
    for i in range(OFFSET_BLOCK + 1, len(m.blocks)):
        h = m.blocks[i](h)
        out.append((f"block{i}", h))
    h = F.relu6(F.conv2d(h, m.head.weight, m.head.bias))
    out.append(("head", h))
    h = F.avg_pool2d(h, 7, 1)
    out.append(("avgpool", h))
    out.append(("fc: class scores", torch.softmax(F.conv2d(h, m.fc.weight, m.fc.bias), dim=1)))
    return out


def ref_nanodet(m, x):
    h = F.leaky_relu(F.conv2d(x, m.stem.weight, m.stem.bias, stride=2, padding=1), 0.1)
    out = [("stem conv", h)]
    h = maxpool(F.pad(h, (1, 1, 1, 1), value=float("-inf")), 3, 2)
    out.append(("stem max pool", h))
    stages = []
    for i, st in enumerate((m.stage1, m.stage2, m.stage3, m.stage4), start=1):
        h = st(h)
        stages.append(h)
        out.append((f"stage{i} (CSP, {len(st.res_blocks)} blocks)", h))
    c3, c4, c5 = m.backbone(x)
    assert all(torch.equal(a, b) for a, b in zip((c3, c4, c5), stages[1:]))
    # the neck written out: lateral 1x1 convolutions, then top-down and bottom-up bilinear adds
    up = lambda t, like: F.interpolate(t, size=like.shape[-2:], mode="bilinear",  # noqa: E731
                                       align_corners=False)
    p3, p4, p5 = (F.conv2d(f, lat.weight, lat.bias) for lat, f in zip(m.lateral, (c3, c4, c5)))
    p4 = p4 + up(p5, p4)
    p3 = p3 + up(p4, p3)
    p4 = p4 + up(p3, p4)
    p5 = p5 + up(p4, p5)
    for p, s in zip((p3, p4, p5), m.strides):
        out.append((f"neck P{int(math.log2(s))}, stride {s}", p))
    n = len(m.names)
    for head, p, s in zip(m.head, (p3, p4, p5), m.strides):
        y = F.conv2d(F.leaky_relu(F.conv2d(p, head.conv.weight, head.conv.bias, padding=1), 0.1),
                     head.out.weight, head.out.bias)
        out.append((f"class scores, stride {s}", torch.sigmoid(y[:, :n])))
    return out


REFS = {"pictogram": ref_overfeat, "faces": ref_pnet, "imagenet": ref_efficientnet,
        "objects": ref_nanodet}


def normalised_input(model, image, scale: int):
    """The network input of that scale, as compute() makes it (resized, normalised)."""
    img = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)
    size = scale_sizes(tuple(img.shape[-2:]), model, "aspect")[scale]
    return model.normalize(_resize(img, size)[None])


@pytest.fixture(scope="module")
def refs(models, image):
    out = {}
    with torch.no_grad():
        for n in NAMES:
            m = models[n]
            out[n] = [(name, t[0]) for name, t in
                      REFS[n](m, normalised_input(m, image, A.default_scale(m)))]
    return out


def naive_thumbnail(maps: torch.Tensor, side: int) -> tuple[np.ndarray, list, list]:
    """thumbnail() by loops: each output pixel the mean of its adaptive-pooling cell (rows
    floor(i H / h) to ceil((i + 1) H / h)), then (v - lo) / (hi - lo) * 255 rounded."""
    n, H, W = maps.shape
    f = min(1.0, side / max(H, W))
    h, w = max(1, round(H * f)), max(1, round(W * f))
    a = maps.double().numpy()
    small = np.zeros((n, h, w))
    for i in range(h):
        r0, r1 = (i * H) // h, -((-(i + 1) * H) // h)
        for j in range(w):
            c0, c1 = (j * W) // w, -((-(j + 1) * W) // w)
            small[:, i, j] = a[:, r0:r1, c0:c1].mean(axis=(1, 2))
    lo, hi = small.min(axis=(1, 2)), small.max(axis=(1, 2))
    q = np.zeros_like(small)
    for c in range(n):
        if hi[c] > lo[c]:
            q[c] = np.round((small[c] - lo[c]) / (hi[c] - lo[c]) * 255)
    return q.astype(np.uint8), lo.tolist(), hi.tolist()


# --- the maps -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_every_layer_equals_the_layers_run_by_hand(models, image, refs, name):
    got = A.layer_maps(models[name], image)
    ref = refs[name]
    assert [s.name for s, _ in got] == [n for n, _ in ref]
    for (stage, t), (_, r) in zip(got, ref):
        assert t.shape == r.shape, stage.name
        assert torch.allclose(t, r, atol=1e-4, rtol=1e-4), stage.name


@pytest.mark.parametrize("name", NAMES)
def test_layer_views_keep_the_most_active_channels_of_the_reference(models, acts, refs, name):
    m, a = models[name], acts[name]
    assert [lv.name for lv in a.layers] == [n for n, _ in refs[name]]
    obj = list(m.object_classes)
    for lv, (_, r) in zip(a.layers, refs[name]):
        assert lv.shape == tuple(r.shape)
        if lv.kind == "classes":
            rank = r.flatten(1).amax(dim=1)
            pool = obj  # the background class is never among them
        else:
            rank = r.flatten(1).mean(dim=1)
            pool = list(range(r.shape[0]))
        n = min(A.TOP_CHANNELS, len(pool))
        assert len(lv.channels) == n == len(set(lv.channels)) and set(lv.channels) <= set(pool)
        ours = rank[list(lv.channels)]
        assert np.allclose(lv.ranking, ours.numpy(), atol=1e-4)
        # most active first, and none left out beats the last one kept
        assert all(x >= y - 1e-5 for x, y in zip(ours, ours[1:]))
        left = [c for c in pool if c not in lv.channels]
        if left:
            assert float(rank[left].max()) <= float(ours[-1]) + 1e-4, lv.name
        # the thumbnails: the reference's selected channels, area-averaged and quantised
        q, lo, hi = naive_thumbnail(r[list(lv.channels)], A.THUMB_SIDE)
        assert lv.thumbs.dtype == np.uint8 and lv.thumbs.shape == q.shape
        assert max(lv.thumbs.shape[1:]) <= A.THUMB_SIDE
        assert int(np.abs(lv.thumbs.astype(int) - q.astype(int)).max()) <= 1, lv.name
        assert np.allclose(lv.lo, lo, atol=1e-4) and np.allclose(lv.hi, hi, atol=1e-4)
        assert lv.mean == pytest.approx(float(r.mean()), abs=1e-4)
        assert lv.maximum == pytest.approx(float(r.max()), abs=1e-4)
        assert lv.active == pytest.approx(float((r > 0).float().mean()), abs=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_strides_and_receptive_fields_come_from_the_layer_table(models, acts, name):
    m, a = models[name], acts[name]
    rows = {r.name: r for r in geometry.layer_table(m.cfg)}
    outs = geometry.output_fields(m.cfg)
    neck = geometry.neck_fields(m.cfg)
    for lv in a.layers:
        if lv.group == "output":
            assert (lv.stride, lv.receptive_field) == outs[lv.level]
        elif lv.group == "neck":
            assert (lv.receptive_field, lv.stride) == neck[lv.level]
            # the head's 3x3 convolution reads this map: its field is this one's grown by 2 cells
            head = rows[f"head {lv.stride}: 3x3 conv"]
            assert head.receptive_field == lv.receptive_field + 2 * lv.stride
        else:
            row = rows[lv.name.replace(" (offsets)", "")] if lv.name.replace(" (offsets)", "") \
                in rows else rows[lv.name]
            assert (lv.stride, lv.receptive_field) == (row.jump, row.receptive_field)
        # the stride is what the map's size says: input side / cells, about
        h, w = lv.shape[1:]
        assert a.size[1] / lv.stride >= w - 1 >= a.size[1] / lv.stride - 12


def test_the_default_scale_is_the_middle_one(models, acts):
    for n in NAMES:
        assert A.default_scale(models[n]) == 2 and acts[n].scale == 2 and acts[n].n_scales == 6


def test_compute_keeps_thumbnails_not_maps(acts):
    for n, a in acts.items():
        for lv in a.layers:
            assert lv.thumbs.dtype == np.uint8 and max(lv.thumbs.shape[1:]) <= A.THUMB_SIDE
            assert (lv.probs is None) == (lv.group != "output")
        assert a.nbytes < 3_000_000, n


# --- the output and the traced window -----------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_output_map_and_traced_windows_equal_the_analysis(models, image, acts, refs, name):
    m, a = models[name], acts[name]
    # the class: this scale's top object class over the output maps (a loop)
    outs = [r for (n_, r) in refs[name] if "class scores" in n_]
    best = max(m.object_classes, key=lambda c: (max(float(o[c].max()) for o in outs), -c))
    assert a.cls == best and a.class_name == m.names[best]
    an = analyze(m, image, Settings(scales=(a.scale,), flips=False, fine=False))
    views = sorted(an.views, key=lambda v: v.level)
    assert [v.size for v in views][0] == a.size
    assert len(views) == len(a.outputs)
    for i, v in zip(a.outputs, views):
        lv = a.layers[i]
        assert lv.probs.shape == tuple(v.fine.shape[-2:])
        assert np.allclose(lv.probs, v.fine[a.cls].numpy(), atol=1e-5)
        assert lv.stride == v.stride
        h, w = lv.probs.shape
        for r, c in {(0, 0), (h - 1, w - 1), (h // 2, w // 3), (h - 1, 0)}:
            t = A.trace_cell(a, i, r, c)
            if a.pyramid:
                want = nanodet_windows(h, w, v.stride)[r, c].tolist()
                assert t.side == geometry.window_sides(m)[lv.level] and t.nominal
            else:
                want = list(cell_window(r, c, m.stride, m.window))
                assert t.side == m.window and not t.nominal
            assert np.allclose(t.window, want)
            assert np.allclose(t.original, v.windows[r, c].tolist(), atol=1e-3)
            assert t.prob == pytest.approx(float(v.fine[a.cls, r, c]), abs=1e-5)
    with pytest.raises(ValueError):
        A.trace_cell(a, a.outputs[0], -1, 0)
    with pytest.raises(ValueError):
        A.trace_cell(a, 0, 0, 0)  # the first layer is no class output


def test_best_cell_is_the_most_confident_cell(acts):
    for a in acts.values():
        i, r, c = A.best_cell(a)
        top = max(float(a.layers[j].probs.max()) for j in a.outputs)
        assert float(a.layers[i].probs[r, c]) == top


# --- thumbnails -------------------------------------------------------------------------------
def test_thumbnail_equals_a_loop():
    g = torch.Generator().manual_seed(0)
    for shape in ((3, 100, 70), (2, 30, 40), (1, 129, 65)):
        maps = torch.randn(*shape, generator=g)
        q, lo, hi = A.thumbnail(maps, 64)
        nq, nlo, nhi = naive_thumbnail(maps, 64)
        assert q.shape == nq.shape and int(np.abs(q.astype(int) - nq.astype(int)).max()) <= 1
        assert np.allclose(lo.numpy(), nlo, atol=1e-5) and np.allclose(hi.numpy(), nhi, atol=1e-5)
        assert q.reshape(len(q), -1).max(axis=1).tolist() == [255] * len(q)
    # a small map is not resized; a constant one is all 0
    q, _, _ = A.thumbnail(torch.ones(2, 5, 7), 64)
    assert q.shape == (2, 5, 7) and not q.any()


def test_top_channels_first_of_ties():
    v = torch.tensor([1.0, 3.0, 3.0, 2.0, 5.0])
    assert A.top_channels(v, 3) == [4, 1, 2]
    assert A.top_channels(v, 2, among=[0, 2, 3]) == [2, 3]


# --- the offset trick in one view -------------------------------------------------------------
@pytest.fixture(scope="module")
def fine_views(models, image):
    """A fine-stride view (with its maps) of each model with offsets (k > 1)."""
    out = {}
    for n in NAMES:
        m = models[n]
        if m.k > 1:
            a = analyze(m, image, Settings(scales=(3,), flips=False, fine=True))
            out[n] = (m, a.views[0])
    return out


def test_offset_strip_against_the_band(fine_views):
    for n, (m, v) in fine_views.items():
        k = m.k
        layer = geometry.offset_layer(m.cfg)
        is_max = layer.kind == "pool"
        ch = int(v.features.flatten(1).amax(dim=1).argmax())
        s = A.offset_strip(v, ch, k, layer.kernel, is_max)
        f = v.features[ch]
        width = s.band.shape[1]
        assert np.allclose(s.band, f[s.row0:s.row0 + k, s.col0:s.col0 + width].numpy())
        # by default the band holds the channel's strongest cell
        assert float(s.band.max()) == pytest.approx(float(f.max()))
        assert s.dy == s.row0 % k and s.pooled_row == s.row0 // k
        for dx in range(k):
            pooled = v.pooled[offsets(k).index((dx, s.dy))][ch]
            for c, val in s.pooled[dx]:
                assert c % k == dx and s.col0 <= c <= s.col0 + width - k
                # the value is cell (row0 // k, c // k) of offset (dx, dy)'s pooled map
                assert val == pytest.approx(float(pooled[s.pooled_row, c // k]), abs=1e-6)
                if is_max:  # a max pool: the maximum of the k x k cells under its brick
                    assert val == pytest.approx(float(s.band[:, c - s.col0:c - s.col0 + k].max()),
                                                abs=1e-6)
        # the interleaved row: every column's value, each from its offset
        for j, val in enumerate(s.fine):
            c = s.col0 + j
            assert val == pytest.approx(dict(s.pooled[c % k])[c], abs=1e-6)
    with pytest.raises(ValueError):
        A.offset_strip(v, 0, k + 1, k + 1)  # k*k maps needed


def test_offset_differences_equal_a_loop(fine_views):
    for n, (m, v) in fine_views.items():
        k = m.k
        cls = int(v.fine.flatten(1).amax(dim=1).argmax())
        maps = [c[cls] for c in v.class_maps]
        diffs, summary = A.offset_differences(maps, k)
        h = min(x.shape[0] for x in maps)
        w = min(x.shape[1] for x in maps)
        best = (0.0, 0, 0, 0, 0)
        for (dx, dy), mm, d in zip(offsets(k), maps, diffs):
            assert d.shape == (h, w)
            for r in range(h):
                for c in range(w):
                    want = abs(float(mm[r, c]) - float(maps[0][r, c]))
                    assert float(d[r, c]) == pytest.approx(want, abs=1e-6)
                    if want > best[0]:
                        best = (want, dx, dy, r, c)
            assert summary["mean"][(dx, dy)] == pytest.approx(float(d.mean()), abs=1e-6)
        assert not diffs[0].any()  # offset (0, 0) against itself
        assert summary["largest"][0] == pytest.approx(best[0]) and summary["largest"][1:] == best[1:]
        stack = torch.stack([x[:h, :w] for x in maps])
        assert torch.allclose(summary["spread"], stack.amax(0) - stack.amin(0))


# --- figures ----------------------------------------------------------------------------------
def decode_png(uri: str) -> np.ndarray:
    im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert im.mode == "P"
    return np.asarray(im)


def test_layer_strip_draws_every_layer_and_its_top_channels(acts):
    for n, a in acts.items():
        fig = figures.layer_strip_figure(a, pick=1)
        meta = fig.layout.meta["layers"]
        assert [x[0] for x in meta] == [lv.name for lv in a.layers]
        for x, lv in zip(meta, a.layers):
            assert x[1:4] == list(lv.shape) and x[4:6] == [lv.receptive_field, lv.stride]
            assert x[6] == list(lv.channels[:A.STRIP_CHANNELS])
        images = [t for t in fig.data if t.type == "image"]
        assert len(images) == len(a.layers)
        for img, lv in zip(images, a.layers):
            th = figlayers.shrink(lv.thumbs[:A.STRIP_CHANNELS], figlayers.STRIP_SIDE)
            want = figlayers.mosaic(th, 2 if len(th) > 1 else 1, gap=1)
            assert np.array_equal(decode_png(img.source), want), lv.name
        (click,) = [t for t in fig.data if t.name == "layers"]
        assert [d[0] for d in click.customdata] == list(range(len(a.layers)))
        # each layer's header names it, its shape and its receptive field
        (heads,) = [t for t in fig.data if t.name == figures.FIXED_TEXT]
        texts = list(heads.text)
        for lv in a.layers:
            assert any(figlayers.shape_text(lv) in t and f"RF {lv.receptive_field} px" in t
                       for t in texts)
        red = [s for s in fig.layout.shapes if s.line.color == "red"]
        assert len(red) == 1


def test_mosaic_places_each_thumbnail_and_the_palette_is_viridis():
    th = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    canvas = figlayers.mosaic(th, 2, gap=1, below=2)
    assert canvas.shape == (3 + 2, 4 + 1 + 4)
    lv = figlayers.to_levels(th)
    assert np.array_equal(canvas[:3, :4], lv[0]) and np.array_equal(canvas[:3, 5:], lv[1])
    assert (canvas[:, 4] == figlayers.GAP).all() and (canvas[3:] == figlayers.GAP).all()
    assert figlayers.to_levels(np.array([0, 255], np.uint8)).tolist() == [0, 254]
    pal = figlayers.PALETTE
    assert len(pal) == 256 * 3 and pal[-3:] == bytes((255, 255, 255))
    assert tuple(pal[:3]) == (68, 1, 84) and tuple(pal[254 * 3:255 * 3]) == (253, 231, 37)


def test_channel_grid_draws_the_layer_channels_in_order(acts):
    a = acts["imagenet"]
    for lv in (a.layers[3], a.layers[a.outputs[0]]):
        fig = figures.channel_grid_figure(lv)
        assert fig.layout.meta["channels"] == list(lv.channels)
        assert np.allclose(fig.layout.meta["ranking"], lv.ranking)
        (img,) = [t for t in fig.data if t.type == "image"]
        h, w = lv.thumbs.shape[1:]
        canvas = decode_png(img.source)
        below = max(4, round(0.22 * w))
        assert np.array_equal(canvas, figlayers.mosaic(lv.thumbs, 6, gap=2, below=below))
        labels = [x.text for x in fig.layout.annotations]
        assert len(labels) == len(lv.channels)
        assert labels[0].startswith(lv.labels[0].replace("channel ", "#")[:18])


def test_output_maps_figure_holds_the_maps_and_clickable_cells(acts):
    for a in acts.values():
        i, r, c = A.best_cell(a)
        fig = figures.output_maps_figure(a, pick=(i, r, c))
        hms = [t for t in fig.data if t.type == "heatmap"]
        assert len(hms) == len(a.outputs)
        for hm, j in zip(hms, a.outputs):
            assert np.allclose(np.array(hm.z, dtype=float), a.layers[j].probs, atol=1e-5)
        cells = [t for t in fig.data if t.type == "scatter" and t.name.startswith("cells")]
        for t, j in zip(cells, a.outputs):
            h, w = a.layers[j].probs.shape
            assert len(t.customdata) == h * w
            for n in (0, h * w - 1, (h * w) // 2):
                jj, rr, cc = t.customdata[n]
                assert jj == j and (t.x[n], t.y[n]) == (cc, rr)  # drawn at (column, row)
        (picked,) = [t for t in fig.data if t.name == "picked"]
        assert min(picked.x) == c - 0.5 and min(picked.y) == r - 0.5


def test_offset_strip_figure_draws_the_strip(fine_views):
    m, v = fine_views["pictogram"]
    layer = geometry.offset_layer(m.cfg)
    s = A.offset_strip(v, 3, m.k, layer.kernel, True)
    fig = figures.offset_strip_figure(s)
    hms = {t.name: t for t in fig.data if t.type == "heatmap"}
    assert np.allclose(np.array(hms["pre-pool"].z, dtype=float), s.band, atol=1e-5)
    for dx in range(m.k):
        t = hms[f"offset {dx}"]
        assert np.allclose(t.z[0], [val for _, val in s.pooled[dx]], atol=1e-5)
        assert list(t.x[:-1]) == [c for c, _ in s.pooled[dx]]  # bricks start at their columns
        assert t.x[-1] - t.x[-2] == m.k and t.texttemplate == "%{z:.2f}"
    assert np.allclose(hms["interleaved"].z[0], s.fine, atol=1e-5)
    assert hms["interleaved"].texttemplate == "%{z:.2f}"  # one precision in the figure
    # each brick outlined in its offset's colour over the k columns it pools; each interleaved
    # cell's bar in the colour of the offset it came from (lines, segments apart at None)
    lines = {t.name: t for t in fig.data if t.type == "scatter"}
    for dx in range(m.k):
        t = lines[f"bricks dx={dx}"]
        assert t.line.color == figures.SCALE_COLORS[dx]
        starts = [t.x[i] for i in range(0, len(t.x), 6)]
        assert starts == [c for c, _ in s.pooled[dx]]
        assert all(t.x[i + 1] - t.x[i] == m.k for i in range(0, len(t.x), 6))
        bars = lines[f"bars dx={dx}"]
        cols = [round(bars.x[i] - 0.1) for i in range(0, len(bars.x), 3)]
        assert cols and all(c % m.k == dx for c in cols)
    n_bars = sum(len(t.x) // 3 for n, t in lines.items() if n.startswith("bars"))
    assert n_bars == len(s.fine) and not fig.layout.shapes


def test_prob_text_never_rounds_to_certainty():
    assert figures.prob_text(0.99995) == ">0.999" and figures.prob_text(1.0) == "1.000"
    assert figures.prob_text(0.00004) == "<0.001" and figures.prob_text(0.0) == "0.000"
    assert figures.prob_text(0.12345) == "0.123" and figures.prob_text(0.999995, 4) == ">0.9999"
    assert figures.prob_is(0.99995) == "> 0.999" and figures.prob_is(0.00004) == "< 0.001"
    assert figures.prob_is(0.75749) == "= 0.757"


# --- presenter mode and a phone (issue 27) ----------------------------------------------------
def _header_lines(text: str) -> list[str]:
    """A strip header's lines as plain text (its <b> tags off)."""
    return [t.replace("<b>", "").replace("</b>", "") for t in text.split("<br>")]


@pytest.mark.parametrize("look", [dict(width=370, per_row=3), dict(width=1060, char_px=9.5)])
def test_layer_strip_fits_its_headers_into_a_phone_and_a_presenter_width(acts, look):
    """Drawn `width` px wide (one unit one px): every column inside the width, per_row columns
    a row, and every header line short enough for its column at ~7 px a character (13 px
    Source Sans; 1.15x in presenter mode), against the desktop strip's same layers."""
    W = look["width"]
    px = 7.0 * look.get("char_px", 8.2) / 8.2
    for n, a in acts.items():
        fig = figures.layer_strip_figure(a, pick=0, **look)
        desk = figures.layer_strip_figure(a, pick=0)
        assert fig.layout.meta["layers"] == desk.layout.meta["layers"]
        assert list(fig.layout.xaxis.range) == [0, W]
        def rows_of(f) -> list[int]:
            """Layers a row: the layers' boxes grouped by their top."""
            tops: dict[float, int] = {}
            for s in f.layout.shapes:
                if s.line.color == "#888":
                    tops[round(s.y0)] = tops.get(round(s.y0), 0) + 1
            return list(tops.values())

        per_row = look.get("per_row") or max(rows_of(desk))  # presenter: the desktop's rows
        assert max(rows_of(fig)) == min(per_row, len(a.layers))
        assert sum(rows_of(fig)) == len(a.layers)
        cw = W / max(rows_of(fig))
        boxes = [s for s in fig.layout.shapes if s.line.color == "#888"]
        assert all(0 <= s.x0 < s.x1 <= W for s in boxes)
        assert all(s.x1 - s.x0 == pytest.approx(cw - 4) for s in boxes)
        (text,) = [t for t in fig.data if t.name == figures.FIXED_TEXT]
        heads = list(zip(text.text, text.y))  # (text, y of its top) a header
        assert len(heads) == len(a.layers)
        for (h, _), lv in zip(heads, a.layers):
            lines = _header_lines(h)
            for line in lines:
                assert len(line) * px <= cw - 8, (n, lv.name, line)
            # the receptive field and stride stay on the header, split only where needed
            assert " ".join(lines).count(f"RF {lv.receptive_field} px") == 1
            assert f"stride {lv.stride}" in " ".join(lines)
        # the header's text fits above the thumbnails: lines x 13 px font < header room
        images = [t for t in fig.data if t.type == "image"]
        for (h, hy), img, box in zip(heads, images, boxes):
            assert hy + len(_header_lines(h)) * 13 * 1.15 <= img.y0, (n, h)


def test_channel_grid_on_a_phone_keeps_its_labels_inside_their_columns(acts):
    a = acts["imagenet"]
    for lv in (a.layers[3], a.layers[a.outputs[0]]):
        fig = figures.channel_grid_figure(lv, n=12, cols=3, width=370)
        assert fig.layout.meta["channels"] == list(lv.channels[:12])
        for note in fig.layout.annotations:
            assert len(note.text) * 7 <= 370 / 3, note.text
        assert "<br>" in fig.layout.title.text  # two lines at 370 px
        # the grid at 370 px wide, not the desktop's 960 px height
        desk = figures.channel_grid_figure(lv, n=12, cols=3)
        assert fig.layout.height < desk.layout.height


def test_output_maps_on_a_phone_stack_the_strides(acts):
    a = acts["objects"]
    desk = figures.output_maps_figure(a, pick=(a.outputs[0], 0, 0))
    fig = figures.output_maps_figure(a, pick=(a.outputs[0], 0, 0), phone=True)
    hd = [t for t in desk.data if t.type == "heatmap"]
    hp = [t for t in fig.data if t.type == "heatmap"]
    assert len(hp) == len(a.outputs) == 3
    for x, y in zip(hd, hp):
        assert np.array_equal(np.array(x.z, dtype=float), np.array(y.z, dtype=float))
    # one column, top to bottom in the order of the outputs, each the full width
    doms = [(fig.layout[f"xaxis{i + 1 if i else ''}"].domain,
             fig.layout[f"yaxis{i + 1 if i else ''}"].domain) for i in range(3)]
    assert all(tuple(x) == (0.0, 1.0) for x, _ in doms)
    assert doms[0][1][0] > doms[1][1][1] and doms[1][1][0] > doms[2][1][1]
    assert fig.layout.coloraxis.colorbar.orientation == "h"
    (red,) = [t for t in fig.data if t.name == "picked"]
    assert red.xaxis == "x"
