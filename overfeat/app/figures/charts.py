"""Diagrams and charts without the image: the pipeline, per-scale scores (HTML bars), merge
scores, layer costs, training loss, Table 2 and the efficiency bars.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

import math

from ...geometry import human_count
from ...merge import MergeResult
from ...multiscale import Analysis
from ..bars import Series, bars_html
from .base import FIXED_TEXT, SCALE_COLORS, prob_text, room


# --- overview -------------------------------------------------------------------------------
def pipeline_figure(info: dict, vertical: bool = False) -> go.Figure:
    """The pipeline in one picture: image -> scales -> trunk -> offset pool -> heads -> merge.
    vertical: the stages one under the other (a phone's narrow screen, issue 27: seven boxes
    side by side at 390 px wide overlapped their texts).

    info: numbers to print in the boxes: image (H, W), sizes (the scales' (h, w)), flips, fine
    (offsets on), k, prepool (pre-pool stride, px), stride (output stride, px), coarse (coarse
    stride, px), windows (total over views), views, boxes (raw boxes kept), top (class name,
    score) or None.
    """
    stages = _stages(info)
    if vertical:
        return _pipeline_column(stages, info)
    fig = go.Figure()
    n = len(stages)
    bw, gap = 1.0, 0.3
    colors = ["#f2f2f2", "#dbeafe", "#e0f2e9", "#fef3c7", "#fde2e4", "#ede9fe", "#e0f7fa"]
    # Collected and set once: each fig.add_annotation validates every annotation again (28 of
    # them took 80 ms).
    shapes, notes = [], []
    for i, (title, body, page) in enumerate(stages):
        x0 = i * (bw + gap)
        shapes.append(dict(type="rect", x0=x0, x1=x0 + bw, y0=0, y1=1,
                           line=dict(color="#555", width=1.5), fillcolor=colors[i % len(colors)],
                           layer="below"))
        notes.append(dict(x=x0 + bw / 2, y=0.86, text=f"<b>{title}</b>", showarrow=False,
                          font=dict(size=13, color="#111"), name=FIXED_TEXT))
        notes.append(dict(x=x0 + bw / 2, y=0.42, text=body, showarrow=False,
                          font=dict(size=12, color="#222"), name=FIXED_TEXT))
        notes.append(dict(x=x0 + bw / 2, y=-0.1, text=f"<i>page: {page}</i>", showarrow=False,
                          font=dict(size=11, color="#555"), name=FIXED_TEXT))
        if i < n - 1:
            notes.append(dict(x=x0 + bw + gap - 0.02, y=0.5, ax=x0 + bw + 0.02, ay=0.5,
                              xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                              arrowhead=3, arrowsize=1.2, arrowwidth=2, arrowcolor="#333",
                              text="", name=FIXED_TEXT))
    top = info.get("top")
    tail = ("classification: spatial max per class, averaged over views"
            + (f" -> <b>{top[0]}</b> ({top[1]:.3f})" if top else "")
            + ("; no box regressor: classes, no boxes" if info.get("regressor") is False else ""))
    notes.append(dict(x=(n * (bw + gap) - gap) / 2, y=1.17, text=tail, showarrow=False,
                      font=dict(size=12, color="#111")))
    fig.update_layout(shapes=shapes, annotations=notes)
    # An invisible trace keeps the axes in data coordinates (and the figure non-empty).
    fig.add_trace(go.Scatter(x=[0, n * (bw + gap) - gap], y=[-0.2, 1.25], mode="markers",
                             marker=dict(opacity=0), hoverinfo="skip", showlegend=False))
    fig.update_xaxes(visible=False, range=[-0.1, n * (bw + gap) - gap + 0.1])
    fig.update_yaxes(visible=False, range=[-0.25, 1.3])
    fig.update_layout(height=300, margin=dict(l=5, r=5, t=10, b=5), plot_bgcolor="white",
                      title=None)
    return fig


PIPELINE_COLOURS = ["#f2f2f2", "#dbeafe", "#e0f2e9", "#fef3c7", "#fde2e4", "#ede9fe", "#e0f7fa"]


def _pipeline_tail(info: dict) -> str:
    top = info.get("top")
    return ("classification: spatial max per class, averaged over views"
            + (f" -> <b>{top[0]}</b> ({top[1]:.3f})" if top else "")
            + ("; no box regressor: classes, no boxes" if info.get("regressor") is False else ""))


# The stacked pipeline's lines, wrapped to fit a phone's ~370 px (11 px text, about 6 px a
# character; a 13 px title about 7): a NanoDet stage's numbers ran past the screen's edge on
# one line.
COLUMN_CHARS, COLUMN_TITLE_CHARS = 58, 48


def _column_lines(text: str, width: int = COLUMN_CHARS) -> list[str]:
    """text's lines wrapped at `width` characters, counting what a reader sees (no tags)."""
    import re
    import textwrap

    plain = re.sub(r"<[^>]+>", "", text)
    if len(plain) <= width:
        return [text]
    return textwrap.wrap(plain, width) or [""]


def _pipeline_column(stages: list[tuple[str, str, str]], info: dict) -> go.Figure:
    """pipeline_figure's stages stacked top to bottom: one full-width row per stage, its title
    and page on the first line and its numbers under it (line breaks become commas), wrapped
    at COLUMN_CHARS; a row is as tall as its lines."""
    fig = go.Figure()
    n = len(stages)
    line, pad, gap = 0.3, 0.2, 0.45  # a text line, the row's padding, the arrow's gap (data units)
    shapes, notes = [], []
    y1 = 0.0
    for i, (title, body, page) in enumerate(stages):
        one = " ".join(title.replace("<br>", " ").split())
        head = _column_lines(f"<b>{one}</b>  <i>page: {page}</i>", COLUMN_TITLE_CHARS)
        text = _column_lines(" ".join(p.strip() for p in body.split("<br>") if p.strip()))
        rh = 2 * pad + line * (len(head) + len(text) + 0.5)
        y0 = y1 - rh
        shapes.append(dict(type="rect", x0=0, x1=1, y0=y0, y1=y1, layer="below",
                           line=dict(color="#555", width=1.5),
                           fillcolor=PIPELINE_COLOURS[i % len(PIPELINE_COLOURS)]))
        notes.append(dict(x=0.03, y=y1 - pad - line * len(head) / 2, xanchor="left",
                          align="left", showarrow=False, text="<br>".join(head),
                          font=dict(size=13, color="#111"), name=FIXED_TEXT))
        notes.append(dict(x=0.03, y=y0 + pad + line * len(text) / 2, xanchor="left",
                          align="left", showarrow=False, text="<br>".join(text),
                          font=dict(size=11, color="#222"), name=FIXED_TEXT))
        if i < n - 1:
            notes.append(dict(x=0.5, y=y0 - gap + 0.04, ax=0.5, ay=y0 - 0.04, xref="x",
                              yref="y", axref="x", ayref="y", showarrow=True, arrowhead=3,
                              arrowsize=1.2, arrowwidth=2, arrowcolor="#333", text="",
                              name=FIXED_TEXT))
        y1 = y0 - gap
    bottom = y1 + gap
    tail = _pipeline_tail(info).replace(" -> ", "<br>-> ").replace("; ", "<br>").split("<br>")
    tail = [x for part in tail for x in _column_lines(part)]
    top = 0.15 + line * len(tail)  # the answer's lines above the first stage
    notes.append(dict(x=0.0, y=top / 2 + 0.05, xanchor="left", align="left", text="<br>".join(tail),
                      showarrow=False, font=dict(size=11, color="#111")))
    fig.update_layout(shapes=shapes, annotations=notes)
    fig.add_trace(go.Scatter(x=[0, 1], y=[bottom, top], mode="markers", marker=dict(opacity=0),
                             hoverinfo="skip", showlegend=False))
    fig.update_xaxes(visible=False, range=[-0.01, 1.01], fixedrange=True)
    fig.update_yaxes(visible=False, range=[bottom - 0.05, top + 0.05], fixedrange=True)
    # 50 px per unit of height: a line of text (0.3 units) is 15 px
    fig.update_layout(height=round(50 * (top + 0.1 - bottom)) + 8, margin=dict(l=2, r=2, t=4, b=4),
                      plot_bgcolor="white", title=None)
    return fig


def _stages(info: dict) -> list[tuple[str, str, str]]:
    """pipeline_figure's boxes: (title, body, the page that shows it), left to right. With the
    model's capabilities in info (state.pipeline_info), the stages are state.pipeline_stages'
    (only what the model has: no offset pool for a pyramid, no regressor or merge for a
    classifier), wrapped to fit a box, where the OverFeat net's seven stages would name
    something the model lacks (state.pipeline_misfits); otherwise those seven."""
    legacy = _paper_stages(info)
    if "regressor" in info:
        import textwrap

        from ..state import pipeline_misfits, pipeline_stages

        if pipeline_misfits(" ".join(t + " " + b for t, b, _ in legacy), info):
            def wrap(text: str, width: int) -> str:
                return "<br>".join(textwrap.wrap(text, width)) or text

            return [(wrap(t, 16), wrap(b, 17), page) for t, b, page in pipeline_stages(info)]
    return legacy


def _paper_stages(info: dict) -> list[tuple[str, str, str]]:
    """The OverFeat net's seven stages (an offset max pool, a regressor, the merge)."""
    H, W = info["image"]
    k = info["k"]
    sizes = info["sizes"]
    return [
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


def _count(n: int, noun: str) -> str:
    words = {1: "One", 2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six"}
    return f"{words.get(n, n)} {noun}{'' if n == 1 else 's'}"


def scale_scores_bars(analysis: Analysis, classes: list[int]) -> str:
    """Per class: each scale's spatial max (mean over its flips) and the final average, as
    static HTML bars on an absolute axis from 0 to 1 (overfeat.app.bars: a Plotly chart here
    cost a page's first visit 80 to 90 ms of the browser's time)."""
    names = [analysis.class_names[c] for c in classes]
    series = [Series(f"scale {s + 1}", SCALE_COLORS[s],
                     tuple(float(analysis.scale_scores[s][c]) for c in classes))
              for s in analysis.settings.scales]
    series.append(Series("final (mean of views)", "black",
                         tuple(float(analysis.scores[c]) for c in classes)))
    # values as the page writes probabilities elsewhere: "0.757", ">0.999" (not "1.000")
    return bars_html(names, series, axis="spatial max of p(class), 0 to 1", fmt=prob_text,
                     label="Each scale's spatial maximum of p(class) and the final average, "
                           "for the top classes")


def merge_scores_figure(results: dict[str, MergeResult], step: int) -> go.Figure | None:
    """The match score of the pair merged at each step, one panel per score that made a step
    (their units differ; a merge without steps gets no empty panel: the page says why in
    words, merge.no_steps_reason), with the threshold t (the loop stops once the lowest score
    is above it) and the current step marked. Boxes left after step s: N - s. None when no
    merge made a step."""
    kinds = [k for k in results if results[k].n_steps]
    if not kinds:
        return None
    fig = make_subplots(rows=1, cols=len(kinds), horizontal_spacing=0.08, subplot_titles=[
        f"{kind}: {results[kind].n_steps} merges, t = {results[kind].threshold:g}"
        for kind in kinds])
    colors = {"literal": "#d62728", "corrected": "#2ca02c"}
    for c, kind in enumerate(kinds, start=1):
        r = results[kind]
        n = int(r.boxes.shape[0])
        steps = list(range(1, r.n_steps + 1))
        fig.add_trace(go.Scatter(
            x=steps, y=r.step_scores.tolist(), mode="lines", name=kind,
            line=dict(color=colors.get(kind, "#555")),
            customdata=[n - s for s in steps],
            hovertemplate="step %{x}: match score %{y:.4g}, %{customdata} boxes left"
                          f"<extra>{kind}</extra>"), row=1, col=c)
        fig.add_hline(y=r.threshold, line=dict(color="#555", dash="dash"), row=1, col=c)
        fig.add_vline(x=min(step, r.n_steps), line=dict(color="#111", dash="dot"), row=1, col=c)
        fig.update_xaxes(title_text="step", range=[0, r.n_steps], row=1, col=c)
        fig.update_yaxes(title_text="match score" if c == 1 else None, row=1, col=c)
    fig.update_layout(height=260, margin=dict(l=0, r=0, t=30, b=0), showlegend=False)
    fig.update_annotations(font_size=12)
    return fig


# --- architecture ---------------------------------------------------------------------------
def count_ticks(values) -> dict:
    """Log-axis ticks at the powers of ten spanning the positive values, written as the tables
    and metrics write counts (geometry.human_count: 1.0 K, 10 M, 1.0 G): one unit system on a
    page (Plotly's own labels say 200k and 10B)."""
    pos = [v for v in values if v and v > 0]
    if not pos:
        return {}
    lo, hi = math.floor(math.log10(min(pos))), math.ceil(math.log10(max(pos)))
    ticks = [10 ** e for e in range(lo, hi + 1)]
    return dict(tickvals=ticks, ticktext=[human_count(t) for t in ticks])


def layer_cost_figure(rows: list[dict], at: str = "one window") -> go.Figure:
    """Parameters and multiply-adds per layer (log scale) from state.layer_rows; pools and a
    pyramid's resizes (no parameters, no multiply-adds counted) are left out. at: the input
    the multiply-adds are counted on (a pyramid net: "one 160x160 input")."""
    rows = [r for r in rows if r["kind"] not in ("pool", "resize")]
    names = [r["layer"] for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=["parameters", f"multiply-adds ({at})"])
    fig.add_trace(go.Bar(x=names, y=[r["parameters"] for r in rows], marker_color="#0072B2",
                         name="parameters"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[r["multiply-adds"] for r in rows], marker_color="#D55E00",
                         name="multiply-adds"), row=1, col=2)
    fig.update_yaxes(type="log")
    fig.update_yaxes(**count_ticks([r["parameters"] for r in rows]), row=1, col=1)
    fig.update_yaxes(**count_ticks([r["multiply-adds"] for r in rows]), row=1, col=2)
    fig.update_layout(height=300, margin=dict(l=0, r=0, t=30, b=0), showlegend=False)
    return fig


def training_figure(losses: list[dict], epochs: list[dict] | None = None) -> go.Figure:
    """Live loss curves of a run from overfeat.app.jobs.Job.snapshot(): one line per stage
    over the run's steps (each stage has its own loss: cross-entropy, L2 box loss, detection
    CE), and each finished epoch's mean loss as a marker at its last step. Steps without a loss
    (stage 2 steps that only filled the shuffle buffer, loss None) have no point."""
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


def table2_figure(rows: list[dict], paper: list[dict] | tuple = (), phone: bool = False
                  ) -> go.Figure:
    """The Table 2 analogue (experiments.table_rows: errors in %) as grouped bars per approach,
    and the paper's top-5 errors (experiments.PAPER_TABLE2) in a panel of their own (another
    model, another dataset: compare the trend, not the level). Every bar starts at zero, so
    its height is the error (an axis from 15.9 made 17.1 against 16.3 look five times
    taller); the paper's bars carry their values, whose differences are small.
    phone: the two panels stacked, bars horizontal with the approaches written on the left in
    reading order (side by side in 360 px the approaches' names were cut off)."""
    if phone:
        return _table2_phone(rows, paper)
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
    fig.update_layout(barmode="group", height=400, margin=room(50, left=59, right=80, bottom=124),
                      legend=dict(orientation="h", y=-0.35))
    fig.update_annotations(font_size=12)
    return fig


def _table2_phone(rows: list[dict], paper) -> go.Figure:
    """table2_figure on a phone: one panel above the other, horizontal bars (first approach
    on top), each panel as tall as its bars need."""
    n1, n2 = len(rows), len(paper)
    h1, h2 = 60 * n1, 34 * n2  # px: three bars per approach above, one below
    fig = make_subplots(rows=2 if paper else 1, cols=1,
                        row_heights=[h1, h2] if paper else None, vertical_spacing=0.12,
                        subplot_titles=["this checkpoint"] + (["paper (fast model, ImageNet)"]
                                                             if paper else []))
    names = [r["approach"].replace(", ", ",<br>", 1) for r in rows]
    for key, color in (("top-1 error %", "#0072B2"), ("top-5 error %", "#E69F00"),
                       ("localization error %", "#009E73")):
        fig.add_trace(go.Bar(y=names, x=[r[key] for r in rows], name=key, marker_color=color,
                             orientation="h"), row=1, col=1)
    if paper:
        fig.add_trace(go.Bar(y=[p["approach"].replace(", ", ",<br>", 1) for p in paper],
                             x=[p["top5_error"] for p in paper], orientation="h",
                             name="paper top-5 error %", marker_color="#CC79A7",
                             text=[f"{p['top5_error']:.2f}" for p in paper],
                             textposition="outside", cliponaxis=False), row=2, col=1)
        fig.update_yaxes(autorange="reversed", row=2, col=1)
    fig.update_yaxes(autorange="reversed", row=1, col=1)  # the table's order, top down
    fig.update_xaxes(rangemode="tozero")
    fig.update_xaxes(title_text="error (%)", row=2 if paper else 1, col=1)
    fig.update_layout(barmode="group", height=h1 + h2 + 230, meta=dict(fit=True),
                      margin=dict(l=0, r=30, t=50, b=0),
                      legend=dict(orientation="h", y=-0.12, yanchor="top"))
    fig.update_annotations(font_size=12)
    return fig


def efficiency_figure(rows: list[dict], phone: bool = False) -> go.Figure:
    """Multiply-adds per scale, dense against crop by crop (state.cost_rows), log scale; a
    bar's hover gives the count as text (geometry.human_count) and exactly. phone: the legend
    under the bars (above them it ran under the modebar, which spans a phone's width)."""
    x = [f"scale {r['scale']}" for r in rows]

    def bar(key: str, name: str, color: str) -> go.Bar:
        v = [r[key] for r in rows]
        return go.Bar(x=x, y=v, name=name, marker_color=color,
                      customdata=[[human_count(n), f"{n:,}"] for n in v],
                      hovertemplate="%{x}: %{customdata[0]} (%{customdata[1]}) multiply-adds"
                                    f"<extra>{name}</extra>")

    fig = go.Figure([bar("dense multiply-adds", "dense (trunk once)", "#009E73"),
                     bar("crop multiply-adds", "crop by crop", "#D55E00")])
    fig.update_yaxes(type="log", title_text="multiply-adds",
                     **count_ticks([r[k] for r in rows for k in ("dense multiply-adds",
                                                                 "crop multiply-adds")]))
    fig.update_layout(barmode="group", height=320, margin=room(30, left=72, bottom=29, phone=phone),
                      legend=dict(orientation="h", y=1.12))
    if phone:
        fig.update_layout(height=360, legend=dict(y=-0.12, yanchor="top"))
    return fig
