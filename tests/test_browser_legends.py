"""A legend under an image sits under the x axis's labels, not over them (figures.base.
legend_below): measured in Chromium at 1400x1000, in the drawn figure, on every page that draws
an image with its axis at the bottom and a legend below it (a traced window, final boxes,
detections, the methods side by side), on a sample scene and on a photo. Plotly places a legend
in units of the plot's height: at y = -0.04 it covered the first tick labels ("0", "100") of
every such figure (issue 27).

Same set-up as the other browser tests (tests/browser_helpers.py, the fixtures of
tests/conftest.py).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from browser_helpers import check_page, new_page

# Each figure with a legend: its key, the legend's box and the x tick labels (and axis title)
# drawn inside that box.
OVERLAPS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => {
  const key = ((gd.closest('[class*="st-key-"]') || {className: ''}).className.split(' ')
               .find(c => c.startsWith('st-key-')) || '?').slice(7);
  const leg = gd.querySelector('g.legend');
  if (!leg) return null;
  const L = leg.getBoundingClientRect();
  const labels = [...gd.querySelectorAll('g.xtick text, .xtitle')];
  const under = labels.filter(t => {
    const r = t.getBoundingClientRect();
    return r.width > 0 && r.left < L.right && r.right > L.left && r.top < L.bottom
      && r.bottom > L.top;
  }).map(t => t.textContent);
  return {key, under, labels: labels.length, legend_top: L.top,
          labels_bottom: Math.max(...labels.map(t => t.getBoundingClientRect().bottom))};
}).filter(x => x)"""

PHOTO = "img=photo&p=3&model=objects"
CASES = [  # (link, the image figures with a legend below that it must show)
    ("architecture?atrace=1", {"arch_trace"}),
    ("compare", {"cmp_fig_1", "cmp_fig_2", "cmp_fig_3"}),
    (f"?page=overview&{PHOTO}", {"overview_boxes"}),  # the Overview is "/" ("/overview":
    # Streamlit's "Page not found" dialog over it)
    (f"detection?{PHOTO}", {"det_fig"}),
    (f"offsets?{PHOTO}", {"off_level_window"}),
]


@pytest.mark.parametrize("link,keys", CASES, ids=[(c[0].split("?")[0] or "overview") + str(i)
                                                  for i, c in enumerate(CASES)])
def test_no_legend_covers_the_x_axis_labels(server, browser, link, keys):
    page = new_page(browser, f"{server}/{link}")
    for key in keys:  # drawn (a figure far down the page can be drawn after the run's end)
        expect(page.locator(f".st-key-{key} g.legend")).to_be_attached()
    check_page(page)
    found = {f["key"]: f for f in page.evaluate(OVERLAPS_JS)}
    assert keys <= set(found), (link, sorted(found))
    for key in keys:
        f = found[key]
        assert f["labels"] > 0, (link, key)  # the axis has labels to cover
        assert f["under"] == [], (link, key, f)
        assert f["legend_top"] >= f["labels_bottom"], (link, key, f)
    page.close()


# The coarse/fine maps stacked on a phone: the upper panel's axis title and the lower panel's
# title (an annotation) do not overlap (70 px between the panels drew them over each other).
TITLES_JS = """key => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const boxes = sel => [...gd.querySelectorAll(sel)].map(e => e.getBoundingClientRect())
    .filter(r => r.width > 0);
  const axes = boxes('.xtitle, .x2title'), notes = boxes('g.annotation');
  let hits = 0;
  for (const a of axes) for (const n of notes)
    if (a.left < n.right && a.right > n.left && a.top < n.bottom && a.bottom > n.top) hits++;
  return {axes: axes.length, notes: notes.length, hits};
}"""


# A colour bar across the top (a phone: figures.maps.across_top): its title, its bar and its
# tick labels drawn apart. With the title above the bar, Plotly placed it by the figure's height
# and, on the Architecture page's output maps (352 px), drew it 5 px over the bar.
COLOURBAR_JS = """key => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const box = e => e.getBoundingClientRect();
  const parts = [['title', gd.querySelector('.colorbar .cbtitle')],
                 ['bar', gd.querySelector('.colorbar .cbfill')],
                 ...[...gd.querySelectorAll('.colorbar .cbaxis text')]
                   .map(t => ['tick ' + t.textContent, t])]
    .filter(([, e]) => e && box(e).width > 0);
  const hits = [];
  for (let i = 0; i < parts.length; i++) for (let j = i + 1; j < parts.length; j++) {
    const a = box(parts[i][1]), b = box(parts[j][1]);
    if (a.left < b.right && a.right > b.left && a.top < b.bottom && a.bottom > b.top)
      hits.push(parts[i][0] + ' / ' + parts[j][0]);
  }
  return {parts: parts.map(p => p[0]), hits};
}"""


def test_on_a_phone_no_legend_or_title_covers_the_labels(server, browser):
    from browser_helpers import PHONE, settle

    ctx = browser.new_context(**PHONE)
    page = ctx.new_page()
    page.js_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))  # type: ignore[attr-defined]
    page.goto(f"{server}/offsets")
    settle(page)
    expect(page.locator(".st-key-off_window g.legend")).to_be_attached()
    check_page(page)
    found = {f["key"]: f for f in page.evaluate(OVERLAPS_JS)}
    f = found["off_window"]
    assert f["labels"] > 0 and f["under"] == [] and f["legend_top"] >= f["labels_bottom"], f
    t = page.evaluate(TITLES_JS, "off_click")
    assert t["axes"] == 2 and t["notes"] >= 2 and t["hits"] == 0, t
    _colour_bar_apart(page, "off_click")
    # the grids of k*k maps are pictures (figures.grids): the phone's width, drawn sharp for
    # its screen (2 image pixels per CSS pixel, less the column's sub-pixel rounding: 740 px
    # for a 370.8 px column), nothing cut off
    for key in ("off_pooled", "off_classmaps"):
        img = page.evaluate(PICTURE_JS, key)
        assert img["natural"] > 0 and img["left"] >= 0 and img["right"] <= 390, (key, img)
        assert img["natural"] >= 1.98 * img["width"] and img["width"] >= 340, (key, img)
    # the Architecture page's output maps (its traced cell's section, opened by the link)
    page.goto(f"{server}/architecture?atrace=1")
    settle(page)
    expect(page.locator(".st-key-arch_out_click .colorbar")).to_be_attached()
    check_page(page)
    _colour_bar_apart(page, "arch_out_click")
    ctx.close()


PICTURE_JS = """async (key) => {
  const i = document.querySelector(`.st-key-${key} img`);
  await i.decode();
  const r = i.getBoundingClientRect();
  return {natural: i.naturalWidth, width: r.width, left: r.left, right: r.right};
}"""


def _colour_bar_apart(page, key: str) -> None:
    """The figure's colour bar has a title, a bar and tick labels, none over another."""
    c = page.evaluate(COLOURBAR_JS, key)
    assert {"title", "bar"} <= set(c["parts"]) and len(c["parts"]) >= 4, (key, c)
    assert c["hits"] == [], (key, c)
