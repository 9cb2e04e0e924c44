"""Boxes over the image: raw regressor boxes (Regressor page), the greedy merge step by step
(Merge page), final boxes, detections marked against the truth and one method's boxes
(Detection, Greedy vs NMS).
"""

from __future__ import annotations

import textwrap

import plotly.graph_objects as go
import torch
from torch import Tensor

from ...merge import MergeResult, MergeStep
from ...multiscale import ALL_SCALES, BoxTable
from ..state import offset_label
from .base import (DEFAULT_MAX_BOXES, FULL, HALF, LEGEND_ROOM, MODEBAR, SCALE_COLORS, Backdrop,
                   Canvas, add_image, box_trace, class_color, fitted_height, image_axes,
                   image_margin, legend_below, legend_rows, pixels, rect_path)

# --- a phone's layout -----------------------------------------------------------------------
# Project choice (issue 27, a student's phone): on a phone (390 px wide, the page's column
# about 360 px) a figure is drawn PHONE px wide and as tall as its image needs at that width,
# and a long title is wrapped at PHONE_CHARS characters (a Plotly title does not wrap: it ran
# off the right edge). The pages pass phone=common.is_phone() to the builders below.
PHONE = 370  # px: 390 less Streamlit's 10 px padding on each side (measured in Chromium)
PHONE_CHARS = 40  # characters of a title line at the house font (15 px) in PHONE px
TITLE_LINE = 20  # px per wrapped title line (15 px text)


def wrap_title(title: str, phone: bool) -> tuple[str, int]:
    """(title, its number of lines): wrapped at PHONE_CHARS with <br> on a phone, as is on a
    wider screen. Plotly centres a title's lines on where its one line would be, so a second
    line lifted the first into the modebar (measured in Chromium at 390 px); as many blank
    lines as there are extra lines lead the text, and its first line stays in its place."""
    if not phone or len(title) <= PHONE_CHARS:
        return title, 1
    lines = textwrap.wrap(title, PHONE_CHARS)
    return "&nbsp;<br>" * (len(lines) - 1) + "<br>".join(lines), len(lines)


def phone_layout(fig: go.Figure, bd: Backdrop, title: str, below: int = 28,
                 left: int = 40) -> None:
    """A figure of the image on a phone: the title wrapped (room above the plot for all its
    lines), the height fitted to the image PHONE px wide (less `left`, the y axis's labels),
    with `below` px under it for the x axis's labels and then the legend, 24 px for each of
    its rows (legend_rows): no blank band above or under the image, no legend over the
    labels."""
    text, n = wrap_title(title, True)
    top = MODEBAR + TITLE_LINE * n + 8
    image = fitted_height(bd, PHONE - left, extra=0)
    extra = top + below + 24 * legend_rows(fig, PHONE) + 6
    # the legend in rows under the labels, from the left: left as a column at the right (the
    # figures' default), Plotly grew the right margin for it to 113-275 px and drew the image
    # in the ~150 px left of a 370 px phone (issue 27)
    fig.update_layout(title=dict(text=text), margin=dict(r=0, t=top, b=0),
                      height=image + extra, meta=dict(fit=True),
                      legend=dict(orientation="h", x=0, xanchor="left", y=-(below + 4) / image,
                                  yanchor="top"))


