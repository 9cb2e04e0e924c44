"""Architecture: inside the network for this image (every layer's most active channels, one
layer's channels larger, an output cell traced back to its input window), then the chosen
model's layers, map sizes at the six scales, receptive fields, costs. A pyramid net (the
model's `pyramid`): its backbone, neck and per-level heads, each level's map at every scale."""

import streamlit as st
import torch

from overfeat import activations, geometry, multiscale
from overfeat.models import registry as zoo
from overfeat.app import figures
from overfeat.app import state as appstate
from app_pages.common import (chart, clamp_state, colour_control, compact, context, explain,
                              folded, from_link, is_phone, notice, row, settings_box, show_code,
                              table, term)

ctx = context()
REG = " (regressor)"  # how geometry.layer_table(head="both") names the regressor's rows
# The layer strip's drawing width (px) and font (px a character of its headers) where the page
# is not a desktop's (issue 27; the app cannot read the screen's width, so these are chosen):
# presenter mode's main column at 1280x720 (1,070 px: the strip fills it; at 1920x1080 it is
# drawn the same size, centred) with its 1.15x header font; a phone's 370 px, 3 layers a row.
PRESENTER_STRIP = dict(width=1060, char_px=9.5)
PHONE_STRIP = dict(width=370, per_row=3)
PHONE_CHANNELS = dict(n=12, cols=3, width=370)


# --- inside the network -----------------------------------------------------------------------
# One forward pass per (model, image, scale, scale rule), reduced to thumbnails (a few hundred KB
# to a few MB): shared by every session (never mutated), like the analyses in common.py.
@st.cache_resource(max_entries=16, show_spinner="Running the network once on one scale...")
def layer_activations(model_key: str, image_key: str, scale: int, rule: str, _model,
                      _image) -> activations.Activations:
    return activations.compute(_model, _image, scale, rule)


def _pick_layer() -> None:
    """on_select callback of the layer strip: a clicked column becomes the chosen layer."""
    ev = st.session_state.get("arch_strip")
    for p in (ev or {}).get("selection", {}).get("points", []):
        cd = p.get("customdata")
        if cd is not None and len(cd) == 1:
            st.session_state["arch_layer"] = int(cd[0])
            return


def _pick_cell() -> None:
    """on_select callback of the output maps: a clicked cell ([layer, row, col]) is traced."""
    ev = st.session_state.get("arch_out_click")
    for p in (ev or {}).get("selection", {}).get("points", []):
        cd = p.get("customdata")
        if cd is not None and len(cd) == 3:
            st.session_state["arch_out"] = int(cd[0])
            st.session_state["arch_row"], st.session_state["arch_col"] = int(cd[1]), int(cd[2])
            return


def _reset_for(owner, acts: activations.Activations) -> None:
    """A new image, model or scale starts at the first layer and the most confident cell."""
    if st.session_state.get("_arch_for") == owner:
        return
    st.session_state["_arch_for"] = owner
    linked = {k for k in ("arch_layer", "arch_out", "arch_row", "arch_col") if from_link(k)}
    if "arch_layer" not in linked:  # a shared link's layer and cell are this view's (once)
        st.session_state["arch_layer"] = 0
    if not linked & {"arch_out", "arch_row", "arch_col"}:
        st.session_state["arch_out"], st.session_state["arch_row"], \
            st.session_state["arch_col"] = activations.best_cell(acts)


# The traced cell (the class maps and the window on the image) sits in an expander drawn only
# while it is open (its state is in a link: atrace=1). Open on every visit, its two figures were
# about a fifth of the browser's work of a page switch, below the fold (Chromium CPU of a
# switch 0.58-0.63 s with them, 0.52-0.57 s without, at the median; docs/BENCHMARKS.md, issue
# 27); the Scales page draws a clicked cell's window at every scale too.
TRACE_OPEN = "arch_trace_open"


