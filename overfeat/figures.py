"""Plotly figures of what the network does, built from package results.

Every function here is a pure function of an Analysis, a View, a MergeResult or a config, and
returns a plotly Figure; the app's pages only lay them out, and the tests read their data
without a browser. Images are drawn from a Backdrop (a small JPEG thumbnail) stretched over the
original image's pixel coordinates, so boxes and windows are plotted in original pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from PIL import Image
from torch import Tensor

from .appstate import data_uri, offset_label
from .merge import MergeResult, MergeStep
from .multiscale import ALL_SCALES, Analysis, BoxTable, View
from .offsets import offsets

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
    thumb: tuple[int, int]  # thumbnail (width, height)


def backdrop(im: Image.Image, max_side: int = 560) -> Backdrop:
    uri, thumb = data_uri(im, max_side)
    return Backdrop(uri=uri, width=im.size[0], height=im.size[1], thumb=thumb)


def class_color(c: int) -> str:
    return CLASS_COLORS[c % len(CLASS_COLORS)]


def _add_image(fig: go.Figure, bd: Backdrop, row: int | None = None, col: int | None = None,
               opacity: float = 1.0) -> None:
    dx, dy = bd.width / bd.thumb[0], bd.height / bd.thumb[1]
    # x0, y0 are the centre of the first thumbnail pixel: the image then spans [0, W] x [0, H].
    fig.add_trace(go.Image(source=bd.uri, x0=dx / 2, y0=dy / 2, dx=dx, dy=dy, opacity=opacity,
                           hoverinfo="skip", name="image"), row=row, col=col)


def _image_axes(fig: go.Figure, bd: Backdrop, row: int | None = None, col: int | None = None,
                pad: float = 0.0) -> None:
    px, py = pad * bd.width, pad * bd.height
    kw = {} if row is None else {"row": row, "col": col}
    fig.update_xaxes(range=[-px, bd.width + px], showgrid=False, zeroline=False, **kw)
    fig.update_yaxes(range=[bd.height + py, -py], showgrid=False, zeroline=False,
                     scaleanchor="x" if row is None else None, **kw)


def fitted_height(bd: Backdrop, width: int, extra: int = 110) -> int:
    """The height of a figure holding the image (aspect locked) drawn `width` px wide, with
    `extra` px for its title and legend: a fixed height left blank bands above and below a
    landscape image. Marked in layout.meta so that styled() does not stretch it in presenter
    mode (the width, not the height, sets the image's size there)."""
    return round(width * bd.height / bd.width) + extra  # the axes' padding keeps the aspect


HALF = 470  # px: a figure in one of two columns of the 1000 px main column
FULL = 960  # px: a figure across the main column


def _rect_path(boxes: Tensor) -> tuple[list, list]:
    """[N, 4] boxes -> x, y lists drawing all rectangles in one line trace (None-separated)."""
    xs, ys = [], []
    for x1, y1, x2, y2 in boxes.tolist():
        xs += [x1, x2, x2, x1, x1, None]
        ys += [y1, y1, y2, y2, y1, None]
    return xs, ys


def _box_trace(box: Tensor, color: str, name: str, width: float = 3, dash: str = "solid",
               hover: str | None = None, showlegend: bool = True) -> go.Scatter:
    xs, ys = _rect_path(box.reshape(1, 4))
    return go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=width, dash=dash),
                      name=name, hoverinfo="text" if hover else "skip", text=hover,
                      showlegend=showlegend)


