"""Helpers for the tests that drive the Streamlit app headless with AppTest (tests/test_app*.py,
tests/test_lesson_pages.py): the images they upload, starting a session, switching pages, and
reading what a page shows (the run's Context, its Plotly figures as JSON, metrics, captions).

A plain module, not a test file: the test files import it by name (pytest puts tests/ on
sys.path, as for tests/load_app.py).
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from overfeat.app.bars import BARS_CLASS
from overfeat.app.tables import TABLE_CLASS

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 180  # seconds per script run: the machine may be busy training
# Every page's file name under app_pages/, in the navigation's order.
PAGES = ("overview", "architecture", "scales", "offsets", "regressor", "merge", "detection",
         "compare", "experiments", "efficiency", "training", "glossary")
CHEAP = {"scales": "0,1", "flips": "0"}  # link parameters: two scales, no flips (quick)


# --- inputs ----------------------------------------------------------------------------------
def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    """The image as the bytes of a file in that format."""
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def sample_image(w: int = 300, h: int = 260) -> Image.Image:
    """A small drawn picture: the image most tests upload."""
    im = Image.new("RGB", (w, h), (150, 190, 230))
    d = ImageDraw.Draw(im)
    d.rectangle((0, int(h * 0.7), w, h), fill=(110, 160, 80))
    d.ellipse((int(w * 0.3), int(h * 0.25), int(w * 0.65), int(h * 0.75)), fill=(200, 70, 50))
    d.rectangle((int(w * 0.7), int(h * 0.4), int(w * 0.9), int(h * 0.8)), fill=(60, 60, 140))
    return im


SAMPLE = encode(sample_image())
SAMPLE_NAME = "sample.png"


def bomb_png(w: int = 30000, h: int = 30000) -> bytes:
    """A tiny PNG whose header claims w x h pixels (with a valid CRC)."""
    raw = bytearray(encode(Image.new("L", (8, 8))))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(raw)


# --- driving the app -------------------------------------------------------------------------
def ok(at: AppTest) -> AppTest:
    """The run raised nothing and showed no error."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def start(data: bytes | None = SAMPLE, name: str = SAMPLE_NAME, mime: str = "image/png",
          all_windows: bool = True) -> AppTest:
    """A fresh session (Overview page); with data, that file uploaded as the image.

    all_windows: the sidebar's min window score 0 and top-1 class (the app opens at evaluate's
    p >= 0.5 and top-5): the drawn sample picture is no pictogram, so only then does every
    window give a box, hundreds of them for the Regressor and Merge tests."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if all_windows:  # the sidebar's window and merge knobs are folded: open them first
        at.session_state["knobs_open"] = True
    ok(at.run())
    if all_windows:
        at.sidebar.slider(key="min_score").set_value(0.0)
        ok(at.sidebar.slider(key="top_k").set_value(1).run())
    if data is not None:
        at.file_uploader(key="img").set_value((name, data, mime)).run()
    return at


def open_knobs(at: AppTest) -> AppTest:
    """The sidebar's folded window and merge knobs opened (app_pages/sidebar.merge_knobs_ui),
    as a user clicks their section open."""
    at.session_state["knobs_open"] = True
    return ok(at.run())


def open_link(params: dict[str, str]) -> AppTest:
    """A fresh session opened on a link with these query parameters (one run, not checked)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def page(at: AppTest, name: str) -> AppTest:
    """Switch to app_pages/<name>.py and run."""
    return at.switch_page(f"app_pages/{name}.py").run()


# --- reading a page --------------------------------------------------------------------------
def ctx(at: AppTest):
    """The Context app.py built for the last run (model, image, knobs, analyses)."""
    return at.session_state["_ctx"]


def figures(at: AppTest) -> dict[str, dict]:
    """The page's Plotly figures by widget key, as the JSON the browser receives; layout.meta
    as the package figure made it (figures.drawn_once sends it in a one-item list)."""
    out = {}
    for el in at.get("plotly_chart"):
        fig = json.loads(el.proto.spec)
        meta = fig["layout"].get("meta")
        if isinstance(meta, list) and len(meta) == 1 and isinstance(meta[0], dict):
            fig["layout"]["meta"] = meta[0]
        out[el.key] = fig
    return out