def inside() -> None:
    """The layers of the model the pages run, for this image: a strip of every layer with its
    most active channels, one layer's channels larger, an output cell traced to its window."""
    model = ctx.model
    small = compact()  # presenter mode or a phone: the strip comes right after the title
    if not small:
        st.header("Inside the network, for this image")
    n = len(model.scales)
    default = activations.default_scale(model)
    if st.session_state.get("arch_scale") not in range(n) or (
            st.session_state.get("_arch_model") != ctx.model_key and not from_link("arch_scale")):
        st.session_state["arch_scale"] = default
    st.session_state["_arch_model"] = ctx.model_key
    # compact: the scale and what it means in a closed box above the strip (the strip's
    # headers give the sizes it chose)
    with settings_box("Scale the network runs on"):
        if ctx.arch_note:
            st.caption(f"Below: {ctx.model_desc}, the model the other pages run (the tables "
                       "further down describe the model chosen for this page).")
        c1, c2 = (st.container(), st.container()) if small else st.columns([1, 3])
        s = int(c1.selectbox("Scale", list(range(n)), key="arch_scale",
                             format_func=lambda v: f"scale {v + 1}" + (" (middle)"
                                                                       if v == default else ""),
                             help="The view runs the network once, on this scale of the "
                                  "image."))
        acts = layer_activations(ctx.model_key, ctx.image_key, s, ctx.knobs.rule, model,
                                 ctx.image)
        h, w = acts.size
        offs = (f"no offsets (each layer at its own stride; the Offsets page shows the "
                f"{model.k}x{model.k} offsets)" if model.k > 1 else
                "its output maps at their own strides (this net has no offsets)")
        c2.caption(f"One forward pass of the plain network on scale {s + 1} of {n} (by default "
                   f"the middle one: big enough maps, one pass cheap): the image resized to "
                   f"{h}x{w} px, not flipped, {offs}; computed in {1000 * acts.seconds:.0f} ms.")
    _reset_for((ctx.image_key, ctx.model_key, s), acts)
    L = len(acts.layers)
    clamp_state("arch_layer", 0, L - 1, 0)
    layer = int(st.session_state["arch_layer"])
    phone = is_phone()
    look = PHONE_STRIP if phone else PRESENTER_STRIP if small else {}
    chart("arch_strip", figures.layer_strip_figure, acts, pick=layer, depends=(s, layer),
          plot_kw=dict(on_select=_pick_layer, selection_mode="points"), **look)
    notice(strip_notice(acts))
    st.caption(f"A column per layer: its name, output (channels x height x width), receptive "
               f"field and stride (input pixels one cell sees, and between two cells); its "
               f"{activations.STRIP_CHANNELS} most active channels for this image (by mean "
               f"activation; the class scores by their spatial maximum, the object classes only), "
               f"each drawn from its own minimum (dark) to its maximum (bright): activations "
               f"have no common scale, so no colour bar. Click a column (or choose it below) to "
               f"see its channels larger. **Receptive field**: {term('receptive field')} "
               f"**Stride**: {term('stride')}")
    layer = int(st.selectbox("Layer", list(range(L)), key="arch_layer",
                             format_func=lambda i: f"{i + 1}. {acts.layers[i].name}"))
    lv = acts.layers[layer]
    c, hh, ww = lv.shape
    what = "classes" if lv.kind == "classes" else "channels"
    st.markdown(
        f"**{lv.name}**: {c} {what} of {hh}x{ww} cells, one every {lv.stride} px of the input; "
        f"each cell sees at most {lv.receptive_field}x{lv.receptive_field} px (its receptive "
        f"field). Values from {lv.minimum:.3g} to {lv.maximum:.3g}, mean {lv.mean:.3g}, "
        f"{100 * lv.active:.0f}% above 0.")
    chart("arch_channels", figures.channel_grid_figure, lv, depends=(s, layer),
          **(PHONE_CHANNELS if phone else {}))
    st.caption(f"Its {len(lv.channels)} {what} with the highest {lv.ranked_by}, best first; "
               "each drawn from its own minimum to its maximum (hover for the values).")
    folded("Which part of the image does an output cell see? Click a cell of the class map to "
           "draw its window on the image", TRACE_OPEN, trace_section, acts, s,
           icon=":material/ads_click:")


