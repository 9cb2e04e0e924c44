"""Regressor: every raw box, filterable by scale, offset and class; a picked box with its window.
A pyramid net (no offsets, one map per stride): filtered by stride instead, its boxes' stride in
their provenance; the regressor's text follows the model's box (per class, shared, or one
class-agnostic box per cell as distances from the cell's centre)."""

import streamlit as st

from overfeat import boxes, geometry, multiscale
from overfeat.app import export, figures
from overfeat.app import state as appstate
from app_pages.common import (chart, compact, context, explain, is_phone, notice, require_boxes,
                              row, settings_box, show_code, starts_again, table, term, terms)

ctx = context()
REG_ROWS = 25  # rows of the table of the most confident boxes
require_boxes(ctx, "Regressor")


def filters(a):
    """(scales, offset indices or None, levels or None, classes, show all) chosen on the page.
    Offsets only where the model pools at offsets (k > 1, fine stride on); a pyramid's strides
    instead (kept in "reg_levels" for the session; not part of a link)."""
    k = a.k
    scales = list(a.settings.scales)
    classes = sorted({c for cs in a.top_classes.values() for c in cs})
    offs = list(range(k * k)) if a.settings.fine and k > 1 else [-1]
    strides = export.level_strides(a)
    levels = sorted(strides)
    # The class filter belongs to the image and model it was chosen on (the classes are the
    # image's): a new one starts from all its classes, as the other pages' class pickers start
    # from their first class. Kept across images, the filter became the old image's classes
    # that the new one shares (often one, or none: then all), and a student saw boxes missing.
    # Where the filter was all of the classes, it stays all of them when top-k changes the set.
    chosen = set(st.session_state.get("reg_classes", ()))
    all_of_them = chosen == st.session_state.get("_reg_classes_of")
    if starts_again("_reg_classes_for", (ctx.image_key, ctx.model_key), "reg_classes",
                    stale=all_of_them):
        st.session_state["reg_classes"] = classes
    st.session_state["_reg_classes_of"] = set(classes)
    for key, opts in (("reg_scales", scales), ("reg_offsets", offs), ("reg_classes", classes)):
        kept = [v for v in st.session_state.get(key, opts) if v in opts]
        st.session_state[key] = kept if kept else opts
    # One row each: pills do not wrap inside a narrow column (nine offsets would be cut off).
    s = st.pills("Scales", scales, selection_mode="multi", key="reg_scales",
                 format_func=lambda s: f"scale {s + 1}", help=term("scale"))
    o = lv = None
    if len(offs) > 1:
        o = st.pills("Offsets (dx,dy)", offs, selection_mode="multi", key="reg_offsets",
                     format_func=lambda i: appstate.offset_label(i, k), help=term("offset"))
    if len(levels) > 1:
        cur = st.session_state.get("reg_levels", st.session_state.get("_reg_levels", levels))
        st.session_state["reg_levels"] = [v for v in cur if v in levels] or levels
        lv = st.pills("Strides", levels, selection_mode="multi", key="reg_levels",
                      format_func=lambda v: f"stride {strides[v]}",
                      help="The output map (pyramid level) a box was regressed from.")
        st.session_state["_reg_levels"] = lv
    if len(offs) == 1:
        st.caption("No offset filter: " + ("this model has no offset pooling (k = 1); its "
                                           "finer maps are the strides above." if k <= 1 else
                                           "offsets are off in the sidebar."))
    c = st.multiselect("Classes", classes, key="reg_classes",
                       format_func=lambda c: a.class_names[c],
                       help="The top-k classes of each scale (merge step a); top-k is in the "
                            "sidebar.\n\n**top-k**: " + term("top-k"))
    show_all = st.toggle(f"Draw all boxes (default: the {figures.DEFAULT_MAX_BOXES} most "
                         f"confident)", key="reg_all")
    return s, o, lv, c, show_all


def _wide(model) -> int:
    """A pyramid net's window side in strides (NanoDet: 5)."""
    return geometry.window_sides(model)[0] // model.strides[0]


