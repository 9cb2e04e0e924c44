"""Offsets: the k*k offset-pooled maps, the k*k classifier maps, and the fine map they make."""

import streamlit as st

from overfeat import offsets
from overfeat.app import figures
from overfeat.app import state as appstate
from app_pages.common import chart, clamp_state, class_picker, context, from_link, show_code

ctx = context()


def view_controls(a):
    """Scale and flip of the view to dissect."""
    scales = list(a.settings.scales)
    owner = (ctx.image_key, ctx.model_key, tuple(scales))
    if from_link("off_scale"):
        st.session_state["_off_scale_for"] = owner
    if (st.session_state.get("off_scale") not in scales
            or st.session_state.get("_off_scale_for") != owner):
        st.session_state["off_scale"] = appstate.largest_scale(a)  # most cells to look at
    st.session_state["_off_scale_for"] = owner
    c1, c2 = st.columns([3, 1])
    # Label: the scale number only, fixed across images (see common.class_picker for why).
    s = c1.selectbox("Scale", scales, key="off_scale", format_func=lambda s: f"scale {s + 1}",
                     help="Its input size for this image is under the box.")
    c1.caption(f"input {a.sizes[s][0]}x{a.sizes[s][1]} (height x width)")
    flip = c2.toggle("Flipped view", key="off_flip", disabled=not a.settings.flips)
    flip = flip and a.settings.flips
    return next(v for v in a.views if v.scale == s and v.flip == flip)


def _pick_from_click() -> None:
    """on_select callback of the fine map: a clicked cell becomes the picked cell."""
    ev = st.session_state.get("off_click")
    pts = (ev or {}).get("selection", {}).get("points", [])
    for p in pts:
        cd = p.get("customdata")
        if cd is not None and len(cd) == 2:
            st.session_state["off_row"], st.session_state["off_col"] = int(cd[0]), int(cd[1])
            return


