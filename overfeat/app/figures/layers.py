"""Inside the network (Architecture page): the layers as a diagram with each one's most active
channels for this image, one layer's channels larger, the class output maps to click, and the
Offsets page's 1-D strip of the offset trick (paper Fig. 3).

The thumbnails come as uint8 maps (overfeat.activations) and are sent as small PNG images
(an 8-bit palette of Viridis, one image per layer or per grid), not as numbers: a layer strip of
EfficientNet's 22 layers is some tens of KB.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image
from plotly.colors import sample_colorscale, unlabel_rgb

from ...activations import STRIP_CHANNELS, Activations, LayerView, OffsetStrip
from .base import (FIXED_TEXT, FULL, MAP_SCALE, MODEBAR, SCALE_COLORS, Canvas, click_marker,
                   room, values)
from .maps import PHONE_BAR, PHONE_GAP, PHONE_WIDTH, across_top, own_colour, prob_colour

# The palette of every thumbnail: 255 steps of Viridis (index 0 the lowest value) and, at index
# 255, the white of the gaps between thumbnails in one image.
_VIRIDIS = [tuple(int(round(c)) for c in unlabel_rgb(s))
            for s in sample_colorscale(MAP_SCALE, [i / 254 for i in range(255)])]
PALETTE = bytes(v for rgb in _VIRIDIS + [(255, 255, 255)] for v in rgb)
GAP = 255
GROUP_FILL = {"trunk": "#eef3fb", "head": "#fdf3e7", "neck": "#eaf6ee", "output": "#fde8ea"}
GROUP_NAME = {"trunk": "trunk (backbone)", "head": "classifier layers", "neck": "neck",
              "output": "class scores"}
STRIP_SIDE = 32  # px: a strip thumbnail's longest side (the grid's are THUMB_SIDE)


def to_levels(thumbs: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> palette indices 0..254 (255 is the gap colour)."""
    return ((thumbs.astype(np.uint16) * 254 + 127) // 255).astype(np.uint8)


def png_uri(canvas: np.ndarray) -> str:
    """A [h, w] array of palette indices as a PNG data URI (8-bit palette: small)."""
    h, w = canvas.shape
    im = Image.frombytes("P", (w, h), np.ascontiguousarray(canvas, dtype=np.uint8).tobytes())
    im.putpalette(PALETTE)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def shrink(thumbs: np.ndarray, side: int) -> np.ndarray:
    """uint8 [n, h, w] thumbnails area-averaged to a longest side of at most `side`."""
    n, h, w = thumbs.shape
    f = min(1.0, side / max(h, w))
    th, tw = max(1, round(h * f)), max(1, round(w * f))
    if (th, tw) == (h, w):
        return thumbs
    t = torch.from_numpy(thumbs.astype(np.float32))[None]
    return torch.nn.functional.adaptive_avg_pool2d(t, (th, tw))[0].round().clamp(0, 255) \
        .numpy().astype(np.uint8)


def mosaic(thumbs: np.ndarray, cols: int, gap: int = 1, below: int = 0) -> np.ndarray:
    """Thumbnails [n, h, w] in a grid of `cols` columns, as palette indices, `gap` px of white
    between them and `below` px of white under each row (room for labels)."""
    n, h, w = thumbs.shape
    rows = max(1, math.ceil(n / cols))
    canvas = np.full((rows * (h + below + gap) - gap, cols * (w + gap) - gap), GAP, np.uint8)
    levels = to_levels(thumbs)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = r * (h + below + gap), c * (w + gap)
        canvas[y:y + h, x:x + w] = levels[i]
    return canvas


def _wrap(text: str, width: int) -> list[str]:
    """Words (split at spaces, then at dots) in lines of at most `width` characters."""
    words = text.replace(".", ". ").split()
    lines, cur = [], ""
    for wd in words:
        joiner = "" if cur.endswith(".") else " "
        cand = (cur + joiner + wd) if cur else wd
        if len(cand) <= width or not cur:
            cur = cand
        else:
            lines.append(cur)
            cur = wd
    return lines + ([cur] if cur else [])


def shape_text(lv: LayerView) -> str:
    c, h, w = lv.shape
    return f"{c} x {h}x{w}"


def _rf_text(lv: LayerView) -> str:
    return f"RF {lv.receptive_field} px, stride {lv.stride}"


def _rf_lines(lv: LayerView, chars: int) -> list[str]:
    """The receptive-field line of a strip header, in two lines (RF, stride) where one is
    longer than `chars` characters."""
    text = _rf_text(lv)
    return [text] if len(text) <= chars else [f"RF {lv.receptive_field} px",
                                              f"stride {lv.stride}"]


# --- the layer strip ------------------------------------------------------------------------
def layer_strip_figure(acts: Activations, pick: int | None = None, n: int = STRIP_CHANNELS,
                       per_row: int | None = None, width: int = FULL,
                       char_px: float = 8.2) -> go.Figure:
    """The network as a diagram: a column per layer (its name, output shape channels x height x
    width, receptive field and stride) with its n most active channels for this image (2 x 2
    thumbnails, most active first, each stretched to its own range), coloured by part (trunk,
    classifier layers, neck, class scores), wrapped into rows of at most 7 columns (per_row:
    at most that many). A transparent marker over each column's thumbnails carries its index
    (customdata) for a click; pick: the layer outlined in red. layout.meta "layers" lists each
    column's [name, channels, height, width, receptive field, stride, top channels].

    width: the px the figure is drawn across (one unit of the drawing is one px there, so the
    headers' text fits its columns): FULL on a desktop, the wider main column in presenter mode
    (whose larger font has char_px px a character), a phone's width with 3 columns a row."""
    L = len(acts.layers)
    rows_n = max(1, math.ceil(L / 7))
    per_row = min(per_row, L) if per_row else math.ceil(L / rows_n)
    cw = width / per_row
    pad, gap_y = 6.0, 26.0
    chars = max(8, int((cw - 2 * pad) / char_px))  # characters of the header's font a line
    # the receptive-field line is plain digits and short words (not bold): 0.85 of a name's
    # character; it breaks in two only where it would overflow its column (a phone)
    rf_chars = max(8, int((cw - 2 * pad) / (0.85 * char_px)))
    line = 20.0 if width >= FULL else 17.0  # units a header line (a phone: 13 px, no more)
    fig = Canvas()
    shapes, heads, arrows = [], [], []
    click_x, click_y, click_cd, click_text = [], [], [], []
    y = 0.0
    for r0 in range(0, L, per_row):
        row = list(range(r0, min(L, r0 + per_row)))
        # the header: the name (one or two lines), the shape, the receptive field; 20 units a
        # line leaves room for presenter mode's larger font (15 px)
        lines_n = max(min(2, len(_wrap(acts.layers[i].name, chars)))
                      + len(_rf_lines(acts.layers[i], rf_chars)) for i in row) + 1
        head = line * lines_n + 12
        cells = {}
        for i in row:
            lv = acts.layers[i]
            th = shrink(lv.thumbs[:n], STRIP_SIDE)
            tw_n = 2 if len(th) > 1 else 1
            img = mosaic(th, tw_n, gap=1)
            box_w = cw - 2 * pad
            scale = box_w / img.shape[1]
            cells[i] = (img, scale, img.shape[0] * scale)
        body = max(c[2] for c in cells.values())
        for j, i in enumerate(row):
            lv = acts.layers[i]
            x0 = j * cw
            img, scale, hgt = cells[i]
            shapes.append(dict(type="rect", x0=x0 + 2, x1=x0 + cw - 2, y0=y, y1=y + head + body + pad,
                               line=dict(color="#888", width=1), fillcolor=GROUP_FILL[lv.group],
                               layer="below"))
            if pick == i:
                shapes.append(dict(type="rect", x0=x0 + 1, x1=x0 + cw - 1, y0=y - 1,
                                   y1=y + head + body + pad + 1, line=dict(color="red", width=3)))
            lines = _wrap(lv.name, chars)[:2]
            text = "<br>".join(f"<b>{t}</b>" for t in lines) + "<br>" + shape_text(lv) + \
                "<br>" + "<br>".join(_rf_lines(lv, rf_chars))
            heads.append((x0 + cw / 2, y + 4, text))
            top = y + head
            fig.add_trace(go.Image(source=png_uri(img), x0=x0 + pad + scale / 2, y0=top + scale / 2,
                                   dx=scale, dy=scale, hoverinfo="skip", name=lv.name))
            click_x.append(x0 + cw / 2)
            click_y.append(top + hgt / 2)
            click_cd.append([i])
            ch = ", ".join(f"{lab.replace('channel ', '#')} ({v:.3g})"
                           for lab, v in zip(lv.labels[:n], lv.ranking[:n]))
            click_text.append(f"<b>{lv.name}</b> ({GROUP_NAME[lv.group]})<br>{shape_text(lv)}, "
                              f"{_rf_text(lv)}<br>top by {lv.ranked_by}: {ch}<br>"
                              "click for its channels")
            if j + 1 < len(row):  # an arrow to the next layer: (tail x, tip x, y)
                arrows.append((x0 + cw - 6, x0 + cw + 2, y + head / 2))
        y += head + body + pad + gap_y
    total = y - gap_y + 4
    # The headers are one text trace, the arrows a line trace and a trace of arrowheads: as
    # layout annotations (one each, measured one by one) they were ~25 ms of the strip's ~42 ms
    # draw in the browser (issue 27). A text trace's lines hang below its point, as an
    # annotation anchored at its top did; FIXED_TEXT: presenter mode grows it a little.
    fig.add_trace(go.Scatter(
        x=[h[0] for h in heads], y=[h[1] for h in heads], text=[h[2] for h in heads],
        mode="text", textposition="bottom center", textfont=dict(size=13, color="#111"),
        hoverinfo="skip", showlegend=False, name=FIXED_TEXT))
    if arrows:
        fig.add_trace(go.Scatter(
            x=[v for a, b, _ in arrows for v in (a, b - 3, None)],
            y=[v for _, _, yy in arrows for v in (yy, yy, None)], mode="lines",
            line=dict(color="#444", width=1.5), hoverinfo="skip", showlegend=False,
            name="arrows"))
        fig.add_trace(go.Scatter(
            x=[b - 3 for _, b, _ in arrows], y=[yy for _, _, yy in arrows], mode="markers",
            marker=dict(symbol="triangle-right", size=8, color="#444"), hoverinfo="skip",
            showlegend=False, name="arrowheads"))
    fig.add_trace(go.Scatter(
        x=click_x, y=click_y, mode="markers", customdata=click_cd, hovertext=click_text,
        hoverinfo="text", showlegend=False, name="layers",
        marker=click_marker(max(24, min(70, int(cw * 0.5))))))
    fig.update_layout(shapes=shapes)
    fig.update_xaxes(visible=False, range=[0, width], constrain="domain")
    fig.update_yaxes(visible=False, range=[total, -2], scaleanchor="x", constrain="domain")
    fig.update_layout(height=round(total) + 30, margin=dict(l=0, r=0, t=10, b=0),
                      plot_bgcolor="white", clickmode="event+select", dragmode=False,
                      meta=dict(fit=True, layers=[
                          [lv.name, *lv.shape, lv.receptive_field, lv.stride,
                           list(lv.channels[:n])] for lv in acts.layers]))
    return fig.figure()


# --- one layer's channels -------------------------------------------------------------------
def channel_grid_figure(lv: LayerView, n: int = 36, cols: int = 6,
                        width: int = FULL) -> go.Figure:
    """A layer's n most active channels (most active first, left to right, top to bottom),
    each stretched to its own range, labelled with its channel (a class, for a class output)
    and ranking value; hover gives the range it is drawn from. layout.meta "channels" lists the
    channels drawn, "ranking" their values. width: the px it is drawn across (a phone's: its
    labels and title shortened to fit, its height the grid's at that width)."""
    th = lv.thumbs[:n]
    k = len(th)
    cols = max(1, min(cols, k))
    h, w = th.shape[1:]
    below = max(4, round(0.22 * w))  # room for the labels, in thumbnail pixels
    img = mosaic(th, cols, gap=2, below=below)
    fig = Canvas()
    fig.add_trace(go.Image(source=png_uri(img), x0=0.5, y0=0.5, dx=1, dy=1, hoverinfo="skip",
                           name=lv.name))
    xs, ys, text, notes = [], [], [], []
    # a label's characters under a thumbnail: 18 on a desktop; narrower, what its column holds
    # at ~7 px a character (12 px font) beside " · " and its value
    room = None if width >= FULL else int(width / cols / 7) - 3
    for i in range(k):
        r, c = divmod(i, cols)
        x, yy = c * (w + 2), r * (h + below + 2)
        xs.append(x + w / 2)
        ys.append(yy + h / 2)
        label = lv.labels[i].replace("channel ", "#")
        value = f"{lv.ranking[i]:.3g}"
        lab = 18 if room is None else max(3, room - len(value))
        text.append(f"{lv.labels[i]}: {lv.ranked_by} {lv.ranking[i]:.3g}<br>drawn from "
                    f"{lv.lo[i]:.3g} (dark) to {lv.hi[i]:.3g} (bright)")
        notes.append(dict(x=x + w / 2, y=yy + h + 1, xref="x", yref="y", yanchor="top",
                          text=f"{label[:lab].rstrip()} · {value}", showarrow=False,
                          font=dict(size=12, color="#111")))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", hovertext=text, hoverinfo="text",
                             showlegend=False, marker=click_marker(20, "circle"),
                             name="channels"))
    W, H = img.shape[1], img.shape[0]
    fig.update_xaxes(visible=False, range=[0, W], constrain="domain")
    fig.update_yaxes(visible=False, range=[H, 0], scaleanchor="x", constrain="domain")
    narrow = width < FULL  # a phone: the title in two lines
    fig.update_layout(annotations=notes,
                      height=(round(width * H / W) + 80 if narrow
                              else round(FULL * 0.8 * H / W) + 60),
                      title=dict(text=f"{lv.name}: its {k} most active of {lv.shape[0]} "
                                      f"{'classes' if lv.kind == 'classes' else 'channels'}"
                                      f"{'<br>' if narrow else ' '}(by {lv.ranked_by})"),
                      margin=dict(l=0, r=0, t=MODEBAR + (50 if narrow else 30), b=0),
                      plot_bgcolor="white",
                      meta=dict(fit=True, channels=list(lv.channels[:k]),
                                ranking=list(lv.ranking[:k])))
    return fig.figure()


