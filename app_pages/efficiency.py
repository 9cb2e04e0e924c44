"""Efficiency: dense evaluation against crop by crop, counted and timed on this image."""

import streamlit as st

from overfeat import bench
from overfeat.app import figures
from overfeat.app import state as appstate
from overfeat.geometry import crop_macs, dense_macs, human_count, readable_cost_rows
from app_pages.common import chart, context, show_code, table

ctx = context()
TIMED_CROPS = 48  # crops actually run when timing (the rest is extrapolated, as bench --quick)


@st.cache_data(max_entries=32, show_spinner=False)
def cost_rows(model_key: str, _cfg, hw: tuple[int, int], scales: tuple[int, ...], rule: str,
              fine: bool) -> list[dict]:
    """The counted costs (0.7 s of shape arithmetic on a meta model), once per model, image
    size and scale set for the whole server: a page revisit recomputes nothing."""
    return appstate.cost_rows(_cfg, hw, scales, rule, fine)


def render() -> None:
    st.title("Efficiency")
    st.markdown("Section 3.5 of the paper: because the fully-connected layers are "
                "convolutions, the trunk runs **once** over the whole image at each scale and "
                "windows share its work. Crop by crop, every window runs the whole network on "
                "its own 221x221 (here: one window) crop.")
    kn = ctx.knobs
    hw = (ctx.image.size[1], ctx.image.size[0])
    rows = cost_rows(ctx.model_key, ctx.model.cfg, hw, tuple(kn.scales), kn.rule, kn.fine)
    views = 2 if kn.flips else 1
    windows = sum(r["windows"] for r in rows) * views
    dense = sum(r["dense multiply-adds"] for r in rows) * views
    crop = sum(r["crop multiply-adds"] for r in rows) * views
    m = st.columns(4)
    m[0].metric("windows", f"{windows:,}")
    m[1].metric("dense multiply-adds", human_count(dense), help=f"{dense:,}")
    m[2].metric("crop-by-crop multiply-adds", human_count(crop), help=f"{crop:,}")
    m[3].metric("crop / dense", f"{crop / dense:.1f}x")
    st.caption(f"The sidebar's {len(rows)} scale(s)" + (" x 2 for flips" if kn.flips else "")
               + f", {'fine stride (offsets)' if kn.fine else 'coarse stride'}. Crop by crop "
               "counts the trunk and classifier once per window; dense counts the trunk once "
               "per scale and the classifier once per output cell.")
    table(readable_cost_rows(rows))
    st.caption("K = thousand, M = million, G = billion; the exact counts show when you point at "
               "a bar below.")
    chart("eff_fig", figures.efficiency_figure, rows)

    st.subheader("Measured")
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
        t = st.columns(4)
        t[0].metric("dense (one view)", f"{1000 * r['dense_s']:.0f} ms")
        t[1].metric("crop by crop", f"{1000 * r['crop_s']:.0f} ms")
        t[2].metric("measured speedup", f"{r['speedup']:.1f}x")
        t[3].metric("multiply-add ratio", f"{r['mac_ratio']:.1f}x")
        st.caption(f"{r['windows']} windows at scale {got[2] + 1}; "
                   + (f"{r['timed_crops']} crops timed, the time scaled up to all windows"
                      if r["sampled"] else "all crops timed")
                   + f". Measured speedup / ideal = {r['fraction_of_ideal']:.2f} (on a shared "
                   "CPU the numbers move from run to run).")
    show_code(appstate.cost_rows, dense_macs, crop_macs, bench.dense_vs_crop)


render()