# --- overview -------------------------------------------------------------------------------
def pipeline_figure(info: dict) -> go.Figure:
    """The pipeline in one picture: image -> scales -> trunk -> offset pool -> heads -> merge.

    info: numbers to print in the boxes: image (H, W), sizes (the scales' (h, w)), flips, fine
    (offsets on), k, prepool (pre-pool stride, px), stride (output stride, px), coarse (coarse
    stride, px), windows (total over views), views, boxes (raw boxes kept), top (class name,
    score) or None.
    """
    H, W = info["image"]
    k = info["k"]
    sizes = info["sizes"]
    stages = [
        ("Image", f"{W} px wide<br>x {H} px high", "sidebar"),
        (f"{_count(len(sizes), 'scale')}", "(height x width)<br>"
         + "<br>".join(f"{h}x{w}" for h, w in (sizes if len(sizes) <= 4 else sizes[:3]))
         + (f"<br>...<br>{sizes[-1][0]}x{sizes[-1][1]}" if len(sizes) > 4 else "")
         + ("<br>+ flips" if info.get("flips") else ""), "Scales"),
        ("Conv trunk", f"runs once<br>per scale on<br>the whole image;<br>stride {info['prepool']} px",
         "Architecture"),
        ("Offset max pool", f"{k}x{k} pool,<br>{k * k} offsets<br>= {k * k} pooled maps"
         if info["fine"] else f"{k}x{k} pool,<br>offsets off:<br>one pooled map", "Offsets"),
        ("Classifier<br>(FC as conv)", f"{k * k} class maps,<br>interleaved:<br>stride {info['stride']} px<br>"
         f"(not {info['coarse']})" if info["fine"] else
         f"one class map,<br>stride {info['coarse']} px", "Offsets"),
        ("Regressor", ("4 numbers per<br>class and window:" if info.get("per_class") else
                       "4 numbers<br>per window:") + f"<br>{info['windows']} windows<br>"
         f"in {info['views']} views", "Regressor"),
        ("Greedy merge", f"{info['boxes']} raw boxes;<br>merge the pair<br>with the lowest<br>"
         f"match score<br>until it is > t", "Merge"),
    ]
    fig = go.Figure()
    n = len(stages)
    bw, gap = 1.0, 0.3
    colors = ["#f2f2f2", "#dbeafe", "#e0f2e9", "#fef3c7", "#fde2e4", "#ede9fe", "#e0f7fa"]
    for i, (title, body, page) in enumerate(stages):
        x0 = i * (bw + gap)
        fig.add_shape(type="rect", x0=x0, x1=x0 + bw, y0=0, y1=1, line=dict(color="#555", width=1.5),
                      fillcolor=colors[i % len(colors)], layer="below")
        fig.add_annotation(x=x0 + bw / 2, y=0.86, text=f"<b>{title}</b>", showarrow=False,
                           font=dict(size=13, color="#111"), name="fixed")
        fig.add_annotation(x=x0 + bw / 2, y=0.42, text=body, showarrow=False,
                           font=dict(size=12, color="#222"), name="fixed")
        fig.add_annotation(x=x0 + bw / 2, y=-0.1, text=f"<i>page: {page}</i>", showarrow=False,
                           font=dict(size=11, color="#555"), name="fixed")
        if i < n - 1:
            fig.add_annotation(x=x0 + bw + gap - 0.02, y=0.5, ax=x0 + bw + 0.02, ay=0.5,
                               xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                               arrowhead=3, arrowsize=1.2, arrowwidth=2, arrowcolor="#333", text="",
                               name="fixed")
    top = info.get("top")
    tail = (f"classification: spatial max per class, averaged over views"
            + (f" -> <b>{top[0]}</b> ({top[1]:.3f})" if top else ""))
    fig.add_annotation(x=(n * (bw + gap) - gap) / 2, y=1.17, text=tail, showarrow=False,
                       font=dict(size=12, color="#111"))
    # An invisible trace keeps the axes in data coordinates (and the figure non-empty).
    fig.add_trace(go.Scatter(x=[0, n * (bw + gap) - gap], y=[-0.2, 1.25], mode="markers",
                             marker=dict(opacity=0), hoverinfo="skip", showlegend=False))
    fig.update_xaxes(visible=False, range=[-0.1, n * (bw + gap) - gap + 0.1])
    fig.update_yaxes(visible=False, range=[-0.25, 1.3])
    fig.update_layout(height=300, margin=dict(l=5, r=5, t=10, b=5), plot_bgcolor="white",
                      title=None)
    return fig


def _count(n: int, noun: str) -> str:
    words = {1: "One", 2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six"}
    return f"{words.get(n, n)} {noun}{'' if n == 1 else 's'}"


# --- scales ---------------------------------------------------------------------------------
def map_on_image(view: View, cls: int) -> tuple[list[float], list[float], Tensor]:
    """A view's fine map for class cls placed on the original image: (x edges, y edges, z).

    Each cell is drawn at the centre of its window, one stride wide; a flipped view is flipped
    back so that x grows to the right."""
    z = view.fine[cls]  # [Hf, Wf]
    win = view.windows  # [Hf, Wf, 4] original pixels
    if view.flip:
        z, win = z.flip(-1), win.flip(1)
    cx = ((win[0, :, 0] + win[0, :, 2]) / 2).tolist()
    cy = ((win[:, 0, 1] + win[:, 0, 3]) / 2).tolist()
    px, py = view.stride / view.factor[1], view.stride / view.factor[0]
    xe = [cx[0] - px / 2 + i * px for i in range(len(cx) + 1)]
    ye = [cy[0] - py / 2 + i * py for i in range(len(cy) + 1)]
    return xe, ye, z


def scale_maps_figure(analysis: Analysis, bd: Backdrop, cls: int, flip: bool = False,
                      scales: list[int] | None = None) -> go.Figure:
    """Per-scale confidence maps for class cls over the image, one panel per scale."""
    scales = list(analysis.settings.scales if scales is None else scales)
    views = [v for v in analysis.views if v.scale in scales and v.flip == flip]
    if not views:  # flips off: show the unflipped views
        views = [v for v in analysis.views if v.scale in scales and not v.flip]
    n = len(views)
    cols = min(2 if bd.width >= bd.height else 3, n)  # panels ~450 px wide in a 1000 px column
    rows = (n + cols - 1) // cols
    titles = [f"scale {v.scale + 1}: {v.size[0]}x{v.size[1]}, map {v.fine.shape[-2]}x"
              f"{v.fine.shape[-1]}, max {float(v.fine[cls].max()):.3f}" for v in views]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.03,
                        vertical_spacing=0.08)
    zmax = max(float(v.fine[cls].max()) for v in views) if views else 1.0
    name = analysis.class_names[cls]
    for i, v in enumerate(views):
        r, c = i // cols + 1, i % cols + 1
        _add_image(fig, bd, r, c, opacity=0.75)
        xe, ye, z = map_on_image(v, cls)
        fig.add_trace(go.Heatmap(
            x=xe, y=ye, z=z.tolist(), coloraxis="coloraxis", opacity=0.6, name=f"scale {v.scale + 1}",
            hovertemplate=f"{name}: %{{z:.3f}}<br>window centre (%{{x:.0f}}, %{{y:.0f}})"
                          f"<extra>scale {v.scale + 1}{' flipped' if v.flip else ''}</extra>"),
            row=r, col=c)
        _image_axes(fig, bd, r, c)
        fig.update_xaxes(showticklabels=False, row=r, col=c)
        fig.update_yaxes(showticklabels=False, scaleanchor=f"x{i + 1 if i else ''}", row=r, col=c)
    fig.update_layout(coloraxis=dict(colorscale=MAP_SCALE, cmin=0, cmax=max(zmax, 1e-6),
                                     colorbar=dict(title=dict(text=f"p({name})"))),
                      height=round((900 / cols) * bd.height / bd.width + 40) * rows + 40,
                      margin=dict(l=0, r=0, t=40, b=0))
    return fig


