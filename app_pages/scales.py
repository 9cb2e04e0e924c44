"""Scales: each scale's confidence map for a class, its spatial maximum, and the averaged score.
A pyramid net (the model's `pyramid`) gives three maps per scale, one per stride: one scale at a
time, its strides side by side."""

import streamlit as st

from overfeat import geometry, multiscale
from overfeat.models import registry as zoo
from overfeat.app import figures
from overfeat.app import state as appstate
from app_pages.common import chart, class_picker, context, show_code

ctx = context()


def controls(a) -> tuple[int, bool]:
    c1, c2 = st.columns([3, 1])
    with c1:
        cls = class_picker(a, "cls")
    with c2:
        flip = st.toggle("Show flipped views", key="scales_flip", disabled=not a.settings.flips,
                         help="The maps of the mirrored image, mapped back onto the original.")
    return cls, flip and a.settings.flips


def scale_choice(a, cls: int) -> int:
    """The scale whose maps a pyramid net's figure shows: it opens at the scale that sees the
    class best and keeps a choice for the same image, model, class and scales (also across
    pages: a widget's own value is dropped while its page is not drawn, so it is kept in
    "_scales_scale" too; not part of a link)."""
    scales = list(a.settings.scales)
    owner = (ctx.image_key, ctx.model_key, cls, tuple(scales))
    cur = st.session_state.get("scales_scale", st.session_state.get("_scales_scale"))
    if st.session_state.get("_scales_scale_for") != owner or cur not in scales:
        cur = figures.best_scale(a, cls)
    st.session_state["_scales_scale_for"] = owner
    st.session_state["scales_scale"] = cur
    s = st.selectbox("Scale", scales, key="scales_scale", format_func=lambda s: f"scale {s + 1}",
                     help="Opens at the scale whose vote for the class is highest.")
    st.session_state["_scales_scale"] = s
    st.caption(f"input {a.sizes[s][0]}x{a.sizes[s][1]} (height x width)")
    return int(s)


def intro(a, card, pyramid: bool) -> None:
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
    if card is not None and card.differs:
        with st.expander(f"How {card.label} differs from the paper's net"):
            st.markdown(card.differs)


def _join(v) -> str:
    v = [str(x) for x in v]
    return v[0] if len(v) == 1 else ", ".join(v[:-1]) + " and " + v[-1]


def render() -> None:
    a = ctx.analysis()
    st.title("Scales")
    card = zoo.CARDS.get(getattr(ctx.model, "name", "pictogram"))
    pyramid = bool(getattr(ctx.model, "pyramid", False))
    intro(a, card, pyramid)
    cls, flip = controls(a)
    if pyramid:
        s = scale_choice(a, cls)
        chart("scales_levels", figures.level_maps_figure, a, ctx.backdrop(figures.PANEL_SIDE),
              cls, s, flip=flip, depends=(cls, s, flip))
        strides = list(ctx.model.strides)
        st.caption(f"Each cell is drawn at the centre of its window, one stride ({_join(strides)}"
                   " px at that scale) wide; point at a cell for its window in the image's "
                   f"pixels. The stride-{strides[0]} map has "
                   f"{(strides[-1] // strides[0]) ** 2}x as many cells as the "
                   f"stride-{strides[-1]} one, each seeing a smaller window. Colour: "
                   "probability of the class (its own sigmoid: a cell may see nothing), one "
                   "scale for all panels. The scale's vote is the largest value of all "
                   f"{len(strides)} panels.")
    else:
        chart("scales_maps", figures.scale_maps_figure, a, ctx.backdrop(figures.PANEL_SIDE), cls,
              flip=flip)
        st.caption(f"Each cell is drawn at the centre of its window, one stride "
                   f"({ctx.model.prepool_stride if a.settings.fine else ctx.model.stride} px at "
                   "that scale) wide: at the smallest scale the window covers almost the whole "
                   "image, so only a few positions exist. Colour: probability of the class, one "
                   "scale for all panels.")

    top = [c for c, _, _ in appstate.class_ranking(a, 5)]
    if cls not in top:
        top = top[:4] + [cls]
    st.subheader("Spatial maxima per scale and the final average")
    chart("scales_scores", figures.scale_scores_figure, a, top)
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
    c1.table([{"rank": i + 1, "class": n, "score": round(s, 4)} for i, (_, n, s) in enumerate(now)])
    fmaps = f"; {len(full.views)} maps" if len(full.views) != full.n_views else ""
    c2.markdown(f"**All six scales with flips** ({full.n_views} views{fmaps})")
    c2.table([{"rank": i + 1, "class": n, "score": round(s, 4)} for i, (_, n, s) in enumerate(ref)])
    same = now[0][0] == ref[0][0]
    st.caption(("Same top class" if same else "**The top class changes**") +
               " - change the scales and flips in the sidebar: nothing is recomputed, the "
               "network ran once at all six scales with flips.")
    show_code(multiscale.analyze, multiscale.view_votes if pyramid else
              multiscale.View.spatial_max.fget)


render()
