"""Confidence maps: per scale over the image (Scales page) and per offset, coarse against fine
(Offsets page); for a pyramid net (several output maps per input, View.level), one scale's maps
at every stride (Scales and Offsets pages).
"""

from __future__ import annotations

import textwrap

import numpy as np
import plotly.graph_objects as go
import torch
from torch import Tensor

from ...multiscale import Analysis, View
from ..state import offset_label
from .base import (HALF, MAP_SCALE, MODEBAR, Backdrop, Canvas, add_image, box_trace,
                   click_marker, fitted_height, image_axes, image_margin, legend_below, room,
                   values)




# --- colour scales (issue 27: colours that mean what they say) -------------------------------
# A map of probabilities is drawn on ONE absolute scale, 0 to 1, by default: the same colour is
# the same probability for every class, scale and image, so maps can be compared (a class never
# above p = 0.4 stays dark; it is not painted the bright yellow of a certain one). `stretch`
# spreads the colours over the shown class's own range instead (its minimum to its maximum over
# the maps in the figure), to see the shape of a weak map; its colour bar says so and names the
# range. A map that is not a probability (an activation, a difference) keeps a range of its own,
# and its colour bar names the quantity and that range.
# The pages' one control for it (share.PARAMS "colour_scale"): its options' labels and help.
COLOUR_LABELS = {"absolute": "0 to 1 (the same for every class and scale)",
                 "stretch": "stretch to this class's range"}
COLOUR_HELP = ("Colours of the probability maps. 0 to 1: one colour is one probability on every "
               "map, so maps of different classes and scales can be compared (a class never "
               "above p = 0.4 stays dark). Stretched: the colours span this class's own minimum "
               "to maximum, to see the shape of a weak map; the colour bar names the range.")


def range_text(lo: float, hi: float) -> str:
    """'lo to hi' with just enough significant digits (3 to 6) that the two ends differ (ends
    closer than about 1e-5 of their size may read the same)."""
    for d in range(3, 7):
        a, b = f"{lo:.{d}g}", f"{hi:.{d}g}"
        if a != b:
            break
    return f"{a} to {b}"


def map_range(maps) -> tuple[float, float]:
    """(min, max) over tensors (empty ones skipped); (0, 0) when there is no value."""
    vals = [(float(m.min()), float(m.max())) for m in maps if m.numel()]
    if not vals:
        return 0.0, 0.0
    return min(v[0] for v in vals), max(v[1] for v in vals)


def prob_colour(name: str, lo: float, hi: float, stretch: bool = False,
                colorscale: str = MAP_SCALE) -> dict:
    """A coloraxis for maps of p(name): absolute, 0 to 1 (default), or stretched to [lo, hi]
    (the shown maps' range); the colour bar's title says which ("p(dog), 0 to 1" or "p(dog),
    stretched: 0.0025 to 0.0035"). layout.meta "colour" of the figures repeats the choice."""
    if stretch:
        top = hi if hi > lo else lo + 1e-6
        title = f"p({name}), stretched: {range_text(lo, hi)}"
        return dict(colorscale=colorscale, cmin=lo, cmax=top, colorbar=_bar(title))
    return dict(colorscale=colorscale, cmin=0.0, cmax=1.0, colorbar=_bar(f"p({name}), 0 to 1"))


def own_colour(label: str, lo: float, hi: float, colorscale: str = MAP_SCALE) -> dict:
    """A coloraxis for a map that is not a probability: its own range [lo, hi], named on the
    colour bar ("channel 12 activation, own range: -0.31 to 4.2")."""
    top = hi if hi > lo else lo + 1e-6
    return dict(colorscale=colorscale, cmin=lo, cmax=top,
                colorbar=_bar(f"{label}, own range: {range_text(lo, hi)}"))


def _bar(title: str) -> dict:
    """The colour bar: its title along the bar (a long class name fits), not above it."""
    return dict(title=dict(text=title, side="right"))


