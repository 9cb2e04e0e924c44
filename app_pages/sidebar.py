"""The sidebar every page shares: the image, the model and the knobs, and the per-run Context
built from them (common.Context). Not a page itself: app.py calls build_context() on every run.
Presenter mode (a toggle at the top) enlarges the text for a class and hides the upload, model
and merge controls (their values stay).
"""

from __future__ import annotations

from typing import NamedTuple

import streamlit as st

from overfeat.models import registry as zoo
from overfeat.app import bars, share, tables
from overfeat.app import state as appstate
from overfeat.checkpoint import CheckpointError
from overfeat.config import PRESETS, ModelConfig
from overfeat.geometry import meta_model
from overfeat.images import ImageError
from overfeat.merge import AVERAGES, SCORES
from overfeat.models.overfeat import OverFeat
from overfeat.multiscale import ALL_SCALES, SCALE_RULES, scale_sizes
from app_pages import common

SOURCES = {"gallery": "Sample scene", "photo": "Sample photo", "generate": "New scene from a seed",
           "upload": "Upload", "camera": "Camera"}
# Presenter mode: larger text everywhere (Streamlit sizes text in rem) and no modebar clutter.
# Both modes: the sidebar opens and closes at once. Its 0.3 s slide (Streamlit animates its
# width) re-laid out the page on every frame: pictures, sliders and figures were resized a dozen
# times, and presenter mode on took 0.2 s longer to settle (tests/browser_latency.py).
STILL_SIDEBAR = """[data-testid="stSidebar"] { transition: none !important; }
"""
# The suggestion of a model for photos in presenter mode and on a phone (app.suggest_models):
# one short line in small type with its buttons beside it (or under it, on a phone), so the
# page's figure stays on the first screen. It is a note for the teacher, not for the class.
SUGGEST_CSS = """
.st-key-suggest [data-testid="stAlertContainer"] { padding: 0.3rem 0.7rem; }
.st-key-suggest [data-testid="stAlertContainer"] p { font-size: 0.8rem !important; }
.st-key-suggest [data-testid="stElementContainer"]:has([data-testid="stAlert"]) {
  min-width: 15rem; }
.st-key-suggest [data-testid="stBaseButton-tertiary"] p { font-size: 0.8rem; }
"""
PRESENTER_CSS = """<style>
html { font-size: 21px; }
""" + STILL_SIDEBAR + tables.TABLE_CSS + bars.BARS_CSS + """
/* The page keeps Streamlit's side margins in px (5rem at 16 px): the text grows, the page's
   width does not, so the figures on screen are not redrawn at a new width by the toggle
   before the run replaces them. */
@media (min-width: 641px) {
  [data-testid="stMainBlockContainer"] { padding-left: 80px; padding-right: 80px; } }
[data-testid="stMarkdownContainer"] p,
[data-testid="stMarkdownContainer"] li { font-size: 1.15rem; }
[data-testid="stCaptionContainer"] { font-size: 1rem; }
/* Buttons keep their whole label: smaller than the text and never cut to "Pre..." */
[data-testid="stBaseButton-secondary"] p, [data-testid="stBaseButton-primary"] p {
  font-size: 0.9rem; white-space: nowrap; overflow: visible; text-overflow: clip; }
[data-testid="stBaseButton-secondary"], [data-testid="stBaseButton-primary"] {
  padding-left: 0.3rem; padding-right: 0.3rem; min-width: max-content; }
/* The first screen is the page's figure: less empty space above the title, a smaller title.
   The header bar holds only the sidebar's expand button (left of the page's margin): it goes
   transparent and lets clicks through, and the page starts under it. */
header[data-testid="stHeader"] { background: transparent; pointer-events: none; }
[data-testid="stExpandSidebarButton"] { pointer-events: auto; }
[data-testid="stMainBlockContainer"] { padding-top: 1.2rem; max-width: 100%; }
[data-testid="stMainBlockContainer"] [data-testid="stCaptionContainer"] p { font-size: 0.8rem; }
h1 { font-size: 1.9rem !important; padding-top: 0.2rem !important; }
/* The Merge page's step pictures: drawn for 1920x1080, shown no taller than the window less
   what sits above them (header line, title row, buttons: ~255 px), so the picture and its
   buttons make the first screen on a 1280x720 projector too (merge.PRESENTER_FIG_BOX). */
[class*="st-key-merge_fig_"] img { max-height: calc(100vh - 260px); width: auto !important;
  max-width: 100%; object-fit: contain; }
/* Metric values larger than their labels; tables compact, their text on one line each. */
[data-testid="stMetricValue"] { font-size: 1.9rem !important; }
[data-testid="stMetricLabel"] p { font-size: 0.85rem !important; }
.ovf-table td, .ovf-table th { font-size: 0.8rem; padding: 0.15rem 0.4rem; line-height: 1.3; }
.ovf-table td { white-space: nowrap; }  /* (headers wrap, as st.table's did) */
.st-key-gloss_table td { white-space: normal; }  /* sentences */
/* Metric labels and switch labels wrap instead of being cut to "parameters (wh..." */
[data-testid="stMetricLabel"] *, [data-testid="stWidgetLabel"] * {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important; }
""" + SUGGEST_CSS + """
</style>"""
# Every screen: on a phone's narrow screen a smaller title and less space above it, so the
# page's main figure comes right after the title (issue 27).
NARROW_CSS = """<style>
""" + STILL_SIDEBAR + tables.TABLE_CSS + bars.BARS_CSS + """
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] { padding-top: 3.9rem; padding-left: 0.6rem;
    padding-right: 0.6rem; }
  h1 { font-size: 1.7rem !important; }
  [data-testid="stMetricValue"] { font-size: 1.5rem !important; }
  /* Tables keep one line per cell and scroll sideways instead of squeezing a number into
     four lines */
  .ovf-table td { white-space: nowrap; }
""" + SUGGEST_CSS + """
}
</style>"""
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif"]


