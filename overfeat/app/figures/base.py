"""The figures' common ground: the image backdrop, colours, box outlines and the house style.

Images are drawn from a Backdrop (a small JPEG thumbnail) stretched over the original image's
pixel coordinates, so boxes and windows are plotted in original pixels.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from _plotly_utils.basevalidators import ColorscaleValidator
from plotly.subplots import make_subplots
from PIL import Image
from torch import Tensor

from ..state import data_uri


# Six scales, six colours (colour-blind friendly, Okabe-Ito); classes use the predict palette.
SCALE_COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9"]
CLASS_COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
                "#bfef45", "#469990", "#9a6324", "#800000", "#808000", "#000075", "#a9a9a9"]
MAP_SCALE = "Viridis"
DEFAULT_MAX_BOXES = 300  # boxes drawn at once unless the user asks for all


@dataclass(frozen=True)
class Backdrop:
    """The image as drawn under the figures: a thumbnail stretched to width x height."""

    uri: str  # data:image/jpeg;base64,...
    width: int  # original image size: figure coordinates are original pixels
    height: int


def backdrop(im: Image.Image, max_side: int = 560) -> Backdrop:
    uri, _ = data_uri(im, max_side)  # a layout image stretches it (add_image): no pixel grid
    return Backdrop(uri=uri, width=im.size[0], height=im.size[1])


def class_color(c: int) -> str:
    return CLASS_COLORS[c % len(CLASS_COLORS)]


def add_image(fig: go.Figure, bd: Backdrop, row: int | None = None, col: int | None = None,
              opacity: float = 1.0) -> None:
    """The image under a figure (or under one of its subplots): a layout image spanning
    [0, W] x [0, H] in the axes' pixels, below the traces. The axes' ranges and aspect come
    from image_axes, which every figure with an image calls.

    A layout image, not a go.Image trace: Plotly draws an image trace through a canvas (the
    picture decoded, drawn and kept for hover, which the backdrop skips) and gives it a trace's
    defaults and calc; a layout image is one <image> element. The Scales page's six panels
    took 119 -> 93 ms to draw in a fresh Chromium tab (median of 6; issue 27)."""
    fig.add_layout_image(source=bd.uri, xref="x", yref="y", x=0, y=0, sizex=bd.width,
                         sizey=bd.height, xanchor="left", yanchor="top", sizing="stretch",
                         layer="below", opacity=opacity, row=row, col=col)


def image_axes(fig: go.Figure, bd: Backdrop, row: int | None = None, col: int | None = None,
               pad: float = 0.0) -> None:
    """The image's axes: its pixels (a pad's fraction beyond each edge), square pixels.

    Constrained by their domain, not their range (Plotly's default): to keep square pixels
    Plotly widens the range it was given and writes the widened range back into the figure.
    Streamlit's chart draws a new figure twice, the second time from a copy it made at mount;
    a copy made before that write differs from what is drawn, and Plotly drew every trace
    again (the Scales maps in about 1 class change in 6, in Chromium). A shrunk domain it
    compares with the domain it was given, and draws nothing (docs/BENCHMARKS.md)."""
    px, py = pad * bd.width, pad * bd.height
    kw = {} if row is None else {"row": row, "col": col}
    fig.update_xaxes(range=[-px, bd.width + px], showgrid=False, zeroline=False,
                     constrain="domain", **kw)
    fig.update_yaxes(range=[bd.height + py, -py], showgrid=False, zeroline=False,
                     scaleanchor="x" if row is None else None, constrain="domain", **kw)


# The y axis's tick labels of an image figure ("0" to "300": image pixels) at the theme's 12 px
# font: about TICK_CHAR px a digit and TICK_PAD px for the tick and its gap. Plotly's automargin
# grew a zero left margin to 27 px for three digits (Chromium, 1400x1000, issue 27); a margin
# that is already wide enough it keeps, and the figure is drawn once, not twice (room).
TICK_CHAR, TICK_PAD = 7, 6


def y_label_room(bd: Backdrop, pad: float = 0.0) -> int:
    """px left of an image figure's plot for its y tick labels: the digits of the largest value
    its y axis shows (image_axes: up to H plus the pad), at TICK_CHAR px each, and TICK_PAD. A
    label wider than that (a negative tick, if the pad is larger than the tick step) still
    grows the margin: one more draw, as before."""
    return TICK_CHAR * len(str(int(bd.height * (1 + pad)))) + TICK_PAD


X_LABEL_ROOM = 26  # px under an image figure for its x tick labels (automargin grew 0 to 25)


def image_margin(bd: Backdrop, pad: float = 0.0, top: int = 40) -> dict:
    """An image figure's margins: room for its y tick labels on the left (y_label_room) and its
    x tick labels below (X_LABEL_ROOM; legend_below makes room for a legend under them), `top`
    px above, none right."""
    return dict(l=y_label_room(bd, pad), r=0, t=top, b=X_LABEL_ROOM)


def fitted_height(bd: Backdrop, width: int, extra: int = 110) -> int:
    """The height of a figure holding the image (aspect locked) drawn `width` px wide, with
    `extra` px for its title and legend: a fixed height left blank bands above and below a
    landscape image. Marked in layout.meta so that styled() does not stretch it in presenter
    mode (the width, not the height, sets the image's size there)."""
    return round(width * bd.height / bd.width) + extra  # the axes' padding keeps the aspect


# px under an image for its legend (one row, horizontal, just below the plot): what Plotly's
# automargin grew a zero bottom margin to in Chromium at 1400x1000 (45 to 50 px on a scene and
# a photo), with a little to spare. Given from the start, the figure is drawn once instead of
# twice (room); a legend of two rows still grows it.
LEGEND_ROOM = 52
# A legend under an image with its x axis at the bottom: the axis's ticks and labels first, then
# the legend (legend_below). Plotly places a legend in units of the plot's height, so a legend
# at y = -0.04 sat on the first tick labels ("0", "100") of every such figure (issue 27).
TICK_ROOM = 40  # px under the plot: pad 8, tick 5, labels at presenter mode's font, a gap
# px a row of a horizontal legend takes (12 px text and its symbol): automargin grew 24 px a
# row to 27 (one row), 27.5 (two) and 28.3 (three), and drew the figure again (Chromium,
# 1400x1000)
LEGEND_ROW = 29
HALF = 470  # px: a figure in one of two columns of the 1000 px main column
FULL = 960  # px: a figure across the main column


def legend_rows(fig: go.Figure, width: int) -> int:
    """How many rows a horizontal legend of fig's entries takes `width` px wide (an entry:
    its symbol, 40 px, and its name at about 6.5 px a character), packed left to right."""
    rows, used = 0, width
    for t in fig.data:
        if getattr(t, "showlegend", False) is False or not t.name:
            continue
        w = 40 + round(6.5 * len(t.name))
        if used + w > width:
            rows, used = rows + 1, 0
        used += w
    return rows


def legend_below(fig: go.Figure, width: int) -> go.Figure:
    """A horizontal legend under the x axis's labels, not over them: TICK_ROOM px below the
    plot, in a bottom margin that holds it (LEGEND_ROW px a row, legend_rows at `width` px,
    the figure's nominal width). Call it after the figure's height and top margin are set (a
    fitted_height's `extra` holds the title, the labels and one or two legend rows); a figure
    with no legend entry is left as it is."""
    rows = legend_rows(fig, width)
    if not rows:
        return fig
    lay = fig.layout
    b = TICK_ROOM + LEGEND_ROW * rows
    plot = (lay.height or 450) - (lay.margin.t if lay.margin.t is not None else 100) - b
    fig.update_layout(margin_b=b, legend=dict(orientation="h", x=0, xanchor="left",
                                              y=-TICK_ROOM / max(plot, 1), yanchor="top"))
    return fig


# Figure payloads: a float32 turned into JSON prints 17 digits ("0.95876532793045044"); the
# figures send 7 significant digits for pixels and 6 for map values (float32 holds about 7),
# half the bytes with nothing visible lost (hover shows 3 decimals). Each panel of a
# multi-panel figure (six scales) draws the image from a smaller thumbnail, PANEL_SIDE px: it is
# drawn about 450 px wide.
PANEL_SIDE = 400


def _significant(t: Tensor, digits: int) -> list:
    fmt = f"%.{digits}g"
    a = t.detach().double().cpu().numpy()
    return np.vectorize(lambda x: float(fmt % x), otypes=[float])(a).tolist() if a.size else a.tolist()


def pixels(t: Tensor) -> list:
    """Coordinates (image pixels) for a figure, 7 significant digits."""
    return _significant(t, 7)


def values(t: Tensor) -> list:
    """Map values (probabilities, activations) for a figure, 6 significant digits."""
    return _significant(t, 6)


def prob_text(p: float, digits: int = 3) -> str:
    """A probability written the one way a panel writes it: `digits` decimals, except that a
    value short of 1 (or above 0) never reads as 1.000 (0.000): '>0.999' ('<0.001') instead."""
    text = f"{p:.{digits}f}"
    step = 10 ** -digits
    if p < 1 and float(text) >= 1:
        return f">{1 - step:.{digits}f}"
    if p > 0 and float(text) <= 0:
        return f"<{step:.{digits}f}"
    return text


def prob_is(p: float, digits: int = 3) -> str:
    """'= 0.757', or '> 0.999' ('< 0.001') for a value prob_text writes as a bound: the words
    after "p(dog)" in a title or a list."""
    text = prob_text(p, digits)
    return f"{text[0]} {text[1:]}" if text[0] in "<>" else f"= {text}"


def rect_path(boxes: Tensor) -> tuple[list, list]:
    """[N, 4] boxes -> x, y lists drawing all rectangles in one line trace (None-separated)."""
    xs, ys = [], []
    for x1, y1, x2, y2 in pixels(boxes.reshape(-1, 4)):
        xs += [x1, x2, x2, x1, x1, None]
        ys += [y1, y1, y2, y2, y1, None]
    return xs, ys


def box_trace(box: Tensor, color: str, name: str, width: float = 3, dash: str = "solid",
              hover: str | None = None, showlegend: bool = True) -> go.Scatter:
    xs, ys = rect_path(box.reshape(1, 4))
    return go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=width, dash=dash),
                      name=name, hoverinfo="text" if hover else "skip", text=hover,
                      showlegend=showlegend)


