"""Static grouped bar charts as one piece of HTML (a page draws it with st.html), styled by
BARS_CSS (the sidebar adds it to every page, with the tables' CSS).

Project choice (issue 27): the Scales page's bars of each scale's spatial maximum were a second
Plotly chart, and on a page's first visit in a fresh Chromium tab that chart alone cost 80 to 90
ms (median of 3 visits, two batches: 454 and 470 ms with it, 369 and 390 ms without; the bars
are Plotly's only chart of that kind before the Experiments page, so their drawing code ran
cold). Bars of a few dozen values need no zoom or pan: as HTML they cost the browser a few
dozen elements. The axis is absolute (0 to 1 for probabilities), like the maps' colours, so
that two classes' bars compare; each bar names its value when pointed at (its title), and the
last series (the final score) prints it above the bar.

Every bar carries its group, its series and its value (data-group, data-series, data-value):
tests read a chart back from them (tests/apptest_helpers.bar_charts).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

BARS_CLASS = "ovf-bars"
_LINE = "#e8e5e2"  # the tables' border colour (overfeat.app.tables)
_AXIS = "#b9b6b3"
_TEXT = "#808495"  # Streamlit's axis-label grey (figures.base.THEME_TEXT)
# rem, so that presenter mode's larger root font grows the chart as it grows the text.
BARS_CSS = f"""
.{BARS_CLASS} {{ font-size: 0.875rem; line-height: 1.3; margin: 0.25rem 0 0.5rem; }}
.{BARS_CLASS} .ovf-axis {{ color: {_TEXT}; font-size: 0.8rem; margin: 0 0 1.1rem 2.6rem; }}
.{BARS_CLASS} .ovf-plot {{ position: relative; height: 14rem; margin-left: 2.6rem;
  border-bottom: 1px solid {_AXIS}; display: flex; gap: 3%; padding: 0 1.5%; }}
.{BARS_CLASS} .ovf-tick {{ position: absolute; left: 0; right: 0; height: 0;
  border-top: 1px solid {_LINE}; }}
.{BARS_CLASS} .ovf-tick span {{ position: absolute; right: 100%; margin-right: 0.35rem;
  transform: translateY(-50%); font-size: 0.8rem; color: {_TEXT}; white-space: nowrap; }}
.{BARS_CLASS} .ovf-group {{ flex: 1; display: flex; align-items: flex-end; gap: 2px;
  position: relative; }}
.{BARS_CLASS} .ovf-bar {{ flex: 1; min-width: 2px; position: relative; }}
.{BARS_CLASS} .ovf-bar b {{ position: absolute; bottom: 100%; left: 50%;
  transform: translateX(-50%); font-weight: 400; font-size: 0.7rem; white-space: nowrap;
  padding-bottom: 1px; }}
.{BARS_CLASS} .ovf-x {{ display: flex; gap: 3%; padding: 0.2rem 1.5% 0; margin-left: 2.6rem; }}
.{BARS_CLASS} .ovf-x div {{ flex: 1; text-align: center; overflow-wrap: anywhere; }}
.{BARS_CLASS} .ovf-legend {{ display: flex; flex-wrap: wrap; gap: 0.2rem 1rem;
  margin: 0.4rem 0 0 2.6rem; font-size: 0.8rem; }}
.{BARS_CLASS} .ovf-legend i {{ display: inline-block; width: 0.8rem; height: 0.8rem;
  margin-right: 0.3rem; vertical-align: -0.1rem; }}
"""


@dataclass(frozen=True)
class Series:
    """One bar per group, in one colour: its name (the legend's), a CSS colour, and a value per
    group (NaN: no value, no bar)."""

    name: str
    colour: str
    values: tuple[float, ...]


def axis_top(series: list[Series], top: float = 1.0) -> float:
    """The axis's top: `top`, or the largest value where one is larger (bars never overflow)."""
    finite = [v for s in series for v in s.values if math.isfinite(v)]
    return max([top, *finite])


def bar_height(v: float, top: float) -> float:
    """A bar's height in percent of the plot: v / top, clipped to [0, 100]; 0 for NaN."""
    if not math.isfinite(v) or top <= 0:
        return 0.0
    return 100.0 * min(max(v, 0.0), top) / top


def value_text(v: float) -> str:
    """A bar's value as the chart writes it by default: three decimals (a probability)."""
    return f"{v:.3f}"


def bars_html(groups: list[str], series: list[Series], axis: str = "", top: float = 1.0,
              ticks: int = 4, label: str = "", fmt=value_text) -> str:
    """Grouped vertical bars: for each group (a class) one bar per series (a scale, then the
    final score), on an axis from 0 to axis_top(series, top) with `ticks` gridlines above 0;
    `axis` names the axis above the plot, `label` is the chart's accessible name, `fmt` writes
    a value (value_text; "n/a" for NaN whatever it is). Names are escaped (plain text, never
    HTML)."""
    if any(len(s.values) != len(groups) for s in series):
        raise ValueError("every series needs one value per group")
    hi = axis_top(series, top)
    esc = html.escape
    grid = "".join(
        f'<div class="ovf-tick" style="bottom: {100 * i / ticks:.4g}%">'
        f"<span>{hi * i / ticks:.4g}</span></div>" for i in range(ticks + 1))
    last = len(series) - 1
    cols = []
    for g, name in enumerate(groups):
        bars = []
        for j, s in enumerate(series):
            v = float(s.values[g])
            text = esc(fmt(v)) if math.isfinite(v) else "n/a"
            shown = f"<b>{text}</b>" if j == last and math.isfinite(v) else ""
            bars.append(
                f'<div class="ovf-bar" data-group="{esc(name)}" data-series="{esc(s.name)}" '
                f'data-value="{v!r}" title="{esc(name)}, {esc(s.name)}: {text}" '
                f'style="height: {bar_height(v, hi):.2f}%; background: {esc(s.colour)}">'
                f"{shown}</div>")
        cols.append(f'<div class="ovf-group">{"".join(bars)}</div>')
    xs = "".join(f"<div>{esc(name)}</div>" for name in groups)
    legend = "".join(f'<span><i style="background: {esc(s.colour)}"></i>{esc(s.name)}</span>'
                     for s in series)
    head = f'<div class="ovf-axis">{esc(axis)}</div>' if axis else ""
    return (f'<div class="{BARS_CLASS}" role="img" aria-label="{esc(label or axis)}">{head}'
            f'<div class="ovf-plot">{grid}{"".join(cols)}</div><div class="ovf-x">{xs}</div>'
            f'<div class="ovf-legend">{legend}</div></div>')