# --- image ----------------------------------------------------------------------------------
def image_ui(errors: list[str], notes: list[str], presenter: bool = False):
    """The image every page analyses: (image, key, label, truth). Presenter mode hides the
    uploader (an uploaded image stays)."""
    sb = st.sidebar
    sb.header("Image")
    if presenter:
        # Streamlit drops a widget's file when the widget is not drawn: after presenter mode the
        # uploader (and the camera) come back empty. The image they gave stays the image until
        # another one is chosen (leaving presenter mode showed the sample scene instead).
        st.session_state[HIDDEN_UPLOAD] = True
    up = None if presenter else sb.file_uploader(
        "Upload an image (PNG, JPEG, WebP, BMP, GIF)", type=UPLOAD_TYPES, key="img",
        help="Any size; GIFs give their first frame.")
    if presenter and "img" in st.session_state:
        up = st.session_state["img"]
    if _is_new(up, "_seen_upload"):
        st.session_state["img_source"] = "upload"  # a new upload becomes the image
    source = sb.radio("Image to analyse", list(SOURCES), key="img_source",
                      format_func=SOURCES.get)
    if source == "camera":
        up = _camera_ui(presenter)
        kept = up is None and st.session_state.get(HIDDEN_UPLOAD) and \
            st.session_state.get("_last_upload") is not None
        source = "upload" if up is not None or kept else "camera"
        if source == "camera":
            notes.append("No photo taken yet: showing the sample scene.")
    if source == "photo":
        st.session_state["_last_good"] = _photo_ui()
        return st.session_state["_last_good"]

    chosen = None
    if source == "upload":
        chosen, kept = _upload(up, presenter, errors, notes)
        if kept is not None:
            return kept
    if source == "generate":
        c1, c2 = sb.columns(2)
        seed = c1.number_input("Seed", min_value=0, max_value=10**6, step=1, key="scene_seed")
        kind = c2.radio("Kind", ["loc", "det"], key="scene_kind", horizontal=True,
                        help="loc: one object (localization); det: several (detection).")
        chosen = _scene(kind, int(seed), 0, f"new {kind} scene, seed {seed}")
    if source == "gallery" or chosen is None:
        i = sb.selectbox("Sample scene", range(len(appstate.GALLERY)), key="gallery",
                         format_func=lambda i: appstate.gallery_label(*appstate.GALLERY[i]))
        kind, seed, index = appstate.GALLERY[i]
        chosen = _scene(kind, seed, index, appstate.gallery_label(kind, seed, index))
    st.session_state["_last_good"] = chosen
    return chosen


HIDDEN_UPLOAD = "_upload_hidden"  # presenter mode hid the uploader since the last new file


def _is_new(up, seen_key: str) -> bool:
    """True once per new file of an uploader or the camera (remembered under seen_key)."""
    if up is None or st.session_state.get(seen_key) == up.file_id:
        return False
    st.session_state[seen_key] = up.file_id
    st.session_state[HIDDEN_UPLOAD] = False
    return True