def click_marker(size: float, symbol: str = "square") -> dict:
    """The marker of a click layer: invisible points that make a heat map's cells (or a
    diagram's boxes) clickable, since Plotly selects points, never heat-map cells. Plotly draws
    each marker as its own SVG path (~55 us a point a draw, and Streamlit draws a figure twice
    when it appears: 1,674 cells on the Scales page cost ~0.2 s a visit). `maxdisplayed=1` draws
    one of them: hovering and clicking use the trace's data, not the drawn paths, so every
    point still answers a hover and a click (tests/test_browser_layers.py clicks them)."""
    return dict(size=size, symbol=symbol, opacity=0, color="white", maxdisplayed=1)


FONT = 14  # px: readable from the back of a room at 1400 px wide (Plotly's default is 12)
PRESENTER_SCALE = 1.4  # presenter mode: fonts and heights this much larger


MODEBAR = 34  # px: the height of Plotly's modebar
# The name of an annotation or text trace whose text is sized to fit a drawn box (the pipeline's
# boxes, the layer strip's headers): presenter mode grows it a little, not by PRESENTER_SCALE.
FIXED_TEXT = "fixed"


def styled(fig: go.Figure, presenter: bool = False) -> go.Figure:
    """The house style every page applies before drawing: fonts at least FONT px (subplot
    titles included), titles left-aligned (the modebar sits top right, so it no longer covers
    them) with room above the plot; in presenter mode fonts and heights PRESENTER_SCALE larger.
    Then Streamlit's look, written in (drawn_once).

    All on the figure's plain dict (see drawn_once): read and written one by one through
    plotly.py's objects, the annotations' fonts alone cost ~15 ms a figure (the layer strip has
    ~40 annotations; ~70 ms of the Architecture page's run on a new image)."""
    k = PRESENTER_SCALE if presenter else 1.0
    base = round(FONT * k)
    d = _plain_figure(fig)
    lay = d["layout"]
    lay.setdefault("font", {})["size"] = base
    title = lay.get("title")
    margin = lay.setdefault("margin", {})
    t = margin["t"] if margin.get("t") is not None else 40
    if isinstance(title, dict) and title.get("text"):
        # The title sits in its own band under the modebar (MODEBAR px, top right), which
        # otherwise covers a long title in a half-width figure.
        title.update(x=0.0, xanchor="left", yref="container", y=1.0, yanchor="top")
        title.setdefault("pad", {})["t"] = MODEBAR
        title.setdefault("font", {})["size"] = base + 1
        t = max(t, MODEBAR + round(1.6 * (base + 1)))
    margin["t"] = max(t, round(40 * k))
    for a in lay.get("annotations") or ():
        font = a.setdefault("font", {})
        size = font["size"] if font.get("size") is not None else 12
        if a.get("name") == FIXED_TEXT:  # text sized to fit a drawn box (the pipeline): grow a little
            font["size"] = round(size * min(k, 1.15))
        else:  # subplot titles and labels
            font["size"] = round(max(size, FONT) * k)
    for tr in d["data"]:  # text traces sized to fit drawn boxes (the layer strip's headers)
        if tr.get("name") == FIXED_TEXT and tr.get("textfont", {}).get("size") is not None:
            tr["textfont"]["size"] = round(tr["textfont"]["size"] * min(k, 1.15))
    meta = lay.get("meta")
    fitted = isinstance(meta, dict) and meta.get("fit")
    if presenter and lay.get("height") and not fitted:
        lay["height"] = round(lay["height"] * k)
    return _themed(d)