def scale_scores_figure(analysis: Analysis, classes: list[int]) -> go.Figure:
    """Per class: each scale's spatial max (mean over its flips) and the final average."""
    names = [analysis.class_names[c] for c in classes]
    fig = go.Figure()
    for s in analysis.settings.scales:
        fig.add_trace(go.Bar(x=names, y=[float(analysis.scale_scores[s][c]) for c in classes],
                             name=f"scale {s + 1}", marker_color=SCALE_COLORS[s]))
    fig.add_trace(go.Bar(x=names, y=[float(analysis.scores[c]) for c in classes],
                         name="final (mean of views)", marker_color="black"))
    fig.update_layout(barmode="group", height=330, margin=dict(l=0, r=0, t=30, b=0),
                      yaxis_title="spatial max of p(class)", legend=dict(orientation="h", y=1.12))
    return fig


# --- offsets --------------------------------------------------------------------------------
def offset_grid_figure(maps: list[Tensor], k: int, label: str, colorscale: str = MAP_SCALE) -> go.Figure:
    """k*k maps [h, w] (ordered as offsets(k)) as a k x k grid in ONE heatmap, one colour scale.

    Map (dx, dy) fills block row dy, column dx, like the offsets on the pre-pool grid; blocks are
    separated by a row and a column of gaps (an offset's map can be a row or column shorter than
    offset (0,0)'s; its missing cells are gaps too). One trace on one pair of axes instead of
    k*k subplots: nine subplots cost the browser most of a second to lay out. layout.meta
    "blocks" lists (dx, dy, first row, first column, h, w) of each map in the grid."""
    offs = offsets(k)
    bh = max((m.shape[-2] for m in maps), default=1)
    bw = max((m.shape[-1] for m in maps), default=1)
    rows, cols = k * bh + k - 1, k * bw + k - 1
    z: list[list[float | None]] = [[None] * cols for _ in range(rows)]
    cd: list[list[list[int] | None]] = [[None] * cols for _ in range(rows)]
    blocks = []
    for (dx, dy), m in zip(offs, maps):
        r0, c0 = dy * (bh + 1), dx * (bw + 1)
        h, w = m.shape[-2], m.shape[-1]
        blocks.append((dx, dy, r0, c0, h, w))
        for j, row in enumerate(m.tolist()):
            z[r0 + j][c0:c0 + w] = row
            cd[r0 + j][c0:c0 + w] = [[dx, dy, j, i] for i in range(w)]
    lo = min(float(m.min()) for m in maps) if maps else 0.0
    hi = max(float(m.max()) for m in maps) if maps else 1.0
    fig = go.Figure(go.Heatmap(
        z=z, customdata=cd, coloraxis="coloraxis", name=label, xgap=1, ygap=1,
        hovertemplate="offset (%{customdata[0]},%{customdata[1]}) cell "
                      "(%{customdata[2]},%{customdata[3]}): %{z:.3f}<extra></extra>"))
    centre = [(i * (bw + 1) + (bw - 1) / 2) for i in range(k)]
    middle = [(i * (bh + 1) + (bh - 1) / 2) for i in range(k)]
    fig.update_xaxes(tickvals=centre, ticktext=[f"dx={i}" for i in range(k)], side="top",
                     showgrid=False, zeroline=False)
    fig.update_yaxes(tickvals=middle, ticktext=[f"dy={i}" for i in range(k)], autorange="reversed",
                     showgrid=False, zeroline=False, scaleanchor="x")
    fig.update_layout(coloraxis=dict(colorscale=colorscale, cmin=lo, cmax=hi if hi > lo else lo + 1e-6,
                                     colorbar=dict(title=dict(text=label))),
                      height=120 * k + 130, margin=dict(l=0, r=0, t=30, b=0),
                      plot_bgcolor="white", meta=dict(blocks=blocks))
    return fig