def _camera_ui(presenter: bool):
    """The camera's photo, or None while none is taken (presenter mode keeps the last one)."""
    up = None if presenter else st.sidebar.camera_input("Take a photo", key="cam",
                                                        help="Your browser asks for the camera.")
    if presenter and "cam" in st.session_state:
        up = st.session_state["cam"]
    _is_new(up, "_seen_camera")
    return up


def _photo_ui():
    i = st.sidebar.selectbox("Sample photo", range(len(appstate.PHOTOS)), key="photo",
                             format_func=appstate.photo_label,
                             help="Real photos shipped with the app (sources in the README).")
    return common.sample_photo(i), f"photo:{i}", f"photo {appstate.photo_label(i)}", None


def _upload(up, presenter: bool, errors: list[str], notes: list[str]):
    """(the uploaded image's choice or None, an earlier image to show instead or None).

    The last good upload is kept apart from _last_good: replacing a file in the browser runs
    the script once with no file (the sample scene), then with the new file."""
    last = st.session_state.get("_last_upload")
    if up is None and last is not None and (presenter or st.session_state.get(HIDDEN_UPLOAD)):
        # presenter mode hides the uploader, and after it the uploader is empty: the uploaded
        # image stays until another is chosen
        return None, last
    if up is None:
        notes.append("No image uploaded yet: showing the sample scene.")
        return None, None
    data = up.getvalue()
    key = "upload:" + appstate.digest(data)
    try:
        im, note = common.decode_upload(key, data, up.name)
    except ImageError as e:
        errors.append(str(e))
        last = st.session_state.get("_last_upload") or st.session_state.get("_last_good")
        if last is not None:
            notes.append(f"Still showing the previous image: {last[2]}.")
        return None, last
    chosen = (im, key, f"upload {up.name}", None)
    st.session_state["_last_upload"] = chosen
    if note:
        notes.append(f"{up.name}: {note}.")
    return chosen, None


use_model = common.use_model  # the "Use ..." buttons' callback (app.py, common.require_boxes)


def photo_models() -> list[str]:
    """The models app.py suggests for a photo while the pictogram checkpoint is chosen, best
    first: those whose card says they are made for photos of things (boxes), then those that
    classify photos without boxes (not one of the paper's geometries: ImageNet's 1000 classes)."""
    cards = [zoo.CARDS[n] for n in zoo.MODEL_NAMES]
    return ([c.name for c in cards if c.photos]
            + [c.name for c in cards if not c.photos and not c.boxes and not c.paper_net])


def _scene(kind: str, seed: int, index: int, label: str):
    im, objects = common.scene(kind, seed, index)
    return im, appstate.scene_key(kind, seed, index), label, objects


# --- model ----------------------------------------------------------------------------------
class ModelChoice(NamedTuple):
    """What model_ui chose: the model the pages run and the one the Architecture page shows."""

    model: OverFeat  # always one small enough for the CPU
    key: str
    desc: str
    arch_cfg: ModelConfig
    arch_note: str | None  # why the other pages run another model than arch_cfg, if they do


def model_ui(errors: list[str], presenter: bool = False) -> ModelChoice:
    """(model, key, description, cfg for the Architecture page, note). Presenter mode keeps
    the model chosen before and hides the choice."""
    sb = st.sidebar
    sb.header("Model")
    stamp = common.checkpoint_stamp()
    trained = common.app_checkpoints()
    source = _model_source(stamp, trained, presenter)
    model, desc = common.default_model(stamp)
    chosen = ModelChoice(model, f"default:{stamp}", desc, model.cfg, None)
    _apply_model_knobs(source)
    if source in zoo.CARDS and source != "pictogram":  # a pretrained net of the registry
        try:
            model = common.zoo_model(source)
            chosen = ModelChoice(model, f"zoo:{source}", zoo.CARDS[source].label, model.cfg, None)
        except (FileNotFoundError, ValueError) as e:
            errors.append(f"{zoo.CARDS[source].label} cannot be loaded: {' '.join(str(e).split())}."
                          f" Using {desc} instead.")
    if source == "trained":
        chosen = _trained_model(chosen, trained, errors, presenter)
    if source == "upload":
        chosen = _uploaded_model(chosen, errors, presenter)
    elif source == "preset":
        chosen = _preset_model(chosen, presenter)
    if not getattr(chosen.model, "trained", True):
        sb.warning("No trained checkpoint yet: the model has random weights, so its scores "
                   "and boxes are noise (the geometry is exact).")
    sb.caption(appstate.describe(chosen.model.cfg))
    note = appstate.knobs_note(source) if chosen.key == f"zoo:{source}" else None
    if note:
        sb.caption(note)
    return chosen


