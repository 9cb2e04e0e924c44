"""Scales: each scale's confidence map for a class, its spatial maximum, and the averaged score.
A pyramid net (the model's `pyramid`) gives three maps per scale, one per stride: one scale at a
time, its strides side by side."""

import streamlit as st

from overfeat import geometry, multiscale
from overfeat.models import registry as zoo
from overfeat.app import figures
from overfeat.app import state as appstate
from overfeat.app.figures import maps as figmaps
from app_pages.common import (chart, class_picker, colour_control, compact, context, explain,
                              is_phone, notice, settings_box, show_code, starts_again, table, term)

ctx = context()
PRESENTER_COLUMNS = 3  # presenter mode: six scales in two rows of three (a projector's width)


def controls(a) -> tuple[int, bool]:
    c1, c2 = st.columns([3, 1])
    with c1:
        cls = class_picker(a, "cls")
    with c2:
        flip = st.toggle("Show flipped views", key="scales_flip", disabled=not a.settings.flips,
                         help=term("flip") + " Shown here: the maps of the mirrored image, "
                              "mapped back onto the original.")
    return cls, flip and a.settings.flips



def scale_choice(a, cls: int) -> int:
    """The scale whose maps a pyramid net's figure shows: it opens at the scale that sees the
    class best and keeps a choice for the same image, model, class and scales (also across
    pages: a widget's own value is dropped while its page is not drawn, so it is kept in
    "_scales_scale" too; not part of a link)."""
    scales = list(a.settings.scales)
    owner = (ctx.image_key, ctx.model_key, cls, tuple(scales))
    cur = st.session_state.get("scales_scale", st.session_state.get("_scales_scale"))
    if starts_again("_scales_scale_for", owner, stale=cur not in scales):
        cur = figures.best_scale(a, cls)
    st.session_state["scales_scale"] = cur
    s = st.selectbox("Scale", scales, key="scales_scale", format_func=lambda s: f"scale {s + 1}",
                     help=term("scale") + " Opens at the scale whose vote for the class is "
                          "highest.")
    st.session_state["_scales_scale"] = s
    st.caption(f"input {a.sizes[s][0]}x{a.sizes[s][1]} (height x width)")
    return int(s)


def intro(a, card, pyramid: bool) -> None:
    with explain():
        if pyramid:
            strides = list(ctx.model.strides)
            sides = geometry.window_sides(ctx.model)
            st.markdown(
                "At each scale the network runs once over the whole resized image and gives "
                f"**{len(strides)} maps**, at strides {_join(strides)} px: one probability per "
                f"class for every cell, each cell a window of {_join(sides)} px centred on it. "
                f"The **spatial maximum** of a class over a scale's {len(strides)} maps is that "
                "scale's vote; the final score averages the votes of all views (scales x flips).")
            st.markdown("**Not the paper's recipe**: besides the image pyramid (six scales) this "
                        "net has a *feature* pyramid, three output maps per scale read off "
                        "different depths, instead of offset pooling.")
        else:
            st.markdown("At each scale the network runs once over the whole resized image and "
                        f"gives one probability per class for every {a.window}x{a.window} window. "
                        "The **spatial maximum** of a class's map is that scale's vote; the final "
                        "score averages the votes of all views (scales x flips).")
        st.caption(f"**Scale**: {term('scale')} **Window**: {term('window')} **Stride**: "
                   f"{term('stride')} **Views**: {term('views')}")
        if card is not None and card.differs and compact():
            # presenter mode and a phone: one closed box above the figure, not two
            st.markdown(f"**How {card.label} differs from the paper's net**")
            st.markdown(card.differs)
    if card is not None and card.differs and not compact():
        with st.expander(f"How {card.label} differs from the paper's net"):
            st.markdown(card.differs)


