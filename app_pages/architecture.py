"""Architecture: the chosen model's layers, map sizes at the six scales, receptive fields, costs."""

import streamlit as st

from overfeat import appstate, figures, geometry, multiscale, zoo
from overfeat.figures import PLOTLY_CONFIG
from app_pages.common import context, show_code

ctx = context()


def _height(n_rows: int) -> int:
    """A dataframe height that shows every row without scrolling."""
    return 35 * (n_rows + 1) + 3


def render() -> None:
    cfg = ctx.arch_cfg
    meta = geometry.meta_model(cfg)
    st.title("Architecture")
    st.markdown(f"**{appstate.describe(cfg)}**. Fully-connected layers are convolutions "
                f"(the first a {meta.fc_kernel}x{meta.fc_kernel} kernel over the last pooled "
                f"map), so the same network slides over an image of any size.")
    card = zoo.CARDS[cfg.name] if isinstance(cfg, zoo.ZooConfig) else None
    if card is not None and card.differs:
        st.info(card.differs)
    H, W = ctx.image.size[1], ctx.image.size[0]

    st.subheader(f"Map sizes at the six scales for this image ({H}x{W})")
    st.dataframe(appstate.scale_rows(cfg, (H, W), ctx.knobs.rule), hide_index=True,
                 height=_height(6))
    st.caption(f"Sizes are height x width. Scale rule '{ctx.knobs.rule}' (a project choice: "
               f"the paper gives six sizes but not how to fit other aspect ratios; see the "
               f"sidebar). 'windows' = cells of the fine map = {meta.window}x{meta.window} "
               f"windows evaluated at that scale. An offset's pooled map can be a row or column "
               f"shorter than offset (0,0)'s.")

    st.subheader("Every layer's output size at each scale")
    by_scale = appstate.layer_sizes_by_scale(cfg, (H, W), ctx.knobs.rule)
    st.dataframe(by_scale, hide_index=True, height=_height(len(by_scale)))

    st.subheader("Layers at one window")
    rows = appstate.layer_rows(cfg)
    st.dataframe(rows, hide_index=True, height=_height(len(rows)), column_config={
        "parameters": st.column_config.NumberColumn(format="localized"),
        "multiply-adds": st.column_config.NumberColumn(format="localized")})
    total_p = sum(r["parameters"] for r in rows)
    total_m = sum(r["multiply-adds"] for r in rows)
    window = meta.window
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("parameters (trunk + classifier)", f"{total_p / 1e6:.2f}M")
    c2.metric("multiply-adds per window", f"{total_m / 1e9:.3f}G")
    c3.metric("window (network input)", f"{window} px")
    c4.metric("receptive field of the output", f"{rows[-1]['receptive field']} px")
    st.caption(f"Receptive field: input pixels one output cell could see; jump: input pixels "
               f"between neighbouring cells (the cumulative stride). The receptive field is "
               f"larger than the {window} px window because the padded layers look past the "
               f"window's border: on a {window}x{window} crop they see zeros there, in dense "
               f"evaluation the neighbouring image - why dense and crop-by-crop evaluation "
               f"differ near borders unless the padding is removed. The last pool is listed "
               f"once (coarse stride); offset pooling runs the classifier on all k*k pooled "
               f"maps." + (" The regressor head (not listed) has the same shape of first layer."
                           if not isinstance(cfg, zoo.ZooConfig) else ""))
    st.plotly_chart(figures.layer_cost_figure(rows), config=PLOTLY_CONFIG, key="arch_costs")
    show_code(multiscale.scale_sizes, geometry.scale_geometry, geometry.layer_table)


render()
