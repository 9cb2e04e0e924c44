"""The Offsets page's two grids of k*k maps as pictures (issue 27, speed).

offset_grid_picture draws k*k maps (of one offset-pooled channel, of one class's classifier
outputs, or their differences from offset (0,0)) in one grid: map (dx, dy) in block row dy,
column dx, like the offsets on the pre-pool grid, blocks a cell apart, light grey gaps (an
offset's map can be a row or column shorter than offset (0,0)'s: its missing cells are gaps
too), "dx=i" / "dy=i" labels, one colour bar that names its range (maps.prob_colour,
own_colour). A PNG, not a Plotly heat map (it was one, maps.offset_grid_figure, until session
48).

Why: the Offsets page's first visit in a tab was the last interaction over the bench's 0.5 s
target (tests/browser_latency.py). Its two Plotly grids were 100-150 ms of it: replaced by
images, Chromium's main thread on a first visit went from a median 481 to 386 ms
(docs/BENCHMARKS.md, sessions 47-48). An <img> costs the browser one decode.

What is lost: a cell's value on hover and Plotly's zoom. The page keeps both where a student
picks cells: the coarse/fine map under the grids (a click picks a cell, its value and window
are listed). The difference grids further down are pictures too, so the four grids look
alike; their text names the largest difference.

The picture is drawn at SCALE device pixels per CSS pixel (sharp on a phone's or a laptop's
2x screen) for a CSS width the page names (its column: about 462 px at 1400 px wide) and is
shown stretched to the column. Cells are whole device pixels, so a map is never resampled
before the browser shows it. What was drawn (the grid's values, where each block and cell is,
the colour range) is returned with the picture, for tests and for the page's text.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import plotly.colors as pcolors
from PIL import Image, ImageDraw
from torch import Tensor

from ...offsets import offsets
from .base import MAP_SCALE
from .maps import map_range, own_colour, prob_colour
from .raster import text_font

SCALE = 2  # device px per CSS px of the drawn picture
TEXT = "#31333F"  # Streamlit's text colour (the figures' THEME_TEXT)
# CSS px: the desktop's half column at 1400 px wide, presenter mode's at 1280 px (shown
# stretched to wider columns), a phone's width less the page's padding
DESK_WIDTH, PRESENTER_WIDTH, PHONE_WIDTH = 462, 552, 370
# CSS px: the tallest the picture may be on a desktop and in presenter mode (the Plotly grid's
# height, so the page below it stays where it was; presenter mode at 1280x720: the grid starts
# about 350 px down and must end on the first screen)
DESK_HEIGHT, PRESENTER_HEIGHT = 372, 362
BAR = 14  # CSS px: the colour bar's thickness
# The gaps between cells and between blocks: light grey, not white, so that on the white end of
# a scale (Greys' lowest values) the cells stay visible as squares, not lost in the page.
GRID_GAPS = "#d4d4d4"
PICK = "#ff0000"  # the picked cell's outline: the coarse/fine map's red
GAP_MAX_BLOCK = 48  # cells a map's side may have and still get a gap line between its cells


@dataclass
class GridPicture:
    """A grid of k*k maps drawn as an image, and where everything in it is.

    z: the grid's values [rows, cols], NaN in the gaps;
    blocks: (dx, dy, first row, first column, h, w) of each map, in grid cells; cell: device px
    per grid cell; origin: device px (x, y) of the grid's top-left corner; cmin, cmax: the
    colour range; colour: "absolute", "stretch" or "own"; bar_title: the colour bar's title;
    bar: device px (x0, y0, x1, y1) of the colour bar, cmax at its top; scale: device px per
    CSS px; pick, picked: the outlined cell and where it is."""

    image: Image.Image
    z: np.ndarray
    blocks: list[tuple[int, int, int, int, int, int]]
    cell: int
    origin: tuple[int, int]
    cmin: float
    cmax: float
    colorscale: str
    colour: str
    bar_title: str
    bar: tuple[int, int, int, int]
    heading: str | None = None
    pick: tuple[int, int, int, int] | None = None  # (dx, dy, j, i) outlined, if drawn
    picked: tuple[int, int, int, int] | None = None  # device px of that cell (x0, y0, x1, y1)
    labels: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)
    scale: int = SCALE
    _png: bytes | None = None

    def png(self) -> bytes:
        """The picture as PNG bytes (lossless: the cells' colours arrive as drawn), once."""
        if self._png is None:
            buf = io.BytesIO()
            self.image.save(buf, format="PNG", compress_level=3)
            self._png = buf.getvalue()
        return self._png

    def record(self) -> dict:
        """What tests read of the picture, as they read a figure's data: the grid's values and
        blocks, the colour range and its title, and
        where the grid, the colour bar and the text labels are in the image."""
        return {"z": self.z, "blocks": [list(b) for b in self.blocks], "cell": self.cell,
                "origin": list(self.origin), "cmin": self.cmin, "cmax": self.cmax,
                "colorscale": self.colorscale, "colour": self.colour,
                "bar_title": self.bar_title, "bar": list(self.bar), "heading": self.heading,
                "pick": list(self.pick) if self.pick else None,
                "labels": [(t, list(b)) for t, b in self.labels], "scale": self.scale,
                "size": list(self.image.size)}


def _parse(color: str) -> tuple[float, float, float]:
    if color.startswith("#"):
        return tuple(float(v) for v in pcolors.hex_to_rgb(color))  # type: ignore[return-value]
    return tuple(float(v) for v in pcolors.unlabel_rgb(color))  # type: ignore[return-value]


@lru_cache(maxsize=8)
def _stops(colorscale: str) -> tuple[np.ndarray, np.ndarray]:
    """A named Plotly colour scale as (positions [n], colours [n, 3]): the same list plotly.py
    sends the browser for the name (its colorbrewer "Greys" runs white to black)."""
    scale = pcolors.get_colorscale(colorscale)
    return (np.array([float(p) for p, _ in scale]),
            np.array([_parse(c) for _, c in scale], dtype=float))


def colours(values: np.ndarray, cmin: float, cmax: float, colorscale: str = MAP_SCALE
            ) -> np.ndarray:
    """RGB (uint8, [..., 3]) of values on the colour scale from cmin to cmax, linear between
    its stops, clipped at its ends (as Plotly colours a heat map). NaN values come back as
    GRID_GAPS."""
    pos, rgb = _stops(colorscale)
    span = cmax - cmin if cmax > cmin else 1e-6
    t = np.clip((np.nan_to_num(values, nan=0.0) - cmin) / span, 0.0, 1.0)
    out = np.stack([np.interp(t, pos, rgb[:, i]) for i in range(3)], axis=-1)
    out = np.rint(out).astype(np.uint8)
    out[np.isnan(values)] = _parse(GRID_GAPS)
    return out


def nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """At most `most` round values (1, 2 or 5 times a power of ten apart) from lo to hi."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(most - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    digits = max(0, -math.floor(math.log10(step))) + 3  # float noise off, the step kept
    return [round(i * step, digits) for i in range(math.ceil(lo / step - 1e-9),
                                                    math.floor(hi / step + 1e-9) + 1)]


def tick_text(v: float, ticks: list[float]) -> str:
    """A tick's label with the decimals its step needs (no more)."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else abs(v) or 1.0
    dec = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{v:.{dec}f}" if abs(v) < 1e5 else f"{v:.3g}"


def _wrap(text: str, font, width: float) -> list[str]:
    """text in lines at most `width` px long, broken between words (a word longer than the
    width gets a line of its own)."""
    lines, line = [], ""
    for word in text.split(" "):
        cand = f"{line} {word}".strip()
        if line and font.getlength(cand) > width:
            lines.append(line)
            line = word
        else:
            line = cand
    return lines + [line] if line else lines


def offset_grid_picture(maps: list[Tensor], k: int, label: str, colorscale: str = MAP_SCALE,
                        prob_of: str | None = None, stretch: bool = False, phone: bool = False,
                        heading: str | None = None, presenter: bool = False,
                        font_px: int = 14,
                        pick: tuple[int, int, int, int] | None = None) -> GridPicture:
    """k*k maps [h, w] (ordered as offsets(k)) as one picture. prob_of: the maps are
    probabilities of that class (prob_colour: absolute 0-1, or stretched to the maps' range);
    otherwise `label` names what they are (an activation, a difference) and the colours span
    their own range, named on the colour bar (own_colour). presenter: presenter mode's column
    and fonts (font_px: the text's CSS px). phone: a phone's width, the colour bar across the
    top. heading: a bold line at the top left (presenter mode's, instead of a heading above the
    picture: the grid comes higher on the screen). pick: (dx, dy, j, i), a cell outlined in red
    over a white halo (the page's picked fine cell: fine[k*j + dy, k*i + dx] is map (dx, dy)'s
    cell (j, i)); none where that map has no such cell."""
    offs = offsets(k)
    bh = max((int(m.shape[-2]) for m in maps), default=1) or 1
    bw = max((int(m.shape[-1]) for m in maps), default=1) or 1
    rows, cols = k * bh + k - 1, k * bw + k - 1
    z = np.full((rows, cols), np.nan)
    blocks = []
    for (dx, dy), m in zip(offs, maps):
        r0, c0 = dy * (bh + 1), dx * (bw + 1)
        h, w = int(m.shape[-2]), int(m.shape[-1])
        blocks.append((dx, dy, r0, c0, h, w))
        if h and w:
            z[r0:r0 + h, c0:c0 + w] = m.detach().float().cpu().numpy()
    lo, hi = map_range(maps)
    axis = (prob_colour(prob_of, lo, hi, stretch, colorscale) if prob_of is not None
            else own_colour(label, lo, hi, colorscale))
    cmin, cmax = float(axis["cmin"]), float(axis["cmax"])
    title = axis["colorbar"]["title"]["text"]
    colour = "own" if prob_of is None else "stretch" if stretch else "absolute"

    S = SCALE
    font = text_font(font_px * S)
    small = text_font(round(font_px * 0.9) * S)
    line = round(font_px * 1.45) * S  # a text line's height
    width = (PHONE_WIDTH if phone else PRESENTER_WIDTH if presenter else DESK_WIDTH) * S
    dy_w = max(font.getlength(f"dy={i}") for i in range(k))
    left = round(dy_w) + 8 * S
    bottom = line + 2 * S
    top = (line + 4 * S) if heading else 6 * S
    # the colour bar's ticks: a provisional range to size their labels
    ticks = nice_ticks(cmin, cmax)
    texts = [tick_text(v, ticks) for v in ticks]
    tick_w = max(small.getlength(t) for t in texts)
    if phone:  # across the top: its title, the bar, its tick labels
        bar_rows = _wrap(title, small, width - 16 * S)
        bar_block = len(bar_rows) * line + BAR * S + 4 * S + line
        top += bar_block + 8 * S
        right = 8 * S
        cell = max(1, min((width - left - right) // cols, 40 * S))
    else:  # at the right: 12 px apart, the bar, ticks, their labels, the title along it
        right0 = 12 * S + BAR * S + 4 * S + round(tick_w) + 6 * S
        avail_h = (PRESENTER_HEIGHT if presenter else DESK_HEIGHT) * S - top - bottom
        bar_rows = [title]
        for _ in range(4):  # the title wrapped to the grid's height, the grid sized beside it
            right = right0 + len(bar_rows) * line + 4 * S
            cell = max(1, min((width - left - right) // cols, avail_h // rows, 40 * S))
            wrapped = _wrap(title, small, cell * rows)
            if len(wrapped) <= len(bar_rows):
                bar_rows = wrapped
                break
            bar_rows = wrapped
        right = right0 + len(bar_rows) * line + 4 * S
    # a block at least a label high and a digit wide (a map of extreme aspect: the picture
    # then grows wider than the column and is shown smaller)
    cell = max(cell, math.ceil(line / (bh + 1)),
               math.ceil((font.getlength(str(k - 1)) + 4 * S) / (bw + 1)))
    gw, gh = cell * cols, cell * rows
    content_w = left + gw + right
    width = max(width, content_w)
    x0 = (width - content_w) // 2 + left  # the content centred in the picture
    y0 = top
    height = top + gh + bottom
    if not phone:  # a grid lower than its colour bar's title (a very wide map): room for it
        height = max(height, top + round(max(small.getlength(r) for r in bar_rows)) + 8)
    im = Image.new("RGB", (width, height), "white")
    # the grid: each cell's colour, whole device px per cell, a gap line between cells of
    # small maps (as the figure's xgap/ygap), NaN (between blocks, missing cells) grey
    pix = colours(z, cmin, cmax, colorscale)
    pix = np.repeat(np.repeat(pix, cell, axis=0), cell, axis=1)
    gap = min(S, cell // 3) if max(bh, bw) <= GAP_MAX_BLOCK else 0
    if gap:
        inner = np.arange(cell) >= cell - gap
        ys, xs = np.tile(inner, rows), np.tile(inner, cols)
        pix[ys, :] = _parse(GRID_GAPS)
        pix[:, xs] = _parse(GRID_GAPS)
    im.paste(Image.fromarray(pix, "RGB"), (x0, y0))
    d = ImageDraw.Draw(im)
    labels = []
    picked = None
    if pick is not None:
        pdx, pdy, j, i = pick
        b = next((b for b in blocks if (b[0], b[1]) == (pdx, pdy)), None)
        if b is not None and 0 <= j < b[4] and 0 <= i < b[5]:
            x, y = x0 + (b[3] + i) * cell, y0 + (b[2] + j) * cell
            picked = (x, y, x + cell - gap, y + cell - gap)  # the cell's colour, gaps off
            w = max(2, round(2.5 * S))  # the red line, outside the cell: its colour stays
            d.rectangle([x - w - S, y - w - S, picked[2] + w + S - 1, picked[3] + w + S - 1],
                        outline="white", width=S)
            d.rectangle([x - w, y - w, picked[2] + w - 1, picked[3] + w - 1], outline=PICK,
                        width=w)

    def text(xy, s, f, anchor, fill=TEXT, **kw):
        d.text(xy, s, fill=fill, font=f, anchor=anchor, **kw)
        labels.append((s, tuple(int(v) for v in d.textbbox(xy, s, font=f, anchor=anchor))))

    # dx under the block columns, dy left of the block rows; blocks narrower than "dx=2" (a
    # tall map) get the offset's number alone, "dx" named once at the grid's bottom left
    narrow = font.getlength(f"dx={k - 1}") + 4 * S > (bw + 1) * cell
    for i in range(k):
        text((x0 + round((i * (bw + 1) + bw / 2) * cell), y0 + gh + 4 * S),
             str(i) if narrow else f"dx={i}", font, "mt")
        text((x0 - 6 * S, y0 + round((i * (bh + 1) + bh / 2) * cell)), f"dy={i}", font, "rm")
    if narrow:
        text((x0 - 6 * S, y0 + gh + 4 * S), "dx", font, "rt")
    if heading:
        text((x0 - left + 2 * S, 2 * S), heading, font, "lt", stroke_width=max(1, S // 2),
             stroke_fill=TEXT)
    # the colour bar, cmax at the top (right) or at the right end (phone)
    if phone:
        bx0, bx1 = x0, x0 + gw
        by0 = (top - bar_block - 8 * S) + len(bar_rows) * line
        by1 = by0 + BAR * S
        ramp = np.linspace(cmin, cmax, bx1 - bx0)[None, :].repeat(by1 - by0, axis=0)
        for j, row in enumerate(bar_rows):
            text(((bx0 + bx1) // 2, by0 - (len(bar_rows) - j) * line + line // 2), row, small,
                 "mm")
    else:
        bx0 = x0 + gw + 12 * S
        bx1 = bx0 + BAR * S
        by0, by1 = y0, y0 + gh
        ramp = np.linspace(cmax, cmin, by1 - by0)[:, None].repeat(bx1 - bx0, axis=1)
    im.paste(Image.fromarray(colours(ramp, cmin, cmax, colorscale), "RGB"), (bx0, by0))
    d.rectangle([bx0 - 1, by0 - 1, bx1, by1], outline="#9a9a9a", width=1)
    span = cmax - cmin if cmax > cmin else 1e-6
    for v, t in zip(ticks, texts):
        f = (v - cmin) / span
        if phone:
            x = bx0 + round(f * (bx1 - bx0 - 1))
            d.line([(x, by1), (x, by1 + 4 * S)], fill=TEXT, width=S)
            text((x, by1 + 5 * S), t, small, "mt")
        else:
            y = by1 - 1 - round(f * (by1 - by0 - 1))
            d.line([(bx1, y), (bx1 + 4 * S, y)], fill=TEXT, width=S)
            text((bx1 + 6 * S, y), t, small, "lm")
    if not phone:  # the title along the bar, read bottom to top (Plotly's side="right")
        tw = max(round(small.getlength(r)) for r in bar_rows) + 4
        th = len(bar_rows) * line
        band = Image.new("RGB", (tw, th), "white")
        bd = ImageDraw.Draw(band)
        for j, r in enumerate(bar_rows):
            bd.text((tw // 2, j * line + line // 2), r, fill=TEXT, font=small, anchor="mm")
        band = band.rotate(90, expand=True)
        tx = bx1 + 10 * S + round(tick_w)
        ty = by0 + max(0, (gh - band.height) // 2)
        im.paste(band, (tx, ty))
        labels.append((title, (tx, ty, tx + band.width, ty + band.height)))
    return GridPicture(image=im, z=z, blocks=blocks, cell=cell, origin=(x0, y0), cmin=cmin,
                       cmax=cmax, colorscale=colorscale, colour=colour, bar_title=title,
                       bar=(bx0, by0, bx1, by1), heading=heading, labels=labels, scale=S,
                       pick=pick if picked else None, picked=picked)
