"""Presenter mode and a phone on the box and evaluation pages (issue 27), headless: the main
figure comes before the page's metrics and tables there (and stays after them on a desktop,
unchanged), the Regressor's two settings boxes are one, a phone gets its figures laid out for
360 px (titles wrapped, heights fitted) and a Glossary of blocks instead of a five-column
table. Where the figures land in a real browser: tests/test_browser_compact_boxes.py.
"""

from __future__ import annotations

import random
import string

import pytest
import torch

from apptest_helpers import CHEAP, figures, markdown, ok, open_link, page, tables
from app_pages import common
from overfeat.app.tables import TABLE_CLASS
from overfeat import experiments, glossary
from overfeat.app import figures as figures_mod
from overfeat.app.figures import FONT, MODEBAR, PRESENTER_SCALE, Backdrop, boxes_figure, styled
from overfeat.app.figures.boxes import PHONE, PHONE_CHARS, wrap_title
from overfeat.multiscale import BoxTable

BOX_PAGES = ("regressor", "detection", "compare", "efficiency")
# Two scales give few windows per box: counted at support and confidence >= 2 (link values),
# every method of Greedy vs NMS has boxes to draw and Detection has detections.
LOW = {"support": "2", "dconf": "2"}


def kinds(at) -> list[str]:
    """The main column's figures, metrics and tables, in the order the page shows them."""
    out: list[str] = []

    def walk(node):
        kind = getattr(node, "type", None)
        if kind == "html" and f'class="{TABLE_CLASS}"' in node.value:
            out.append("table")  # (app_pages/common.table: one st.html element)
        elif kind in ("plotly_chart", "metric"):
            out.append(kind)
        children = getattr(node, "children", {}) or {}
        for k in sorted(children):
            walk(children[k])

    walk(at.main)
    return out


def metric_parents(at) -> set[int]:
    """id() of the blocks directly holding a metric."""
    out: set[int] = set()

    def walk(node):
        children = getattr(node, "children", {}) or {}
        for k in sorted(children):
            if getattr(children[k], "type", None) == "metric":
                out.add(id(node))
            walk(children[k])

    walk(at.main)
    return out


@pytest.fixture(scope="module")
def present_at():
    """One session opened on a presenter-mode link (two scales, no flips)."""
    return ok(open_link({**CHEAP, **LOW, "present": "1"}))


def test_presenter_mode_draws_each_pages_figure_before_its_numbers(present_at):
    at = present_at
    for name in BOX_PAGES:
        ok(page(at, name))
        seen = kinds(at)
        assert "plotly_chart" in seen and ("metric" in seen or "table" in seen), (name, seen)
        assert seen[0] == "plotly_chart", (name, seen)
    # The Regressor: filters and the picked box in one settings box, the first line folded.
    ok(page(at, "regressor"))
    labels = [e.label for e in at.expander]
    assert "Filters and the picked box" in labels and "Picked box" not in labels, labels
    about = [e for e in at.expander if e.label.startswith("What the regressor predicts")]
    assert len(about) == 1 and any(m.value.startswith("For every") for m in about[0].markdown)
    # Experiments: no heading between the title and the results table; the caption says where
    # the numbers come from.
    ok(page(at, "experiments"))
    # One line above it (where they come from, and the folder), the paper's rows folded with
    # the explanation: a single expander between the title and the table.
    assert "From the committed evaluation" not in [h.value for h in at.subheader]
    (line,) = [c.value for c in at.caption if c.value.startswith("From the committed evaluation (")]
    assert "demo_eval.json" in line and "images" in line, line
    folder = line.split("; ", 1)[1]  # the first folder's line, as a caption only
    assert folder.endswith("with one class")
    assert folder not in [m.value for m in at.main.markdown if m.type == "markdown"]
    assert [e.label for e in at.main.expander][:1] == ["About this page"]
    assert "The paper" in [h.value for h in at.main.expander[0].subheader]
    # A desktop is unchanged: Detection and Efficiency give their numbers first.
    ok(at.toggle(key="presenter").set_value(False).run())
    for name in ("detection", "efficiency"):
        ok(page(at, name))
        seen = kinds(at)
        assert seen.index("metric") < seen.index("plotly_chart"), (name, seen)
    ok(page(at, "regressor"))  # its first line on the page, the settings not folded
    folded = {m.value for e in at.expander for m in e.markdown}
    first = [m.value for m in at.main.markdown if m.value.startswith("For every")]
    assert first and first[0] not in folded
    assert not any(e.label.startswith("Filters") for e in at.expander)
    assert at.selectbox(key="reg_pick") is not None
    ok(page(at, "experiments"))
    assert "From the committed evaluation" in [h.value for h in at.subheader]