# --- the class outputs, clickable -----------------------------------------------------------
def output_maps_figure(acts: Activations, pick: tuple[int, int, int] | None = None,
                       stretch: bool = False, phone: bool = False) -> go.Figure:
    """The output maps of acts.cls (one panel per output map: a pyramid net's strides side by
    side), one colour scale, cells at (column, row); a transparent marker on every cell carries
    [layer index, row, col] (customdata) for a click; pick: (layer index, row, col) outlined.
    Colours: probabilities on the absolute 0-1 scale, or stretched to the maps' range
    (maps.prob_colour). phone: the panels one under another, a phone's width, the colour bar
    across the top (maps.across_top)."""
    outs = acts.outputs
    n = len(outs)
    titles = []
    for i in outs:
        lv = acts.layers[i]
        m = float(lv.probs.max()) if lv.probs is not None and lv.probs.size else 0.0
        titles.append(f"stride {lv.stride}: {lv.shape[1]}x{lv.shape[2]} cells, max {m:.3f}")
    if phone:  # each panel PHONE_WIDTH less the row axis wide, PHONE_GAP px between two
        sizes = [acts.layers[i].probs.shape for i in outs]
        panels = [round((PHONE_WIDTH - 50) * h / max(w, 1)) + 40 for h, w in sizes]
        top = PHONE_BAR + 26
        height = sum(panels) + PHONE_GAP * (n - 1) + top
        fig = Canvas(rows=n, cols=1, subplot_titles=titles, row_heights=panels,
                     vertical_spacing=PHONE_GAP / (height - top) if n > 1 else 0.0)
    else:
        fig = Canvas(rows=1, cols=n, subplot_titles=titles, horizontal_spacing=0.04)
    probs = [acts.layers[i].probs for i in outs if acts.layers[i].probs.size]
    lo = min((float(m.min()) for m in probs), default=0.0)
    hi = max((float(m.max()) for m in probs), default=0.0)
    for c, i in enumerate(outs, start=1):
        lv = acts.layers[i]
        h, w = lv.probs.shape
        at = dict(row=c, col=1) if phone else dict(row=1, col=c)
        fig.add_trace(go.Heatmap(
            z=values(torch.from_numpy(lv.probs)), coloraxis="coloraxis", name=lv.name,
            hovertemplate=f"cell (%{{y}},%{{x}}): p({acts.class_name}) = %{{z:.3f}}"
                          "<extra></extra>"), **at)
        rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        # numpy arrays, not lists: plotly.py checks a list element by element (~10 ms here)
        fig.add_trace(go.Scatter(
            x=cc.ravel(), y=rr.ravel(), mode="markers", showlegend=False,
            name=f"cells, stride {lv.stride}",
            marker=click_marker(max(5, min(18, 300 // max(w, 1)))),
            customdata=np.stack([np.full(h * w, i), rr.ravel(), cc.ravel()], axis=1),
            hovertemplate="cell (%{customdata[1]},%{customdata[2]})<extra>click to trace its "
                          "window</extra>"), **at)
        if pick is not None and pick[0] == i and 0 <= pick[1] < h and 0 <= pick[2] < w:
            _, r, q = pick
            fig.add_trace(go.Scatter(x=[q - .5, q + .5, q + .5, q - .5, q - .5],
                                     y=[r - .5, r - .5, r + .5, r + .5, r - .5], mode="lines",
                                     line=dict(color="red", width=3), hoverinfo="skip",
                                     showlegend=False, name="picked"), **at)
        fig.update_xaxes(range=[-0.5, w - 0.5], showgrid=False, zeroline=False,
                         constrain="domain", tickmode="auto", nticks=6, tickformat="d",
                         title_text="column", **at)
        fig.update_yaxes(range=[h - 0.5, -0.5], showgrid=False, zeroline=False,
                         scaleanchor=f"x{c if c > 1 else ''}", constrain="domain",
                         tickmode="auto", nticks=6, tickformat="d", showticklabels=phone or c == 1,
                         title_text="row" if phone or c == 1 else None, **at)
    big = max(acts.layers[i].probs.shape[0] / max(acts.layers[i].probs.shape[1], 1) for i in outs)
    colour = prob_colour(acts.class_name, lo, hi, stretch)
    if not phone:
        height, top = int(min(440, max(260, (FULL / n) * big + 110))), MODEBAR + 30
    fig.update_layout(coloraxis=across_top(colour, height) if phone else colour, height=height,
                      margin=room(top, right=127, bottom=62, phone=phone), clickmode="event+select",
                      dragmode=False, meta=dict(outputs=[[i, *acts.layers[i].shape[1:],
                                                          acts.layers[i].stride] for i in outs],
                                                colour="stretch" if stretch else "absolute"))
    return fig.figure()


# --- the offset trick in 1-D (Offsets page) ------------------------------------------------
def offset_strip_figure(strip: OffsetStrip, digits: int = 2) -> go.Figure:
    """Paper Fig. 3 on this image: the band of k pre-pool rows (one channel) on top; under it
    one row per offset dx, each of its cells a brick over the k pre-pool columns it starts at
    (a max pool: exactly the k x k cells it takes the maximum of), with its value; at the
    bottom the interleaved row, one cell per pre-pool column, a bar under it in the colour of
    the offset it came from. One colour scale (Greys, as the page's pooled maps), every number
    written with `digits` decimals."""
    k, c0 = strip.k, strip.col0
    band = strip.band
    width = band.shape[1]
    fmt = f"%{{z:.{digits}f}}"
    fig = go.Figure()
    # y: the band's k rows at 0..k-1, a blank row, then the offsets, a blank, the interleaved.
    fig.add_trace(go.Heatmap(
        x=[c0 + i for i in range(width + 1)], y=[i - 0.5 for i in range(k + 1)],
        z=[[round(float(v), 6) for v in row] for row in band], coloraxis="coloraxis",
        xgap=1, ygap=1, name="pre-pool",
        hovertemplate=f"pre-pool column %{{x}}: {fmt}<extra></extra>"))
    lo = float(min(band.min(), strip.fine.min() if strip.fine.size else band.min()))
    hi = float(max(band.max(), strip.fine.max() if strip.fine.size else band.max()))
    ticks, ticktext = [(k - 1) / 2], [f"pre-pool rows {strip.row0}-{strip.row0 + k - 1}"]
    bricks = []  # (dx, [(x0, x1, y0, y1) of each brick])
    for dx in range(k):
        yc = k + 1 + dx
        cells = strip.pooled[dx]
        if cells:
            edges = [c for c, _ in cells] + [cells[-1][0] + k]
            fig.add_trace(go.Heatmap(
                x=edges, y=[yc - 0.4, yc + 0.4], z=[[round(v, 6) for _, v in cells]],
                coloraxis="coloraxis", xgap=2, texttemplate=fmt, name=f"offset {dx}",
                textfont=dict(size=12),
                hovertemplate=f"offset dx={dx}: pre-pool columns %{{x}}+: {fmt}<extra></extra>"))
            bricks.append((dx, [(c, c + k, yc - 0.42, yc + 0.42) for c, _ in cells]))
        ticks.append(yc)
        ticktext.append(f"offset dx={dx}")
    yi = 2 * k + 2
    cols = [c0 + j for j in range(len(strip.fine))]
    if cols:
        fig.add_trace(go.Heatmap(
            x=cols + [cols[-1] + 1], y=[yi - 0.4, yi + 0.4],
            z=[[round(float(v), 6) for v in strip.fine]], coloraxis="coloraxis", xgap=1,
            texttemplate=fmt, textfont=dict(size=11), name="interleaved",
            hovertemplate=f"column %{{x}}: {fmt}<extra>interleaved</extra>"))
    # The bricks' outlines and the bars under the interleaved row: one line trace per offset
    # each (segments apart at None), not a layout shape per brick and bar: 44 shapes cost the
    # browser ~18 ms a draw, a third of the figure's (issue 27).
    for dx, rects in bricks:
        xs, ys = [], []
        for x0, x1, y0, y1 in rects:
            xs += [x0, x1, x1, x0, x0, None]
            ys += [y0, y0, y1, y1, y0, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"bricks dx={dx}",
                                 line=dict(color=SCALE_COLORS[dx], width=2), hoverinfo="skip",
                                 showlegend=False))
    for dx in range(k):
        on = [c for c in cols if c % k == dx]
        if on:
            fig.add_trace(go.Scatter(
                x=[v for c in on for v in (c + 0.1, c + 0.9, None)],
                y=[v for _ in on for v in (yi + 0.47, yi + 0.47, None)], mode="lines",
                name=f"bars dx={dx}", line=dict(color=SCALE_COLORS[dx], width=4),
                hoverinfo="skip", showlegend=False))
    ticks.append(yi)
    ticktext.append("interleaved (stride 1)")
    fig.update_yaxes(tickvals=ticks, ticktext=ticktext, range=[yi + 0.8, -0.8], showgrid=False,
                     zeroline=False)
    fig.update_xaxes(title_text="pre-pool column", showgrid=False, zeroline=False,
                     range=[c0 - 0.2, c0 + width + 0.2])
    fig.update_layout(height=110 + 34 * (yi + 2),
                      # an activation, not a probability: its own range, named on the bar
                      coloraxis=own_colour(f"channel {strip.channel} activation", lo, hi,
                                           "Greys"),
                      # grey behind the cells: a white (lowest) cell stays visible
                      margin=room(30, left=124, right=128, bottom=66), plot_bgcolor="#c8c8c8",
                      meta=dict(k=k, row0=strip.row0, col0=c0))
    return fig
