"""Offsets: the k*k offset-pooled maps, the k*k classifier maps, and the fine map they make. A
model without offset pooling (k = 1: a pyramid net) gets one line on what the trick became and
its maps at every stride instead, never empty offset figures."""

import streamlit as st

from overfeat import activations, geometry, multiscale, offsets
from overfeat.models import registry as zoo
from overfeat.app import figures
from overfeat.app import state as appstate
from app_pages.common import (chart, clamp_state, class_picker, colour_control, compact, context,
                              explain, folded, is_phone, notice, picture_chart, settings_box,
                              show_code, starts_again, term)

ctx = context()


def view_controls(a):
    """The view to dissect (scale and flip; a pyramid net's finest level)."""
    s, flip = scale_flip(a)
    return next(v for v in a.views if v.scale == s and v.flip == flip and v.level == 0)


def scale_flip(a) -> tuple[int, bool]:
    """Scale and flip chosen on the page."""
    scales = list(a.settings.scales)
    owner = (ctx.image_key, ctx.model_key, tuple(scales))
    if starts_again("_off_scale_for", owner, "off_scale",
                    stale=st.session_state.get("off_scale") not in scales):
        # most cells to look at; a pyramid net's largest scale has ~7,000 cells over its
        # three maps (0.5 MB to draw), its middle one has a third of them
        st.session_state["off_scale"] = (scales[len(scales) // 2] if getattr(ctx.model, "pyramid", False)
                                         else appstate.largest_scale(a))
    c1, c2 = st.columns([3, 1])
    # Label: the scale number only, fixed across images (see common.class_picker for why).
    s = c1.selectbox("Scale", scales, key="off_scale", format_func=lambda s: f"scale {s + 1}",
                     help=term("scale") + " Its input size for this image is under the box.")
    c1.caption(f"input {a.sizes[s][0]}x{a.sizes[s][1]} (height x width)")
    flip = c2.toggle("Flipped view", key="off_flip", disabled=not a.settings.flips,
                     help=term("flip"))
    return int(s), bool(flip and a.settings.flips)



def _pick_from_click() -> None:
    """on_select callback of the fine map: a clicked cell becomes the picked cell."""
    ev = st.session_state.get("off_click")
    pts = (ev or {}).get("selection", {}).get("points", [])
    for p in pts:
        cd = p.get("customdata")
        if cd is not None and len(cd) == 2:
            st.session_state["off_row"], st.session_state["off_col"] = int(cd[0]), int(cd[1])
            return


def picked_cell(view, cls: int) -> tuple[int, int]:
    """Row and column of the picked cell of the fine map, from session state (the grids above
    the inputs outline it): a new view (image, model, scale, flip) or class starts at its most
    confident cell; a click or the inputs (cell_controls) move it."""
    Hf, Wf = view.fine.shape[-2:]
    owner = (ctx.image_key, ctx.model_key, view.scale, view.flip, cls)
    if starts_again("_off_cell_for", owner, "off_row", "off_col"):
        st.session_state["off_row"], st.session_state["off_col"] = appstate.best_cell(view, cls)
    clamp_state("off_row", 0, Hf - 1, Hf // 2)
    clamp_state("off_col", 0, Wf - 1, Wf // 2)
    return int(st.session_state["off_row"]), int(st.session_state["off_col"])


def cell_controls(view) -> tuple[int, int]:
    """The picked cell's row and column inputs (picked_cell set their state)."""
    Hf, Wf = view.fine.shape[-2:]
    c1, c2 = st.columns(2)
    r = c1.number_input(f"Row of the fine map (0-{Hf - 1})", 0, Hf - 1, step=1, key="off_row")
    c = c2.number_input(f"Column of the fine map (0-{Wf - 1})", 0, Wf - 1, step=1, key="off_col")
    return int(r), int(c)


def render() -> None:
    a = ctx.analysis()
    k = a.k
    if k <= 1:
        no_offsets(a)
        return
    intro(k, a.settings.fine)
    small = compact()
    with settings_box("Scale, class, channel and colours" if small and a.settings.fine
                      else "Scale, class and colours"):
        view = view_controls(a)
        cls = class_picker(a, "cls")
        stretch = colour_control()
        n_ch = int(view.features.shape[0])
        # Preselect the channel that fires most in this view (the input's label says so): for
        # each new image, model, scale or flip, as the picked cell; a channel typed in stays
        # while the view does. (It was preset once a session: on the next image the label's
        # "fires most here" named the first image's channel.)
        if starts_again("_off_channel_for", (ctx.image_key, ctx.model_key, view.scale, view.flip),
                        "off_channel", stale=st.session_state.get("off_channel") is None):
            st.session_state["off_channel"] = appstate.strongest_channel(view)
        clamp_state("off_channel", 0, n_ch - 1, 0)
        # compact (presenter mode, a phone): the channel joins the box, so the offset maps
        # come right after the title (their headings name the channel)
        if small and a.settings.fine:
            channel_input(n_ch)
    name = a.class_names[cls]
    r, c = picked_cell(view, cls)
    ch = offset_maps(view, k, cls, name, n_ch, stretch, (r, c)) if a.settings.fine else None

    st.subheader("Coarse map and fine map")
    # compact: the figure first, its row and column inputs under it (a click picks a cell too)
    slot = st.container() if small else None
    r, c = cell_controls(view)
    with slot or st.container():
        chart("off_click", figures.fine_coarse_figure, view, cls, k if a.settings.fine else 1,
              name, pick=(r, c), stretch=stretch, depends=(view.scale, view.flip),
              phone=is_phone(), plot_kw=dict(on_select=_pick_from_click, selection_mode="points"))
    st.caption("Click a cell of the fine map (or type its row and column) to see its window. "
               + (f"fine[{k}*j + dy, {k}*i + dx] = map(dx, dy)[j, i]; the maps are placed by "
                  f"their windows' top-left corners, so each coarse cell covers {k}x{k} fine "
                  f"cells. **Fine map**: {term('fine map')}" if a.settings.fine
                  else "Offsets are off: the two maps are the same."))
    notice(fine_notice(view, cls, name, k, a.settings.fine, r, c))
    picked_window(view, cls, r, c, a)
    if ch is not None:  # the offsets in one row, and what differs (after the maps they explain)
        offset_strip(view, k, ch)
        offset_differences(view, k, cls, name, ch)
    show_code(offsets.offset_pool, offsets.interleave, offsets.cell_window,
              activations.offset_strip, activations.offset_differences)


def fine_notice(view, cls: int, name: str, k: int, fine: bool, r: int, c: int) -> list[str]:
    """Bullets with this view's numbers: how many more windows the fine map has, what the
    coarse map misses, the picked cell."""
    f, co = view.fine[cls], view.class_maps[0][cls]
    out = []
    if fine:
        out.append(f"The coarse map has {co.shape[0]}x{co.shape[1]} = {co.numel()} windows, "
                   f"{view.stride * k} px apart; the fine map {f.shape[0]}x{f.shape[1]} = "
                   f"{f.numel()}, {view.stride} px apart, from the same pass of the network.")
        fb, cb = float(f.max()), float(co.max())
        skips = figures.prob_text(fb) != figures.prob_text(cb)
        out.append(f"Best p({name}): {figures.prob_text(fb)} on the fine map, "
                   f"{figures.prob_text(cb)} on the coarse one"
                   + (": the best window is one the coarse grid skips." if skips else
                      ": here the coarse grid already holds the best window."))
    else:
        out.append(f"Offsets are off: one map of {f.shape[0]}x{f.shape[1]} windows, "
                   f"{view.stride} px apart. Tick Offsets in the sidebar for {k * k} times as "
                   "many.")
    out.append(f"The picked cell ({r},{c}) has p({name}) {figures.prob_is(float(f[r, c]))}; its window is "
               "drawn on the image below" + (f". It comes from offset ({c % k},{r % k}): the red "
                                             "square in the classifier maps above." if fine
                                             else "."))
    return out


def intro(k: int, fine: bool) -> None:
    """What offset pooling does, for this model: which layer it applies to (read off the
    model's layer table), and how that differs from the paper's where it does."""
    st.title("Offsets")
    m = ctx.model
    layer = geometry.offset_layer(m.cfg)
    pooled = layer is None or layer.kind == "pool"
    with explain():
        st.markdown(f"The {'last max pool' if pooled else 'last subsampling layer'} ({k}x{k}, "
                    f"stride {k}) would make windows {m.stride} px apart. OverFeat applies it "
                    f"{k * k} times instead, once per offset (dx, dy), runs the classifier on each "
                    f"pooled map, and interleaves the {k * k} class maps into one map of stride "
                    f"{m.prepool_stride} px.")
        st.caption(f"**Offset**: {term('offset')} **Stride**: {term('stride')} **Window**: "
                   f"{term('window')} **A trous**: {term('a trous')}")
        card = zoo.card_of(m)
        if layer is not None and not card.paper_net:
            name = layer.name.replace(" (offsets)", "")
            if not pooled:
                st.info(f"{card.label} has no last max pool: its last subsampling layer is {name}, "
                        f"a {layer.kernel}x{layer.kernel} convolution at stride {layer.stride}, so "
                        f"here k = {k} ({k * k} offset maps, stride {m.stride} -> "
                        f"{m.prepool_stride} px) where OverFeat's accurate pool has k = 3 (9 maps, "
                        f"36 -> 12 px). The same trick: that layer runs at stride 1 and every later "
                        f"layer is dilated by {k}."
                        + (f" Its zero padding lets a window see context past its {m.window} px "
                           "crop." if getattr(m, "padding", False) else ""))
            else:
                st.info(f"{card.label}: its max pool {name} is {layer.kernel}x{layer.kernel} (k = "
                        f"{k}, {k * k} offset maps): with offsets a {m.window}x{m.window} window "
                        f"starts every {m.prepool_stride} px of each scale instead of every "
                        f"{m.stride} px.")
    if not fine:
        st.warning("Offsets are off in the sidebar: the network pools once, so there is only "
                   f"the coarse map below. Tick *Offsets* to see the {k * k} maps.")


# --- a model without offset pooling (k = 1) --------------------------------------------------
def no_offsets(a) -> None:
    """The page for k = 1: one line on what the offset trick became, then one scale's maps at
    every stride (a pyramid net: 3) instead of k*k offset maps, a clickable cell and its
    window."""
    st.title("Offsets")
    m = ctx.model
    strides = list(getattr(m, "strides", (m.stride,)))
    with explain():
        if len(strides) > 1:
            st.info(f"No offset pooling in this net (k = 1). What the offset trick became: finer "
                    f"output maps read off earlier layers: strides {'/'.join(map(str, strides))}.")
            sides = geometry.window_sides(m)
            st.markdown(
                f"OverFeat made its stride-36 map finer (12 px) by pooling at 9 offsets. This net "
                f"reads a stride-{strides[0]} map off an earlier layer instead and mixes the "
                f"coarser maps into it (its neck, on the Architecture page): each scale gives "
                f"{len(strides)} maps, stride {strides[0]} with small windows ({sides[0]} px) to "
                f"stride {strides[-1]} with large ones ({sides[-1]} px). Below: one scale's "
                f"{len(strides)} maps; click a cell to see its window and the box it predicts.")
        else:
            st.info(f"No offset pooling in this net (k = 1): its one map per scale, stride "
                    f"{strides[0]} px, is already its finest.")
        st.caption(f"**Stride**: {term('stride')} **Window**: {term('window')}")
    with settings_box("Scale, class and colours"):
        s, flip = scale_flip(a)
        cls = class_picker(a, "cls")
        stretch = colour_control()
    name = a.class_names[cls]
    views = figures.scale_views(a, s, flip)
    # compact (presenter mode, a phone): the maps right after the title, the stride, row and
    # column inputs under them (a click picks a cell too)
    slot = st.container() if compact() else None
    v, r, c = level_cell_controls(views, cls, s, flip)
    with slot or st.container():
        chart("off_levels", figures.level_maps_figure, a, ctx.backdrop(figures.PANEL_SIDE), cls,
              s, flip=flip, pick=(v.level, r, c), clickable=True, stretch=stretch,
              phone=is_phone(), depends=(s, flip, cls, v.level, r, c),
              plot_kw=dict(on_select=_pick_level_cell, selection_mode="points"))
    st.caption("Click a cell (or choose its stride, row and column) to see its window. Each "
               "panel is one map of this scale; its cells are drawn at their windows' centres, "
               "one stride apart, and the picked cell's window is outlined in red.")
    peaks = [(float(x.fine[cls].max()) if x.fine[cls].numel() else 0.0, x) for x in views]
    pb, vb = max(peaks, key=lambda t: t[0])
    notice([" · ".join(f"stride {x.stride}: {x.fine.shape[-2]}x{x.fine.shape[-1]} cells"
                       for _, x in peaks) + f" at scale {s + 1}: the finer the stride, the "
            "more (and smaller) windows, with no offset pooling.",
            f"The best window for {name} is on the stride-{vb.stride} map, p = "
            f"{figures.prob_text(pb)}; the "
            f"picked cell ({r},{c}) of the stride-{v.stride} map has p = "
            f"{figures.prob_text(float(v.fine[cls, r, c]))}."])
    picked_level_window(v, cls, r, c, name)
    show_code(multiscale._pyramid_views if len(strides) > 1 else multiscale.run_views,
              figures.level_maps_figure)


def _pick_level_cell() -> None:
    """on_select callback of the strides figure: a clicked cell (customdata [level, row, col])
    becomes the picked one."""
    ev = st.session_state.get("off_levels")
    for p in (ev or {}).get("selection", {}).get("points", []):
        cd = p.get("customdata")
        if cd is not None and len(cd) == 3:
            st.session_state["off_level"] = st.session_state["_off_level"] = int(cd[0])
            st.session_state["off_row"], st.session_state["off_col"] = int(cd[1]), int(cd[2])
            st.session_state["_off_level_clicked"] = True
            return


def level_cell_controls(views, cls: int, scale: int, flip: bool):
    """(view, row, col) of the picked cell among one scale's maps: a new image, model, scale,
    flip or class starts at the most confident cell of all its strides; a click or the inputs
    move it. The stride is kept in "off_level" (and "_off_level" across pages; not part of a
    link), row and column in the linked off_row, off_col."""
    levels = [v.level for v in views]
    owner = (ctx.image_key, ctx.model_key, scale, flip, cls)
    clicked = st.session_state.pop("_off_level_clicked", False)
    level = st.session_state.get("off_level", st.session_state.get("_off_level"))
    if starts_again("_off_cell_for", owner, "off_row", "off_col") and not clicked:
        i, st.session_state["off_row"], st.session_state["off_col"] = \
            figures.best_level_cell(views, cls)
        level = levels[i]
    if level not in levels:
        level = levels[0]
    strides = {v.level: v.stride for v in views}
    st.session_state["off_level"] = level
    c0, c1, c2 = st.columns(3)
    level = c0.selectbox("Stride", levels, key="off_level",
                         format_func=lambda lv: f"stride {strides[lv]}")
    st.session_state["_off_level"] = level
    v = views[levels.index(level)]
    Hf, Wf = v.fine.shape[-2:]
    clamp_state("off_row", 0, Hf - 1, Hf // 2)
    clamp_state("off_col", 0, Wf - 1, Wf // 2)
    r = c1.number_input(f"Row (0-{Hf - 1})", 0, Hf - 1, step=1, key="off_row")
    c = c2.number_input(f"Column (0-{Wf - 1})", 0, Wf - 1, step=1, key="off_col")
    return v, int(r), int(c)


def picked_level_window(view, cls: int, r: int, c: int, name: str) -> None:
    """The picked cell's window (its nominal square, centred on the cell) and predicted box."""
    cell = appstate.cell(view, cls, r, c, 1, True)
    s = view.stride
    side = geometry.window_sides(ctx.model)[view.level]
    left, right = st.columns([3, 2])
    with left:
        title = (f"stride {s}, cell ({r},{c}): p({name}) {figures.prob_is(cell.prob)}"
                 f"{' (flipped view)' if view.flip else ''}")
        nominal = len(geometry.window_sides(ctx.model)) > 1
        chart("off_level_window", figures.window_figure, ctx.backdrop(), cell.window, cell.box,
              title, window_name=f"nominal window ({side}x{side} px at this scale)" if nominal
              else "window (network input)", phone=is_phone(),
              depends=(view.scale, view.flip, view.level, cls, r, c))
    with right:
        st.markdown(
            f"- cell ({r},{c}) of the stride-{s} map ({view.fine.shape[-2]}x"
            f"{view.fine.shape[-1]} cells)\n"
            f"- its window: the {side}x{side} px square centred on the cell's centre "
            f"({(c + 0.5) * s:.0f}, {(r + 0.5) * s:.0f}) in the resized "
            f"{'and flipped ' if view.flip else ''}image ({view.size[0]}x{view.size[1]})\n"
            f"- in the original image: ({', '.join(f'{v:.0f}' for v in cell.window.tolist())})\n"
            + (f"- predicted box: ({', '.join(f'{v:.0f}' for v in cell.box.tolist())})\n"
               if cell.box is not None else "- no predicted box: this model has no regressor\n")
            + f"- p({name}) {figures.prob_is(cell.prob)}")
    if len(geometry.window_sides(ctx.model)) > 1:
        st.caption(f"The window is nominal (a project choice, for provenance: {side // s} "
                   "strides wide, the square objects were matched to in training); a cell sees "
                   "its whole receptive field and regresses a box around its centre.")


def channel_input(n_ch: int) -> int:
    """The feature channel whose offset-pooled maps the page draws (preset by render)."""
    return int(st.number_input(f"Feature channel of the last conv layer (0-{n_ch - 1}; preset: "
                               f"the one that fires most here)", 0, n_ch - 1, step=1,
                               key="off_channel"))


def offset_maps(view, k: int, cls: int, name: str, n_ch: int, stretch: bool = False,
                pick: tuple[int, int] = (0, 0)) -> int:
    """The k*k offset-pooled maps of one feature channel beside the k*k classifier maps, the
    picked fine cell (r, c) outlined in the classifier map it comes from; the channel shown.
    Compact (presenter mode, a phone): the channel's input is in the page's settings box and
    the headings are one short line each."""
    r, c = pick
    small, phone = compact(), is_phone()
    present = small and not phone  # presenter mode: the headings inside the pictures
    ch = int(st.session_state["off_channel"]) if small else channel_input(n_ch)
    # one line of a half-width picture in presenter mode's font (a long class name: p(name))
    heads = (f"{k * k} pooled maps, channel {ch}",
             f"{k * k} classifier maps, p({name})" if len(name) <= 12 else f"p({name})")
    c1, c2 = st.columns(2)
    with c1:
        if phone:
            st.markdown(f"**{heads[0]}**")
        elif not small:
            st.markdown(f"**{k * k} offset-pooled maps of channel {ch}** "
                        f"(pre-pool map {view.features.shape[1]}x{view.features.shape[2]})")
        # pictures, not Plotly heat maps (figures.grids: the page's first visit, issue 27)
        picture_chart("off_pooled", figures.offset_grid_picture,
                      [p[int(ch)] for p in view.pooled], k, f"channel {ch} activation",
                      colorscale="Greys", phone=phone, heading=heads[0] if present else None,
                      depends=(view.scale, view.flip, int(ch)))
    with c2:
        if phone:
            st.markdown(f"**{heads[1]}**")
        elif not small:
            st.markdown(f"**{k * k} classifier maps for {name}** (one per pooled map)")
        # the picked fine cell (r, c) is map (c % k, r % k)'s cell (r // k, c // k)
        picture_chart("off_classmaps", figures.offset_grid_picture,
                      [m[cls] for m in view.class_maps], k, f"p({name})", prob_of=name,
                      stretch=stretch, phone=phone, heading=heads[1] if present else None,
                      pick=(c % k, r % k, r // k, c // k), depends=(view.scale, view.flip, cls))
    st.caption("Panel (dx, dy) pools the pre-pool map shifted by dx columns and dy rows: "
               "pooled[dy, dx] = maxpool(x[..., dy:, dx:]). Each classifier map is the "
               f"classifier slid over one pooled map; the red square is the picked cell ({r},{c}) "
               f"of the fine map below: map ({c % k},{r % k}), cell ({r // k},{c // k}). The "
               "maps look alike: neighbouring offsets' windows are only a few pixels apart: "
               "further down, one row of them side by side (the paper's Fig. 3), then what "
               "differs.")
    return int(ch)


STRIP_OPEN = "off_strip_open"  # the Fig. 3 strip's expander (its state is in a link: ofig3=1)


def offset_strip(view, k: int, ch: int) -> None:
    """Paper Fig. 3 on this image, in an expander drawn only while it is open: open on every
    visit, the strip (Plotly's costliest drawing on the page, ~60 ms alone) and its controls
    were about a sixth of the browser's work of a page switch, below the fold
    (tests/browser_latency.py --pages Offsets, issue 27)."""
    folded("One row of offsets, the paper's Fig. 3 on this image: what each offset keeps of a "
           "row, and the rows interleaved", STRIP_OPEN, strip_section, view, k, ch,
           icon=":material/view_week:")


def strip_section(view, k: int, ch: int) -> None:
    """A band of k pre-pool rows of one channel, what each offset keeps of the stride-1 pooled
    row, and the interleaved row."""
    layer = geometry.offset_layer(ctx.model.cfg)
    is_max = layer is None or layer.kind == "pool"
    kernel = layer.kernel if layer is not None else k
    H = int(view.features.shape[1])
    owner = (ctx.image_key, ctx.model_key, view.scale, view.flip, ch)
    if starts_again("_off_band_for", owner, "off_band"):
        st.session_state["off_band"] = activations.offset_strip(view, ch, k, kernel, is_max).row0
    clamp_state("off_band", 0, max(0, H - k), 0)
    c1, c2 = st.columns([1, 3])
    row0 = int(c1.number_input(f"First row of the band (0-{max(0, H - k)}; preset: where "
                               "the channel fires most)", 0, max(0, H - k), step=1,
                               key="off_band"))
    strip = activations.offset_strip(view, ch, k, kernel, is_max, row0=row0)
    c2.markdown(
        f"Channel {ch}, pre-pool rows {strip.row0}-{strip.row0 + k - 1}, columns "
        f"{strip.col0}-{strip.col0 + strip.band.shape[1] - 1}. Offset dx keeps one column in {k} "
        f"of the stride-1 pooled row, starting at column dx: its cells are the pooled "
        f"map of offset (dx, {strip.dy}), row {strip.pooled_row}. Interleaved, the {k} offsets "
        f"give a value at every pre-pool column: stride {ctx.model.prepool_stride} px instead "
        f"of {ctx.model.stride}.")
    chart("off_strip", figures.offset_strip_figure, strip,
          depends=(view.scale, view.flip, ch, strip.row0))
    st.caption(
        (f"Each brick covers the {k}x{k} pre-pool cells (the band's {k} rows, {k} columns) it "
         "takes the maximum of" if is_max else
         f"This layer is a {kernel}x{kernel} convolution at stride {k}, not a max pool: each "
         f"value reads {kernel} columns of the band's rows (zero-padded at the border), "
         f"overlapping its neighbours'; a brick marks the {k} columns it steps") +
        "; the coloured bar under an interleaved cell names its offset. Every number in this "
        "figure has 2 decimals.")


DIFFS_OPEN = "off_diffs_open"  # the differences' expander (its state is in a link: odiffs=1)


def offset_differences(view, k: int, cls: int, name: str, ch: int) -> None:
    """|offset (dx, dy) - offset (0,0)| of the pooled channel and of the class map, with the
    largest difference in words, in an expander drawn only while it is open: the two grids at
    the page's end were about 0.1 s of every page switch (tests/browser_latency.py --pages
    Offsets, issue 27)."""
    folded(f"How much the offsets differ: |offset (dx, dy) - offset (0,0)| of channel {ch} and "
           f"of p({name})", DIFFS_OPEN, difference_grids, view, k, cls, name, ch)


def difference_grids(view, k: int, cls: int, name: str, ch: int) -> None:
    pooled, ps = activations.offset_differences([p[ch] for p in view.pooled], k)
    probs, cs = activations.offset_differences([m[cls] for m in view.class_maps], k)
    c1, c2 = st.columns(2)
    with c1:
        st.markdown(f"**|pooled(dx, dy) - pooled(0,0)|**, channel {ch}")
        picture_chart("off_pooled_diff", figures.offset_grid_picture, pooled, k,
                      f"|pooled(dx, dy) - pooled(0,0)|, ch. {ch}",
                      depends=(view.scale, view.flip, ch), phone=is_phone())
    with c2:
        st.markdown(f"**|p(dx, dy) - p(0,0)|** for {name}")
        picture_chart("off_diffs", figures.offset_grid_picture, probs, k,
                      f"|p(dx, dy) - p(0,0)| of {name}", depends=(view.scale, view.flip, cls),
                      phone=is_phone())
    v, dx, dy, j, i = cs["largest"]
    s = ctx.model.prepool_stride
    mean = max((m, o) for o, m in cs["mean"].items())
    st.markdown(
        f"Largest change of p({name}) from offset (0,0): **{v:.3f}** at offset ({dx},{dy}), "
        f"cell ({j},{i}): that window lies {dx * s} px right of and {dy * s} px below offset "
        f"(0,0)'s cell ({j},{i}). The offset that differs most on average is "
        f"({mean[1][0]},{mean[1][1]}) (mean |difference| {mean[0]:.3f}); for channel {ch} the "
        f"pooled values change by up to {ps['largest'][0]:.2f}."
        if v > 0 else f"The {k * k} offsets give exactly the same p({name}) on this view.")
    st.caption("Offset (0,0)'s panel is all zero by definition. The offset maps are cut to the "
               "cells all of them have (one can be a row or column shorter).")


def picked_window(view, cls: int, r: int, c: int, a) -> None:
    """The picked cell's window and predicted box on the image, with its numbers."""
    k, name = a.k, a.class_names[cls]
    cell = appstate.cell(view, cls, r, c, k, a.settings.fine)
    left, right = st.columns([3, 2])
    with left:
        title = (f"cell ({r},{c}) = {cell.where}: p({name}) {figures.prob_is(cell.prob)}"
                 f"{' (flipped view)' if view.flip else ''}")
        chart("off_window", figures.window_figure, ctx.backdrop(), cell.window, cell.box, title,
              depends=(view.scale, view.flip, cls, r, c), phone=is_phone())
    with right:
        st.markdown(
            f"- window in the resized image ({view.size[0]}x{view.size[1]}): top-left "
            f"({cell.top_left[0]}, {cell.top_left[1]}), side {a.window} px\n"
            f"- in the original image: ({', '.join(f'{v:.0f}' for v in cell.window.tolist())})\n"
            + (f"- predicted box: ({', '.join(f'{v:.0f}' for v in cell.box.tolist())})\n"
               if cell.box is not None else "- no predicted box: this model has no regressor\n")
            + f"- p({name}) {figures.prob_is(cell.prob)}")


render()