def strip_notice(acts: activations.Activations) -> list[str]:
    """Bullets with this image's numbers: the maps shrinking, the receptive field growing,
    the output's best cell."""
    first, outs = acts.layers[0], [acts.layers[i] for i in acts.outputs]
    last = outs[0]
    h, w = acts.size
    i, r, c = activations.best_cell(acts)
    best = acts.layers[i]
    return [
        f"The {h}x{w} input shrinks layer by layer: {first.shape[1]}x{first.shape[2]} cells "
        f"after {first.name}, {last.shape[1]}x{last.shape[2]} at the output "
        f"({last.stride} px apart: the stride).",
        f"What one cell sees grows: a receptive field of {first.receptive_field} px at "
        f"{first.name}, {max(o.receptive_field for o in outs)} px at the output, where a cell "
        "is one window's answer.",
        f"The best cell for {acts.class_name} at this scale is ({r},{c}) of the stride-"
        f"{best.stride} output, p {figures.prob_is(float(best.probs[r, c]))}: open \"Which part of "
        "the image does an output cell see?\" below to draw its window on the image."]


def trace_section(acts: activations.Activations, s: int) -> None:
    """The class output maps, clickable, and the picked cell's input window on the image."""
    outs = acts.outputs
    st.markdown(f"The class score map{'s' if len(outs) > 1 else ''} of **{acts.class_name}** "
                "(this scale's top class): click a cell to draw its window on the image.")
    if st.session_state.get("arch_out") not in outs:
        st.session_state["arch_out"] = outs[0]
    cols = st.columns(3 if len(outs) > 1 else 2)
    if len(outs) > 1:
        out = int(cols[0].selectbox("Output map", outs, key="arch_out",
                                    format_func=lambda i: f"stride {acts.layers[i].stride}"))
    else:
        out = outs[0]
    lv = acts.layers[out]
    hh, ww = lv.shape[1:]
    clamp_state("arch_row", 0, hh - 1, 0)
    clamp_state("arch_col", 0, ww - 1, 0)
    r = int(cols[-2].number_input(f"Row (0-{hh - 1})", 0, hh - 1, step=1, key="arch_row"))
    c = int(cols[-1].number_input(f"Column (0-{ww - 1})", 0, ww - 1, step=1, key="arch_col"))
    # the same control (and session key) as on the Scales and Offsets pages
    stretch = colour_control()
    chart("arch_out_click", figures.output_maps_figure, acts, pick=(out, r, c), stretch=stretch,
          depends=(s, out, r, c), plot_kw=dict(on_select=_pick_cell, selection_mode="points"),
          phone=is_phone())
    t = activations.trace_cell(acts, out, r, c)
    left, right = st.columns([3, 2])
    name = "nominal window" if t.nominal else "window"
    with left:
        chart("arch_trace", figures.window_figure, ctx.backdrop(), torch.tensor(t.original), None,
              f"stride {t.stride}, cell ({r},{c}): p({acts.class_name}) "
              f"{figures.prob_is(t.prob)}",
              window_name=f"{name} ({t.side}x{t.side} px at this scale)",
              phone=is_phone(), depends=(s, out, r, c))
    x1, y1, x2, y2 = t.window
    ox1, oy1, ox2, oy2 = t.original
    with right:
        if t.nominal:
            where = (f"the {t.side}x{t.side} px square centred on the cell's centre "
                     f"({(c + 0.5) * t.stride:.0f}, {(r + 0.5) * t.stride:.0f})")
        else:
            where = (f"the {t.side}x{t.side} px window whose top-left corner is ({t.stride}x{c}, "
                     f"{t.stride}x{r}) = ({x1:.0f}, {y1:.0f}) (offsets.cell_window)")
        st.markdown(
            f"- cell ({r},{c}) of the stride-{t.stride} map ({hh}x{ww} cells)\n"
            f"- its {name}: {where}, in the {acts.size[0]}x{acts.size[1]} input\n"
            f"- in the original image: ({ox1:.0f}, {oy1:.0f}, {ox2:.0f}, {oy2:.0f})\n"
            f"- p({acts.class_name}) {figures.prob_is(t.prob)}\n"
            f"- receptive field: {t.receptive_field} px")
    st.caption(("The window is nominal (a project choice, for provenance: 5 strides wide); the "
                "cell sees its whole receptive field and predicts a box around its centre."
                if t.nominal else
                f"The receptive field ({t.receptive_field} px) is larger than the window "
                f"({t.side} px) when the layers are zero-padded: the cell also sees past its "
                "window's border.") + " Windows are drawn in the original image's pixels.")


