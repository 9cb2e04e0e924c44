"""OverFeat, step by step: the entry file. It builds the navigation and the page context: the
sidebar every page shares (image, model, knobs: app_pages/sidebar.py) gives a common.Context
that the pages in app_pages/ read with common.context(). The page, the sample image and the
knobs live in the URL's query parameters (overfeat.app.share), so the address bar is a link to
the same view; presenter mode enlarges the text for a class.

    streamlit run app.py
"""

from __future__ import annotations

import app_pages.preload  # noqa: F401  (first: see its docstring)
import logging

import streamlit as st

from overfeat.app import share
from overfeat.app import state as appstate
from overfeat.models import registry as zoo
from app_pages import common, sidebar

st.set_page_config(page_title="OverFeat, step by step", page_icon=":mag:", layout="wide")

# The app's state is one table, overfeat.app.share.PARAMS (key, link name, type, range, default):
# a new session starts from its defaults, and every key is written back on each run, since
# Streamlit drops a widget's value while its page (or the sidebar branch holding it) is not
# drawn: a learner's choices stay when they come back to a page.
for _k, _v in share.defaults().items():
    st.session_state.setdefault(_k, _v)
for _k in share.KEPT_KEYS:
    if _k in st.session_state:
        st.session_state[_k] = st.session_state[_k]
# Before anything reads the state: a value the table does not accept (a widget's display text
# where an index belongs, issue 25) goes back to its default, or is dropped where the page
# computes the default. Pages and the link never see it.
for _k, _v in share.clean_state({k: st.session_state[k] for k in share.KEPT_KEYS
                                 if k in st.session_state}, len(appstate.GALLERY)).items():
    if _v is None:
        del st.session_state[_k]
    else:
        st.session_state[_k] = _v
log = logging.getLogger("overfeat.app")
SHARED_KEYS = share.SHARED_KEYS  # what a link carries: overfeat.app.share.PARAMS


def page_name(p) -> str:
    """A page's name in links: its URL path ("" is the default page, the Overview)."""
    return p.url_path or "overview"


def restore_link(by_name: dict, current) -> None:
    """Once per session: the view a shared link describes (st.query_params) becomes the
    sidebar's state; bad values are skipped with a note; another page is switched to. A view
    saved in the lesson's list (common.lesson_ui) is opened the same way, when it is clicked."""
    goto = st.session_state.pop(common.GOTO_KEY, None)
    if st.session_state.get("_link_done") and goto is None:
        return
    st.session_state["_link_done"] = True
    params = st.query_params.to_dict() if goto is None else goto
    state, want, notes = share.decode(params, len(appstate.GALLERY), tuple(by_name))
    if state:  # a model's own knob values (appstate.model_knobs), then the link's, which win
        model = state.get("model_source", "default")
        st.session_state["_knobs_for"] = model
        for k, v in appstate.model_knobs(model).items():
            st.session_state[k] = v
    for k, v in state.items():
        st.session_state[k] = v
    # Pages that reset a view setting for a new image or scale keep a linked one (once).
    st.session_state["_link_pending"] = set(state)
    st.session_state["_link_notes"] = notes
    if want is not None and want != page_name(current):
        st.switch_page(by_name[want])


def sync_link(current) -> None:
    """Write the current view into the URL (common.sync_link, which fragments call too)."""
    st.session_state[common.PAGE_KEY] = page_name(current)
    common.sync_link()


def context_or_reset():
    """The sidebar's Context. Should drawing the sidebar raise (a bug, or a state the table
    lets through but a widget refuses), the sidebar's settings go back to their defaults and
    the run starts again, once; the image and model stay chosen."""
    try:
        ctx, errors = sidebar.build_context()
        st.session_state.pop("_sidebar_reset", None)
        return ctx, errors
    except Exception as e:
        log.exception("the sidebar failed")
        if st.session_state.get("_sidebar_reset"):
            st.error(f"The sidebar failed ({type(e).__name__}: {one_line(e)}). Reload the page "
                     "to start again.")
            st.stop()
        st.session_state["_sidebar_reset"] = True
        for k, v in share.defaults().items():
            if k not in ("img_source", "gallery", "photo", "model_source", "presenter"):
                st.session_state[k] = v
        st.rerun()


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:200] + ("..." if len(text) > 200 else "")


