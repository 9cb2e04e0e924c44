"""Efficiency: dense evaluation against crop by crop, counted and timed on this image. Window
sizes, strides and the windows counted are the model's own (a pyramid net: every level's)."""

import streamlit as st

from overfeat import bench, geometry
from overfeat.app import figures
from overfeat.geometry import crop_macs, dense_macs, human_count, readable_cost_rows
from app_pages.common import (chart, compact, context, intro, is_phone, notice, row, show_code,
                              table)

ctx = context()
TIMED_CROPS = 48  # crops actually run when timing (the rest is extrapolated, as bench --quick)


@st.cache_data(max_entries=32, show_spinner=False)
def cost_rows(model_key: str, _cfg, hw: tuple[int, int], scales: tuple[int, ...], rule: str,
              fine: bool) -> list[dict]:
    """The counted costs (0.7 s of shape arithmetic on a meta model), once per model, image
    size and scale set for the whole server: a page revisit recomputes nothing."""
    return geometry.cost_rows(_cfg, hw, scales, rule, fine)


def _join(v) -> str:
    v = [str(x) for x in v]
    return v[0] if len(v) == 1 else ", ".join(v[:-1]) + " and " + v[-1]


def render() -> None:
    st.title("Efficiency")
    m = ctx.model
    pyramid = geometry.is_pyramid(m)
    sides = geometry.window_sides(m)
    strides = list(getattr(m, "strides", ())) if pyramid else []
    kn = ctx.knobs
    if pyramid:
        intro("Section 3.5 of the paper: because every layer is a convolution, the net "
                    "runs **once** over the whole image at each scale and windows share its "
                    f"work. This net's windows: {_join(sides)} px at strides {_join(strides)} "
                    f"px (one per cell of each of its {len(strides)} maps, {sides[0] // strides[0]}"
                    " strides wide). Crop by crop, every window runs the whole network on its "
                    "own crop of its window's size.")
    else:
        intro("Section 3.5 of the paper: because the fully-connected layers are "
                    "convolutions, the trunk runs **once** over the whole image at each scale "
                    "and windows share its work. Crop by crop, every window runs the whole "
                    f"network on its own {sides[0]}x{sides[0]} crop (this model's window), "
                    f"{m.prepool_stride if kn.fine else m.stride} px apart.")
    hw = (ctx.image.size[1], ctx.image.size[0])
    rows = cost_rows(ctx.model_key, ctx.model.cfg, hw, tuple(kn.scales), kn.rule, kn.fine)
    views = 2 if kn.flips else 1
    windows = sum(r["windows"] for r in rows) * views
    dense = sum(r["dense multiply-adds"] for r in rows) * views
    crop = sum(r["crop multiply-adds"] for r in rows) * views
    # Presenter mode and a phone (issue 27): the chart first (a container placed here, drawn
    # below), then the counts; on a phone the four metrics share a wrapping line (common.row).
    picture = st.container() if compact() else None
    mcols = row([1, 1, 1, 1])
    mcols[0].metric("windows", f"{windows:,}")
    mcols[1].metric("dense multiply-adds", human_count(dense), help=f"{dense:,}")
    mcols[2].metric("crop-by-crop multiply-adds", human_count(crop), help=f"{crop:,}")
    mcols[3].metric("crop / dense", f"{crop / dense:.1f}x")
    if pyramid:
        how = (f"each view's windows are the cells of its {len(strides)} maps (the table gives "
               f"them per stride). Crop by crop counts the whole net once per window on a crop "
               f"of its window's size ({_join(sides)} px); dense counts the whole net once per "
               "view.")
    else:
        how = (f"{'fine stride (offsets)' if kn.fine else 'coarse stride'}. Crop by crop counts "
               "the trunk and classifier once per window; dense counts the trunk once per scale "
               "and the classifier once per output cell.")
    st.caption(f"The sidebar's {len(rows)} scale(s)" + (" x 2 for flips" if kn.flips else "")
               + f" = {len(rows) * views} view(s); " + how)
    with picture or st.container():
        chart("eff_fig", figures.efficiency_figure, rows, phone=is_phone())
    lo, hi = (min(rows, key=lambda r: r["crop / dense"]), max(rows, key=lambda r: r["crop / dense"]))
    notice([f"Crop by crop runs the network {windows:,} times (once per window); dense runs it "
            f"once per view ({len(rows) * views}): {crop / dense:.1f}x fewer multiply-adds.",
            f"The more windows overlap, the more they share: crop / dense is "
            f"{hi['crop / dense']:.1f}x at scale {hi['scale']} ({hi['windows']:,} windows) and "
            f"{lo['crop / dense']:.1f}x at scale {lo['scale']} ({lo['windows']:,})."])
    table(readable_cost_rows(rows))
    st.caption("One row per scale for one view (a flipped view costs the same). K = thousand, "
               "M = million, G = billion (windows are counted exactly); the exact counts show "
               "when you point at a bar above or at a metric.")

    st.subheader("Measured")
    if pyramid:
        # bench.dense_vs_crop cuts crops off one output map per scale; a pyramid's windows of
        # three sizes at three strides are not timed yet: the counts above are exact.
        st.caption("Timing is not available for a net with several output maps per scale (the "
                   "timer crops the windows of one map); the counts above are exact.")
        show_code(geometry.cost_rows, dense_macs, crop_macs)
        return
    scale = st.selectbox("Scale to time", kn.scales, key="eff_scale",
                         format_func=lambda s: f"scale {s + 1}")
    if st.button("Time dense vs crop by crop", key="eff_run"):
        with st.spinner("Timing..."):
            st.session_state["eff_result"] = (
                ctx.model_key, hw, int(scale),
                bench.dense_vs_crop(ctx.model, hw, (int(scale),), max_crops=TIMED_CROPS))
    got = st.session_state.get("eff_result")
    if got is not None and got[:3] == (ctx.model_key, hw, int(scale)):
        r = got[3]
        t = row([1, 1, 1, 1])
        t[0].metric("dense (one view)", f"{1000 * r['dense_s']:.0f} ms")
        t[1].metric("crop by crop", f"{1000 * r['crop_s']:.0f} ms")
        t[2].metric("measured speedup", f"{r['speedup']:.1f}x")
        t[3].metric("multiply-add ratio", f"{r['mac_ratio']:.1f}x")
        st.caption(f"{r['windows']} windows at scale {got[2] + 1}; "
                   + (f"{r['timed_crops']} crops timed, the time scaled up to all windows"
                      if r["sampled"] else "all crops timed")
                   + f". Measured speedup / ideal = {r['fraction_of_ideal']:.2f} (on a shared "
                   "CPU the numbers move from run to run).")
    show_code(geometry.cost_rows, dense_macs, crop_macs, bench.dense_vs_crop)


render()
