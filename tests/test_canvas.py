"""The figures' Canvas (overfeat/app/figures/base.py): a figure built as plain dicts, with
make_subplots' grid reused per shape, must equal the figure plotly.py's own objects build from
the same calls (CANVAS_REFERENCE, the deliberately slow reference): on random calls, and on the
figures built with it (the Scales and Offsets maps, a pyramid net's strides, the window, the
Architecture page's layer strip, channels and outputs, the Regressor's raw boxes, a Greedy vs
NMS method's boxes), for random scenes, classes, picks, boxes and layouts.
"""

from __future__ import annotations

import json
import random

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from overfeat import activations
from overfeat.app import figures
from overfeat.app import state as appstate
from overfeat.app.figures import base
from overfeat.boxes import Detections
from overfeat.models import registry as zoo
from overfeat.multiscale import ALL_SCALES, BoxTable, Settings, analyze
from overfeat.predict import load_model


def as_json(fig: go.Figure) -> str:
    """What the browser gets of a figure (no template: styled removes it)."""
    d = fig.to_plotly_json()
    d["layout"].pop("template", None)
    return json.dumps(d, sort_keys=True,
                      default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def both(build) -> tuple[str, str]:
    """build() through plotly.py's objects (the reference) and through the Canvas."""
    base.CANVAS_REFERENCE = True
    try:
        ref = as_json(build())
    finally:
        base.CANVAS_REFERENCE = False
    return ref, as_json(build())


def random_calls(seed: int):
    """A random figure: a grid (or none), traces on random cells, axis updates on one cell or
    all, layout updates with nested dicts, magic underscores and None (unset), annotations,
    layout images on random cells."""
    rng = random.Random(seed)
    rows, cols = rng.randint(1, 3), rng.randint(1, 3)
    grid = rng.random() < 0.8
    titles = [f"panel {i}" for i in range(rng.randint(0, rows * cols))] if grid else None
    spacing = ({"horizontal_spacing": rng.choice([0.02, 0.05])} if grid and cols > 1 else {})
    plan = []
    for _ in range(rng.randint(3, 12)):
        r, c = rng.randint(1, rows), rng.randint(1, cols)
        cell = {"row": r, "col": c} if grid else {}
        kind = rng.choice(["heatmap", "scatter", "xaxes", "yaxes", "layout", "annotation",
                           "annotations", "image"])
        v = round(rng.uniform(-5, 5), 3)
        if kind == "heatmap":
            z = np.round(np.random.default_rng(seed).random((3, 4)), 3)
            plan.append(("add_trace", (go.Heatmap(z=z, coloraxis="coloraxis", name=f"h{v}"),),
                         cell))
        elif kind == "scatter":
            plan.append(("add_trace", (go.Scatter(x=[v, v + 1], y=[0, v], mode="lines",
                                                  line=dict(color="red", width=2)),), cell))
        elif kind in ("xaxes", "yaxes"):
            kw = rng.choice([{"range": [v, v + 10], "showgrid": False},
                             {"title_text": f"t{v}", "ticks": ""},
                             {"scaleanchor": None, "zeroline": False},
                             {"title": {"text": "a", "font": {"size": 11}}}])
            plan.append((f"update_{kind}", (), {**kw, **(cell if rng.random() < 0.7 else {})}))
        elif kind == "layout":
            kw = rng.choice([{"height": int(300 + 100 * abs(v)), "margin": {"l": 5, "t": 40}},
                             {"coloraxis": {"colorscale": rng.choice(["Viridis", "Greys"]),
                                            "cmin": 0, "cmax": 1,
                                            "colorbar": {"title": {"text": "p"}}}},
                             {"plot_bgcolor": "#d4d4d4", "meta": {"fit": True, "a_b": v}},
                             {"clickmode": None, "dragmode": False},
                             {"title_font_size": 13, "legend": {"orientation": "h"}}])
            plan.append(("update_layout", (), kw))
        elif kind == "annotation":
            plan.append(("add_annotation", (), {"text": f"<b>{v}</b>", "xref": "paper",
                                                "yref": "paper", "x": 0, "y": 1,
                                                "showarrow": False, "font_size": 15}))
        elif kind == "image":  # a layout image on a cell's axes (figures.add_image)
            plan.append(("add_layout_image", (), {
                "source": "data:image/png;base64,AA", "xref": "x", "yref": "y", "x": 0, "y": 0,
                "sizex": 10 + abs(v), "sizey": 5, "opacity": 0.5, "layer": "below", **cell}))
        else:
            plan.append(("update_annotations", (), {"font_size": 11}))

    def build() -> go.Figure:
        fig = (base.Canvas(rows=rows, cols=cols, subplot_titles=titles or None, **spacing)
               if grid else base.Canvas())
        for name, args, kw in plan:
            getattr(fig, name)(*args, **kw)
        return fig.figure()

    return build


@pytest.mark.parametrize("seed", range(40))
def test_canvas_calls_build_the_reference_figure(seed):
    ref, fast = both(random_calls(seed))
    assert fast == ref


@pytest.fixture(scope="module")
def demo():
    return load_model()[0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_map_figures_equal_their_reference(demo, seed):
    rng = random.Random(seed)
    im = appstate.make_scene(rng.choice(["loc", "det"]), 100 + seed, 0)[0]
    a = analyze(demo, im, Settings(scales=tuple(sorted(rng.sample(range(6), 3))), flips=True))
    bd = figures.backdrop(im, figures.PANEL_SIDE)
    cls = rng.randrange(len(a.class_names))
    v = rng.choice([x for x in a.views if x.level == 0])
    hf, wf = v.fine.shape[-2:]
    pick = (rng.randrange(hf), rng.randrange(wf))
    phone, stretch = rng.random() < 0.5, rng.random() < 0.5
    columns = rng.choice([None, 3])
    name = a.class_names[cls]
    acts = activations.compute(demo, im)
    lv = acts.layers[rng.randrange(len(acts.layers))]
    n = 40
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 200
    box = torch.cat([xy, xy + 20 + 60 * torch.rand(n, 2, generator=g, dtype=torch.float64)], 1)
    table = BoxTable(boxes=box, scores=torch.rand(n, generator=g),
                     labels=torch.randint(0, len(a.class_names), (n,), generator=g),
                     scale=torch.randint(0, len(ALL_SCALES), (n,), generator=g),
                     flip=torch.rand(n, generator=g) < 0.5,
                     offset=torch.randint(0, 9, (n,), generator=g),
                     row=torch.randint(0, 9, (n,), generator=g),
                     col=torch.randint(0, 9, (n,), generator=g), windows=box.clone(),
                     level=torch.zeros(n, dtype=torch.long))
    dets = Detections(box[:6], torch.rand(6, generator=g, dtype=torch.float64) * 50,
                      torch.randint(0, 3, (6,), generator=g))
    truth = [{"name": a.class_names[0], "box": tuple(box[0].tolist())},
             {"name": a.class_names[1], "box": (150.0, 150.0, 200.0, 200.0)}]
    status = [rng.choice(["TP", "FP"]) for _ in range(6)]
    lacking = [rng.choice([[], ["nms"], ["nms", "batched nms"]]) for _ in range(6)]
    shown = torch.tensor(sorted(rng.sample(range(n), 25)))
    builds = {
        "scales": lambda: figures.scale_maps_figure(
            a, bd, cls, flip=v.flip, stretch=stretch, pick=(v.scale, *pick), clickable=True,
            phone=phone, columns=columns),
        "fine/coarse": lambda: figures.fine_coarse_figure(v, cls, a.k, name, pick=pick,
                                                          stretch=stretch, phone=phone),
        "window": lambda: figures.window_figure(bd, v.windows[pick], None, f"cell {pick}",
                                                phone=phone),
        "layer strip": lambda: figures.layer_strip_figure(acts, pick=1,
                                                          width=390 if phone else 960),
        "channels": lambda: figures.channel_grid_figure(lv, width=390 if phone else 960),
        "outputs": lambda: figures.output_maps_figure(acts, pick=(acts.outputs[0], 0, 0),
                                                      stretch=stretch, phone=phone),
        "raw boxes": lambda: figures.boxes_figure(bd, table, shown, a.class_names, a.k,
                                                  pick=int(shown[0]), title="25 raw boxes",
                                                  phone=phone),
        "method": lambda: figures.method_marks_figure(bd, dets, a.class_names, status, truth,
                                                      [1], lacking, title="greedy", phone=phone),
    }
    for what, build in builds.items():
        ref, fast = both(build)
        assert fast == ref, what


@pytest.mark.parametrize("seed", [4, 5])
def test_each_panel_has_the_image_under_it_on_its_own_axes(demo, seed):
    """figures.add_image: one layout image per map panel, on the axes of that panel's heat map,
    spanning the whole image ([0, W] x [0, H] in pixels, from its top left), below the traces;
    the panels' axes hold exactly the image (image_axes), y pointing down."""
    rng = random.Random(seed)
    im = appstate.make_scene("det", 200 + seed, 0)[0]
    scales = tuple(sorted(rng.sample(range(6), rng.randint(2, 6))))
    a = analyze(demo, im, Settings(scales=scales, flips=False))
    bd = figures.backdrop(im, figures.PANEL_SIDE)
    fig = figures.scale_maps_figure(a, bd, 0, phone=rng.random() < 0.5).to_dict()
    heat = [t for t in fig["data"] if t["type"] == "heatmap"]
    images = fig["layout"]["images"]
    assert len(heat) == len(images) == len(scales)
    W, H = im.size
    for t, img in zip(heat, images):
        xa, ya = t.get("xaxis", "x"), t.get("yaxis", "y")
        assert (img["xref"], img["yref"]) == (xa, ya)
        assert (img["x"], img["y"], img["sizex"], img["sizey"]) == (0, 0, W, H)
        assert (img["xanchor"], img["yanchor"], img["layer"]) == ("left", "top", "below")
        assert img["source"] == bd.uri
        lay = fig["layout"]
        assert lay["xaxis" + xa[1:]]["range"] == [0, W] and lay["yaxis" + ya[1:]]["range"] == [H, 0]


def test_strides_figure_of_a_pyramid_net_equals_its_reference():
    net = zoo.load("objects")
    im = appstate.make_scene("det", 7, 0)[0]
    a = analyze(net, im, Settings(scales=(0,), flips=False, top_k=5, min_score=0.4))
    bd = figures.backdrop(im, figures.PANEL_SIDE)
    cls = a.top(1)[0][0]
    acts = activations.compute(net, im)
    for phone in (False, True):
        ref, fast = both(lambda: figures.level_maps_figure(a, bd, cls, 0, pick=(1, 2, 3),
                                                           clickable=True, phone=phone))
        assert fast == ref, phone
        ref, fast = both(lambda: figures.output_maps_figure(acts, pick=(acts.outputs[0], 0, 0),
                                                            phone=phone))
        assert fast == ref, ("outputs", phone)