# --- a phone's layout (issue 27: a student's phone) --------------------------------------------
# A phone's screen is about 390 px wide (the figures get ~370 of it): panels go one under
# another, each the width of the screen, and the colour bar lies across the top of the figure,
# under the modebar, instead of standing at the right (where it took a fifth of the width, its
# title was cut and it grew as tall as the whole column of panels). Chosen here, not in the
# paper (which has no screens): a phone's figure is drawn for PHONE_WIDTH px.
PHONE_WIDTH = 370  # px: the plot's width on a 390 px phone (the page's side padding off)
PHONE_BAR = 94  # px above the first panel: the modebar, the bar's title, the bar, its ticks
PHONE_TITLE = 44  # characters of a figure title's line on a phone
# px between two panels stacked on a phone: the upper one's ticks and labels (pad 8, tick 5,
# 15 px) and axis title, then the lower one's title; at 70 the axis title and the next title
# were drawn over each other (the coarse/fine maps at 390x844, issue 27)
PHONE_GAP = 100


def across_top(coloraxis: dict, height: int) -> dict:
    """A coloraxis (prob_colour, own_colour) with its colour bar laid across the top of a
    figure `height` px high (a phone's layout): horizontal, just under the modebar, its tick
    labels and then its title under it, like an x axis; the figure's top margin must hold
    PHONE_BAR px for it. (Placed by y, not by ypad: with a ypad Plotly drew the title over the
    bar. The title goes under the bar: above it, Plotly placed it by the figure's height and drew
    it over the bar on the shorter figures, 5 px on the Architecture page's 352 px output maps;
    under it, it sits 4 px below the tick labels at every height; tests/test_browser_legends.py.)"""
    bar = dict(coloraxis.get("colorbar") or {})
    title = dict(bar.get("title") or {})
    title.update(side="bottom", font=dict(size=12))
    bar.update(title=title, orientation="h", x=0.5, xanchor="center", len=1.0, lenmode="fraction",
               yref="container", y=1.0 - MODEBAR / height, yanchor="top", ypad=0, thickness=10,
               tickfont=dict(size=11))
    return {**coloraxis, "colorbar": bar}


# --- scales ---------------------------------------------------------------------------------
def levels(analysis: Analysis) -> list[int]:
    """The output levels of the analysis' views: [0] for one map per input, [0, 1, 2] for a
    pyramid net (0 the finest)."""
    return sorted({v.level for v in analysis.views})


def level_strides(analysis: Analysis) -> dict[int, int]:
    """{level: stride of its map in the resized input (px)}."""
    return {v.level: v.stride for v in analysis.views}


def select_views(analysis: Analysis, scales: list[int] | None = None, flip: bool = False,
                 level: int = 0) -> list[View]:
    """One view per scale: the given flip (the unflipped views when there are none) and output
    level (a pyramid net's level; 0, the finest, is every other net's only one)."""
    scales = list(analysis.settings.scales if scales is None else scales)
    pick = [v for v in analysis.views if v.scale in scales and v.level == level]
    views = [v for v in pick if v.flip == flip]
    return views if views else [v for v in pick if not v.flip]


def scale_views(analysis: Analysis, scale: int, flip: bool = False) -> list[View]:
    """All the output maps of one scale and flip (the unflipped ones when there are none),
    finest level first: one view for an OverFeat-like net, one per stride for a pyramid."""
    pick = [v for v in analysis.views if v.scale == scale]
    views = [v for v in pick if v.flip == flip] or [v for v in pick if not v.flip]
    return sorted(views, key=lambda v: v.level)


def best_scale(analysis: Analysis, cls: int) -> int:
    """The chosen scale whose vote (spatial maximum, over its levels and flips) for a class is
    highest (the first of ties): where the class is seen best."""
    return max(analysis.settings.scales, key=lambda s: (float(analysis.scale_scores[s][cls]), -s))