def run_page(page, title: str) -> None:
    """Run one page; an exception inside it becomes one line on that page (what failed, what
    to try), logged for the developers, and the rest of the app keeps working (issue 25).
    Streamlit's st.stop, st.rerun and st.switch_page are not Exceptions: they pass. The link
    is written again after the page, so it holds what the page chose this run (a new image's
    top class), not the run before's (after st.stop that write is dropped: hence also before)."""
    try:
        page.run()
    except Exception as e:
        log.exception("page %s failed", title)
        st.error(f"{PAGE_FAILED} {title} page failed: {type(e).__name__}: {one_line(e)}. "
                 "Try another image, model or setting, or another page: the rest of the app "
                 "keeps working.")
    finally:
        sync_link(page)


PAGE_FAILED = "Sorry, something went wrong here: the"


def lesson_nav(pages: list, current) -> None:
    """Previous / Next page buttons in the lesson's order (share.LESSON: the inference story,
    then training; the Glossary is a reference, outside the path), at the foot of every page
    (issue 27: a student alone follows the path page by page)."""
    order = [p for p in pages if page_name(p) in share.LESSON]
    if current not in order:
        return
    i = order.index(current)
    st.divider()
    c = st.columns([1, 1, 1], vertical_alignment="center")
    if i > 0:
        c[0].page_link(order[i - 1], label=f"Previous: {order[i - 1].title}",
                       icon=":material/arrow_back:")
    c[1].caption(f"Page {i + 1} of {len(order)} of the lesson")
    if i + 1 < len(order):
        c[2].page_link(order[i + 1], label=f"Next: {order[i + 1].title}",
                       icon=":material/arrow_forward:")


SUGGESTION = "A photo of things? The pictogram model knows only 20 drawn pictograms."
PICTOGRAMS_ONLY = "this model knows only pictograms"  # the header's note while suggesting
KEPT = "_suggest_kept"  # the image whose suggestion "Keep pictograms" put away


def keep_pictograms(image_key: str) -> None:
    st.session_state[KEPT] = image_key


def suggested_models(ctx) -> list[str]:
    """The models to suggest for this run's image, best first ([] for none): a photo (upload,
    camera or sample photo) with the pictogram checkpoint, unless "Keep pictograms" put the
    suggestion away for this image. Not after a rejected file (ctx.is_photo is False on that
    run)."""
    if not (ctx.is_photo and ctx.model_key.startswith("default")) \
            or st.session_state.get(KEPT) == ctx.image_key:
        return []
    return sidebar.photo_models()


def suggest_models(names: list[str], image_key: str) -> None:
    """The suggestion: a notice that offers the models made for photos (sidebar.photo_models:
    Objects first, then ImageNet), one click each, and "Keep pictograms" (a teacher showing
    what a pictogram model does with a photo), which puts it away for that image (another
    image brings it back).

    On a desktop, on every page: the notice says what each model knows, the buttons beside
    it. In presenter mode and on a phone, on the Overview only: one short line with the
    buttons in a row, in smaller type (sidebar's CSS, .st-key-suggest), what each model
    knows in its button's tooltip; the other pages end their header with PICTOGRAMS_ONLY.
    The full notice above every page took 190 px of a 720 px projector and 300 px of a phone
    and pushed each page's figure off the first screen."""
    cards = [zoo.CARDS[n] for n in names]
    compact = common.compact()
    width = "content" if compact else "stretch"
    if compact:
        buttons = st.container(horizontal=True, key="suggest", vertical_alignment="center",
                               gap="small")
        buttons.info(SUGGESTION)
    else:
        what = " ".join(f"**{c.label}**: {c.knows}." for c in cards)
        c1, buttons = st.columns([4, 1], vertical_alignment="center")
        c1.info(f"{SUGGESTION} {what}")
    for c in cards:  # on a desktop one under the other: short labels, whole
        buttons.button(f"Use {common.short_label(c)}", on_click=sidebar.use_model,
                       args=(c.name,), key=f"use_{c.name}",
                       type="primary" if c is cards[0] else "secondary",
                       help=f"Choose {c.label} in the sidebar: {c.knows}.",
                       width=width)
    buttons.button("Keep pictograms", on_click=keep_pictograms, args=(image_key,),
                   key="suggest_keep", type="tertiary", width=width,
                   help="Keep the pictogram model on this photo (to show what it makes of a "
                        "photo): this notice goes away for this photo.")


