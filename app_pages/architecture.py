"""Architecture: the chosen model's layers, map sizes at the six scales, receptive fields, costs."""

import streamlit as st

from overfeat import geometry, multiscale
from overfeat.models import registry as zoo
from overfeat.app import figures
from overfeat.app import state as appstate
from app_pages.common import chart, context, show_code, table

ctx = context()
REG = " (regressor)"  # how geometry.layer_table(head="both") names the regressor's rows


@st.cache_data(max_entries=32, show_spinner=False)
def tables(cfg, image_hw: tuple[int, int], rule: str) -> tuple[list, list, list]:
    """The page's three tables (built on meta tensors, ~0.25 s): cached per model geometry,
    image size and scale rule, so a page switch recomputes nothing."""
    return (appstate.scale_rows(cfg, image_hw, rule), appstate.layer_sizes_by_scale(cfg, image_hw, rule),
            appstate.layer_rows(cfg))


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
    table(tables(cfg, (H, W), ctx.knobs.rule)[0])
    st.caption(f"Sizes are height x width. Scale rule '{ctx.knobs.rule}' (a project choice: "
               f"the paper gives six sizes but not how to fit other aspect ratios; see the "
               f"sidebar). 'windows' = cells of the fine map = {meta.window}x{meta.window} "
               f"windows evaluated at that scale. An offset's pooled map can be a row or column "
               f"shorter than offset (0,0)'s.")

    st.subheader("Every layer's output size at each scale")
    by_scale = tables(cfg, (H, W), ctx.knobs.rule)[1]
    table(by_scale)

    st.subheader("Layers at one window")
    rows = tables(cfg, (H, W), ctx.knobs.rule)[2]
    table(rows, thousands=("parameters", "multiply-adds"))
    # The table lists every parameter of the network (the regressor's layers too), so its
    # total is the header's number, written the same way.
    total_p = sum(r["parameters"] for r in rows)
    total_m = sum(r["multiply-adds"] for r in rows)
    reg = [r for r in rows if r["layer"].endswith(REG)]
    cls_out = [r for r in rows if not r["layer"].endswith(REG)][-1]
    window = meta.window
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("parameters (whole network)", geometry.human_count(total_p, decimals=1),
              help=f"{total_p:,} = the table's total"
                   + (f", of which the box regressor {sum(r['parameters'] for r in reg):,}"
                      if reg else " (this net has no box regressor)"))
    c2.metric("multiply-adds per window", f"{total_m / 1e9:.3f}G",
              help="Every layer of the table once" + (", both heads" if reg else ""))
    c3.metric("window (network input)", f"{window} px")
    c4.metric("receptive field of the output", f"{cls_out['receptive field']} px")
    st.caption(f"Receptive field: input pixels one output cell could see; jump: input pixels "
               f"between neighbouring cells (the cumulative stride). The receptive field is "
               f"larger than the {window} px window because the padded layers look past the "
               f"window's border: on a {window}x{window} crop they see zeros there, in dense "
               f"evaluation the neighbouring image - why dense and crop-by-crop evaluation "
               f"differ near borders unless the padding is removed. The last pool is listed "
               f"once (coarse stride); offset pooling runs the classifier on all k*k pooled "
               f"maps." + (f" The rows marked '{REG.strip()}' are the box regressor's head: "
                           "it reads the same last pooled map as the classifier." if reg
                           else ""))
    chart("arch_costs", figures.layer_cost_figure, rows, depends=(cfg,))
    show_code(multiscale.scale_sizes, geometry.scale_geometry, geometry.layer_table)


render()