def fine_coarse_figure(view: View, cls: int, k: int, class_name: str,
                       pick: tuple[int, int] | None = None) -> go.Figure:
    """The coarse map (offset (0,0) only, stride k*s) beside the interleaved fine map (stride s),
    both placed by their windows' top-left corners in the resized image (pixels), so each coarse
    cell covers k x k fine cells. Transparent markers on the fine cells make them clickable."""
    s = view.stride
    fine = view.fine[cls]
    coarse = view.class_maps[0][cls]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.06, subplot_titles=[
        f"coarse {coarse.shape[0]}x{coarse.shape[1]}, stride {s * k} px",
        f"fine {fine.shape[0]}x{fine.shape[1]}, stride {s} px"])
    lo = min(float(fine.min()), float(coarse.min()))
    hi = max(float(fine.max()), float(coarse.max()))

    def edges(n: int, step: int) -> list[float]:
        return [i * step - s / 2 for i in range(n + 1)]

    fig.add_trace(go.Heatmap(
        x=edges(coarse.shape[1], s * k), y=edges(coarse.shape[0], s * k), z=coarse.tolist(),
        coloraxis="coloraxis", name="coarse",
        hovertemplate="coarse cell: %{z:.3f}<extra></extra>"), row=1, col=1)
    Hf, Wf = fine.shape
    offs = [[offset_label(((r % k) * k + (c % k)), k) for c in range(Wf)] for r in range(Hf)]
    fig.add_trace(go.Heatmap(
        x=edges(Wf, s), y=edges(Hf, s), z=fine.tolist(), coloraxis="coloraxis", name="fine",
        customdata=offs, hovertemplate="fine: %{z:.3f}, offset %{customdata}<extra></extra>"),
        row=1, col=2)
    # Clickable layer: one transparent marker per fine cell (Plotly selections ignore heatmaps).
    rr, cc = torch.meshgrid(torch.arange(Hf), torch.arange(Wf), indexing="ij")
    fig.add_trace(go.Scatter(
        x=(cc.flatten() * s).tolist(), y=(rr.flatten() * s).tolist(), mode="markers",
        marker=dict(size=max(6, min(22, 360 // max(Wf, 1))), opacity=0, color="white", symbol="square"),
        customdata=torch.stack([rr.flatten(), cc.flatten()], 1).tolist(),
        hovertemplate="cell (%{customdata[0]},%{customdata[1]})<extra>click to pick</extra>",
        name="cells", showlegend=False), row=1, col=2)
    if pick is not None:
        r, c = pick
        fig.add_trace(go.Scatter(x=[c * s - s / 2, c * s + s / 2, c * s + s / 2, c * s - s / 2, c * s - s / 2],
                                 y=[r * s - s / 2, r * s - s / 2, r * s + s / 2, r * s + s / 2, r * s - s / 2],
                                 mode="lines", line=dict(color="red", width=3), name="picked",
                                 hoverinfo="skip", showlegend=False), row=1, col=2)
        if r % k == 0 and c % k == 0:  # offset (0,0): the same window exists in the coarse map
            j, i = r // k, c // k
            q = s * k
            fig.add_trace(go.Scatter(
                x=[i * q - s / 2, i * q + q - s / 2, i * q + q - s / 2, i * q - s / 2, i * q - s / 2],
                y=[j * q - s / 2, j * q - s / 2, j * q + q - s / 2, j * q + q - s / 2, j * q - s / 2],
                mode="lines", line=dict(color="red", width=3), hoverinfo="skip", showlegend=False),
                row=1, col=1)
    for c in (1, 2):
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{c if c > 1 else ''}",
                         title_text="window top (px, resized)" if c == 1 else None, row=1, col=c)
        fig.update_xaxes(title_text="window left (px, resized image)", row=1, col=c)
    # Both panels keep square pixels; a height that follows the maps' aspect (each panel is
    # about 470 px wide on a wide page) leaves no empty band above and below a flat map.
    height = int(min(560, max(280, 470 * (Hf + 1) / (Wf + 1) + 110)))
    fig.update_xaxes(constrain="domain")
    fig.update_layout(coloraxis=dict(colorscale=MAP_SCALE, cmin=lo, cmax=hi if hi > lo else lo + 1e-6,
                                     colorbar=dict(title=dict(text=f"p({class_name})"))),
                      height=height, margin=dict(l=0, r=0, t=40, b=0), clickmode="event+select",
                      dragmode=False)
    fig.update_annotations(font_size=11)
    return fig


def window_figure(bd: Backdrop, window: Tensor, box: Tensor | None, title: str) -> go.Figure:
    """One window (dashed) and, if given, the box the regressor predicts from it (solid)."""
    fig = go.Figure()
    _add_image(fig, bd)
    fig.add_trace(_box_trace(window, "#111111", "window (network input)", width=3, dash="dash",
                             hover="window: " + ", ".join(f"{v:.0f}" for v in window.tolist())))
    if box is not None:
        fig.add_trace(_box_trace(box, "#e6194b", "predicted box", width=3,
                                 hover="box: " + ", ".join(f"{v:.0f}" for v in box.tolist())))
    _image_axes(fig, bd, pad=0.1)
    fig.update_layout(title=dict(text=title, font=dict(size=13)),
                      height=min(fitted_height(bd, HALF), 560), meta=dict(fit=True),
                      margin=dict(l=0, r=0, t=40, b=0), legend=dict(orientation="h", y=-0.05))
    return fig


# --- regressor ------------------------------------------------------------------------------
def boxes_figure(bd: Backdrop, table: BoxTable, idx: Tensor, class_names, k: int,
                 pick: int | None = None, title: str = "") -> go.Figure:
    """Raw regressor boxes idx of table, coloured by scale; a marker at each box centre carries
    its row index (customdata) for hover and click. pick: a row whose window is also drawn."""
    fig = go.Figure()
    _add_image(fig, bd, opacity=0.55)  # dimmed so that hundreds of thin boxes stay visible
    idx = idx.long()
    for s in ALL_SCALES:
        sel = idx[table.scale[idx] == s]
        if len(sel) == 0:
            continue
        xs, ys = _rect_path(table.boxes[sel])
        color = SCALE_COLORS[s]
        # Faint outlines, distinct centre markers (white rim, drawn above): with hundreds of
        # boxes the outlines make a texture and the markers stay apart and clickable.
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=1),
                                 opacity=0.35, name=f"scale {s + 1} ({len(sel)})",
                                 legendgroup=f"s{s}", hoverinfo="skip"))
        b = table.boxes[sel]
        text = [f"#{i} {class_names[int(table.labels[i])]} {float(table.scores[i]):.3f}<br>"
                f"scale {s + 1}{' flip' if bool(table.flip[i]) else ''}, offset "
                f"{offset_label(int(table.offset[i]), k)}, cell ({int(table.row[i])},{int(table.col[i])})"
                for i in sel.tolist()]
        fig.add_trace(go.Scatter(x=((b[:, 0] + b[:, 2]) / 2).tolist(), y=((b[:, 1] + b[:, 3]) / 2).tolist(),
                                 mode="markers", marker=dict(color=color, size=9, opacity=0.9,
                                                             line=dict(color="white", width=1)),
                                 customdata=sel.tolist(), hovertext=text, hoverinfo="text",
                                 name=f"centres, scale {s + 1}", legendgroup=f"s{s}",
                                 showlegend=False))
    if pick is not None:
        w, b = table.windows[pick], table.boxes[pick]
        fig.add_trace(_box_trace(w, "#111111", f"window of box #{pick}", width=3, dash="dash"))
        fig.add_trace(_box_trace(b, "#e6194b", f"box #{pick}", width=4))
    _image_axes(fig, bd, pad=0.15)
    fig.update_xaxes(showticklabels=True, ticks="outside", side="top")  # pixels, read off
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=600,
                      margin=dict(l=40, r=0, t=70, b=0), clickmode="event+select", dragmode="pan",
                      legend=dict(orientation="h", y=-0.04))
    return fig