def test_a_phone_gets_figures_for_its_width_and_a_glossary_of_blocks(monkeypatch):
    # AppTest sends no User-Agent: the app's one test of a phone is made to say yes.
    monkeypatch.setattr(common, "is_phone", lambda: True)
    at = ok(open_link({**CHEAP, **LOW}))
    for name, key in (("regressor", "reg_click"), ("detection", "det_fig"),
                      ("compare", "cmp_fig_1")):
        ok(page(at, name))
        figs = figures(at)
        assert key in figs, (name, sorted(figs))
        lay = figs[key]["layout"]
        lines = [ln for ln in lay["title"]["text"].split("<br>") if ln != "&nbsp;"]
        assert all(len(ln) <= PHONE_CHARS for ln in lines), lines
        assert lay["meta"]["fit"] and lay["height"] < 700, (name, lay["height"])
        seen = kinds(at)
        assert seen[0] == "plotly_chart", (name, seen)  # a phone is compact too
        if "metric" in seen:  # the numbers share one wrapping row, not one row each
            assert len(metric_parents(at)) == 1, name
    ok(page(at, "glossary"))
    assert not tables(at), "a phone's Glossary is blocks, not a five-column table"
    text = markdown(at)
    for t in glossary.TERMS:
        assert f"**{t.name}**" in text, t.name
    assert text.count("*On this image:*") >= len(glossary.TERMS) // 2


def test_table2_on_a_phone_shows_the_same_numbers_stacked():
    rows = [{"approach": f"{i + 1} scales, fine stride", "top-1 error %": 10.0 - i,
             "top-5 error %": 3.0 - i / 2, "localization error %": 20.0 - 2 * i}
            for i in range(4)]
    wide = figures_mod.table2_figure(rows, experiments.PAPER_TABLE2)
    narrow = figures_mod.table2_figure(rows, experiments.PAPER_TABLE2, phone=True)
    by_name = {t.name: t for t in wide.data}
    assert {t.name for t in narrow.data} == set(by_name)
    for t in narrow.data:  # horizontal bars: the values on x, the approaches on y
        assert t.orientation == "h"
        assert list(t.x) == list(by_name[t.name].y)
        assert [y.replace("<br>", " ") for y in t.y] == list(by_name[t.name].x)
    # Stacked: the paper's panel under the checkpoint's, each the full width.
    assert narrow.layout.xaxis.domain == narrow.layout.xaxis2.domain == (0.0, 1.0)
    assert narrow.layout.yaxis2.domain[1] < narrow.layout.yaxis.domain[0]


def test_wrapped_titles_keep_every_word_and_the_first_line_in_place():
    rng = random.Random(27)
    for _ in range(200):
        words = ["".join(rng.choices(string.ascii_letters + "(;>=.", k=rng.randint(1, 14)))
                 for _ in range(rng.randint(1, 16))]
        title = " ".join(words)
        text, n = wrap_title(title, True)
        lines = text.split("<br>")
        # n - 1 blank lines lead (Plotly centres a title's lines on its one line's place).
        assert lines[:n - 1] == ["&nbsp;"] * (n - 1) and len(lines) == 2 * n - 1
        assert all(len(ln) <= PHONE_CHARS for ln in lines[n - 1:])
        assert " ".join(lines[n - 1:]).split() == words
        assert wrap_title(title, False) == (title, 1)


def test_regressor_figure_has_room_for_its_title_above_its_pixel_labels():
    """The title was drawn over the top axis's labels (margin 70 px): the top margin holds the
    modebar, the title's line and the labels at presenter mode's font; on a phone also the
    wrapped title's extra lines, and the figure is fitted to the phone's width."""
    g = torch.Generator().manual_seed(0)
    n = 40
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 200
    box = torch.cat([xy, xy + 20 + 60 * torch.rand(n, 2, generator=g, dtype=torch.float64)], 1)
    table = BoxTable(boxes=box, scores=torch.rand(n, generator=g), labels=torch.zeros(n, dtype=torch.long),
                     scale=torch.randint(0, 2, (n,), generator=g), flip=torch.zeros(n, dtype=torch.bool),
                     offset=torch.zeros(n, dtype=torch.long), row=torch.zeros(n, dtype=torch.long),
                     col=torch.zeros(n, dtype=torch.long), windows=box.clone(),
                     level=torch.zeros(n, dtype=torch.long))
    bd = Backdrop(uri="", width=300, height=200)
    title = "40 of 40 raw boxes match the filters; 40 drawn (coloured by scale)"
    big = round(FONT * PRESENTER_SCALE)
    need = MODEBAR + round(1.6 * (big + 1)) + round(1.2 * big) + 5  # title band, then labels
    for presenter in (False, True):
        fig = styled(boxes_figure(bd, table, torch.arange(n), ["thing"], 1, title=title),
                     presenter=presenter)
        assert fig.layout.xaxis.side == "top"
        assert fig.layout.margin.t >= need, (presenter, fig.layout.margin.t, need)
        assert fig.layout.height == 600  # not stretched in presenter mode (a 720 px screen)
    phone = styled(boxes_figure(bd, table, torch.arange(n), ["thing"], 1, title=title,
                                phone=True))
    _, lines = wrap_title(title, True)
    assert lines == 2
    assert phone.layout.margin.t >= need - round(1.6 * (big + 1)) + 20 * lines
    plot_h = phone.layout.height - phone.layout.margin.t
    assert (PHONE - 40) * 200 / 300 < plot_h < (PHONE - 40) * 200 / 300 + 120


def test_efficiency_chart_on_a_phone_has_its_legend_under_the_bars():
    rows = [{"scale": i + 1, "dense multiply-adds": 10 ** (8 + i), "crop multiply-adds":
             3 * 10 ** (9 + i)} for i in range(3)]
    wide, narrow = (figures_mod.efficiency_figure(rows, phone=p) for p in (False, True))
    assert [list(t.y) for t in narrow.data] == [list(t.y) for t in wide.data]
    assert wide.layout.legend.y > 1 and narrow.layout.legend.y < 0
