"""overfeat.app.tables: the app's tables as one piece of HTML each. Read back with the tests'
own plain reader (apptest_helpers.tables: Python's html.parser), random tables come back with
the values they were made from; text is escaped, never markup; numbers are right-aligned by
their column's kind; thousands separators only where asked."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pandas as pd

from apptest_helpers import tables
from overfeat.app.tables import TABLE_CLASS, TABLE_CSS, table_html

WORDS = ["conv1", "pool<2>", "a & b", "IoU >= 0.5", "**bold**", "x'y\"z", "", "dog", "1,2,3"]


class _Page:
    """What apptest_helpers.tables reads: .get("html") -> elements with .value."""

    def __init__(self, *bodies: str):
        self.bodies = bodies

    def get(self, kind: str):
        assert kind == "html"
        return [SimpleNamespace(value=b) for b in self.bodies]


def random_rows(rng: random.Random) -> list[dict]:
    n = rng.randint(1, 30)
    cols = {"name": lambda: rng.choice(WORDS), "count": lambda: rng.randint(-10**7, 10**7),
            "p": lambda: round(rng.random(), rng.randint(1, 6)),
            "big": lambda: round(rng.uniform(-1e6, 1e6), 2), "flip": lambda: rng.random() < 0.5}
    picked = rng.sample(sorted(cols), rng.randint(1, len(cols)))
    return [{c: cols[c]() for c in picked} for _ in range(n)]


def test_random_tables_come_back_with_their_values():
    rng = random.Random(0)
    for _ in range(60):
        rows = random_rows(rng)
        thousands = tuple(c for c in ("count",) if rng.random() < 0.5)
        body = table_html(rows, thousands=thousands)
        (got,) = tables(_Page("<style>p {}</style>", body))  # the page's CSS is skipped
        want = pd.DataFrame(rows)
        assert list(got.columns) == list(want.columns)
        for c in want.columns:
            assert got[c].tolist() == want[c].tolist(), c
        for v in want.get("count", []):
            cell = f"{v:,}" if thousands else str(v)
            assert f'<td class="int">{cell}</td>' in body


def test_text_is_escaped_not_markup():
    body = table_html([{"term": "<b>IoU</b> & **x**", "n": 3}])
    assert "<b>" not in body and "&lt;b&gt;IoU&lt;/b&gt; &amp; **x**" in body
    assert tables(_Page(body))[0]["term"].tolist() == ["<b>IoU</b> & **x**"]


def test_kinds_align_numbers_and_height_scrolls():
    body = table_html(pd.DataFrame({"a": ["x"], "b": [1], "c": [0.5], "d": [True]}), height=120)
    assert '<th class="text">a</th><th class="int">b</th><th class="float">c</th>' in body
    assert '<td class="int">1</td><td class="float">0.5</td><td class="bool">True</td>' in body
    assert body.startswith(f'<div class="{TABLE_CLASS}" style="max-height: 120px">')
    assert f".{TABLE_CLASS} td.int, .{TABLE_CLASS} td.float {{ text-align: right; }}" in TABLE_CSS
    assert "position: sticky" in TABLE_CSS


def test_floats_are_written_as_rounded_and_ints_as_asked():
    body = table_html([{"c": 882.5, "p": 0.889, "n": 1234567, "m": 1234567}], thousands=("n",))
    cells = body.split("<tbody>")[1]
    for text in (">882.5<", ">0.889<", ">1,234,567<", ">1234567<"):
        assert text in cells
    assert np.isnan(tables(_Page(table_html([{"v": float("nan")}, {"v": 1.5}])))[0]["v"][0])