# --- regressor ------------------------------------------------------------------------------
def boxes_figure(bd: Backdrop, table: BoxTable, idx: Tensor, class_names, k: int,
                 pick: int | None = None, title: str = "",
                 strides: dict[int, int] | None = None, phone: bool = False) -> go.Figure:
    """Raw regressor boxes idx of table, coloured by scale; a marker at each box centre carries
    its row index (customdata) for hover and click. pick: a row whose window is also drawn.
    strides: a pyramid net's {level: stride}: the hover names a box's stride, not an offset.
    The x axis's pixel labels are on top, right above the image (the axes hug the image), the
    title above them; phone: phone_layout (title wrapped, height fitted to a phone's width)."""
    pyramid = strides is not None and len(strides) > 1

    def where(i: int) -> str:
        if pyramid:
            return f"stride {strides[int(table.level[i])]}"
        return f"offset {offset_label(int(table.offset[i]), k)}"

    fig = Canvas()
    add_image(fig, bd, opacity=0.55)  # dimmed so that hundreds of thin boxes stay visible
    idx = idx.long()
    for s in ALL_SCALES:
        sel = idx[table.scale[idx] == s]
        if len(sel) == 0:
            continue
        xs, ys = rect_path(table.boxes[sel])
        color = SCALE_COLORS[s]
        # Faint outlines, distinct centre markers (white rim, drawn above): with hundreds of
        # boxes the outlines make a texture and the markers stay apart and clickable.
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=1),
                                 opacity=0.35, name=f"scale {s + 1} ({len(sel)})",
                                 legendgroup=f"s{s}", hoverinfo="skip"))
        b = table.boxes[sel]
        text = [f"#{i} {class_names[int(table.labels[i])]} {float(table.scores[i]):.3f}<br>"
                f"scale {s + 1}{' flip' if bool(table.flip[i]) else ''}, {where(i)}, "
                f"cell ({int(table.row[i])},{int(table.col[i])})"
                for i in sel.tolist()]
        fig.add_trace(go.Scatter(x=pixels((b[:, 0] + b[:, 2]) / 2), y=pixels((b[:, 1] + b[:, 3]) / 2),
                                 mode="markers", marker=dict(color=color, size=9, opacity=0.9,
                                                             line=dict(color="white", width=1)),
                                 customdata=sel.tolist(), hovertext=text, hoverinfo="text",
                                 name=f"centres, scale {s + 1}", legendgroup=f"s{s}",
                                 showlegend=False))
    if pick is not None:
        w, b = table.windows[pick], table.boxes[pick]
        fig.add_trace(box_trace(w, "#111111", f"window of box #{pick}", width=3, dash="dash"))
        fig.add_trace(box_trace(b, "#e6194b", f"box #{pick}", width=4))
    image_axes(fig, bd, pad=0.15)
    # Pixels, read off on top. The axes shrink to the image (constrain="domain", the image at
    # the top of the plot), so the labels sit on the image's edge, not over a blank band; the
    # top margin holds the title's line and, under it, the labels at presenter mode's font
    # (styled: 1.4 x 14 px), which the title was drawn over when it was 70 px.
    fig.update_xaxes(showticklabels=True, ticks="outside", side="top", constrain="domain")
    fig.update_yaxes(constrain="domain", constraintoward="top")
    top = MODEBAR + 26 + 42
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=600,
                      meta=dict(fit=True),  # presenter mode: the same 600 px (720 px screens)
                      margin=dict(l=40, r=0, t=top, b=LEGEND_ROOM), clickmode="event+select",
                      dragmode="pan", legend=dict(orientation="h", y=-0.04))
    fig = fig.figure()
    if phone:
        phone_layout(fig, bd, title, below=0)
        fig.update_layout(margin=dict(t=fig.layout.margin.t + 30))  # the labels on top
        fig.update_layout(height=fig.layout.height + 30)
    return fig


# --- merge ----------------------------------------------------------------------------------
# Line width and opacity of a box by its confidence: (lower bound, width, opacity). A
# confidence sums window probabilities, so one raw window (< 1) is thin and faint, a box of a
# few windows medium, one that has swallowed a cluster (>= 10 windows' worth) thick and strong.
CONF_BANDS = ((10.0, 3.5, 1.0), (1.0, 2.0, 0.8), (0.0, 1.0, 0.45))


PAIR_STYLES = {  # the pair being merged, drawn on top of everything (colour-blind safe)
    "b1": dict(color="#D55E00", width=3, dash="solid"),
    "b2": dict(color="#0072B2", width=3, dash="dot"),
    "merged": dict(color="#111111", width=3, dash="dash"),
}
HALO = "white"


