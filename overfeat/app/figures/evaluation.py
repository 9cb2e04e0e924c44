"""Figures of the evaluation pages: the precision-recall curves of a set of images (Detection),
detections with every true object's class written on it, and one method's counted boxes marked
right or wrong and where they differ from the other methods (Greedy vs NMS).
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import torch

from ...boxes import Detections
from ...metrics import PRCurve, precision_envelope
from .base import (CLASS_COLORS, HALF, Backdrop, Canvas, add_image, box_trace, class_color,
                   fitted_height, image_axes, image_margin, legend_below, rect_path, room)
from .base import MODEBAR
from .boxes import (MARK_COLORS, MARK_NAMES, PHONE, TITLE_LINE, detection_marks_figure,
                    phone_layout, wrap_title)

SHADOW = "0px 0px 3px black"  # text on a photo: readable on light and dark parts alike
LABELLED = 30  # boxes whose rank and class are written on the image (more would hide it)


# --- precision-recall -----------------------------------------------------------------------
def pr_curve_figure(curves: dict[int, PRCurve], aps: dict[int, float], class_names,
                    title: str = "", phone: bool = False) -> go.Figure:
    """One precision-recall curve per class (metrics.precision_recall: a point after each
    ranked detection, hover: its rank, confidence and whether it was right) and, dashed, the
    envelope whose area is the class's AP (metrics.precision_envelope). aps: {class: AP} as
    the report gives it (the legend writes it). phone: the legend under the plot, in rows,
    (on the right it took half of a phone's width) and the title wrapped."""
    fig = go.Figure()
    for i, (c, cv) in enumerate(curves.items()):
        color = CLASS_COLORS[i % len(CLASS_COLORS)]
        ap = aps.get(c, math.nan)
        name = f"{class_names[c]}: AP {ap:.2f}" if not math.isnan(ap) else class_names[c]
        ex, ey = precision_envelope(cv.recall, cv.precision)
        fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(color=color, width=1.5,
                                                                      dash="dash", shape="vh"),
                                 legendgroup=f"c{c}", showlegend=False, hoverinfo="skip",
                                 name=f"{class_names[c]} envelope"))
        text = [f"{class_names[c]}, rank {k + 1}: {'right' if t else 'wrong'} box, confidence "
                f"{conf:.3g}<br>recall {r:.2f}, precision {p:.2f}"
                for k, (t, conf, r, p) in enumerate(zip(cv.tp.tolist(), cv.confidence.tolist(),
                                                        cv.recall.tolist(),
                                                        cv.precision.tolist()))]
        fig.add_trace(go.Scatter(x=[float(v) for v in cv.recall],
                                 y=[float(v) for v in cv.precision], mode="lines+markers",
                                 line=dict(color=color, width=2), marker=dict(size=6),
                                 legendgroup=f"c{c}", name=name, hovertext=text,
                                 hoverinfo="text"))
    fig.update_xaxes(title_text="recall (share of the objects found)", range=[0, 1.02])
    fig.update_yaxes(title_text="precision (share of boxes right)", range=[0, 1.05])
    # margins that hold the axes' titles and labels and the legend at the right, ~7 px a
    # character of its widest entry (what Plotly's automargin grew them to in Chromium, with no
    # pad: l 62, b 59; r 161 for 14 characters): drawn once, not twice (room)
    widest = max((len(t.name) for t in fig.data if t.showlegend is not False), default=0)
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=400,
                      margin=room(40, left=64, right=63 + 7 * widest, bottom=60),
                      legend=dict(orientation="v", x=1.02, y=1))
    if phone:  # a square plot, then the legend: about three entries a row, 24 px a row
        text, n = wrap_title(title, True)
        top = MODEBAR + TITLE_LINE * n + 8
        rows = math.ceil(len(curves) / 3)
        fig.update_layout(title=dict(text=text), margin=dict(l=0, r=0, t=top, b=0),
                          height=top + PHONE + 60 + 24 * rows,
                          legend=dict(orientation="h", x=0, y=-0.15, yanchor="top"))
    return fig


# --- detection ------------------------------------------------------------------------------
def truth_label_trace(truth: list[dict], skip=()) -> go.Scatter:
    """Each true object's class written inside its box, at the bottom left (the objects in
    `skip`, missed ones, carry "missed: ..." below the box instead)."""
    keep = [t for j, t in enumerate(truth) if j not in set(skip)]
    return go.Scatter(x=[t["box"][0] for t in keep], y=[t["box"][3] for t in keep], mode="text",
                      text=[t["name"] + (" (difficult)" if t.get("difficult") else "")
                            for t in keep],
                      textposition="top right",
                      textfont=dict(color="white", shadow=SHADOW),
                      hoverinfo="skip", showlegend=False, name="truth labels")


