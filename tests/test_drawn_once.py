"""figures.drawn_once: the house figures carry Streamlit's look themselves, so that the browser
draws them once (tests/test_browser_drawn_once.py counts the paints). Checked here without a
browser: the theme's values are filled in only where a figure has not set them (compared with a
plain recursive merge), the JSON has no template and no typed arrays (plain lists of the same
values), and the revision names the content. Random figures, seeded.
"""

from __future__ import annotations

import json
import random
import re

import numpy as np
import plotly.graph_objects as go
import torch

from overfeat.app import figures
from overfeat.app import state as appstate
from overfeat.app.figures import base
from overfeat.multiscale import Settings, analyze
from overfeat.predict import load_model


def merged(defaults: dict, preset: dict) -> dict:
    """Naive: preset's values, and defaults' where preset has none (recursively)."""
    out = dict(preset)
    for k, v in defaults.items():
        if isinstance(v, dict):
            out[k] = merged(v, preset.get(k, {}) if isinstance(preset.get(k), dict) else {})
        elif k not in preset:
            out[k] = v
    return out


def leaves(d: dict, path: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(leaves(v, path + k + "."))
        else:
            out[path + k] = v
    return out


PRESETS = {  # values a figure may set itself, each different from the theme's
    "font.size": 17, "font.color": "#123456", "title.font.size": 21, "title.x": 0.5,
    "legend.borderwidth": 2, "margin.l": 33, "margin.pad": 1, "paper_bgcolor": "#fafafa",
    "hoverlabel.font.size": 15, "colorway": ["#111111", "#222222"],
}
AXIS_PRESETS = {"showgrid": True, "automargin": False, "tickfont.size": 9, "gridcolor": "#ff0000",
                "title.standoff": 3}


def nest(flat: dict) -> dict:
    out: dict = {}
    for path, v in flat.items():
        d = out
        *head, last = path.split(".")
        for k in head:
            d = d.setdefault(k, {})
        d[last] = v
    return out


def test_theme_values_fill_only_what_a_figure_left_unset():
    rng = random.Random(0)
    for _ in range(25):
        preset = {k: v for k, v in PRESETS.items() if rng.random() < 0.5}
        xpre = {k: v for k, v in AXIS_PRESETS.items() if rng.random() < 0.5}
        ypre = {k: v for k, v in AXIS_PRESETS.items() if rng.random() < 0.5}
        fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]), layout=nest(preset))
        fig.update_xaxes(**nest(xpre))
        fig.update_yaxes(**nest(ypre))
        fig = base.drawn_once(fig)
        lay = json.loads(fig.to_json())["layout"]
        want = leaves(merged(base.THEME_LAYOUT, nest(preset)))
        got = leaves(lay)
        assert {k: got.get(k) for k in want} == want
        for name, theme, pre in (("xaxis", base.THEME_XAXIS, xpre), ("yaxis", base.THEME_YAXIS, ypre)):
            want = leaves(merged(theme, nest(pre)))
            got = leaves(lay[name])
            assert {k: got.get(k) for k in want} == want


def test_every_axis_and_colour_axis_of_subplots_is_themed():
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=3)
    for i in range(6):
        fig.add_trace(go.Heatmap(z=[[0, 1], [1, 0]], coloraxis="coloraxis"), row=i // 3 + 1,
                      col=i % 3 + 1)
    fig.update_layout(coloraxis2=dict(cmin=0))
    fig = base.drawn_once(fig)
    lay = json.loads(fig.to_json())["layout"]
    axes = [k for k in lay if k.startswith(("xaxis", "yaxis"))]
    assert len(axes) == 12
    for k in axes:
        assert lay[k]["gridcolor"] == base.THEME_LINES and lay[k]["automargin"] is True
    for k in ("coloraxis", "coloraxis2"):
        assert lay[k]["colorbar"]["thickness"] == 16
        assert lay[k]["colorscale"] == [[i / 9, c] for i, c in enumerate(base.THEME_SEQUENTIAL)]


def test_no_template_no_typed_arrays_and_the_same_values():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(1, 40))
        x, y = rng.integers(-100, 100, n), rng.random(n)
        z = rng.random((int(rng.integers(1, 6)), int(rng.integers(1, 6))))
        cd = rng.integers(0, 9, (n, 3))
        fig = go.Figure([go.Scatter(x=x, y=y, customdata=cd, marker=dict(color=y, size=x % 7 + 1)),
                         go.Heatmap(z=z)])
        assert "bdata" in fig.to_json()  # plotly.py sends numpy arrays as typed arrays
        fig = base.drawn_once(fig)
        text = fig.to_json()
        assert "bdata" not in text
        d = json.loads(text)
        assert "template" not in d["layout"]
        s, h = d["data"]
        assert s["x"] == x.tolist() and s["y"] == y.tolist() and s["customdata"] == cd.tolist()
        assert s["marker"]["color"] == y.tolist() and s["marker"]["size"] == (x % 7 + 1).tolist()
        assert h["z"] == z.tolist()
        assert h["colorscale"] == [[i / 9, c] for i, c in enumerate(base.THEME_SEQUENTIAL)]