def box_line(model) -> str:
    """The page's first line: what the regressor predicts, for this model's kind of box."""
    if getattr(model, "pyramid", False):
        return ("For every cell of each stride's map the regressor predicts **one box for all "
                "classes**; with each class the cell scores, that box is one **raw box**.")
    per_class = model.cfg.regressor == "per_class"
    return ("For every window the regressor predicts a box (4 numbers"
            + (" per class" if per_class else "") + "); with each top class of the window, "
            "that box is one **raw box**.")


def box_text(model) -> str:
    """What the regressor predicts, for this model's kind of box (the expander's text)."""
    if getattr(model, "pyramid", False):
        return ("For every cell of each stride's map the regressor predicts **one box for all "
                "classes** (class-agnostic): the distances from the cell's centre to the box's "
                "four sides, each a distribution over 11 bins whose mean (times the stride) is "
                "the distance in pixels. A raw box is that box with one class the cell scores "
                "(the top-k of its scale). Each raw box keeps its provenance: scale, flip, "
                f"stride, cell and the class score of its window (nominal: {_wide(model)} "
                "strides wide, centred on the cell).")
    per_class = model.cfg.regressor == "per_class"
    return ("For every window the regressor predicts 4 numbers"
            + (" for each class (the paper's class-specific last layer; a box of class c "
               "uses class c's 4 numbers, its slot)" if per_class else
               " (one shared 4-vector for all classes)")
            + ": the box edges measured from the window's top-left corner in window sides. "
            "Each raw box keeps its provenance: scale, flip, offset, cell and the class "
            "score of its window.")


def _pick_from_click() -> None:
    ev = st.session_state.get("reg_click")
    for p in (ev or {}).get("selection", {}).get("points", []):
        if isinstance(p.get("customdata"), int):
            st.session_state["reg_pick"] = p["customdata"]
            return
        if isinstance(p.get("customdata"), list) and len(p["customdata"]) == 1:
            st.session_state["reg_pick"] = int(p["customdata"][0])
            return


