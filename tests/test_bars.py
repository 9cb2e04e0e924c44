"""The static HTML bar charts (overfeat.app.bars): every bar's height, value and names, read back
from the HTML, against a plain reference on random charts; escaping; the axis grows for values
above its top."""

from __future__ import annotations

import math
import random

import pytest

from apptest_helpers import _BarsReader, bar_height
from overfeat.app.bars import BARS_CLASS, BARS_CSS, Series, bars_html


def _reference_height(v: float, top: float) -> float:
    """A bar's height in percent, written out case by case."""
    if v != v:  # NaN
        return 0.0
    if v <= 0:
        return 0.0
    if v >= top:
        return 100.0
    return v / top * 100.0


def _random_chart(rng: random.Random):
    groups = [f"class {i}" for i in range(rng.randint(1, 6))]
    series = []
    for j in range(rng.randint(1, 8)):
        vals = []
        for _ in groups:
            r = rng.random()
            vals.append(float("nan") if r < 0.05 else -0.2 if r < 0.1 else rng.uniform(0, 1.3)
                        if r < 0.2 else rng.random())
        series.append(Series(f"scale {j + 1}", f"#{rng.randrange(16 ** 6):06x}", tuple(vals)))
    return groups, series


@pytest.mark.parametrize("seed", range(25))
def test_every_bar_reads_back_with_its_value_and_height(seed):
    rng = random.Random(seed)
    groups, series = _random_chart(rng)
    text = bars_html(groups, series, axis="p")
    r = _BarsReader()
    r.feed(text)
    assert len(r.bars) == len(groups) * len(series)
    top = max([1.0] + [v for s in series for v in s.values if v == v])
    it = iter(r.bars)
    for g in groups:  # group by group, series by series within a group
        for s in series:
            b = next(it)
            v = s.values[groups.index(g)]
            assert b["data-group"] == g and b["data-series"] == s.name
            got = float(b["data-value"])
            assert (math.isnan(got) and math.isnan(v)) or got == v
            height = bar_height(b)
            # written to a hundredth of a percent (of a 14rem plot: under 0.1 px)
            assert height == pytest.approx(_reference_height(v, top), abs=0.0051)
            assert f"background: {s.colour}" in b["style"]
            assert b["title"] == f"{g}, {s.name}: " + ("n/a" if v != v else f"{v:.3f}")
    assert r.legend == [s.name for s in series]


def test_the_last_series_prints_its_values_and_the_axis_has_its_ticks():
    text = bars_html(["dog", "cat"], [Series("scale 1", "red", (0.5, 0.25)),
                                      Series("final", "black", (0.75, float("nan")))])
    assert text.count("<b>") == 1 and "<b>0.750</b>" in text  # NaN: no bar, no number
    for tick in ("0", "0.25", "0.5", "0.75", "1"):
        assert f"<span>{tick}</span>" in text
    # a page's own way of writing a value, in the tooltips and above the last series
    text = bars_html(["dog"], [Series("final", "black", (0.9996,))],
                     fmt=lambda v: ">0.999" if v > 0.999 else f"{v:.3f}")
    assert "<b>&gt;0.999</b>" in text and 'title="dog, final: &gt;0.999"' in text
    # a value above 1 raises the axis so that no bar overflows
    tall = bars_html(["dog"], [Series("s", "red", (2.0,))])
    assert "<span>2</span>" in tall and "height: 100.00%" in tall


def test_names_are_escaped_and_a_short_series_is_refused():
    text = bars_html(['<script>alert(1)</script>'], [Series('a "b" <i>', "red", (0.5,))])
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert 'data-series="a &quot;b&quot; &lt;i&gt;"' in text
    with pytest.raises(ValueError, match="one value per group"):
        bars_html(["a", "b"], [Series("s", "red", (0.5,))])


def test_the_css_styles_the_chart_in_rem():
    assert text_has_rules(BARS_CSS)
    assert f".{BARS_CLASS} .ovf-plot" in BARS_CSS and "14rem" in BARS_CSS


def text_has_rules(css: str) -> bool:
    return css.count("{") == css.count("}") > 5