# The navigation, in the lesson's order (issue 27: the inference story first, then training):
# (file in app_pages/, title, Material icon); the first is the default page.
PAGES = (("overview", "Overview", "route"), ("architecture", "Architecture", "account_tree"),
         ("scales", "Scales", "zoom_in"), ("offsets", "Offsets", "grid_on"),
         ("regressor", "Regressor", "crop_free"), ("merge", "Merge", "join_inner"),
         ("detection", "Detection", "select_all"), ("compare", "Greedy vs NMS", "compare"),
         ("experiments", "Experiments", "table_chart"), ("efficiency", "Efficiency", "speed"),
         ("training", "Training", "model_training"), ("glossary", "Glossary", "menu_book"))

# Every run is counted (common.run_started / run_ended, also when a run ends by an exception:
# a rerun, st.stop, a page switch), so background work waits for the server to be idle.
common.run_started()
try:
    pages = [st.Page(f"app_pages/{file}.py", title=title, icon=f":material/{icon}:",
                     default=file == "overview") for file, title, icon in PAGES]
    page = st.navigation(pages)
    restore_link({page_name(p): p for p in pages}, page)
    # Presenter mode collapses the sidebar (the toggle that leaves it is the sidebar's first
    # widget: the arrow at the top left brings the sidebar back); otherwise Streamlit's default.
    st.set_page_config(initial_sidebar_state="collapsed" if st.session_state.get("presenter")
                       else "auto")
    ctx, errors = context_or_reset()
    # The link is written before the page too: a page that ends with st.stop (a model without
    # boxes on a box page) loses what it writes after st.stop (the random walk found this).
    sync_link(page)
    st.session_state[common.CTX_KEY] = ctx
    head, link = common.row([6, 1] if common.compact() else [5, 1.5], wrap=False)
    suggest = suggested_models(ctx)
    # Presenter mode and a phone: the suggestion on the Overview only (suggest_models).
    here = bool(suggest) and (page_name(page) == "overview" or not common.compact())
    head.caption(f"Model: **{ctx.model_desc}** · Image: **{ctx.image_label}** "
                 f"({ctx.image.size[0]} wide x {ctx.image.size[1]} high)"
                 + (f" · {PICTOGRAMS_ONLY}" if suggest else ""))
    common.link_popover(link)
    for msg in errors:
        st.error(msg)
    for msg in ctx.notes + ([ctx.arch_note] if ctx.arch_note else []):
        st.info(msg)
    if here:
        suggest_models(suggest, ctx.image_key)
    run_page(page, page.title)
    lesson_nav(pages, page)
    common.warm_elements()  # the tab's first run only: lazily loaded element code

    # Prefetch: once the page is on screen, the two merges for the current settings are
    # computed in a background thread (common.prefetch_merges), so that opening the Merge page
    # later finds them cached while this run ends at once; on a sample scene, the other sample
    # scenes follow once the server is idle (common.prefetch_gallery).
    if getattr(ctx.model, "has_regressor", True):
        common.prefetch_merges(ctx)
        common.prefetch_gallery(ctx)
finally:
    common.run_ended()