# --- Streamlit's look, drawn once ------------------------------------------------------------
# st.plotly_chart's default theme ("streamlit") restyles a figure in the browser after its first
# draw: it copies the figure through JSON and adds a new template object, and Plotly.react,
# finding a new template (and data arrays that are new objects), draws the whole figure again.
# Every figure of the app was drawn twice each time it appeared, on a page switch as on a class
# change (measured: two bursts of SVG changes, 50 to 70 ms apart; Plotly's own "afterplot"
# events). So the pages draw with theme=None (common.chart) and each figure carries the theme's
# values itself, only where it has not set them (as a template would): the values below are
# what Streamlit 1.67's theme resolves to with this app's config (read from a drawn figure's
# template in Chromium). With no template, the data in plain lists (plotly.py sends numpy
# arrays as typed arrays, which Plotly.react cannot compare), layout.meta in a list and a
# `datarevision` that names the figure's content, the browser's second pass finds nothing to
# draw.
THEME_FONT = '"Source Sans", sans-serif'
THEME_TEXT, THEME_TITLE, THEME_LINES = "#808495", "#2F2D2B", "#e6eaf1"
THEME_SEQUENTIAL = ["#e4f5ff", "#c7ebff", "#a6dcff", "#83c9ff", "#60b4ff", "#3d9df3", "#1c83e1",
                    "#0068c9", "#0054a3", "#004280"]