def scales_notice(a, cls: int, name: str, views, cell, pyramid: bool, stretch: bool) -> list[str]:
    """Three bullets with this image's numbers: where the class is seen best and worst, what the
    picked cell's window covers, what the colours mean."""
    peaks = [(float(v.fine[cls].max()) if v.fine[cls].numel() else 0.0, v) for v in views]
    (pb, vb), (pw, vw) = max(peaks, key=lambda t: t[0]), min(peaks, key=lambda t: t[0])
    at = (lambda v: f"the stride-{v.stride} map") if pyramid else (lambda v: f"scale {v.scale + 1}")
    out = [f"At {at(vb)} the best window for {name} has p {figures.prob_is(pb)}; at {at(vw)} only "
           f"{figures.prob_text(pw)}" + (" (each scale's vote is its best window: the bars below)." if not
                          pyramid else " (the scale's vote is the best of them).")]
    x1, y1, x2, y2 = cell.window.tolist()
    W, H = ctx.image.size
    share = max(0.0, min(x2, W) - max(x1, 0)) * max(0.0, min(y2, H) - max(y1, 0)) / (W * H)
    out.append(f"The picked cell is drawn at ({(x1 + x2) / 2:.0f}, {(y1 + y2) / 2:.0f}), but its "
               f"window spans x {x1:.0f} to {x2:.0f} and y {y1:.0f} to {y2:.0f}, "
               f"{100 * share:.0f}% of the image: its p({name}) {figures.prob_is(cell.prob)} answers for "
               "everything inside that square, even at its edge, not for the spot under the "
               "cell.")
    lo, hi = figmaps.map_range([v.fine[cls] for v in views])
    if stretch:
        out.append(f"Colours are stretched to {figmaps.range_text(lo, hi)}: the brightest cell "
                   f"is p = {hi:.3g}, not certainty. Choose 0 to 1 to compare with other "
                   "classes.")
    else:
        out.append(f"Colours are absolute, 0 to 1, the same for every class: {name} reaches "
                   f"p {figures.prob_is(hi)} here" + (", so its maps stay dark." if hi < 0.5 else "."))
    return out


def _join(v) -> str:
    v = [str(x) for x in v]
    return v[0] if len(v) == 1 else ", ".join(v[:-1]) + " and " + v[-1]


def _pick_cell(key: str) -> None:
    """on_select callback of a map figure: the clicked cell becomes the picked one. customdata
    [scale, row, col] (one panel per scale) or [level, row, col] (a pyramid net's strides)."""
    for p in (st.session_state.get(key) or {}).get("selection", {}).get("points", []):
        cd = p.get("customdata")
        if cd is not None and len(cd) == 3:
            st.session_state["scales_level" if key == "scales_levels" else "scales_at"] = int(cd[0])
            st.session_state["scales_row"], st.session_state["scales_col"] = int(cd[1]), int(cd[2])
            return


def picked(a, cls: int, flip: bool, s: int | None) -> tuple:
    """The picked cell, whose window the figure draws: (view, tag, row, col), tag its scale (or,
    for a pyramid net shown at scale s, its level). A new image, model, class, flip, choice of
    scales (or pyramid scale) starts at the cell with the class's highest p among the drawn
    maps; a click moves it; a link's cell is kept once (clamped into its map)."""
    pyramid = s is not None
    views = figures.scale_views(a, s, flip) if pyramid else figures.select_views(a, None, flip)
    key = "scales_level" if pyramid else "scales_at"
    tags = [v.level if pyramid else v.scale for v in views]
    owner = (ctx.image_key, ctx.model_key, cls, flip, tuple(a.settings.scales), s)
    state = st.session_state
    if starts_again("_scales_pick_for", owner, key, "scales_row", "scales_col",
                    stale=state.get(key) not in tags):
        if pyramid:
            i, state["scales_row"], state["scales_col"] = figures.best_level_cell(views, cls)
        else:
            i = max(range(len(views)), key=lambda j: (float(views[j].fine[cls].max()), -j))
            state["scales_row"], state["scales_col"] = appstate.best_cell(views[i], cls)
        state[key] = tags[i]
    v = views[tags.index(state[key])]
    h, w = v.fine.shape[-2:]
    r = min(max(int(state.get("scales_row") or 0), 0), h - 1)
    c = min(max(int(state.get("scales_col") or 0), 0), w - 1)
    state["scales_row"], state["scales_col"] = r, c
    return v, tags.index(state[key]), r, c