def merge_figure(bd: Backdrop, ms: MergeStep, class_names, title: str,
                 max_boxes: int | None = DEFAULT_MAX_BOXES, height: int | None = None,
                 ) -> go.Figure:
    """One step of the greedy merge. Under: the boxes left after the step, one trace per class
    and confidence band (CONF_BANDS: line width and opacity), all boxes of a trace in one
    None-separated path. On top, in this order: the merged box (dashed black), a white halo
    under both members, then the pair being merged, b1 (solid orange) and b2 (dotted blue),
    and a marker with the member's name at each centre, so that two near-identical boxes
    stay visible. At most max_boxes boxes left are drawn (the most confident).
    height: the figure's height in px (default: fitted to a half-width column, at most 640)."""
    fig = go.Figure()
    add_image(fig, bd, opacity=0.55)  # dimmed so that hundreds of thin boxes stay visible
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
        n_c = int((st.labels == c).sum())
        for lo, width, opacity in CONF_BANDS:
            sel = order[(labels == c) & (rel >= lo) & (rel < upper)]
            upper = lo
            if len(sel) == 0:
                continue
            xs, ys = rect_path(st.boxes[sel])
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines", opacity=opacity,
                line=dict(color=class_color(c), width=width), legendgroup=f"class{c}",
                name=f"{class_names[c]}: {n_c} box{'' if n_c == 1 else 'es'} left",
                showlegend=first, hoverinfo="skip"))
            first = False
    if ms.pair is not None:
        i, j = ms.pair
        cls = class_names[ms.label]
        fig.add_trace(box_trace(ms.merged, name="merged box (dashed)",
                                hover=f"merged {cls} box, confidence {ms.conf:.3f}",
                                **PAIR_STYLES["merged"]))
        xs, ys = rect_path(torch.stack([ms.b1.double(), ms.b2.double()]))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=HALO, width=7),
                                 hoverinfo="skip", showlegend=False, name="halo"))
        fig.add_trace(box_trace(ms.b1, name=f"b1 = box #{i} (pair being merged)", hover=f"b1 = box #{i}",
                                **PAIR_STYLES["b1"]))
        fig.add_trace(box_trace(ms.b2, name=f"b2 = box #{j} (pair being merged)", hover=f"b2 = box #{j}",
                                **PAIR_STYLES["b2"]))
        centres = torch.stack([ms.b1.double(), ms.b2.double()])
        fig.add_trace(go.Scatter(
            x=pixels((centres[:, 0] + centres[:, 2]) / 2),
            y=pixels((centres[:, 1] + centres[:, 3]) / 2), mode="markers+text",
            text=["b1", "b2"], textposition=["top left", "bottom right"],
            textfont=dict(color=[PAIR_STYLES["b1"]["color"], PAIR_STYLES["b2"]["color"]]),
            marker=dict(color=[PAIR_STYLES["b1"]["color"], PAIR_STYLES["b2"]["color"]], size=8,
                        symbol=["x", "cross"], line=dict(color=HALO, width=1)),
            hoverinfo="skip", showlegend=False, name="centres of the pair"))
    image_axes(fig, bd, pad=0.06)
    fig.update_layout(title=dict(text=title, font=dict(size=13)),
                      height=height or min(fitted_height(bd, HALF), 640), meta=dict(fit=True),
                      margin=image_margin(bd, 0.06),
                      legend=dict(orientation="h", y=-0.04, title=dict(
                          text="thicker = more confident:")),
                      uirevision="merge")
    return fig


def final_boxes_figure(bd: Backdrop, result: MergeResult, class_names, n: int = 5,
                       truth: list[dict] | None = None, title: str = "") -> go.Figure:
    """The n most confident merged boxes, labelled with class and confidence."""
    fig = go.Figure()
    add_image(fig, bd)
    for t in truth or []:
        fig.add_trace(box_trace(torch.tensor(t["box"], dtype=torch.float64), "white",
                                f"truth: {t['name']}", width=2, dash="dot"))
    f = result.final
    for i in range(min(n, len(f))):
        c = int(f.labels[i])
        conf = float(f.confs[i])
        fig.add_trace(box_trace(f.boxes[i], class_color(c),
                                f"{i + 1}. {class_names[c]} {conf:.2f}", width=4 if i == 0 else 2,
                                hover=f"{class_names[c]}: confidence {conf:.3f}, "
                                      f"{len(f.members[i])} raw boxes"))
    image_axes(fig, bd, pad=0.03)  # final boxes are clipped to the image
    fig.update_layout(title=dict(text=title, font=dict(size=13)),
                      height=min(fitted_height(bd, HALF), 600), meta=dict(fit=True),
                      margin=image_margin(bd, 0.03))
    return legend_below(fig, HALF)


# --- detection, experiments, merge vs NMS, efficiency ----------------------------------------
MARK_COLORS = {"TP": "#2ca02c", "FP": "#d62728", "missed": "#ff7f0e", "ignored": "#9e9e9e"}
MARK_NAMES = {"TP": "true positive", "FP": "false positive (dashed)",
              "missed": "missed object (dotted)",
              "ignored": "on an object too small or hidden to count (grey)"}