THEME_LAYOUT = {
    "font": {"color": THEME_TEXT, "family": THEME_FONT, "size": 12, "weight": 400},
    "title": {"font": {"family": THEME_FONT, "size": 16, "color": THEME_TITLE, "weight": "bold"},
              "pad": {"l": 4}, "xanchor": "left", "x": 0},
    "legend": {"title": {"font": {"size": 12, "color": THEME_TEXT}, "side": "top"},
               "valign": "top", "bordercolor": "rgba(0,0,0,0)", "borderwidth": 0,
               "font": {"size": 12, "color": "#262730"}},
    "paper_bgcolor": "#FFFFFF", "plot_bgcolor": "#FFFFFF",
    "margin": {"pad": 8, "r": 0, "l": 0},
    "hoverlabel": {"bgcolor": "#FFFFFF", "bordercolor": "#DCD8D4",
                   "font": {"color": THEME_TEXT, "family": THEME_FONT, "size": 12}},
    "colorway": ["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1", "#ff8700",
                 "#ffd16a", "#6d3fc0", "#d5dae5"],
}
_AXIS = {"zerolinecolor": THEME_LINES, "gridcolor": THEME_LINES,
         "tickfont": {"color": THEME_TEXT, "size": 12}, "automargin": True}
# Two of the theme's axis values are left out or narrowed, since set in a figure (not in a
# template) they turn lines on: any "minor" value draws minor grid lines (the layer strip drew
# 27,000 of them), and a tick colour turns tick marks on (the charts' x axes grew them); the
# tick colour is set on y axes that draw ticks, which the theme drew faint. A grid or zero-line
# colour turns its lines on too: y axes have them on by default, and x axes get the theme's
# showgrid and zeroline (False) with them. Screenshots of nine pages against the themed ones:
# the same pixels but for a few 5 px tick marks on image axes.
THEME_XAXIS = {**_AXIS, "showgrid": False, "zeroline": False,
               "title": {"font": {"color": THEME_TEXT, "size": 14}, "standoff": 20}}
THEME_YAXIS = {**_AXIS, "ticklabelposition": "outside",
               "title": {"font": {"color": THEME_TEXT, "size": 14}, "standoff": 24}}