def _apply_model_knobs(source: str) -> None:
    """A newly chosen model's own knob values (appstate.model_knobs: P-Net's window threshold,
    NanoDet's...); those the previous model set and this one does not go back to their
    defaults, so that leaving a model leaves none of its settings behind."""
    ss = st.session_state
    before = ss.get("_knobs_for")
    if before == source:
        return
    ss["_knobs_for"] = source
    mine = appstate.model_knobs(source)
    defaults = share.defaults()
    for k in appstate.model_knobs(before) if before is not None else {}:
        if k not in mine and k in defaults:
            ss[k] = defaults[k]
    for k, v in mine.items():
        ss[k] = v


def _model_source(stamp: float | None, trained: list[tuple[str, str]], presenter: bool) -> str:
    """The sidebar's model choice (unchanged in presenter mode, which hides it)."""
    labels = {"default": zoo.CARDS["pictogram"].label if stamp is not None
              else "Default (no trained checkpoint yet)"}
    labels |= {n: zoo.CARDS[n].label for n in zoo.MODEL_NAMES if n != "pictogram"}
    labels |= {"upload": "Upload a checkpoint", "preset": "Untrained preset"}
    if trained:
        labels["trained"] = "Trained in the app"
    if st.session_state["model_source"] not in labels:
        st.session_state["model_source"] = "default"
    if presenter:
        return st.session_state["model_source"]
    return st.sidebar.radio("Model", list(labels), key="model_source", format_func=labels.get)


def _trained_model(chosen: ModelChoice, trained: list[tuple[str, str]], errors: list[str],
                   presenter: bool) -> ModelChoice:
    """A checkpoint of a run of the Training page (chosen stays on a bad file)."""
    paths = [p for p, _ in trained]
    names = dict(trained)
    if st.session_state.get("app_ckpt") not in paths:
        st.session_state["app_ckpt"] = paths[0]
    path = (st.session_state["app_ckpt"] if presenter else
            st.sidebar.selectbox("Run", paths, key="app_ckpt", format_func=names.get,
                                 help="Checkpoints of the runs started on the Training page, "
                                      "newest first."))
    try:
        m, meta = common.trained_model(path, common.mtime(path))
    except CheckpointError as e:
        errors.append(str(e) + f" Using {chosen.desc} instead.")
        return chosen
    return ModelChoice(m, f"app:{path}:{common.mtime(path)}", f"trained in the app: {names[path]}",
                       m.cfg, None)


def _uploaded_model(chosen: ModelChoice, errors: list[str], presenter: bool) -> ModelChoice:
    """An uploaded checkpoint; one too big to run is shown on the Architecture page only."""
    up = st.session_state.get("ckpt") if presenter else st.sidebar.file_uploader(
        "Checkpoint (.pt) saved by this project", type=["pt", "pth"], key="ckpt")
    kept = st.session_state.get("_last_ckpt")
    if up is None and presenter and kept is not None:
        chosen = ModelChoice(*kept, kept[0].cfg, chosen.arch_note)  # the uploader is hidden
    if up is None:
        return chosen
    data = up.getvalue()
    ck = "ckpt:" + appstate.digest(data)
    try:
        m, meta = common.uploaded_model(ck, data, up.name)
    except CheckpointError as e:
        errors.append(str(e) + f" Using {chosen.desc} instead.")
        return chosen
    if appstate.runnable(m.cfg):
        chosen = ModelChoice(m, ck, f"uploaded checkpoint {up.name}", m.cfg, chosen.arch_note)
        st.session_state["_last_ckpt"] = chosen[:3]
        return chosen
    return chosen._replace(arch_cfg=m.cfg, arch_note=(
        f"{up.name} is too big to run here ({appstate.describe(m.cfg)}): "
        f"the Architecture page shows it, the other pages run {chosen.desc}."))