# --- merge ----------------------------------------------------------------------------------
# Line width and opacity of a box by its confidence: (lower bound, width, opacity). A
# confidence sums window probabilities, so one raw window (< 1) is thin and faint, a box of a
# few windows medium, one that has swallowed a cluster (>= 10 windows' worth) thick and strong.
CONF_BANDS = ((10.0, 3.5, 1.0), (1.0, 2.0, 0.8), (0.0, 1.0, 0.45))


def _halo(box: Tensor, width: float) -> go.Scatter:
    """A white outline under a highlighted box, so it stands out from the boxes around it."""
    return _box_trace(box, "white", "", width=width + 4, showlegend=False)


def merge_figure(bd: Backdrop, ms: MergeStep, class_names, title: str,
                 max_boxes: int | None = DEFAULT_MAX_BOXES) -> go.Figure:
    """One step of the greedy merge: the boxes alive after it (by class; line width and
    opacity by confidence, CONF_BANDS), then on top of them the pair it merged (dashed, with a
    white halo) and the merged box (thick). At most max_boxes alive boxes are drawn (the most
    confident), the merged one always."""
    fig = go.Figure()
    _add_image(fig, bd, opacity=0.55)  # dimmed so that hundreds of thin boxes stay visible
    st = ms.alive
    n = len(st.slots)
    order = torch.argsort(st.confs, descending=True, stable=True)
    if max_boxes is not None and n > max_boxes:
        order = order[:max_boxes]
    labels = st.labels[order]
    rel = st.confs[order]
    for c in sorted(set(labels.tolist())):
        upper = float("inf")
        first = True
        for lo, width, opacity in CONF_BANDS:
            sel = order[(labels == c) & (rel >= lo) & (rel < upper)]
            upper = lo
            if len(sel) == 0:
                continue
            xs, ys = _rect_path(st.boxes[sel])
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines", opacity=opacity,
                line=dict(color=class_color(c), width=width), legendgroup=f"class{c}",
                name=f"{class_names[c]} ({int((labels == c).sum())} drawn)", showlegend=first,
                hoverinfo="skip"))
            first = False
    if ms.pair is not None:
        i, j = ms.pair
        for box in (ms.b1, ms.b2):
            fig.add_trace(_halo(box, 3))
        fig.add_trace(_box_trace(ms.b1, "#d62728", f"b1 (slot {i})", width=3, dash="dash",
                                 hover=f"b1, slot {i}"))
        fig.add_trace(_box_trace(ms.b2, "#1f77b4", f"b2 (slot {j})", width=3, dash="dash",
                                 hover=f"b2, slot {j}"))
        fig.add_trace(_halo(ms.merged, 5))
        fig.add_trace(_box_trace(ms.merged, "#2ca02c", "merged box", width=5,
                                 hover=f"merged: {class_names[ms.label]}, confidence {ms.conf:.3f}, "
                                       f"match score {ms.score:.4g}"))
    _image_axes(fig, bd, pad=0.06)
    fig.update_layout(title=dict(text=title, font=dict(size=13)),
                      height=min(fitted_height(bd, HALF), 640), meta=dict(fit=True),
                      margin=dict(l=0, r=0, t=40, b=0), legend=dict(orientation="h", y=-0.04),
                      uirevision="merge")
    return fig