def render() -> None:
    a = ctx.analysis()
    t = a.table
    st.title("Regressor")
    pyramid = getattr(ctx.model, "pyramid", False)
    # Presenter mode and a phone (issue 27): the first line joins the folded explanation and
    # the filters and the picked box share one settings box, so the figure is the first screen.
    small = compact()
    about = explain("What the regressor predicts, and what a raw box keeps") if small else st
    about.markdown(box_line(ctx.model), help=terms("raw box", "top-k", "min score of a window"))
    with about if small else st.expander("What the regressor predicts, and what a raw box keeps"):
        st.caption(box_text(ctx.model),
                   help=terms("offset", "scale", "flip") if pyramid else
                   terms("slot", "offset", "scale", "flip"))
    strides = export.level_strides(a)
    if len(t) == 0:
        st.warning(f"No boxes: every window of the top-{ctx.knobs.top_k} classes scores below "
                   f"the sidebar's min score of a window ({ctx.knobs.min_score:.2f}): lower it.")
        return
    box = settings_box("Filters and the picked box" if small else
                       "Filters: scales, offsets, classes")
    with box:
        s, o, lv, c, show_all = filters(a)
    idx = appstate.filter_boxes(t, scales=s, offsets_=o, classes=c)
    if lv is not None:
        idx = export.keep_levels(t, idx, lv)
    drawn = appstate.most_confident(t.scores, idx, None if show_all else figures.DEFAULT_MAX_BOXES)
    ids = idx.tolist()
    if ids:
        # A box number is a row of this image's table: a new image or model starts at its most
        # confident box drawn (the old number named some other box of the new image).
        if starts_again("_reg_pick_for", (ctx.image_key, ctx.model_key), "reg_pick",
                        stale=st.session_state.get("reg_pick") not in ids):
            # (drawn is in the table's order when it holds every box of the filters)
            st.session_state["reg_pick"] = int(appstate.most_confident(t.scores, drawn, 1)[0])
        # The list offers the boxes drawn (a click picks among them too) and the picked one (a
        # link may name any box of the filters), not every raw box: 2,858 labels on the
        # default scene were 76 kB sent and a list drawn on every visit (issue 27's bench).
        options = sorted(set(drawn.tolist()) | {st.session_state["reg_pick"]})
        with box if small else settings_box("Picked box"):
            pick = st.selectbox("Picked box (or click a box centre)", options, key="reg_pick",
                                format_func=lambda i: appstate.box_label(t, i, a.class_names))
    else:
        pick = None
    title = (f"{len(idx)} of {len(t)} raw boxes match the filters; {len(drawn)} drawn "
             f"(coloured by scale)")
    chart("reg_click", figures.boxes_figure, ctx.backdrop(), t, drawn, a.class_names, a.k,
          pick=pick, title=title, strides=strides, phone=is_phone(),
          depends=(tuple(s), tuple(o or ()), tuple(lv or ()), tuple(c), show_all),
          plot_kw=dict(on_select=_pick_from_click, selection_mode="points"))
    m1, m2, m3 = row([1, 1, 1])
    m1.metric("raw boxes (all filters)", len(idx))
    m2.metric("drawn", len(drawn))
    m3.metric("views", a.n_views, help=(f"{len(a.views)} maps: {len(strides)} per view. "
                                         if len(a.views) != a.n_views else "Scales x flips. ")
              + term("views"))
    notice(notice_bullets(a, idx, s, o, lv, c, pick))
    if pick is not None:
        st.markdown("**Picked box** (dashed: its window; red: the predicted box)")
        table(export.box_rows(t, [pick], a.class_names, a.k, strides))
    # 25 rows, not 100: each cell of a static table is a Markdown element in the browser, and
    # 100 rows cost ~0.25 s of the browser's CPU on every visit (tests/browser_latency.py).
    st.markdown(f"**The {REG_ROWS} most confident boxes matching the filters**")
    table(export.box_rows(t, appstate.most_confident(t.scores, idx, REG_ROWS), a.class_names,
                          a.k, strides), height=300)
    st.caption("Windows and boxes are in original-image pixels." + (
        " 'stride': the map a box came from." if pyramid else ""))
    with st.expander("Flipped views, and what the box is trained to be"):
        if pyramid:
            st.caption("For a flipped view the cell refers to the mirrored image the network "
                       f"saw. A cell's window is {_wide(ctx.model)} strides wide. The box is the "
                       "net's own (trained by its authors): it need not stay inside the window.")
        else:
            st.caption("For a flipped view the cell and offset refer to the mirrored image the "
                       "network saw. Training target (project choice): the box in its window's "
                       "frame, edges in window sides.")
    if pyramid:
        show_code(ctx.model.distances, multiscale._pyramid_views, multiscale._view_boxes)
    else:
        show_code(boxes.decode, multiscale._view_boxes)


def notice_bullets(a, idx, scales, offs, levels, classes, pick) -> list[str]:
    """The "What to notice" box: this image's raw boxes, where they come from, the picked one."""
    t = a.table

    def count(sc: int) -> int:
        i = appstate.filter_boxes(t, scales=[sc], offsets_=offs, classes=classes)
        return len(i if levels is None else export.keep_levels(t, i, levels))

    per_scale = {sc: count(sc) for sc in scales}
    out = [f"{len(idx):,} of {len(t):,} raw boxes match the filters: one per window (or cell) "
           f"and top class whose probability is at least {ctx.knobs.min_score:.2f}, from "
           f"{a.n_views} views."]
    if per_scale:
        most = max(per_scale, key=lambda sc: (per_scale[sc], -sc))
        out.append(f"Scale {most + 1} gives the most ({per_scale[most]:,}); "
                   + ", ".join(f"scale {sc + 1}: {n:,}" for sc, n in per_scale.items()
                               if sc != most)
                   + ". A larger scale has more windows, and an object fills them at some "
                   "scales only.")
    if pick is not None:
        out.append(f"The picked box {appstate.box_label(t, pick, a.class_names)}: dashed its "
                   "window, red the box the regressor drew from it; the box need not stay "
                   "inside the window.")
    return out

render()