def test_the_revision_names_the_content():
    def build(v: float) -> go.Figure:
        return base.drawn_once(go.Figure(go.Scatter(x=np.arange(4), y=np.array([0, 1, 2, v]))))

    a, b, c = build(3.0), build(3.0), build(3.5)
    assert a.layout.datarevision == b.layout.datarevision != c.layout.datarevision
    # the house style ends with it: a styled figure is drawn once too
    styled = base.styled(go.Figure(go.Scatter(x=np.arange(3), y=np.arange(3))))
    assert styled.layout.datarevision and "bdata" not in styled.to_json()


def test_presenter_mode_grows_text_sized_to_its_box_a_little():
    """Annotations and text traces named FIXED_TEXT (the layer strip's headers, the pipeline's
    boxes) grow by at most 1.15 in presenter mode; other annotations to at least FONT, times
    PRESENTER_SCALE; other text traces keep their size."""
    fig = go.Figure([go.Scatter(x=[0], y=[0], mode="text", text=["a"], name=base.FIXED_TEXT,
                                textfont=dict(size=13)),
                     go.Scatter(x=[1], y=[1], mode="text", text=["b"], name="other",
                                textfont=dict(size=13))])
    fig.add_annotation(text="fixed", name=base.FIXED_TEXT, font=dict(size=20), x=0, y=0)
    fig.add_annotation(text="label", font=dict(size=10), x=1, y=1)
    for presenter in (False, True):
        k = base.PRESENTER_SCALE if presenter else 1.0
        d = json.loads(base.styled(go.Figure(fig), presenter=presenter).to_json())
        sizes = [t["textfont"]["size"] for t in d["data"]]
        notes = [a["font"]["size"] for a in d["layout"]["annotations"]]
        assert sizes == [round(13 * min(k, 1.15)), 13]
        assert notes == [round(20 * min(k, 1.15)), round(max(10, base.FONT) * k)]


# --- Plotly must not change a figure's ranges as it draws ------------------------------------
# Streamlit's chart draws a new figure twice (Plotly.react with the figure, then with a JSON
# copy Streamlit made of it at mount, its width set). Where an image's axes are tied by
# scaleanchor and constrained by their range (Plotly's default), the first draw widens one
# axis's range to keep square pixels and writes it back into the figure; a copy made before
# that write differs from what is drawn, and the second Plotly.react draws every trace again.
# Constrained by their domain instead, Plotly's react compares the copy's domain with the
# domain it was given (_inputDomain) and draws nothing. Measured in Chromium: a Scales class
# change painted the 6 maps twice in 21 of 122 mounts (CI failed on it), 0 in 26 after
# (docs/BENCHMARKS.md, "A second Plotly.react that drew again").
def image_axes_of(fig: go.Figure) -> list[tuple[str, dict]]:
    """The axes of `fig` tied to another by scaleanchor, and the axes they are tied to."""
    lay = fig.to_plotly_json()["layout"]
    axes = {k: v for k, v in lay.items() if re.fullmatch(r"[xy]axis\d*", k)}
    tied = set()
    for name, ax in axes.items():
        if ax.get("scaleanchor"):
            tied |= {name, ax["scaleanchor"].replace("x", "xaxis").replace("y", "yaxis")}
    return [(n, axes.get(n, {})) for n in sorted(tied)]


def test_image_figures_keep_their_ranges_when_drawn():
    scene = appstate.make_scene("det", 0, 0)[0]
    a = analyze(load_model()[0], scene, Settings(scales=(0, 2), flips=False))
    bd = figures.backdrop(scene, figures.PANEL_SIDE)
    built = {
        "scales": figures.scale_maps_figure(a, bd, 0, clickable=True),
        "window": figures.window_figure(bd, torch.tensor([10., 20., 110., 120.]),
                                        torch.tensor([15., 25., 100., 110.]), "a window"),
        "detections": figures.labelled_marks_figure(bd, []),
    }
    # the Offsets page's maps: an autorange is a range Plotly writes back too
    v = next(v for v in a.views if v.scale == 2)
    built["fine/coarse"] = figures.fine_coarse_figure(v, 0, a.k, a.class_names[0])
    for name, fig in built.items():
        tied = image_axes_of(fig)
        assert tied, name
        for axis, props in tied:
            assert props.get("constrain") == "domain", (name, axis, props.get("constrain"))
            assert props.get("autorange") in (None, False), (name, axis, props.get("autorange"))
            assert len(props.get("range") or ()) == 2, (name, axis)
    # the explicit ranges are the maps' own extents: each map's cell edges
    fc = built["fine/coarse"]
    for trace in (t for t in fc.data if t.type == "heatmap"):
        xa = fc.layout["xaxis" + trace.xaxis[1:]]
        ya = fc.layout["yaxis" + trace.yaxis[1:]]
        assert list(xa.range) == [min(trace.x), max(trace.x)]
        assert list(ya.range) == [max(trace.y), min(trace.y)]