THEME_COLORAXIS = {"colorscale": [[i / 9, c] for i, c in enumerate(THEME_SEQUENTIAL)],
                   "colorbar": {"thickness": 16, "xpad": 24, "ticklabelposition": "outside",
                                "outlinecolor": "rgba(0,0,0,0)", "outlinewidth": 8, "len": 0.75,
                                "y": 0.5745, "title": {"font": {"color": THEME_TEXT, "size": 14}},
                                "tickfont": {"color": THEME_TEXT, "size": 12}}}


def room(top: int, left: int = 0, right: int = 0, bottom: int = 0, phone: bool = False) -> dict:
    """Margins with room for a figure's tick labels and colour bar: what Plotly's automargin
    moved them to (measured at 1400x1000; docs/BENCHMARKS.md). Plotly grows margins that are too
    small for a label and draws the figure again (a second paint of every trace); margins that
    are large enough it keeps, so the figure looks the same and is drawn once. A longer label
    than measured still grows them (one more draw, as before). phone: the phone layouts (the
    colour bar across the top) keep their zero margins."""
    if phone:
        return dict(l=0, r=0, t=top, b=0)
    # pad 0: with zero margins Plotly had no room for the theme's 8 px between the plot and its
    # labels; kept at 0, the labels stay where they were drawn
    return dict(l=left, r=right, t=top, b=bottom, pad=0)


_THEMED_AXIS = re.compile(r"^(xaxis|yaxis|coloraxis)\d*$")


def _fill(props: dict, defaults: dict) -> None:
    """Set each of `defaults` (nested dicts) in `props` (a figure's set properties, as
    to_plotly_json gives them) where it is not set: what a template would supply. Lists are
    copied (the figure is built from `props` without validation, which keeps what it is given)."""
    for k, v in defaults.items():
        if isinstance(v, dict):
            if not isinstance(props.get(k), dict):
                props[k] = {}
            _fill(props[k], v)
        elif props.get(k) is None:
            props[k] = copy.deepcopy(v)


def _plain(v):
    """A trace's properties with every numpy array as a plain list."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _plain_figure(fig: go.Figure) -> dict:
    """The figure's set properties as plain dicts and lists (what validation made of them), no
    template."""
    fig.layout.template = None
    # (per part: the whole figure's to_plotly_json writes numpy arrays as base64 already)
    lay = fig.layout.to_plotly_json()
    if lay.get("template", 0) is None:  # a figure not validated (Canvas) keeps it as a null
        del lay["template"]
    return {"data": [t.to_plotly_json() for t in fig.data], "layout": lay}


def drawn_once(fig: go.Figure) -> go.Figure:
    """The figure with Streamlit's look written in, no template, plain lists and a content
    revision: drawn once by st.plotly_chart(theme=None) (see above).

    Done on the figure's plain dict, from which the figure is built again without a second
    validation: setting the same values one by one through plotly.py's objects cost ~20 ms of
    the server's time per figure (each read and write is validated), 0.1 to 0.3 s on a page's
    first visit with a new image; this way the whole house style takes ~9 ms a figure
    (docs/BENCHMARKS.md)."""
    return _themed(_plain_figure(fig))


def _revision(d: dict) -> str:
    """A name for the figure's content (its plain dict): 12 hex digits of the SHA-1 of its JSON,
    written by the standard library's C encoder (NaN as NaN, anything else it cannot write by
    its repr). plotly.io.to_json's encoder writes the JSON, parses it back and writes it again
    (to turn NaN into null): ~0.1 s for the Offsets page's 35x44 grids (issue 27), for a name
    that only has to change when the content does."""
    text = json.dumps(d, separators=(",", ":"), default=repr, allow_nan=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _themed(d: dict) -> go.Figure:
    """drawn_once on a figure's plain dict (_plain_figure), changed in place."""
    lay = d["layout"]
    if isinstance(lay.get("meta"), dict):
        # a list: Plotly compares layout.meta like data (by the revision), an object by identity
        # (a new one after Streamlit's copy: a whole redraw, as with the template)
        lay["meta"] = [lay["meta"]]
    _fill(lay, THEME_LAYOUT)
    # every axis the figure names, and the first of each kind (plotly.py's select_xaxes and
    # select_coloraxes always include it)
    for name in {k for k in lay if _THEMED_AXIS.match(k)} | {"xaxis", "yaxis", "coloraxis"}:
        props = lay.setdefault(name, {})
        kind = name.rstrip("0123456789")
        if kind == "yaxis" and props.get("ticks") and props.get("tickcolor") is None:
            props["tickcolor"] = THEME_LINES
        _fill(props, {"xaxis": THEME_XAXIS, "yaxis": THEME_YAXIS,
                      "coloraxis": THEME_COLORAXIS}[kind])
    for t in d["data"]:
        if t.get("type") == "heatmap" and t.get("coloraxis") is None and "colorscale" not in t:
            t["colorscale"] = copy.deepcopy(THEME_COLORAXIS["colorscale"])
    d["data"] = [_plain(t) for t in d["data"]]
    lay.pop("datarevision", None)
    lay["datarevision"] = _revision(d)
    # Not validated again (plotly.py's _validate=False): every value came from the validated
    # figure or from the theme above. A figure built from a dict gets plotly.py's default
    # template; it is removed with validation on (unvalidated, None is kept as a null template).
    out = go.Figure(d, _validate=False)
    out.layout._validate = True
    out.layout.template = None
    out.layout._validate = False
    return out