def final_boxes_figure(bd: Backdrop, result: MergeResult, class_names, n: int = 5,
                       truth: list[dict] | None = None, title: str = "") -> go.Figure:
    """The n most confident merged boxes, labelled with class and confidence."""
    fig = go.Figure()
    _add_image(fig, bd)
    for t in truth or []:
        fig.add_trace(_box_trace(torch.tensor(t["box"], dtype=torch.float64), "white",
                                 f"truth: {t['name']}", width=2, dash="dot"))
    f = result.final
    for i in range(min(n, len(f))):
        c = int(f.labels[i])
        conf = float(f.confs[i])
        fig.add_trace(_box_trace(f.boxes[i], class_color(c),
                                 f"{i + 1}. {class_names[c]} {conf:.2f}", width=4 if i == 0 else 2,
                                 hover=f"{class_names[c]}: confidence {conf:.3f}, "
                                       f"{len(f.members[i])} raw boxes"))
    _image_axes(fig, bd, pad=0.03)  # final boxes are clipped to the image
    fig.update_layout(title=dict(text=title, font=dict(size=13)),
                      height=min(fitted_height(bd, HALF), 600), meta=dict(fit=True),
                      margin=dict(l=0, r=0, t=40, b=0), legend=dict(orientation="h", y=-0.04))
    return fig


def merge_scores_figure(results: dict[str, MergeResult], step: int) -> go.Figure:
    """The match score of the pair merged at each step, one panel per score (their units
    differ), with the threshold t (the loop stops once the lowest score is above it) and the
    current step marked. Boxes left after step s: N - s."""
    kinds = list(results)
    fig = make_subplots(rows=1, cols=len(kinds), horizontal_spacing=0.08, subplot_titles=[
        f"{kind}: {results[kind].n_steps} merges, t = {results[kind].threshold:g}"
        for kind in kinds])
    for c, (kind, color) in enumerate(zip(kinds, ["#d62728", "#2ca02c"]), start=1):
        r = results[kind]
        n = int(r.boxes.shape[0])
        steps = list(range(1, r.n_steps + 1))
        fig.add_trace(go.Scatter(
            x=steps, y=r.step_scores.tolist(), mode="lines", name=kind, line=dict(color=color),
            customdata=[n - s for s in steps],
            hovertemplate="step %{x}: match score %{y:.4g}, %{customdata} boxes left"
                          f"<extra>{kind}</extra>"), row=1, col=c)
        fig.add_hline(y=r.threshold, line=dict(color="#555", dash="dash"), row=1, col=c)
        fig.add_vline(x=min(step, r.n_steps), line=dict(color="#111", dash="dot"), row=1, col=c)
        fig.update_xaxes(title_text="step", range=[0, max(r.n_steps, 1)], row=1, col=c)
        fig.update_yaxes(title_text="match score" if c == 1 else None, row=1, col=c)
    fig.update_layout(height=260, margin=dict(l=0, r=0, t=30, b=0), showlegend=False)
    fig.update_annotations(font_size=12)
    return fig


# --- architecture ---------------------------------------------------------------------------
def layer_cost_figure(rows: list[dict]) -> go.Figure:
    """Parameters and multiply-adds per layer (log scale) from appstate.layer_rows."""
    rows = [r for r in rows if r["kind"] != "pool"]
    names = [r["layer"] for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=["parameters", "multiply-adds (one window)"])
    fig.add_trace(go.Bar(x=names, y=[r["parameters"] for r in rows], marker_color="#0072B2",
                         name="parameters"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[r["multiply-adds"] for r in rows], marker_color="#D55E00",
                         name="multiply-adds"), row=1, col=2)
    fig.update_yaxes(type="log")
    fig.update_layout(height=300, margin=dict(l=0, r=0, t=30, b=0), showlegend=False)
    return fig


# The config every page passes to st.plotly_chart: the modebar's camera button ("Download plot
# as a PNG", Plotly's toImage) stays on and saves at twice the size, drawn in the browser (no
# kaleido on the server).
FONT = 14  # px: readable from the back of a room at 1400 px wide (Plotly's default is 12)
PRESENTER_SCALE = 1.4  # presenter mode: fonts and heights this much larger


MODEBAR = 26  # px: the height of Plotly's modebar


