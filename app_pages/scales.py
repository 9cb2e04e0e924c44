"""Scales: each scale's confidence map for a class, its spatial maximum, and the averaged score."""

import streamlit as st

from overfeat import multiscale
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


def render() -> None:
    a = ctx.analysis()
    st.title("Scales")
    st.markdown("At each scale the network runs once over the whole resized image and gives one "
                f"probability per class for every {a.window}x{a.window} window. The **spatial maximum** of a "
                "class's map is that scale's vote; the final score averages the votes of all "
                "views (scales x flips).")
    card = zoo.CARDS.get(getattr(ctx.model, "name", "pictogram"))
    if card is not None and card.differs:
        with st.expander(f"How {card.label} differs from the paper's net"):
            st.markdown(card.differs)
    cls, flip = controls(a)
    chart("scales_maps", figures.scale_maps_figure, a, ctx.backdrop(figures.PANEL_SIDE), cls,
          flip=flip)
    st.caption(f"Each cell is drawn at the centre of its window, one stride "
               f"({ctx.model.prepool_stride if a.settings.fine else ctx.model.stride} px at that "
               "scale) wide: at the smallest scale the window covers almost the whole image, so "
               "only a few positions exist. Colour: probability of the class, one scale for "
               "all panels.")

    top = [c for c, _, _ in appstate.class_ranking(a, 5)]
    if cls not in top:
        top = top[:4] + [cls]
    st.subheader("Spatial maxima per scale and the final average")
    chart("scales_scores", figures.scale_scores_figure, a, top)

    full = ctx.cut(multiscale.Settings(fine=a.settings.fine, rule=a.settings.rule))
    now = appstate.class_ranking(a, 5)
    ref = appstate.class_ranking(full, 5)
    chosen = ", ".join(str(s + 1) for s in a.settings.scales)
    st.subheader("How the choice of scales changes the prediction")
    c1, c2 = st.columns(2)
    c1.markdown(f"**Your choice**: scales {chosen}, flips {'on' if a.settings.flips else 'off'} "
                f"({len(a.views)} views)")
    c1.table([{"rank": i + 1, "class": n, "score": round(s, 4)} for i, (_, n, s) in enumerate(now)])
    c2.markdown(f"**All six scales with flips** ({len(full.views)} views)")
    c2.table([{"rank": i + 1, "class": n, "score": round(s, 4)} for i, (_, n, s) in enumerate(ref)])
    same = now[0][0] == ref[0][0]
    st.caption(("Same top class" if same else "**The top class changes**") +
               " - change the scales and flips in the sidebar: nothing is recomputed, the "
               "network ran once at all six scales with flips.")
    show_code(multiscale.analyze, multiscale.View.spatial_max.fget)


render()