def _preset_model(chosen: ModelChoice, presenter: bool) -> ModelChoice:
    """An untrained preset (random weights); a full-width one is shown on the Architecture
    page only."""
    name = st.session_state["preset"] if presenter else st.sidebar.selectbox(
        "Preset", list(PRESETS), key="preset",
        help="Untrained: random weights, for exploring the architecture.")
    arch_cfg = PRESETS[name]
    if appstate.runnable(arch_cfg):
        return ModelChoice(common.preset_model(name), f"preset:{name}",
                           f"untrained '{name}' preset (random weights): scores and boxes are noise",
                           arch_cfg, chosen.arch_note)
    return chosen._replace(arch_cfg=arch_cfg, arch_note=(
        f"The untrained '{name}' preset ({appstate.describe(arch_cfg)}) is "
        f"shown on the Architecture page only: at full width one image at six "
        f"scales with flips takes minutes on this 2-core CPU, and untrained it "
        f"only shows noise. The other pages run {chosen.desc}."))


# --- knobs ----------------------------------------------------------------------------------
def knobs_ui(model, image_hw, presenter: bool = False) -> appstate.Knobs:
    """The evaluation and merge knobs; presenter mode shows the scales, flips and offsets
    only (the others keep their values)."""
    sb = st.sidebar
    sb.header("Evaluation and merge")
    ss = st.session_state
    rule = ss["rule"] if presenter else sb.selectbox(
        "Scale rule", SCALE_RULES, key="rule",
        help="aspect: shorter side to the paper's, keep the aspect, snap to 221+12n (project "
             "choice; the paper is silent). paper: stretch to the paper's six sizes.")
    sizes = scale_sizes(image_hw, meta_model(model.cfg), rule)
    # Labels are the scale numbers only, the same for every image: Streamlit keeps the pills'
    # value as their labels, and labels that held this image's sizes came back from the
    # browser as plain text after a run interrupted by a new image (issue 25). The sizes are
    # the caption under the pills.
    scales = sb.pills("Scales", list(ALL_SCALES), selection_mode="multi", key="scales",
                      format_func=lambda s: str(s + 1),
                      help=common.term("scale") + " The paper's six, smallest first; their "
                           "input sizes for this image are listed below.")
    sb.caption("Input sizes (height x width): " + ", ".join(
        f"{s + 1}: {sizes[s][0]}x{sizes[s][1]}" for s in ALL_SCALES))
    # Side by side in the sidebar; one under the other in presenter mode, whose larger text
    # would cut the labels to "Fli..." and "Off...".
    c1, c2 = (sb, sb) if presenter else sb.columns(2)
    flips = c1.checkbox("Flips", key="flips", help=common.term("flip") + " "
                        + common.term("views"))
    fine = c2.checkbox("Offsets", key="fine",
                       help=common.term("offset") + " " + common.term("fine map")
                       + " (paper §3.3, Fig. 3)")
    kept = (ss["top_k"], ss["min_score"], ss["score"], ss["t_literal"], ss["t_corrected"],
            ss["by_class"], ss["average"])
    if not presenter:
        # folded: its seven widgets are drawn only while it is open; closed, they keep their
        # values (app.py writes every kept key back), named in the label
        with sb:
            kept = common.folded(merge_knobs_label(*kept), KNOBS_OPEN, merge_knobs_ui) or kept
    top_k, min_score, score, t_lit, t_cor, by_class, average = kept
    if not scales:
        sb.warning("Choose at least one scale: using all six meanwhile.")
        scales = list(ALL_SCALES)
    return appstate.Knobs(scales=tuple(scales), flips=flips, fine=fine, rule=rule,
                          top_k=int(top_k), min_score=float(min_score), score=score,
                          t_literal=float(t_lit), t_corrected=float(t_cor), by_class=by_class,
                          average=average)


# The window filter and merge knobs fold into one sidebar section, closed by default: the
# sidebar is drawn again on every page switch, and these seven widgets (two sliders, two radios,
# two number inputs, a checkbox) were drawn on every one of them. Not drawing them took a
# Glossary switch's Chromium CPU from 0.39-0.42 s to 0.24-0.31 s in a first experiment; as a
# folded section, the renderer's main thread per switch measured a few tens of ms less, within
# the noise of two runs (docs/BENCHMARKS.md, session 40). Opening the section is one click; its
# label keeps the current values in sight.
KNOBS_OPEN = "knobs_open"


def merge_knobs_label(top_k: int, min_score: float, score: str, t_lit: float, t_cor: float,
                      by_class: bool, average: str) -> str:
    """The folded knobs' label: what they are set to, in a line of the sidebar."""
    t = t_lit if score == "literal" else t_cor
    nb = "\u00a0"  # "t = -0.3" on one line
    return (f"Windows and merge (top-{int(top_k)} classes, p{nb}≥{nb}{float(min_score):.2f}, "
            f"{score} t{nb}={nb}{float(t):g}, {average}"
            f"{'' if by_class else ', across classes'})")