def best_level_cell(views: list[View], cls: int) -> tuple[int, int, int]:
    """(view index, row, col) of the most confident cell for a class among views (one scale's
    levels): the first of ties, finest level first."""
    best = (-1.0, 0, 0, 0)
    for i, v in enumerate(views):
        m = v.fine[cls]
        if m.numel() == 0:
            continue
        j = int(m.flatten().argmax())
        p = float(m.flatten()[j])
        if p > best[0]:
            best = (p, i, j // m.shape[1], j % m.shape[1])
    return best[1:]


def window_side(view: View) -> tuple[float, float]:
    """(width, height) of the view's windows in original-image pixels."""
    w = view.windows[0, 0]
    return float(w[2] - w[0]), float(w[3] - w[1])


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


def _map_title(v: View, cls: int, pyramid: bool) -> str:
    m = float(v.fine[cls].max()) if v.fine[cls].numel() else 0.0
    h, w = v.fine.shape[-2:]
    if pyramid:
        return f"scale {v.scale + 1}, stride {v.stride}: {h}x{w} cells, max {m:.3f}"
    return f"scale {v.scale + 1} ({v.size[0]}x{v.size[1]}): max {m:.3f}"


def _map_hover(v: View, name: str) -> str:
    """A map cell's hover: the class probability, the window's centre and side (original px)."""
    ww, wh = window_side(v)
    return (f"{name}: %{{z:.3f}}<br>window centre (%{{x:.0f}}, %{{y:.0f}}), "
            f"{ww:.0f}x{wh:.0f} px<extra>scale {v.scale + 1}{' flipped' if v.flip else ''}, "
            f"stride {v.stride}, map {v.fine.shape[-2]}x{v.fine.shape[-1]}</extra>")


def _marker_side(panel: float, bd: Backdrop, xe: list[float], ye: list[float]) -> int:
    """The side (px) of a cell's clickable marker on a panel about `panel` px wide showing the
    whole image: about one cell's pitch on screen, at most 16 px. Plotly gives a click to any
    marker whose disc holds the pointer (the first of them), so markers much wider than the
    pitch (the 14 px of a 21-column map on a 32-row one, 6.8 px a row) picked a neighbour."""
    px = panel / bd.width  # screen px per image px (the panel's height follows the aspect)
    pitch = min(abs(xe[1] - xe[0]) if len(xe) > 1 else bd.width,
                abs(ye[1] - ye[0]) if len(ye) > 1 else bd.height) * px
    return int(max(4, min(16, pitch)))


def _cell_markers(v: View, cls: int, xe: list[float], ye: list[float], tag: int, name: str,
                  where: str, side: int) -> go.Scatter:
    """Transparent markers on every cell of a view's map as drawn (map_on_image), for a click
    (Plotly selections ignore heatmaps). customdata [tag, row, col]: tag (a scale or a level)
    and the cell as the network gave it (a flipped view's columns mirrored back). The hover
    states p(class) (text, 3 decimals) and the cell's window: its side and its centre, where
    the cell is drawn (original pixels). Kept lean: 1,900 cells of six scales add ~50 KB."""
    h, w = v.fine.shape[-2:]
    rr, cc = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    drawn = cc.flatten()  # column as drawn (left to right in the original image)
    col = (w - 1 - drawn) if v.flip else drawn  # the network's column
    row = rr.flatten()
    ww, wh = window_side(v)
    # one decimal of a pixel: the JSON a page switch sends (7,000 cells at scale 6)
    xs = [round(float(xe[j] + xe[j + 1]) / 2, 1) for j in range(w)]
    ys = [round(float(ye[j] + ye[j + 1]) / 2, 1) for j in range(h)]
    # numpy arrays, not lists: plotly.py validates a list element by element (~8 ms a panel)
    return go.Scatter(
        x=np.array(xs)[drawn.numpy()], y=np.array(ys)[row.numpy()], mode="markers",
        showlegend=False, name=f"cells, {where}",
        marker=click_marker(side),
        customdata=np.stack([np.full(len(row), tag), row.numpy(), col.numpy()], axis=1),
        text=np.array([f"{q:.3f}" for q in v.fine[cls][row, col].tolist()], dtype=object),
        hovertemplate=f"p({name}) = %{{text}}, cell (%{{customdata[1]}},%{{customdata[2]}})<br>"
                      f"its window: {ww:.0f}x{wh:.0f} px centred at (%{{x:.0f}}, %{{y:.0f}})"
                      f"<extra>{where}: click to draw the window</extra>")


def _picked_window(fig: go.Figure, v: View, r: int, c: int, row: int, col: int) -> None:
    """Cell (r, c) of view v (the network's row and column) on its panel: its whole window in
    red over a white halo (visible on a dark image), and the cell itself, at the window's
    centre, one stride wide."""
    if not (0 <= r < v.fine.shape[-2] and 0 <= c < v.fine.shape[-1]):
        return
    win = v.windows[r, c]
    fig.add_trace(box_trace(win, "white", "", width=6, showlegend=False), row=row, col=col)
    fig.add_trace(box_trace(win, "red", "picked window", width=3, hover=None, showlegend=False),
                  row=row, col=col)
    cx, cy = float(win[0] + win[2]) / 2, float(win[1] + win[3]) / 2
    px, py = v.stride / v.factor[1] / 2, v.stride / v.factor[0] / 2
    fig.add_trace(box_trace(torch.tensor([cx - px, cy - py, cx + px, cy + py]), "red",
                            "picked cell", width=2, showlegend=False), row=row, col=col)


def scale_maps_figure(analysis: Analysis, bd: Backdrop, cls: int, flip: bool = False,
                      scales: list[int] | None = None, level: int = 0, stretch: bool = False,
                      pick: tuple[int, int, int] | None = None,
                      clickable: bool = False, columns: int | None = None,
                      phone: bool = False) -> go.Figure:
    """Per-scale confidence maps for class cls over the image, one panel per scale (a pyramid
    net: its maps at one level, the finest by default; titles name the stride). Colours: p on
    the absolute 0-1 scale, or stretched to this class's range over the panels (prob_colour).
    pick: (scale, row, col) of a cell (the network's row and column) whose window is drawn on
    its scale's panel; clickable: a transparent marker on every cell carries [scale, row, col,
    window x1, y1, x2, y2, p] (customdata) for a click and a hover that states the window.

    columns: panels per row (default: 2 for a landscape image, 3 for a portrait one; presenter
    mode asks for 3, so six scales fill two rows of a projector's screen). phone: one panel a
    row, PHONE_WIDTH px wide, the colour bar across the top (across_top)."""
    views = select_views(analysis, scales, flip, level)
    pyramid = len(levels(analysis)) > 1
    n = len(views)
    if phone:
        cols = 1
    elif columns:
        cols = max(1, min(columns, n))
    else:
        cols = max(1, min(2 if bd.width >= bd.height else 3, n))  # panels ~450 px wide in a 1000 px column
    rows = max(1, (n + cols - 1) // cols)
    # a panel's width on screen: ~900 px shared by the columns (the colour bar at the right),
    # or a phone's whole width
    panel = PHONE_WIDTH if phone else 900 / cols
    # Short titles: two panels side by side leave ~450 px each, presenter fonts 1.4x (the map
    # sizes are on the Architecture page and in the hover).
    titles = [_map_title(v, cls, pyramid) for v in views]
    top = PHONE_BAR + 26 if phone else 40
    height = round(panel * bd.height / bd.width + 40) * rows + top
    fig = Canvas(rows=rows, cols=cols, subplot_titles=titles or None, horizontal_spacing=0.03,
                 # a phone's column of panels: 40 px between two (the next one's title)
                 vertical_spacing=(40 / max(1, height - top) if phone and rows > 1 else 0.08))
    lo, hi = map_range([v.fine[cls] for v in views])
    name = analysis.class_names[cls]
    for i, v in enumerate(views):
        r, c = i // cols + 1, i % cols + 1
        add_image(fig, bd, r, c, opacity=0.75)
        xe, ye, z = map_on_image(v, cls)
        fig.add_trace(go.Heatmap(
            x=xe, y=ye, z=values(z), coloraxis="coloraxis", opacity=0.6, name=f"scale {v.scale + 1}",
            hovertemplate=_map_hover(v, name)), row=r, col=c)
        if clickable:
            # a panel is about 0.57 x 900 / cols px wide on a 1400 px screen (257 px of two
            # columns, measured in Chromium), wider on a larger screen or in presenter mode
            fig.add_trace(_cell_markers(v, cls, xe, ye, v.scale, name, f"scale {v.scale + 1}",
                                        _marker_side(panel if phone else 0.57 * panel, bd, xe,
                                                     ye)),
                          row=r, col=c)
        if pick is not None and pick[0] == v.scale:
            _picked_window(fig, v, pick[1], pick[2], r, c)
        image_axes(fig, bd, r, c)
        # no labels, and no tick marks (the house style draws them outside): marks without
        # numbers along each image were clutter
        fig.update_xaxes(showticklabels=False, ticks="", row=r, col=c)
        fig.update_yaxes(showticklabels=False, ticks="", scaleanchor=f"x{i + 1 if i else ''}",
                         row=r, col=c)
    colour = prob_colour(name, lo, hi, stretch)
    fig.update_layout(coloraxis=across_top(colour, height) if phone else colour, height=height,
                      margin=room(top, left=5, right=114, phone=phone),
                      meta=dict(fit=True, colour="stretch" if stretch else "absolute",
                                columns=cols),
                      clickmode="event+select" if clickable else None,
                      dragmode=False if clickable else None)
    return fig.figure()


def level_maps_figure(analysis: Analysis, bd: Backdrop, cls: int, scale: int, flip: bool = False,
                      pick: tuple[int, int, int] | None = None,
                      clickable: bool = False, stretch: bool = False,
                      phone: bool = False) -> go.Figure:
    """One scale's output maps for class cls over the image, one panel per stride side by side
    (a pyramid net: strides 8, 16 and 32; one panel for the other nets), one colour scale; on
    a phone (phone=True) one under another, PHONE_WIDTH px wide, the colour bar across the top.
    Titles: "stride 8: 24x32 cells, max 0.598". pick: (level, row, col) of a cell whose window
    is outlined on its panel (row and col of the map the network gave: a flipped view's grid is
    mirrored). clickable: a transparent marker on every cell carries [level, row, col, window
    x1, y1, x2, y2, p] (customdata) for a click. layout.meta "levels" lists each panel's
    (level, stride, h, w). Colours: prob_colour (absolute 0-1, or stretched to the panels'
    range)."""
    views = scale_views(analysis, scale, flip)
    n = max(1, len(views))
    name = analysis.class_names[cls]
    titles = [f"stride {v.stride}: {v.fine.shape[-2]}x{v.fine.shape[-1]} cells, max "
              f"{float(v.fine[cls].max()) if v.fine[cls].numel() else 0.0:.3f}" for v in views]
    if phone:  # one panel a row, 40 px between two for the next one's title
        top = PHONE_BAR + 26
        height = round(PHONE_WIDTH * bd.height / bd.width + 40) * n - 40 + top
        fig = Canvas(rows=n, cols=1, subplot_titles=titles or None,
                     vertical_spacing=40 / max(1, height - top) if n > 1 else 0.0)
    else:
        top = MODEBAR + 30  # the titles under the modebar (top right), not behind it
        height = round((900 / n) * bd.height / bd.width) + 100
        fig = Canvas(rows=1, cols=n, subplot_titles=titles or None, horizontal_spacing=0.02)
    lo, hi = map_range([v.fine[cls] for v in views])
    for i, v in enumerate(views):
        r, c = (i + 1, 1) if phone else (1, i + 1)
        add_image(fig, bd, r, c, opacity=0.75)
        xe, ye, z = map_on_image(v, cls)
        fig.add_trace(go.Heatmap(x=xe, y=ye, z=values(z), coloraxis="coloraxis", opacity=0.6,
                                 name=f"stride {v.stride}", hovertemplate=_map_hover(v, name)),
                      row=r, col=c)
        if clickable:
            fig.add_trace(_cell_markers(v, cls, xe, ye, v.level, name, f"stride {v.stride}",
                                        _marker_side(PHONE_WIDTH if phone else 0.9 * 900 / n,
                                                     bd, xe, ye)),
                          row=r, col=c)
        if pick is not None and pick[0] == v.level:
            _picked_window(fig, v, pick[1], pick[2], r, c)
        image_axes(fig, bd, r, c)
        fig.update_xaxes(showticklabels=False, ticks="", row=r, col=c)  # as scale_maps_figure
        fig.update_yaxes(showticklabels=False, ticks="", scaleanchor=f"x{i + 1 if i else ''}",
                         row=r, col=c)
    colour = prob_colour(name, lo, hi, stretch)
    fig.update_layout(coloraxis=across_top(colour, height) if phone else colour, height=height,
                      margin=dict(l=0, r=0, t=top, b=0),
                      meta=dict(fit=True, levels=[[v.level, v.stride, int(v.fine.shape[-2]),
                                                   int(v.fine.shape[-1])] for v in views],
                                colour="stretch" if stretch else "absolute"),
                      clickmode="event+select" if clickable else None,
                      dragmode=False if clickable else None)
    return fig.figure()


def fine_coarse_figure(view: View, cls: int, k: int, class_name: str,
                       pick: tuple[int, int] | None = None, stretch: bool = False,
                       phone: bool = False) -> go.Figure:
    """The coarse map (offset (0,0) only, stride k*s) beside the interleaved fine map (stride s),
    both placed by their windows' top-left corners in the resized image (pixels), so each coarse
    cell covers k x k fine cells. Transparent markers on the fine cells make them clickable.
    Colours: prob_colour (absolute 0-1, or stretched to the two maps' range). phone: the fine
    map (the one to click) first, the coarse one under it, each the screen's width, the colour
    bar across the top."""
    s = view.stride
    fine = view.fine[cls]
    coarse = view.class_maps[0][cls]
    Hf, Wf = fine.shape
    titles = [f"coarse {coarse.shape[0]}x{coarse.shape[1]}, stride {s * k} px",
              f"fine {fine.shape[0]}x{fine.shape[1]}, stride {s} px"]
    if phone:
        # each panel PHONE_WIDTH wide less its axis titles, square pixels; PHONE_GAP px between
        # the two for the upper panel's tick labels and axis title, then the next panel's title
        panel = round((PHONE_WIDTH - 50) * (Hf + 1) / (Wf + 1)) + 45
        top = PHONE_BAR + 26
        height = 2 * panel + PHONE_GAP + top
        fig = Canvas(rows=2, cols=1, vertical_spacing=PHONE_GAP / (height - top),
                     subplot_titles=titles[::-1])
        at = {"coarse": (2, 1), "fine": (1, 1)}
    else:
        fig = Canvas(rows=1, cols=2, horizontal_spacing=0.06, subplot_titles=titles)
        at = {"coarse": (1, 1), "fine": (1, 2)}
    lo, hi = map_range([fine, coarse])

    def edges(n: int, step: int) -> list[float]:
        return [i * step - s / 2 for i in range(n + 1)]

    # each map's cell edges (x, y): its heat map's and its axes' extent
    extent = {"coarse": (edges(coarse.shape[1], s * k), edges(coarse.shape[0], s * k)),
              "fine": (edges(Wf, s), edges(Hf, s))}
    fig.add_trace(go.Heatmap(
        x=extent["coarse"][0], y=extent["coarse"][1], z=values(coarse),
        coloraxis="coloraxis", name="coarse",
        hovertemplate="coarse cell: %{z:.3f}<extra></extra>"), *at["coarse"])
    offs = [[offset_label(((r % k) * k + (c % k)), k) for c in range(Wf)] for r in range(Hf)]
    fig.add_trace(go.Heatmap(
        x=extent["fine"][0], y=extent["fine"][1], z=values(fine), coloraxis="coloraxis",
        name="fine",
        customdata=offs, hovertemplate="fine: %{z:.3f}, offset %{customdata}<extra></extra>"),
        *at["fine"])
    # Clickable layer: one transparent marker per fine cell (Plotly selections ignore heatmaps).
    rr, cc = torch.meshgrid(torch.arange(Hf), torch.arange(Wf), indexing="ij")
    fig.add_trace(go.Scatter(
        x=(cc.flatten() * s).tolist(), y=(rr.flatten() * s).tolist(), mode="markers",
        marker=click_marker(max(6, min(22, (PHONE_WIDTH - 50 if phone else 360) // max(Wf, 1)))),
        customdata=torch.stack([rr.flatten(), cc.flatten()], 1).tolist(),
        hovertemplate="cell (%{customdata[0]},%{customdata[1]})<extra>click to pick</extra>",
        name="cells", showlegend=False), *at["fine"])
    if pick is not None:
        _mark_pick(fig, pick, s, k, at)
    # each map's own extent, constrained by the domain: not autorange (see base.image_axes)
    for i, name in enumerate(("coarse", "fine")):
        r, c = at[name]
        xs, ys = extent[name]
        first = (r, c) == (1, 1)  # the subplot whose axes are x and y
        fig.update_yaxes(range=[ys[-1], ys[0]], scaleanchor="x" if first else "x2",
                         constrain="domain",
                         title_text="window top (px, resized)" if phone or i == 0 else None,
                         row=r, col=c)
        fig.update_xaxes(range=[xs[0], xs[-1]],
                         title_text="window left (px, resized image)", row=r, col=c)
    if not phone:
        # Both panels keep square pixels; a height that follows the maps' aspect (each panel
        # is about 470 px wide on a wide page) leaves no empty band above and below a flat map.
        height = int(min(560, max(280, 470 * (Hf + 1) / (Wf + 1) + 110)))
        top = 40
    fig.update_xaxes(constrain="domain")
    colour = prob_colour(class_name, lo, hi, stretch)
    fig.update_layout(coloraxis=across_top(colour, height) if phone else colour,
                      height=height, margin=room(top, left=72, right=142, bottom=66, phone=phone),
                      clickmode="event+select", dragmode=False,
                      meta=dict(colour="stretch" if stretch else "absolute"))
    fig.update_annotations(font_size=11)
    return fig.figure()


def _mark_pick(fig: go.Figure, pick: tuple[int, int], s: int, k: int,
               at: dict[str, tuple[int, int]]) -> None:
    """Outline the picked fine cell (row, col) and, at offset (0,0), its coarse cell (`at`: the
    subplot (row, col) of each map)."""
    r, c = pick
    fig.add_trace(go.Scatter(x=[c * s - s / 2, c * s + s / 2, c * s + s / 2, c * s - s / 2, c * s - s / 2],
                             y=[r * s - s / 2, r * s - s / 2, r * s + s / 2, r * s + s / 2, r * s - s / 2],
                             mode="lines", line=dict(color="red", width=3), name="picked",
                             hoverinfo="skip", showlegend=False), *at["fine"])
    if r % k == 0 and c % k == 0:  # offset (0,0): the same window exists in the coarse map
        j, i = r // k, c // k
        q = s * k
        fig.add_trace(go.Scatter(
            x=[i * q - s / 2, i * q + q - s / 2, i * q + q - s / 2, i * q - s / 2, i * q - s / 2],
            y=[j * q - s / 2, j * q - s / 2, j * q + q - s / 2, j * q + q - s / 2, j * q - s / 2],
            mode="lines", line=dict(color="red", width=3), hoverinfo="skip", showlegend=False),
            *at["coarse"])


def window_figure(bd: Backdrop, window: Tensor, box: Tensor | None, title: str,
                  window_name: str = "window (network input)", phone: bool = False) -> go.Figure:
    """One window (dashed) and, if given, the box the regressor predicts from it (solid).
    window_name: its legend entry (a pyramid net's window is nominal, not the net's input).
    phone: the title wrapped at PHONE_TITLE characters (~7 px each at 15 px), so it is not
    cut at 390 px."""
    fig = Canvas()
    add_image(fig, bd)
    # a white halo under the dashed window: it stays visible over a dark part of the image
    fig.add_trace(box_trace(window, "white", "", width=6, showlegend=False))
    fig.add_trace(box_trace(window, "#111111", window_name, width=3, dash="dash",
                            hover="window: " + ", ".join(f"{v:.0f}" for v in window.tolist())))
    if box is not None:
        fig.add_trace(box_trace(box, "#e6194b", "predicted box", width=3,
                                hover="box: " + ", ".join(f"{v:.0f}" for v in box.tolist())))
    image_axes(fig, bd, pad=0.1)
    lines = textwrap.wrap(title, PHONE_TITLE, break_long_words=False) if phone else [title]
    fig.update_layout(title=dict(text="<br>".join(lines), font=dict(size=13)),
                      # a phone: room for the title's lines under the modebar, and for the
                      # legend under the x axis's labels (one row more than a desktop's)
                      height=(fitted_height(bd, PHONE_WIDTH, 110 + 20 * len(lines)) if phone
                              else min(fitted_height(bd, HALF), 560)), meta=dict(fit=True),
                      margin=image_margin(bd, 0.1, top=MODEBAR + 20 * len(lines) + 10 if phone
                                          else 40))
    return legend_below(fig.figure(), PHONE_WIDTH if phone else HALF)