def detection_marks_figure(bd: Backdrop, dets: list, status: list[str] | None = None,
                           truth: list[dict] | None = None, missed: list[int] | None = None,
                           title: str = "", phone: bool = False) -> go.Figure:
    """Final detections (boxes.Detection records) on the image. With status (per detection, "TP" or
    "FP", from compare.match_truth): true positives solid green, false positives dashed red,
    and the missed truths (indices into truth) dotted orange; without, boxes by class.
    phone: phone_layout (title wrapped, height fitted to a phone's width)."""
    fig = go.Figure()
    add_image(fig, bd)
    for t in truth or []:
        fig.add_trace(box_trace(torch.tensor(t["box"], dtype=torch.float64), "white",
                                f"truth: {t['name']}", width=1.5, dash="dot",
                                hover=f"truth: {t['name']}", showlegend=False))
    # One legend entry per kind of mark (TP, FP, missed; or per class), not per box: the boxes
    # carry their rank in the page's table as a label instead.
    seen: set[str] = set()
    for i, d in enumerate(dets):
        s = status[i] if status is not None else None
        color = MARK_COLORS[s] if s else class_color(d.label)
        group = MARK_NAMES[s] if s else d.name
        tr = box_trace(torch.tensor(d.box), color, group, width=3,
                       dash="dash" if s == "FP" else "solid",
                       hover=f"#{i + 1} {s or ''} {d.name}: "
                             + (f"score {d.score:.2f}, " if d.score is not None else "")
                             + f"confidence {d.confidence:.3f}, {d.members} raw boxes",
                       showlegend=group not in seen)
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
        tr = box_trace(torch.tensor(t["box"], dtype=torch.float64), MARK_COLORS["missed"],
                       MARK_NAMES["missed"], width=3, dash="dot", hover=f"missed: {t['name']}",
                       showlegend="missed" not in seen)
        tr.legendgroup = "missed"
        seen.add("missed")
        fig.add_trace(tr)
    if missed:  # a missed object's class written on it: "2 of 5 found" can be read off the image
        fig.add_trace(go.Scatter(
            x=[truth[j]["box"][0] for j in missed], y=[truth[j]["box"][3] for j in missed],
            mode="text", text=[f"missed: {truth[j]['name']}" for j in missed],
            textposition="bottom right", textfont=dict(color=MARK_COLORS["missed"]),
            hoverinfo="skip", showlegend=False))
    image_axes(fig, bd, pad=0.03)  # final boxes are clipped to the image
    fig.update_layout(title=dict(text=title, font=dict(size=13)),
                      height=min(fitted_height(bd, FULL), 640), meta=dict(fit=True),
                      margin=image_margin(bd, 0.03))
    if phone:
        phone_layout(fig, bd, title)
        return fig
    return legend_below(fig, FULL)


def method_boxes_figure(bd: Backdrop, boxes: Tensor, confs: Tensor, labels: Tensor, class_names,
                        truth: list[dict] | None = None, title: str = "",
                        max_boxes: int | None = DEFAULT_MAX_BOXES) -> go.Figure:
    """The final boxes of one method (boxes.Detections' fields), one trace per class, the
    most confident max_boxes of them, over the truth (dotted white)."""
    fig = go.Figure()
    add_image(fig, bd, opacity=0.9)
    for t in truth or []:
        fig.add_trace(box_trace(torch.tensor(t["box"], dtype=torch.float64), "white",
                                f"truth: {t['name']}", width=2, dash="dot", showlegend=False))
    n = int(boxes.shape[0]) if max_boxes is None else min(max_boxes, int(boxes.shape[0]))
    lab = labels[:n]
    for c in sorted(set(lab.tolist())):
        sel = (lab == c).nonzero().flatten()
        xs, ys = rect_path(boxes[sel])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=class_color(c), width=2),
                                 name=f"{class_names[c]} ({len(sel)})", hoverinfo="skip"))
    image_axes(fig, bd, pad=0.15)  # regressed boxes may reach outside the image
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=420,
                      margin=image_margin(bd, 0.15))
    return legend_below(fig, HALF)
