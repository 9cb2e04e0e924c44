"""The app's static tables as one piece of HTML each (app_pages/common.table draws it with
st.html).

Project choice (issue 27): st.table in Streamlit 1.67 renders every cell, header included, as
its own Markdown element; the Architecture page's three tables were 355 of them, and mounting
them took 0.2 to 0.4 s of the browser's main thread on every visit (measured in headless
Chromium, docs/BENCHMARKS.md). One HTML table per table is drawn in a few milliseconds. It
looks like st.table (the same borders, padding, fonts and colours, read from a drawn one:
TABLE_CSS), numbers right-aligned; cells are plain text, escaped, never Markdown.

Every header cell names its column's kind (int, float, bool or text) in its class, which the
CSS aligns by and which tests read the table back with (tests/apptest_helpers.tables).
"""

from __future__ import annotations

import html

import pandas as pd

TABLE_CLASS = "ovf-table"
KINDS = {"i": "int", "u": "int", "f": "float", "b": "bool"}  # numpy dtype kind -> column kind
NUMERIC = ("int", "float")
_LINE = "#e8e5e2"  # st.table's border colour with this app's theme (.streamlit/config.toml)
# st.table's look in Streamlit 1.67 (computed styles of a drawn st.table), in rem where it was
# 14 px, so that presenter mode's larger root font grows it as it grew st.table.
TABLE_CSS = f"""
.{TABLE_CLASS} {{ border: 1px solid {_LINE}; border-radius: 8px; overflow: auto; }}
.{TABLE_CLASS} table {{ width: 100%; border-collapse: separate; border-spacing: 0;
  font-size: 0.875rem; line-height: 1.5; color: inherit; margin: 0; }}
.{TABLE_CLASS} th, .{TABLE_CLASS} td {{ padding: 0.25rem 0.375rem; vertical-align: middle;
  border: 0; border-bottom: 1px solid {_LINE}; border-right: 1px solid {_LINE};
  text-align: left; font-weight: 400; }}
.{TABLE_CLASS} th {{ color: rgba(47, 45, 43, 0.7); padding-left: 0.5rem; position: sticky; top: 0;
  background: #FFFFFF; }}
.{TABLE_CLASS} tr > :last-child {{ border-right: 0; }}
.{TABLE_CLASS} tbody tr:last-child td {{ border-bottom: 0; }}
.{TABLE_CLASS} td.int, .{TABLE_CLASS} td.float {{ text-align: right; }}
"""


def short(v: float) -> str:
    """A float as it was rounded (882.5, 0.889), not padded to a fixed number of decimals."""
    return f"{v:.10g}"


def column_kinds(df: pd.DataFrame) -> list[str]:
    """Each column's kind: int, float, bool (by its dtype) or text."""
    return [KINDS.get(df[c].dtype.kind, "text") for c in df.columns]


def _cell(v, kind: str, thousands: bool) -> str:
    if v is None or (kind == "float" and pd.isna(v)):
        return ""
    if kind == "int":
        return f"{int(v):,}" if thousands else str(int(v))
    if kind == "float":
        return short(float(v))
    return str(v)


def table_html(data, thousands: tuple[str, ...] = (), height: int | None = None) -> str:
    """Rows (a list of dicts or a DataFrame) as one HTML table, without an index.

    Floats are written as given (the rows are rounded where they are made: overfeat.app.state),
    integer columns named in `thousands` with thousands separators. `height` (px): the table
    scrolls under a sticky header beyond it."""
    df = pd.DataFrame(data)
    kinds = column_kinds(df)
    head = "".join(f'<th class="{k}">{html.escape(str(c))}</th>' for c, k in zip(df.columns, kinds))
    seps = [c in thousands for c in df.columns]
    body = "".join(
        "<tr>" + "".join(f'<td class="{k}">{html.escape(_cell(v, k, s))}</td>'
                         for v, k, s in zip(row, kinds, seps)) + "</tr>"
        for row in df.itertuples(index=False, name=None))
    style = f' style="max-height: {int(height)}px"' if height is not None else ""
    return (f'<div class="{TABLE_CLASS}"{style}><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")
