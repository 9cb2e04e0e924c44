"""Architecture: the chosen model's layers, map sizes at the six scales, receptive fields, costs.
A pyramid net (the model's `pyramid`): its backbone, neck and per-level heads, each level's map
at every scale."""

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
    scale_rows = (geometry.pyramid_scale_rows if geometry.is_pyramid(geometry.meta_model(cfg))
                  else appstate.scale_rows)
    return (scale_rows(cfg, image_hw, rule), appstate.layer_sizes_by_scale(cfg, image_hw, rule),
            appstate.layer_rows(cfg))


def _join(v) -> str:
    v = [str(x) for x in v]
    return v[0] if len(v) == 1 else ", ".join(v[:-1]) + " and " + v[-1]


def render() -> None:
    cfg = ctx.arch_cfg
    meta = geometry.meta_model(cfg)
    pyramid = geometry.is_pyramid(meta)
    st.title("Architecture")
    if pyramid:
        strides = list(meta.strides)
        st.markdown(f"**{appstate.describe(cfg)}**. A backbone, a neck that mixes "
                    f"{len(strides)} of its maps top-down and bottom-up, and one head per "
                    f"level (strides {_join(strides)} px). Every layer is a convolution (no "
                    "fully-connected layer), so the same network slides over an image of any "
                    f"size (sides multiples of {getattr(meta, 'size_step', strides[-1])} px here).")
    else:
        st.markdown(f"**{appstate.describe(cfg)}**. Fully-connected layers are convolutions "
                    f"(the first a {meta.fc_kernel}x{meta.fc_kernel} kernel over the last pooled "
                    f"map), so the same network slides over an image of any size.")
    card = zoo.CARDS[cfg.name] if isinstance(cfg, zoo.ZooConfig) else None
    if card is not None and card.differs:
        st.info(card.differs)
    H, W = ctx.image.size[1], ctx.image.size[0]

    st.subheader(f"Map sizes at the six scales for this image ({H}x{W})")
    table(tables(cfg, (H, W), ctx.knobs.rule)[0])
    sides = geometry.window_sides(meta)
    if pyramid:
        st.caption(f"Sizes are height x width. Scale rule '{ctx.knobs.rule}' (a project "
                   f"choice; see the sidebar); sides are multiples of "
                   f"{getattr(meta, 'size_step', strides[-1])} px. No offset pooling: each "
                   f"scale gives {len(strides)} maps, one per stride, and every cell of each is a "
                   f"window ({_join(sides)} px, {sides[0] // strides[0]} strides, centred on the cell; in the original "
                   "image's pixels in the table), so 'windows' sums the cells of all "
                   f"{len(strides)} maps.")
    else:
        st.caption(f"Sizes are height x width. Scale rule '{ctx.knobs.rule}' (a project choice: "
                   f"the paper gives six sizes but not how to fit other aspect ratios; see the "
                   f"sidebar). 'windows' = cells of the fine map = {meta.window}x{meta.window} "
                   f"windows evaluated at that scale. An offset's pooled map can be a row or "
                   f"column shorter than offset (0,0)'s.")

    st.subheader("Every layer's output size at each scale")
    by_scale = tables(cfg, (H, W), ctx.knobs.rule)[1]
    table(by_scale)

    rows = tables(cfg, (H, W), ctx.knobs.rule)[2]
    window = max(sides)
    st.subheader(f"Layers at one {window}x{window} input (one stride-{strides[-1]} window)"
                 if pyramid else "Layers at one window")
    table(rows, thousands=("parameters", "multiply-adds"))
    # The table lists every parameter of the network (the regressor's layers too), so its
    # total is the header's number, written the same way.
    total_p = sum(r["parameters"] for r in rows)
    total_m = sum(r["multiply-adds"] for r in rows)
    reg = [r for r in rows if r["layer"].endswith(REG)]
    fields = geometry.output_fields(cfg)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("parameters (whole network)", geometry.human_count(total_p, decimals=1),
              help=f"{total_p:,} = the table's total"
                   + (f", of which the box regressor {sum(r['parameters'] for r in reg):,}"
                      if reg else " (this net has no box regressor)"))
    if pyramid:
        c2.metric(f"multiply-adds per {window}x{window} input", geometry.human_count(total_m),
                  help=f"{total_m:,}: every layer of the table once, all levels and both "
                       "outputs")
        c3.metric("windows (nominal)", " / ".join(str(v) for v in sides) + " px",
                  help=f"one per level, strides {_join(strides)} px: {sides[0] // strides[0]} strides wide")
        c4.metric("receptive field of the outputs",
                  f"{min(rf for _, rf in fields)}-{max(rf for _, rf in fields)} px",
                  help="of the class scores: " + ", ".join(f"{rf} px at stride {s}"
                                                           for s, rf in fields))
    else:
        c2.metric("multiply-adds per window", geometry.human_count(total_m),
                  help=f"{total_m:,}: every layer of the table once"
                       + (", both heads" if reg else ""))
        c3.metric("window (network input)", f"{window} px")
        c4.metric("receptive field of the output", f"{fields[0][1]} px")
    if pyramid:
        st.caption("Receptive field: input pixels one output cell could see; jump: input "
                   "pixels between neighbouring cells (the cumulative stride). A stage (block) "
                   "counts as one row; its receptive field grows along its chain of 3x3 "
                   "convolutions. The neck's resize rows have no parameters: 'P3 += up(P4)' "
                   "adds the stride-16 map, resized bilinearly, to the stride-8 one, so a fine "
                   "cell also sees what the coarse map saw (the larger receptive field of the "
                   "two). Each head's 1x1 output is one convolution in the net, listed as two "
                   f"rows: its class scores and, marked '{REG.strip()}', its box values (4 sides "
                   "x 11 bins). The receptive fields are far larger than the nominal windows: a "
                   "cell sees well past its window, and zero padding past the image border.")
    else:
        st.caption(f"Receptive field: input pixels one output cell could see; jump: input "
                   f"pixels between neighbouring cells (the cumulative stride). The receptive "
                   f"field is larger than the {window} px window because the padded layers look "
                   f"past the window's border: on a {window}x{window} crop they see zeros there, "
                   f"in dense evaluation the neighbouring image - why dense and crop-by-crop "
                   f"evaluation differ near borders unless the padding is removed. The last pool "
                   f"is listed once (coarse stride); offset pooling runs the classifier on all "
                   f"k*k pooled maps." + (f" The rows marked '{REG.strip()}' are the box "
                                          "regressor's head: it reads the same last pooled map "
                                          "as the classifier." if reg else ""))
    chart("arch_costs", figures.layer_cost_figure, rows,
          at=f"one {window}x{window} input" if pyramid else "one window", depends=(cfg,))
    show_code(multiscale.scale_sizes, geometry.scale_geometry, geometry.layer_table,
              *((geometry._pyramid_rows,) if pyramid else ()))


render()