@st.cache_data(max_entries=32, show_spinner=False)
def size_rows(cfg, image_hw: tuple[int, int], rule: str) -> tuple[list, list]:
    """The tables of map sizes at the six scales (built on meta tensors, ~0.1 to 0.25 s): cached
    per model geometry, image size and scale rule, so a page switch recomputes nothing; asked
    for only while the tables' expander is open (a new photo's size is a new key)."""
    scale_rows = (geometry.pyramid_scale_rows if geometry.is_pyramid(geometry.meta_model(cfg))
                  else appstate.scale_rows)
    return scale_rows(cfg, image_hw, rule), appstate.layer_sizes_by_scale(cfg, image_hw, rule)


@st.cache_data(max_entries=32, show_spinner=False)
def layer_rows(cfg) -> list:
    """The layer table at one window (the metrics sum it): the same for every image."""
    return appstate.layer_rows(cfg)


def _join(v) -> str:
    v = [str(x) for x in v]
    return v[0] if len(v) == 1 else ", ".join(v[:-1]) + " and " + v[-1]


def render() -> None:
    cfg = ctx.arch_cfg
    meta = geometry.meta_model(cfg)
    pyramid = geometry.is_pyramid(meta)
    st.title("Architecture")
    with explain():
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
    inside()
    sizes_and_costs(cfg, meta, pyramid)
    show_code(activations.compute, activations.trace_cell, multiscale.scale_sizes,
              geometry.scale_geometry, geometry.layer_table,
              *((geometry._pyramid_rows,) if pyramid else ()))


SIZES_OPEN = "arch_sizes_open"  # the tables' expander (its state is in a link: asizes=1)


def sizes_and_costs(cfg, meta, pyramid: bool) -> None:
    """The chosen model's numbers (parameters, multiply-adds, window, receptive field), then its
    three tables and the cost chart in an expander drawn only while it is open: below the fold,
    they were a Plotly chart, three tables and ~30 elements on every visit to the page, about
    0.15 s of a page switch (tests/browser_latency.py --pages Architecture, issue 27)."""
    H, W = ctx.image.size[1], ctx.image.size[0]
    rows = layer_rows(cfg)
    sides = geometry.window_sides(meta)
    window = max(sides)
    strides = list(meta.strides) if pyramid else []
    st.header("The layers' sizes and costs")
    metrics_row(cfg, rows, pyramid, window, sides, strides)
    folded("Tables: map sizes at the six scales for this image, each layer's output size, "
           "parameters and multiply-adds, with a chart", SIZES_OPEN,
           size_tables, cfg, meta, rows, pyramid, (H, W), window, sides, strides)


def metrics_row(cfg, rows, pyramid: bool, window: int, sides, strides) -> None:
    """The whole network's parameters and multiply-adds, its window and receptive field."""
    total_p = sum(r["parameters"] for r in rows)
    total_m = sum(r["multiply-adds"] for r in rows)
    reg = [r for r in rows if r["layer"].endswith(REG)]
    fields = geometry.output_fields(cfg)
    c1, c2, c3, c4 = row([1, 1, 1, 1], align="top")  # on a phone: one wrapping line
    c1.metric("parameters (whole network)", geometry.human_count(total_p, decimals=1),
              help=f"{total_p:,} = the layer table's total"
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


def size_tables(cfg, meta, rows, pyramid: bool, hw: tuple[int, int], window: int, sides,
                strides) -> None:
    """Map sizes at the six scales, every layer's output size at each, the layer table at one
    window and the chart of its costs."""
    H, W = hw
    per_scale, by_scale = size_rows(cfg, (H, W), ctx.knobs.rule)
    st.subheader(f"Map sizes at the six scales for this image ({H}x{W})")
    table(per_scale)
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
    table(by_scale)

    st.subheader(f"Layers at one {window}x{window} input (one stride-{strides[-1]} window)"
                 if pyramid else "Layers at one window")
    table(rows, thousands=("parameters", "multiply-adds"))
    reg = [r for r in rows if r["layer"].endswith(REG)]
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


render()