# The config every page passes to st.plotly_chart: the modebar's camera button ("Download plot
# as a PNG", Plotly's toImage) stays on and saves at twice the size, drawn in the browser (no
# kaleido on the server).
PLOTLY_CONFIG = {"displaylogo": False, "displayModeBar": True,
                 "toImageButtonOptions": {"format": "png", "scale": 2, "filename": "overfeat"}}


# --- a figure built as plain dicts ------------------------------------------------------------
# plotly.py's objects parse, look up and validate every property on every call: the Scales
# page's six map panels took ~95 ms to build (make_subplots alone ~60 ms, each update_xaxes(row=,
# col=) a few ms), the Offsets page's three figures ~100 ms, on every first visit of an image
# (every upload), with the browser waiting for the run (issue 27). A Canvas takes the same
# calls (add_trace, update_xaxes, update_yaxes, update_layout, add_annotation,
# update_annotations) and writes plain dicts; the subplot grid's layout is built by
# make_subplots once per shape and reused. CANVAS_REFERENCE (tests) sends every call through
# plotly.py's own objects instead: the reference the fast figure must equal.
CANVAS_REFERENCE = False
_COLORSCALE = ColorscaleValidator("colorscale", "layout.coloraxis")
_FLAT = {"plot_bgcolor", "paper_bgcolor"}  # property names with an underscore (no magic)
_OPAQUE = {"meta"}  # free-form values: set whole, never merged or expanded


def _expand(props: dict) -> dict:
    """plotly.py's magic underscores: {"title_text": t} -> {"title": {"text": t}} (None kept:
    it unsets)."""
    out: dict = {}
    for k, v in props.items():
        if "_" in k and k not in _FLAT:
            head, rest = k.split("_", 1)
            _combine(out, {head: _expand({rest: v})})
        else:
            _combine(out, {k: _expand(v) if isinstance(v, dict) and k not in _OPAQUE else v})
    return out


def _combine(a: dict, b: dict) -> None:
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict) and k not in _OPAQUE:
            _combine(a[k], v)
        else:
            a[k] = v


def _merge(props: dict, patch: dict) -> None:
    """plotly.py's update: nested dicts merge, None unsets, anything else replaces."""
    for k, v in patch.items():
        if v is None:
            props.pop(k, None)
        elif isinstance(v, dict) and k not in _OPAQUE:
            if not isinstance(props.get(k), dict):
                props[k] = {}
            _merge(props[k], v)
        else:
            props[k] = copy.deepcopy(v) if isinstance(v, (dict, list)) else v


@functools.lru_cache(maxsize=32)
def _grid(rows: int, cols: int, n_titles: int, spacing: tuple) -> tuple[dict, tuple]:
    """make_subplots' layout (no template) for this shape, its titles "\x00i", and each cell's
    SubplotRef: built once per shape (~60 ms for six panels)."""
    fig = make_subplots(rows=rows, cols=cols,
                        **{k: list(v) if isinstance(v, tuple) else v for k, v in spacing},
                        subplot_titles=[f"\x00{i}" for i in range(n_titles)] or None)
    fig.layout.template = None
    return fig.layout.to_plotly_json(), tuple(tuple(c[0] if c else None for c in r)
                                              for r in fig._grid_ref)