def render() -> None:
    a = ctx.analysis()
    st.title("Scales")
    card = zoo.CARDS.get(getattr(ctx.model, "name", "pictogram"))
    pyramid = bool(getattr(ctx.model, "pyramid", False))
    intro(a, card, pyramid)
    small, phone = compact(), is_phone()
    with settings_box("Class, scale, flips and colours" if pyramid else
                      "Class, flips and colours"):
        cls, flip = controls(a)
        stretch = colour_control()
        # compact: a pyramid net's scale joins the box (the figure's titles name it)
        s = scale_choice(a, cls) if pyramid and small else None
    name = a.class_names[cls]
    if pyramid:
        if s is None:
            s = scale_choice(a, cls)
        v, _, r, c = picked(a, cls, flip, s)
        chart("scales_levels", figures.level_maps_figure, a, ctx.backdrop(figures.PANEL_SIDE),
              cls, s, flip=flip, pick=(v.level, r, c), clickable=True, stretch=stretch,
              depends=(cls, s, flip, v.level, r, c), phone=phone,
              plot_kw=dict(on_select=lambda: _pick_cell("scales_levels"), selection_mode="points"))
        drawn = figures.scale_views(a, s, flip)
        strides = list(ctx.model.strides)
        st.caption(f"Each cell is drawn at the centre of its window, one stride ({_join(strides)}"
                   " px at that scale) wide; point at a cell for its window, click it to draw "
                   f"the window on the image. The stride-{strides[0]} map has "
                   f"{(strides[-1] // strides[0]) ** 2}x as many cells as the "
                   f"stride-{strides[-1]} one, each seeing a smaller window. Colour: "
                   "probability of the class (its own sigmoid: a cell may see nothing), one "
                   "scale for all panels (the colour bar says which). The scale's vote is the "
                   f"largest value of all {len(strides)} panels.")
    else:
        v, _, r, c = picked(a, cls, flip, None)
        chart("scales_maps", figures.scale_maps_figure, a, ctx.backdrop(figures.PANEL_SIDE), cls,
              flip=flip, stretch=stretch, pick=(v.scale, r, c), clickable=True,
              depends=(v.scale, r, c), phone=phone,
              columns=PRESENTER_COLUMNS if small and not phone else None,
              plot_kw=dict(on_select=lambda: _pick_cell("scales_maps"), selection_mode="points"))
        drawn = figures.select_views(a, None, flip)
        st.caption(f"Each cell is drawn at the centre of its window, one stride "
                   f"({ctx.model.prepool_stride if a.settings.fine else ctx.model.stride} px at "
                   "that scale" + (f": the *fine map*'s stride; in the paper's net, "
                                   f"{term('fine map')[0].lower()}{term('fine map')[1:]}"
                                   if a.settings.fine else "") + ") wide: at the smallest scale the window covers "
                   "almost the whole image, so only a few positions exist. Point at a cell for "
                   "its window; click it to draw the window on the image. Colour: probability "
                   "of the class, one scale for all panels (the colour bar says which).")
    cell = appstate.cell(v, cls, r, c, 1, False)
    x1, y1, x2, y2 = cell.window.tolist()
    where = f"the stride-{v.stride} map" if pyramid else f"scale {v.scale + 1}"
    st.markdown(
        f"**Picked cell** ({r},{c}) of {where}{' (flipped view)' if v.flip else ''}: "
        f"p({name}) {figures.prob_is(cell.prob)}. Its window, drawn in red on that panel: x "
        f"{x1:.0f} to {x2:.0f}, y {y1:.0f} to {y2:.0f} in the {ctx.image.size[0]}x"
        f"{ctx.image.size[1]} image ({x2 - x1:.0f}x{y2 - y1:.0f} px); the small red square at its "
        f"centre ({(x1 + x2) / 2:.0f}, {(y1 + y2) / 2:.0f}) is where the cell is drawn. Click "
        "another cell to move it.")
    notice(scales_notice(a, cls, name, drawn, cell, pyramid, stretch))

    top = [c for c, _, _ in appstate.class_ranking(a, 5)]
    if cls not in top:
        top = top[:4] + [cls]
    st.subheader("Spatial maxima per scale and the final average")
    st.html(figures.scale_scores_bars(a, top))
    if pyramid:
        st.caption("A scale's bar: its vote (the maximum over its strides), the mean of its "
                   "flips.")

    full = ctx.cut(multiscale.Settings(fine=a.settings.fine, rule=a.settings.rule))
    now = appstate.class_ranking(a, 5)
    ref = appstate.class_ranking(full, 5)
    chosen = ", ".join(str(s + 1) for s in a.settings.scales)
    maps = f"; {len(a.views)} maps" if len(a.views) != a.n_views else ""
    st.subheader("How the choice of scales changes the prediction")
    c1, c2 = st.columns(2)
    c1.markdown(f"**Your choice**: scales {chosen}, flips {'on' if a.settings.flips else 'off'} "
                f"({a.n_views} views{maps})")
    table([{"rank": i + 1, "class": n, "score": round(s, 4)} for i, (_, n, s) in enumerate(now)],
          where=c1)
    fmaps = f"; {len(full.views)} maps" if len(full.views) != full.n_views else ""
    c2.markdown(f"**All six scales with flips** ({full.n_views} views{fmaps})")
    table([{"rank": i + 1, "class": n, "score": round(s, 4)} for i, (_, n, s) in enumerate(ref)],
          where=c2)
    same = now[0][0] == ref[0][0]
    st.caption(("Same top class" if same else "**The top class changes**") +
               " - change the scales and flips in the sidebar: nothing is recomputed, the "
               "network ran once at all six scales with flips.")
    show_code(multiscale.analyze, multiscale.view_votes if pyramid else
              multiscale.View.spatial_max.fget)


render()