def styled(fig: go.Figure, presenter: bool = False) -> go.Figure:
    """The house style every page applies before drawing: fonts at least FONT px (subplot
    titles included), titles left-aligned (the modebar sits top right, so it no longer covers
    them) with room above the plot; in presenter mode fonts and heights PRESENTER_SCALE larger."""
    k = PRESENTER_SCALE if presenter else 1.0
    base = round(FONT * k)
    fig.update_layout(font=dict(size=base))
    title = fig.layout.title
    t = fig.layout.margin.t if fig.layout.margin.t is not None else 40
    if title is not None and title.text:
        # The title sits in its own band under the modebar (MODEBAR px, top right), which
        # otherwise covers a long title in a half-width figure.
        fig.update_layout(title=dict(x=0.0, xanchor="left", yref="container", y=1.0,
                                     yanchor="top", pad=dict(t=MODEBAR),
                                     font=dict(size=base + 1)))
        t = max(t, MODEBAR + round(1.6 * (base + 1)))
    fig.update_layout(margin=dict(t=max(t, round(40 * k))))
    for a in fig.layout.annotations or ():
        size = a.font.size if a.font is not None and a.font.size is not None else 12
        if a.name == "fixed":  # text sized to fit a drawn box (the pipeline): grow a little
            a.font.size = round(size * min(k, 1.15))
        else:  # subplot titles and labels
            a.font.size = round(max(size, FONT) * k)
    fitted = isinstance(fig.layout.meta, dict) and fig.layout.meta.get("fit")
    if presenter and fig.layout.height and not fitted:
        fig.update_layout(height=round(fig.layout.height * k))
    return fig


PLOTLY_CONFIG = {"displaylogo": False, "displayModeBar": True,
                 "toImageButtonOptions": {"format": "png", "scale": 2, "filename": "overfeat"}}