def cell_controls(view, cls: int) -> tuple[int, int]:
    """Row and column of the picked cell: a new view (image, model, scale, flip) or class
    starts at its most confident cell; a click or the inputs move it."""
    Hf, Wf = view.fine.shape[-2:]
    owner = (ctx.image_key, ctx.model_key, view.scale, view.flip, cls)
    linked = from_link("off_row") | from_link("off_col")
    if st.session_state.get("_off_cell_for") != owner and not linked:
        st.session_state["off_row"], st.session_state["off_col"] = appstate.best_cell(view, cls)
    st.session_state["_off_cell_for"] = owner
    clamp_state("off_row", 0, Hf - 1, Hf // 2)
    clamp_state("off_col", 0, Wf - 1, Wf // 2)
    c1, c2 = st.columns(2)
    r = c1.number_input(f"Row of the fine map (0-{Hf - 1})", 0, Hf - 1, step=1, key="off_row")
    c = c2.number_input(f"Column of the fine map (0-{Wf - 1})", 0, Wf - 1, step=1, key="off_col")
    return int(r), int(c)


def render() -> None:
    a = ctx.analysis()
    k = a.k
    intro(k, a.settings.fine)
    view = view_controls(a)
    cls = class_picker(a, "cls")
    n_ch = int(view.features.shape[0])
    # Preselect the channel that fires most at this scale.
    st.session_state.setdefault("off_channel", appstate.strongest_channel(view))
    clamp_state("off_channel", 0, n_ch - 1, 0)
    name = a.class_names[cls]
    if a.settings.fine:
        offset_maps(view, k, cls, name, n_ch)

    st.subheader("Coarse map and fine map")
    r, c = cell_controls(view, cls)
    chart("off_click", figures.fine_coarse_figure, view, cls, k if a.settings.fine else 1, name,
          pick=(r, c), depends=(view.scale, view.flip),
          plot_kw=dict(on_select=_pick_from_click, selection_mode="points"))
    st.caption("Click a cell of the fine map (or type its row and column) to see its window. "
               + (f"fine[{k}*j + dy, {k}*i + dx] = map(dx, dy)[j, i]; the maps are placed by "
                  f"their windows' top-left corners, so each coarse cell covers {k}x{k} fine "
                  f"cells." if a.settings.fine else "Offsets are off: the two maps are the same."))
    picked_window(view, cls, r, c, a)
    show_code(offsets.offset_pool, offsets.interleave, offsets.cell_window)


def intro(k: int, fine: bool) -> None:
    """What offset pooling does, for this model."""
    st.title("Offsets")
    layer = ("last subsampling layer" if ctx.model.name == "imagenet" else "last max pool")
    st.markdown(f"The {layer} ({k}x{k}, stride {k}) would make windows "
                f"{ctx.model.stride} px apart. OverFeat applies it {k * k} times instead, once per "
                f"offset (dx, dy), runs the classifier on each pooled map, and interleaves the "
                f"{k * k} class maps into one map of stride {ctx.model.prepool_stride} px.")
    if ctx.model.name == "imagenet":
        st.info("EfficientNet-Lite0 has no last max pool: its last subsampling is block 11's "
                "5x5 depthwise convolution at stride 2, so here k = 2 (4 offset maps, stride "
                "32 -> 16 px) where OverFeat's accurate pool has k = 3 (9 maps, 36 -> 12 px). "
                "The same trick: that layer runs at stride 1 and every later layer is dilated "
                "by 2. Its zero padding lets a window see context past its 224 px crop.")
    elif ctx.model.name == "faces":
        st.info("P-Net's one max pool is 2x2 (k = 2, 4 offset maps): with offsets a 12x12 "
                "window starts at every pixel of each pyramid level instead of every second.")
    if not fine:
        st.warning("Offsets are off in the sidebar: the network pools once, so there is only "
                   f"the coarse map below. Tick *Offsets* to see the {k * k} maps.")


def offset_maps(view, k: int, cls: int, name: str, n_ch: int) -> None:
    """The k*k offset-pooled maps of one feature channel beside the k*k classifier maps."""
    ch = st.number_input(f"Feature channel of the last conv layer (0-{n_ch - 1}; preset: "
                         f"the one that fires most here)", 0, n_ch - 1, step=1,
                         key="off_channel")
    c1, c2 = st.columns(2)
    with c1:
        st.markdown(f"**{k * k} offset-pooled maps of channel {ch}** "
                    f"(pre-pool map {view.features.shape[1]}x{view.features.shape[2]})")
        chart("off_pooled", figures.offset_grid_figure, [p[int(ch)] for p in view.pooled], k,
              f"channel {ch}", colorscale="Greys", depends=(view.scale, view.flip, int(ch)))
    with c2:
        st.markdown(f"**{k * k} classifier maps for {name}** (one per pooled map)")
        chart("off_classmaps", figures.offset_grid_figure, [m[cls] for m in view.class_maps], k,
              f"p({name})", depends=(view.scale, view.flip, cls))
    st.caption("Panel (dx, dy) pools the pre-pool map shifted by dx columns and dy rows: "
               "pooled[dy, dx] = maxpool(x[..., dy:, dx:]). Each classifier map is the "
               "classifier slid over one pooled map.")


def picked_window(view, cls: int, r: int, c: int, a) -> None:
    """The picked cell's window and predicted box on the image, with its numbers."""
    k, name = a.k, a.class_names[cls]
    cell = appstate.cell(view, cls, r, c, k, a.settings.fine)
    left, right = st.columns([3, 2])
    with left:
        title = (f"cell ({r},{c}) = {cell.where}: p({name}) = {cell.prob:.3f}"
                 f"{' (flipped view)' if view.flip else ''}")
        chart("off_window", figures.window_figure, ctx.backdrop(), cell.window, cell.box, title,
              depends=(view.scale, view.flip, cls, r, c))
    with right:
        st.markdown(
            f"- window in the resized image ({view.size[0]}x{view.size[1]}): top-left "
            f"({cell.top_left[0]}, {cell.top_left[1]}), side {a.window} px\n"
            f"- in the original image: ({', '.join(f'{v:.0f}' for v in cell.window.tolist())})\n"
            + (f"- predicted box: ({', '.join(f'{v:.0f}' for v in cell.box.tolist())})\n"
               if cell.box is not None else "- no predicted box: this model has no regressor\n")
            + f"- p({name}) = {cell.prob:.4f}")


render()