class Canvas:
    """A figure under construction: make_subplots(rows, cols, subplot_titles, spacing) or, with
    no argument, a plain go.Figure(); .figure() is the go.Figure (not validated again: the
    traces are plotly.py objects, validated when made, and the layout's values are the
    builder's own, as the reference test checks). The helpers typed for a go.Figure
    (add_image, image_axes, box traces) take a Canvas as well: they only make these calls."""

    def __init__(self, rows: int | None = None, cols: int | None = None, subplot_titles=None,
                 **spacing):
        self._grid = rows is not None or cols is not None or bool(subplot_titles or spacing)
        rows, cols = rows or 1, cols or 1
        if CANVAS_REFERENCE:
            self._fig = (make_subplots(rows=rows, cols=cols, subplot_titles=subplot_titles,
                                       **spacing) if self._grid else go.Figure())
            return
        self._fig = None
        self.data: list[dict] = []
        if self._grid:
            titles = list(subplot_titles or [])
            lay, self._refs = _grid(rows, cols, len(titles), tuple(sorted(
                (k, tuple(v) if isinstance(v, list) else v) for k, v in spacing.items())))
            self.layout = copy.deepcopy(lay)
            for a in self.layout.get("annotations", []):
                if str(a.get("text", "")).startswith("\x00"):
                    a["text"] = titles[int(a["text"][1:])]
        else:
            self.layout = {}

    def add_trace(self, trace, row: int | None = None, col: int | None = None) -> None:
        if self._fig is not None:
            self._fig.add_trace(trace, row=row, col=col)
            return
        d = trace.to_plotly_json() if hasattr(trace, "to_plotly_json") else dict(trace)
        if row is not None:
            d.update(self._refs[row - 1][col - 1].trace_kwargs)
        self.data.append(d)

    def _axes(self, kind: int, row, col) -> list[str]:
        if row is not None:
            return [self._refs[row - 1][col - 1].layout_keys[kind]]
        name = ("xaxis", "yaxis")[kind]
        pat = re.compile(rf"^{name}\d*$")
        return sorted({k for k in self.layout if pat.match(k)} | {name})

    def _update_axes(self, kind: int, patch, row, col, kw) -> None:
        if self._fig is not None:
            (self._fig.update_xaxes, self._fig.update_yaxes)[kind](patch, row=row, col=col, **kw)
            return
        props = _expand({**(patch or {}), **kw})
        for k in self._axes(kind, row, col):
            _merge(self.layout.setdefault(k, {}), props)

    def update_xaxes(self, patch: dict | None = None, row: int | None = None,
                     col: int | None = None, **kw) -> None:
        self._update_axes(0, patch, row, col, kw)

    def update_yaxes(self, patch: dict | None = None, row: int | None = None,
                     col: int | None = None, **kw) -> None:
        self._update_axes(1, patch, row, col, kw)

    def update_layout(self, patch: dict | None = None, **kw) -> None:
        if self._fig is not None:
            self._fig.update_layout(patch, **kw)
            return
        _merge(self.layout, _expand({**(patch or {}), **kw}))

    def add_annotation(self, **kw) -> None:
        if self._fig is not None:
            self._fig.add_annotation(**kw)
            return
        self.layout.setdefault("annotations", []).append(_expand(kw))

    def add_layout_image(self, row: int | None = None, col: int | None = None, **kw) -> None:
        """As go.Figure.add_layout_image: with row and col, on that subplot's axes."""
        if self._fig is not None:
            self._fig.add_layout_image(row=row, col=col, **kw)
            return
        d = _expand(kw)
        if row is not None:
            ref = self._refs[row - 1][col - 1].trace_kwargs
            d.update(xref=ref["xaxis"], yref=ref["yaxis"])
        self.layout.setdefault("images", []).append(d)

    def update_annotations(self, **kw) -> None:
        if self._fig is not None:
            self._fig.update_annotations(**kw)
            return
        for a in self.layout.get("annotations", []):
            _merge(a, _expand(kw))

    def figure(self) -> go.Figure:
        if self._fig is not None:
            return self._fig
        for k, v in self.layout.items():  # a named colour scale as plotly.py writes it out
            if k.startswith("coloraxis") and isinstance(v.get("colorscale"), str):
                v["colorscale"] = _COLORSCALE.validate_coerce(v["colorscale"])
        fig = go.Figure({"data": self.data, "layout": self.layout}, _validate=False)
        fig.layout._validate = True  # as _themed: no plotly.py default template
        fig.layout.template = None
        fig.layout._validate = False
        return fig