def training_figure(losses: list[dict], epochs: list[dict] | None = None) -> go.Figure:
    """Live loss curves of a run from overfeat.jobs.Job.snapshot(): one line per stage over the
    run's steps (each stage has its own loss: cross-entropy, L2 box loss, detection CE), and
    each finished epoch's mean loss as a marker at its last step. Steps without a loss (stage 2
    steps that only filled the shuffle buffer, loss None) have no point."""
    fig = go.Figure()
    stages = sorted({r["stage"] for r in losses})
    names = {1: "stage 1 classifier (CE)", 2: "stage 2 regressor (L2)", 3: "stage 3 detection (CE)"}
    colors = {1: "#0072B2", 2: "#D55E00", 3: "#009E73"}
    for s in stages:
        rows = [r for r in losses if r["stage"] == s and r["loss"] is not None]
        fig.add_trace(go.Scatter(x=[r["x"] for r in rows], y=[r["loss"] for r in rows],
                                 mode="lines+markers" if len(rows) < 30 else "lines",
                                 name=names.get(s, f"stage {s}"), line_color=colors.get(s)))
    for e in epochs or []:
        ends = [r["x"] for r in losses if r["stage"] == e["stage"] and r["epoch"] == e["epoch"]]
        if ends and "loss" in e:
            fig.add_trace(go.Scatter(x=[ends[-1]], y=[e["loss"]], mode="markers",
                                     marker=dict(symbol="diamond", size=11,
                                                 color=colors.get(e["stage"])),
                                     name=f"stage {e['stage']} epoch {e['epoch'] + 1} mean",
                                     showlegend=False))
    fig.update_layout(height=320, margin=dict(l=0, r=0, t=30, b=0),
                      title="training loss per step" if losses else "no steps yet",
                      xaxis_title="step (whole run)", yaxis_title="loss",
                      # whole steps only (Plotly would tick 1.2, 1.4, ... on a short run)
                      xaxis=dict(tick0=1, dtick=max(1, -(-len(losses) // 10))),
                      legend=dict(orientation="h", y=-0.25))
    return fig


# --- detection, experiments, merge vs NMS, efficiency ----------------------------------------
MARK_COLORS = {"TP": "#2ca02c", "FP": "#d62728", "missed": "#ff7f0e"}
MARK_NAMES = {"TP": "true positive", "FP": "false positive (dashed)",
              "missed": "missed object (dotted)"}


def detection_marks_figure(bd: Backdrop, dets: list, status: list[str] | None = None,
                           truth: list[dict] | None = None, missed: list[int] | None = None,
                           title: str = "") -> go.Figure:
    """Final detections (boxes.Detection records) on the image. With status (per detection, "TP" or
    "FP", from compare.match_truth): true positives solid green, false positives dashed red,
    and the missed truths (indices into truth) dotted orange; without, boxes by class."""
    fig = go.Figure()
    _add_image(fig, bd)
    for t in truth or []:
        fig.add_trace(_box_trace(torch.tensor(t["box"], dtype=torch.float64), "white",
                                 f"truth: {t['name']}", width=1.5, dash="dot",
                                 hover=f"truth: {t['name']}", showlegend=False))
    # One legend entry per kind of mark (TP, FP, missed; or per class), not per box: the boxes
    # carry their rank in the page's table as a label instead.
    seen: set[str] = set()
    for i, d in enumerate(dets):
        s = status[i] if status is not None else None
        color = MARK_COLORS[s] if s else class_color(d.label)
        group = MARK_NAMES[s] if s else d.name
        tr = _box_trace(torch.tensor(d.box), color, group, width=3,
                        dash="dash" if s == "FP" else "solid",
                        hover=f"#{i + 1} {s or ''} {d.name}: confidence {d.confidence:.3f}, "
                              f"{d.members} raw boxes", showlegend=group not in seen)
        tr.legendgroup = group
        seen.add(group)
        fig.add_trace(tr)
    if dets:
        fig.add_trace(go.Scatter(
            x=[d.box[0] for d in dets], y=[d.box[1] for d in dets], mode="text",
            text=[f"#{i + 1} {d.name}" for i, d in enumerate(dets)], textposition="top right",
            textfont=dict(color="white"), hoverinfo="skip", showlegend=False))
    for j in missed or []:
        t = truth[j]
        tr = _box_trace(torch.tensor(t["box"], dtype=torch.float64), MARK_COLORS["missed"],
                        MARK_NAMES["missed"], width=3, dash="dot", hover=f"missed: {t['name']}",
                        showlegend="missed" not in seen)
        tr.legendgroup = "missed"
        seen.add("missed")
        fig.add_trace(tr)
    _image_axes(fig, bd, pad=0.03)  # final boxes are clipped to the image
    fig.update_layout(title=dict(text=title, font=dict(size=13)),
                      height=min(fitted_height(bd, FULL), 640), meta=dict(fit=True),
                      margin=dict(l=0, r=0, t=40, b=0), legend=dict(orientation="h", y=-0.04))
    return fig


def table2_figure(rows: list[dict], paper: list[dict] | tuple = ()) -> go.Figure:
    """The Table 2 analogue (experiments.table_rows: errors in %) as grouped bars per approach,
    and the paper's top-5 errors (experiments.PAPER_TABLE2) in a panel of their own (another
    model, another dataset: compare the trend, not the level). Every bar starts at zero, so
    its height is the error (an axis from 15.9 made 17.1 against 16.3 look five times
    taller); the paper's bars carry their values, whose differences are small."""
    fig = make_subplots(rows=1, cols=2 if paper else 1, column_widths=[0.6, 0.4] if paper else None,
                        subplot_titles=["this checkpoint"] + (["paper (fast model, ImageNet)"]
                                                             if paper else []))
    names = [r["approach"] for r in rows]
    for key, color in (("top-1 error %", "#0072B2"), ("top-5 error %", "#E69F00"),
                       ("localization error %", "#009E73")):
        fig.add_trace(go.Bar(x=names, y=[r[key] for r in rows], name=key, marker_color=color),
                      row=1, col=1)
    if paper:
        fig.add_trace(go.Bar(x=[p["approach"] for p in paper], y=[p["top5_error"] for p in paper],
                             name="paper top-5 error %", marker_color="#CC79A7",
                             text=[f"{p['top5_error']:.2f}" for p in paper],
                             textposition="outside", cliponaxis=False), row=1, col=2)
    fig.update_yaxes(rangemode="tozero")  # every panel: bars measured from 0
    fig.update_yaxes(title_text="error (%)", row=1, col=1)
    fig.update_layout(barmode="group", height=400, margin=dict(l=0, r=0, t=50, b=0),
                      legend=dict(orientation="h", y=-0.35))
    fig.update_annotations(font_size=12)
    return fig


def method_boxes_figure(bd: Backdrop, boxes: Tensor, confs: Tensor, labels: Tensor, class_names,
                        truth: list[dict] | None = None, title: str = "",
                        max_boxes: int | None = DEFAULT_MAX_BOXES) -> go.Figure:
    """The final boxes of one method (boxes.Detections' fields), one trace per class, the
    most confident max_boxes of them, over the truth (dotted white)."""
    fig = go.Figure()
    _add_image(fig, bd, opacity=0.9)
    for t in truth or []:
        fig.add_trace(_box_trace(torch.tensor(t["box"], dtype=torch.float64), "white",
                                 f"truth: {t['name']}", width=2, dash="dot", showlegend=False))
    n = int(boxes.shape[0]) if max_boxes is None else min(max_boxes, int(boxes.shape[0]))
    lab = labels[:n]
    for c in sorted(set(lab.tolist())):
        sel = (lab == c).nonzero().flatten()
        xs, ys = _rect_path(boxes[sel])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=class_color(c), width=2),
                                 name=f"{class_names[c]} ({len(sel)})", hoverinfo="skip"))
    _image_axes(fig, bd, pad=0.15)  # regressed boxes may reach outside the image
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=420,
                      margin=dict(l=0, r=0, t=40, b=0), legend=dict(orientation="h", y=-0.04))
    return fig


def efficiency_figure(rows: list[dict]) -> go.Figure:
    """Multiply-adds per scale, dense against crop by crop (appstate.cost_rows), log scale; a
    bar's hover gives the count as text (geometry.human_count) and exactly."""
    from .geometry import human_count

    x = [f"scale {r['scale']}" for r in rows]

    def bar(key: str, name: str, color: str) -> go.Bar:
        v = [r[key] for r in rows]
        return go.Bar(x=x, y=v, name=name, marker_color=color,
                      customdata=[[human_count(n), f"{n:,}"] for n in v],
                      hovertemplate="%{x}: %{customdata[0]} (%{customdata[1]}) multiply-adds"
                                    f"<extra>{name}</extra>")

    fig = go.Figure([bar("dense multiply-adds", "dense (trunk once)", "#009E73"),
                     bar("crop multiply-adds", "crop by crop", "#D55E00")])
    fig.update_yaxes(type="log", title_text="multiply-adds")
    fig.update_layout(barmode="group", height=320, margin=dict(l=0, r=0, t=30, b=0),
                      legend=dict(orientation="h", y=1.12))
    return fig