class _TableReader(HTMLParser):
    """The header cells (text, class) and body rows (cell texts) of one HTML table."""

    def __init__(self):
        super().__init__()
        self.head: list[tuple[str, str]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._kind = ""
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        if tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head:
            self.rows.append([])
        elif tag in ("th", "td"):
            self._cell, self._kind = [], dict(attrs).get("class", "")

    def handle_endtag(self, tag):
        if tag == "thead":
            self._in_head = False
        elif tag in ("th", "td") and self._cell is not None:
            text = "".join(self._cell)
            if tag == "th":
                self.head.append((text, self._kind))
            else:
                self.rows[-1].append(text)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _read(text: str, kind: str):
    """A cell's text as its column's kind says (int, float, bool, text); "" is missing."""
    if text == "" and kind in ("int", "float"):
        return np.nan
    return {"int": lambda t: int(t.replace(",", "")), "float": float,
            "bool": {"True": True, "False": False}.__getitem__}.get(kind, str)(text)


def tables(at, where=None) -> list[pd.DataFrame]:
    """The page's tables (app_pages/common.table: one st.html element each, in the page's order;
    `where`: only those in this container), read back from the HTML the browser receives: each
    column's values as its header's kind says, thousands separators removed."""
    out = []
    for el in (where or at).get("html"):
        if f'class="{TABLE_CLASS}"' not in el.value:
            continue  # (the page's CSS)
        r = _TableReader()
        r.feed(el.value)
        cols = [c for c, _ in r.head]
        assert all(len(row) == len(cols) for row in r.rows), "a row with a cell too many or few"
        out.append(pd.DataFrame([[_read(v, k) for v, (_, k) in zip(row, r.head)] for row in r.rows],
                                columns=cols))
    return out


class _BarsReader(HTMLParser):
    """Every bar of one HTML bar chart (overfeat.app.bars): its data attributes and style, plus
    the legend's names."""

    def __init__(self):
        super().__init__()
        self.bars: list[dict] = []
        self.legend: list[str] = []
        self._in_legend = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("class") == "ovf-legend":
            self._in_legend = True
        elif a.get("class") == "ovf-bar":
            self.bars.append(a)

    def handle_data(self, data):
        if self._in_legend and data.strip():
            self.legend.append(data.strip())


def bar_height(bar: dict) -> float:
    """A bar's height in percent, from its style (as _BarsReader read it)."""
    return float(bar["style"].split("height:")[1].split("%")[0])


def bar_charts(at, where=None) -> list[dict]:
    """The page's HTML bar charts (st.html elements of overfeat.app.bars), in order, each read
    back as {"groups": [...], "series": {name: [value per group]}, "legend": [...], "heights":
    {name: [percent per group]}}."""
    out = []
    for el in (where or at).get("html"):
        if f'class="{BARS_CLASS}"' not in el.value:
            continue
        r = _BarsReader()
        r.feed(el.value)
        groups = list(dict.fromkeys(b["data-group"] for b in r.bars))
        series: dict[str, list[float]] = {}
        heights: dict[str, list[float]] = {}
        for b in r.bars:
            series.setdefault(b["data-series"], []).append(float(b["data-value"]))
            heights.setdefault(b["data-series"], []).append(bar_height(b))
        out.append({"groups": groups, "series": series, "legend": r.legend, "heights": heights})
    return out


def pictures(at: AppTest) -> dict[str, dict]:
    """The page's pictures (common.picture: figures.raster's on the Merge page, figures.grids'
    on the Offsets page, shown with st.image in a container keyed like a chart) by key: {"url",
    "bytes", "mimetype"} and what the page recorded of it (the Merge page's: "items", what was
    drawn in order as trace-like dicts, "title", "font_size"; a grid's: GridPicture.record()).
    What the page recorded is checked to be the image it shows: the image's URL is named by the
    hash of the recorded bytes."""
    from streamlit.runtime.memory_media_file_storage import _calculate_file_id

    urls: dict[str, str] = {}

    def walk(node, key=None):
        pid = getattr(getattr(node, "proto", None), "id", "") or ""
        if isinstance(pid, str) and "-" in pid:
            key = pid.rsplit("-", 1)[-1]
        if getattr(node, "type", None) == "image":
            urls[key] = node.proto.imgs[0].url
        for child in getattr(node, "children", {}).values():
            walk(child, key)

    walk(at.main)
    out = {}
    for key, rec in (at.session_state["_pictures"] if "_pictures" in at.session_state
                     else {}).items():
        if key not in urls:
            continue  # recorded on an earlier run, not on this page now
        assert _calculate_file_id(rec["bytes"], rec["mimetype"]) in urls[key], key
        out[key] = {"url": urls[key], **rec}
    return out


def traces(fig: dict, kind: str | None = None) -> list[dict]:
    """A figure's traces, all of them or those of one type ("heatmap", "bar", ...)."""
    return [t for t in fig["data"] if kind is None or t.get("type") == kind]


def grid_blocks(fig: dict) -> dict[tuple[int, int], np.ndarray]:
    """figures.offset_grid_figure's one heatmap, or the grid an offset_grid_picture recorded
    (a picture of pictures(at)), cut back into its k*k maps, by offset (dx, dy), using the
    block positions the figure lists in layout.meta (the picture in its record); the gaps
    between blocks must be empty."""
    if "z" in fig:  # a picture's record
        z, blocks = np.asarray(fig["z"], dtype=float), fig["blocks"]
    else:
        (hm,) = traces(fig, "heatmap")
        z = np.array([[np.nan if v is None else v for v in row] for row in hm["z"]], dtype=float)
        blocks = fig["layout"]["meta"]["blocks"]
    out, covered = {}, np.zeros(z.shape, bool)
    for dx, dy, r0, c0, h, w in blocks:
        out[(dx, dy)] = z[r0:r0 + h, c0:c0 + w]
        covered[r0:r0 + h, c0:c0 + w] = True
    assert np.isnan(z[~covered]).all() and not np.isnan(z[covered]).any()
    return out


def metrics(at: AppTest) -> dict[str, str]:
    """The page's st.metric values by label."""
    return {m.label: m.value for m in at.metric}


def markdown(at: AppTest) -> str:
    """All the page's markdown, one block a line."""
    return "\n".join(m.value for m in at.markdown)


def captions(at: AppTest) -> str:
    """All the page's captions, one a line."""
    return "\n".join(c.value for c in at.caption)


def package_code(at: AppTest) -> list[str]:
    """The functions the page's "The package code this page ran" names: its expander opened
    (the code is drawn only while open: app_pages/common.show_code), read, and closed again."""
    keys = [k for k in at.session_state if str(k).startswith("code_")]
    assert len(keys) == 1, f"one package-code expander expected, found {keys}"
    at.session_state[keys[0]] = True
    ok(at.run())
    (exp,) = [e for e in at.expander if e.label.startswith("The package code")]
    names = [c.value for c in exp.get("caption")]
    at.session_state[keys[0]] = False
    ok(at.run())
    return names


def header(at: AppTest) -> str:
    """The caption app.py puts above every page (model and image)."""
    return at.caption[0].value


def rect_x(box) -> list[float]:
    """The x coordinates of a rectangle as the figures draw it (closed path)."""
    x1, _, x2, _ = (float(v) for v in box)
    return [x1, x2, x2, x1, x1]


def xs(trace: dict) -> np.ndarray:
    """A rectangle trace's x path, without the None that ends each rectangle."""
    return np.array([v for v in trace["x"] if v is not None], dtype=float)


def long_runs(monkeypatch):
    """Training runs that last until they are stopped and the returned Event is set (no
    training): jobs.Job._run replaced for the test."""
    import threading

    from overfeat.app import jobs

    release = threading.Event()

    def long_run(self: jobs.Job) -> None:
        with self._lock:
            self.status, self.message = "running", "stage 1 epoch 1/1, step 1/9"
        self._stop.wait(60)
        release.wait(60)
        self._finish("stopped", "stopped: no epoch finished, no checkpoint")

    monkeypatch.setattr(jobs.Job, "_run", long_run)
    return release