def labelled_marks_figure(bd: Backdrop, dets: list, status: list[str] | None = None,
                          truth: list[dict] | None = None, missed: list[int] | None = None,
                          title: str = "", phone: bool = False) -> go.Figure:
    """figures.detection_marks_figure with every true object's class written on the image:
    a missed one's below its box ("missed: cat"), the others inside it, so "2 of 5 found, 3
    missed" can be read off the picture. phone: laid out for a phone's width."""
    fig = detection_marks_figure(bd, dets, status, truth, missed, title, phone=phone)
    for t in fig.data:  # the missed objects' names: orange read badly on a light photo
        if getattr(t, "mode", None) == "text" and str((t.text or [""])[0]).startswith("missed: "):
            t.textfont.shadow = SHADOW
    if truth:
        fig.add_trace(truth_label_trace(truth, missed or ()))
    return fig


# --- greedy vs NMS --------------------------------------------------------------------------
def method_marks_figure(bd: Backdrop, dets: Detections, class_names, status: list[str] | None = None,
                        truth: list[dict] | None = None, missed: list[int] | None = None,
                        lacking: list[list[str]] | None = None, title: str = "",
                        max_boxes: int | None = None, phone: bool = False) -> go.Figure:
    """One method's counted boxes (most confident first), large enough to compare with the
    others: with status (compare.match_truth, per box) true positives solid green, false
    positives dashed red, the missed truths dotted orange; without, by class. lacking (per box,
    compare.counterparts): the other methods with no box for it; such a box is drawn thick on a
    white halo ("not in every method") and carries its rank and class (the first LABELLED
    boxes: the others say theirs on hover); every true object its class. phone: laid out for a
    phone's width (boxes.phone_layout)."""
    fig = Canvas()
    add_image(fig, bd, opacity=0.9)
    n = len(dets) if max_boxes is None else min(max_boxes, len(dets))
    lacking = lacking or [[] for _ in range(len(dets))]
    for t in truth or []:
        fig.add_trace(box_trace(torch.tensor(t["box"], dtype=torch.float64), "white",
                                f"truth: {t['name']}", width=1.5, dash="dot",
                                hover=f"truth: {t['name']}", showlegend=False))
    labels = dets.labels.tolist()
    # Boxes grouped by (kind of mark, differs): one trace each, one legend entry each.
    groups: dict[tuple[str, bool], list[int]] = {}
    for i in range(n):
        kind = status[i] if status is not None else f"class:{labels[i]}"
        groups.setdefault((kind, bool(lacking[i])), []).append(i)
    for (kind, differs), idx in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        sel = torch.tensor(idx, dtype=torch.long)
        if kind.startswith("class:"):
            c = int(kind.split(":")[1])
            color, dash, name = class_color(c), "solid", class_names[c]
        else:
            color, dash, name = MARK_COLORS[kind], ("dash" if kind == "FP" else "solid"), MARK_NAMES[kind]
        xs, ys = rect_path(dets.boxes[sel])
        if differs:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="white", width=8),
                                     hoverinfo="skip", showlegend=False, name="halo"))
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines", line=dict(color=color, width=4.5 if differs else 2, dash=dash),
            name=f"{name} ({len(idx)})" + (", not in every method" if differs else ""),
            legendgroup=f"{kind}{differs}", hoverinfo="skip", meta=idx))
    k = min(n, LABELLED)
    if k:
        fig.add_trace(go.Scatter(
            x=[float(dets.boxes[i, 0]) for i in range(k)],
            y=[float(dets.boxes[i, 1]) for i in range(k)], mode="text",
            # Written on the boxes that differ only (the others: hover): a label on each of
            # eight overlapping boxes hid the picture.
            text=[f"#{i + 1} {class_names[labels[i]]}" if lacking[i] else "" for i in range(k)],
            hovertext=[f"#{i + 1} {class_names[labels[i]]}"
                       + (f" ({status[i]})" if status is not None else "")
                       + (f": no such box in {', '.join(lacking[i])}" if lacking[i] else
                          ": every other method has it") for i in range(k)],
            hoverinfo="text", textposition="top right",
            textfont=dict(color="white", shadow=SHADOW), showlegend=False,
            name="box labels"))
    for j in missed or []:
        t = truth[j]
        fig.add_trace(box_trace(torch.tensor(t["box"], dtype=torch.float64), MARK_COLORS["missed"],
                                MARK_NAMES["missed"], width=3, dash="dot",
                                hover=f"missed: {t['name']}", showlegend=j == missed[0]))
    if missed:
        fig.add_trace(go.Scatter(
            x=[truth[j]["box"][0] for j in missed], y=[truth[j]["box"][3] for j in missed],
            mode="text", text=[f"missed: {truth[j]['name']}" for j in missed],
            textposition="bottom right", textfont=dict(color=MARK_COLORS["missed"], shadow=SHADOW),
            hoverinfo="skip", showlegend=False, name="missed labels"))
    if truth:
        fig.add_trace(truth_label_trace(truth, missed or ()))
    image_axes(fig, bd, pad=0.06)  # NMS boxes are not clipped: they may reach outside
    fig.update_layout(title=dict(text=title, font=dict(size=13)),
                      height=min(fitted_height(bd, HALF, extra=130), 620), meta=dict(fit=True),
                      margin=image_margin(bd, 0.06))
    fig = fig.figure()
    if phone:
        phone_layout(fig, bd, title)
        return fig
    return legend_below(fig, HALF)