def merge_knobs_ui():
    """The seven knobs, drawn inside the sidebar's folded section (knobs_ui)."""
    top_k = st.slider("top-k classes per scale", 1, 5, key="top_k",
                      help=common.term("top-k") + " Merge step (a): per scale, the boxes of "
                           "these classes enter the merge.")
    min_score = st.slider("min score of a window", 0.0, 1.0, step=0.01, key="min_score",
                          help=common.term("min score of a window"))
    score = st.radio("Match score", SCORES, key="score", horizontal=True,
                     help=common.term("match score") + " literal: "
                          + common.term("literal match score") + " corrected: "
                          + common.term("corrected match score"))
    c1, c2 = st.columns(2)
    t_lit = c1.number_input("t (literal)", step=10.0, key="t_literal", format="%.1f",
                            help=common.term("t"))
    t_cor = c2.number_input("t (corrected)", step=0.05, key="t_corrected", format="%.2f",
                            help=common.term("t"))
    by_class = st.checkbox("Merge within a class only", key="by_class",
                           help="The paper does not say; merging across classes is allowed "
                                "when unticked (the merged box takes the stronger label).")
    average = st.radio("Box merge", AVERAGES, key="average", horizontal=True,
                       help="weighted: the merged box is the confidence-weighted mean of all "
                            "its raw boxes (project choice). plain: the average of the two "
                            "boxes, as the paper writes; a big cluster then moves halfway "
                            "towards every stray box it swallows.")
    return top_k, min_score, score, t_lit, t_cor, by_class, average


# --- the context ----------------------------------------------------------------------------
def link_notes(notes: list[str]) -> list[str]:
    """A link's bad values, one note each (share.decode); more than two become one note naming
    them, so a mangled link does not fill the screen with boxes (the browser walk's garbage
    links showed a column of 40)."""
    if len(notes) <= 2:
        return notes
    names = [n.split("=", 1)[0].removeprefix("link parameter ") for n in notes]
    return [f"{len(notes)} values of this link were not understood and were ignored "
            f"({', '.join(names)}); the rest of the link was applied."]


def build_context() -> tuple[common.Context, list[str]]:
    """Draw the sidebar and return this run's Context with the errors to show above the page."""
    errors: list[str] = []
    notes: list[str] = link_notes(st.session_state.pop("_link_notes", []))
    presenter = st.sidebar.toggle("Presenter mode", key="presenter",
                                  help="Larger text for a projector; hides the upload, model "
                                       "and merge controls (their values stay).")
    st.html(PRESENTER_CSS if presenter else NARROW_CSS)
    st.sidebar.caption("The address bar links to this view (page, sample image, knobs): copy "
                       "it to share." + (" An uploaded image is not part of the link."
                                         if st.session_state.get("img_source") == "upload"
                                         else ""))
    common.lesson_ui()
    image, image_key, label, truth = image_ui(errors, notes, presenter)
    # A photo accepted on this run (never after a rejected file: its error is in `errors`).
    is_photo = image_key.startswith(("upload:", "photo:")) and not errors
    model, model_key, desc, arch_cfg, arch_note = model_ui(errors, presenter)
    knobs = knobs_ui(model, (image.size[1], image.size[0]), presenter)
    if truth is not None and not {t["name"] for t in truth} <= set(model.names):
        # A generated scene's objects are pictogram classes: they are no truth for a model
        # with other classes (Faces, an uploaded checkpoint); the pages then rank nothing.
        notes.append(f"The scene's objects ({', '.join(sorted({t['name'] for t in truth}))}) "
                     f"are not among {desc}'s classes: no ground truth to compare with.")
        truth = None
    photo_truth = None
    if image_key.startswith("photo:"):  # hand-drawn boxes, for a model that knows their classes
        photo_truth = common.photo_truth(int(image_key.split(":")[1]))
        if photo_truth is not None and not {t["name"] for t in photo_truth} <= set(model.names):
            photo_truth = None
    ctx = common.Context(model=model, model_key=model_key, model_desc=desc, arch_cfg=arch_cfg,
                         arch_note=arch_note, image=image, image_key=image_key,
                         image_label=label, truth=truth, knobs=knobs, notes=notes,
                         photo_truth=photo_truth, is_photo=is_photo)
    return ctx, errors
