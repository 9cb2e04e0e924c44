"""OverFeat, step by step: the entry file. It builds the navigation and the sidebar every page
shares (image, model, knobs); the pages in app_pages/ read the choices from common.context().
The page, the sample image and the knobs live in the URL's query parameters (overfeat.share),
so the address bar is a link to the same view; presenter mode enlarges the text for a class.

    streamlit run app.py
"""

from __future__ import annotations

import streamlit as st

from overfeat import appstate, share, zoo
from overfeat.checkpoint import CheckpointError
from overfeat.config import PRESETS
from overfeat.geometry import meta_model
from overfeat.images import ImageError
from overfeat.merge import AVERAGES, SCORES
from overfeat.multiscale import ALL_SCALES, SCALE_RULES, scale_sizes
from app_pages import common

st.set_page_config(page_title="OverFeat, step by step", page_icon=":mag:", layout="wide")

# The app's state is one table, overfeat.share.PARAMS (key, link name, type, range, default):
# a new session starts from its defaults, and every key is written back on each run, since
# Streamlit drops a widget's value while its page (or the sidebar branch holding it) is not
# drawn: a learner's choices stay when they come back to a page.
for _k, _v in share.defaults().items():
    st.session_state.setdefault(_k, _v)
for _k in share.KEPT_KEYS:
    if _k in st.session_state:
        st.session_state[_k] = st.session_state[_k]

SOURCES = {"gallery": "Sample scene", "photo": "Sample photo", "generate": "New scene from a seed",
           "upload": "Upload", "camera": "Camera"}
# Presenter mode: larger text everywhere (Streamlit sizes text in rem) and no modebar clutter.
PRESENTER_CSS = """<style>
html { font-size: 21px; }
[data-testid="stMarkdownContainer"] p,
[data-testid="stMarkdownContainer"] li { font-size: 1.15rem; }
[data-testid="stCaptionContainer"] { font-size: 1rem; }
h1 { font-size: 2.6rem !important; }
/* Buttons keep their whole label: smaller than the text and never cut to "Pre..." */
[data-testid="stBaseButton-secondary"] p, [data-testid="stBaseButton-primary"] p {
  font-size: 0.9rem; white-space: nowrap; overflow: visible; text-overflow: clip; }
[data-testid="stBaseButton-secondary"], [data-testid="stBaseButton-primary"] {
  padding-left: 0.3rem; padding-right: 0.3rem; min-width: max-content; }
/* Metric labels and switch labels wrap instead of being cut to "parameters (wh..." */
[data-testid="stMetricLabel"] *, [data-testid="stWidgetLabel"] * {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important; }
</style>"""
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif"]


def image_ui(errors: list[str], notes: list[str], presenter: bool = False):
    """The image every page analyses: (image, key, label, truth). Presenter mode hides the
    uploader (an uploaded image stays)."""
    sb = st.sidebar
    sb.header("Image")
    up = None if presenter else sb.file_uploader(
        "Upload an image (PNG, JPEG, WebP, BMP, GIF)", type=UPLOAD_TYPES, key="img",
        help="Any size; GIFs give their first frame.")
    if presenter and "img" in st.session_state:
        up = st.session_state["img"]
    if up is not None and st.session_state.get("_seen_upload") != up.file_id:
        st.session_state["_seen_upload"] = up.file_id
        st.session_state["img_source"] = "upload"  # a new upload becomes the image
        _suggest_imagenet()
    source = sb.radio("Image to analyse", list(SOURCES), key="img_source",
                      format_func=SOURCES.get)
    if source == "camera":
        up = None if presenter else sb.camera_input("Take a photo", key="cam",
                                                     help="Your browser asks for the camera.")
        if presenter and "cam" in st.session_state:
            up = st.session_state["cam"]
        if up is not None and st.session_state.get("_seen_cam") != up.file_id:
            st.session_state["_seen_cam"] = up.file_id
            _suggest_imagenet()
        source = "upload" if up is not None else "camera"
        if up is None:
            notes.append("No photo taken yet: showing the sample scene.")
    if source == "photo":
        i = sb.selectbox("Sample photo", range(len(appstate.PHOTOS)), key="photo",
                         format_func=appstate.photo_label,
                         help="Real photos shipped with the app (sources in the README).")
        st.session_state["_last_good"] = (common.sample_photo(i), f"photo:{i}",
                                          f"photo {appstate.photo_label(i)}", None)
        return st.session_state["_last_good"]

    chosen = None
    if source == "upload":
        # The last good upload is kept apart from _last_good: replacing a file in the browser
        # runs the script once with no file (the sample scene), then with the new file.
        last = st.session_state.get("_last_upload")
        if up is None and presenter and last is not None:
            return last  # presenter mode hides the uploader: the uploaded image stays
        if up is None:
            notes.append("No image uploaded yet: showing the sample scene.")
        else:
            data = up.getvalue()
            key = "upload:" + appstate.digest(data)
            try:
                im, note = common.decode_upload(key, data, up.name)
                chosen = (im, key, f"upload {up.name}", None)
                st.session_state["_last_upload"] = chosen
                if note:
                    notes.append(f"{up.name}: {note}.")
            except ImageError as e:
                errors.append(str(e))
                last = st.session_state.get("_last_upload") or st.session_state.get("_last_good")
                if last is not None:
                    notes.append(f"Still showing the previous image: {last[2]}.")
                    return last
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


def _suggest_imagenet() -> None:
    """A new photo while the pictogram model is chosen: offer the ImageNet model (a photo is
    rarely made of pictograms)."""
    if st.session_state.get("model_source", "default") == "default":
        st.session_state["_suggest_imagenet"] = True


def _use_model(name: str) -> None:
    st.session_state["model_source"] = name
    st.session_state.pop("_suggest_imagenet", None)


def _scene(kind: str, seed: int, index: int, label: str):
    im, objects = common.scene(kind, seed, index)
    return im, f"scene:{kind}:{seed}:{index}", label, objects


def model_ui(errors: list[str], presenter: bool = False):
    """(model, key, description, cfg for the Architecture page, note). Presenter mode keeps
    the model chosen before and hides the choice."""
    sb = st.sidebar
    sb.header("Model")
    stamp = common.checkpoint_stamp()
    labels = {"default": zoo.CARDS["pictogram"].label if stamp is not None
              else "Default (no trained checkpoint yet)",
              "imagenet": zoo.CARDS["imagenet"].label, "faces": zoo.CARDS["faces"].label,
              "upload": "Upload a checkpoint", "preset": "Untrained preset"}
    trained = common.app_checkpoints()
    if trained:
        labels["trained"] = "Trained in the app"
    if st.session_state["model_source"] not in labels:
        st.session_state["model_source"] = "default"
    if presenter:
        source = st.session_state["model_source"]
    else:
        source = sb.radio("Model", list(labels), key="model_source", format_func=labels.get)
    model, desc = common.default_model(stamp)
    key = f"default:{stamp}"
    arch_cfg, arch_note = model.cfg, None
    if st.session_state.get("_knobs_for") != source:  # a model's own knob values (P-Net)
        st.session_state["_knobs_for"] = source
        for k, v in appstate.MODEL_KNOBS.get(source, {}).items():
            st.session_state[k] = v
    if source in ("imagenet", "faces"):
        try:
            model = common.zoo_model(source)
            key, desc, arch_cfg = f"zoo:{source}", zoo.CARDS[source].label, model.cfg
        except (FileNotFoundError, ValueError) as e:
            errors.append(f"{zoo.CARDS[source].label} cannot be loaded: {' '.join(str(e).split())}."
                          f" Using {desc} instead.")
    if source == "trained":
        paths = [p for p, _ in trained]
        names = dict(trained)
        if st.session_state.get("app_ckpt") not in paths:
            st.session_state["app_ckpt"] = paths[0]
        path = (st.session_state["app_ckpt"] if presenter else
                sb.selectbox("Run", paths, key="app_ckpt", format_func=names.get,
                             help="Checkpoints of the runs started on the Training page, "
                                  "newest first."))
        try:
            m, meta = common.trained_model(path, common.mtime(path))
            model, key, arch_cfg = m, f"app:{path}:{common.mtime(path)}", m.cfg
            desc = f"trained in the app: {names[path]}"
        except CheckpointError as e:
            errors.append(str(e) + f" Using {desc} instead.")
    if source == "upload":
        up = st.session_state.get("ckpt") if presenter else sb.file_uploader(
            "Checkpoint (.pt) saved by this project", type=["pt", "pth"], key="ckpt")
        kept = st.session_state.get("_last_ckpt")
        if up is None and presenter and kept is not None:
            (model, key, desc), arch_cfg = kept, kept[0].cfg  # the uploader is hidden
        if up is not None:
            data = up.getvalue()
            ck = "ckpt:" + appstate.digest(data)
            try:
                m, meta = common.uploaded_model(ck, data, up.name)
                arch_cfg = m.cfg
                if appstate.runnable(m.cfg):
                    model, key, desc = m, ck, f"uploaded checkpoint {up.name}"
                    st.session_state["_last_ckpt"] = (model, key, desc)
                else:
                    arch_note = (f"{up.name} is too big to run here ({appstate.describe(m.cfg)}): "
                                 f"the Architecture page shows it, the other pages run {desc}.")
            except CheckpointError as e:
                errors.append(str(e) + f" Using {desc} instead.")
    elif source == "preset":
        name = st.session_state["preset"] if presenter else sb.selectbox(
            "Preset", list(PRESETS), key="preset",
            help="Untrained: random weights, for exploring the architecture.")
        arch_cfg = PRESETS[name]
        if appstate.runnable(arch_cfg):
            model, key = common.preset_model(name), f"preset:{name}"
            desc = f"untrained '{name}' preset (random weights): scores and boxes are noise"
        else:
            arch_note = (f"The untrained '{name}' preset ({appstate.describe(arch_cfg)}) is "
                         f"shown on the Architecture page only: at full width one image at six "
                         f"scales with flips takes minutes on this 2-core CPU, and untrained it "
                         f"only shows noise. The other pages run {desc}.")
    if not getattr(model, "trained", True):
        sb.warning("No trained checkpoint yet: the model has random weights, so its scores "
                   "and boxes are noise (the geometry is exact).")
    sb.caption(appstate.describe(model.cfg))
    if source == "faces":
        sb.caption("Faces: min window score 0.6 and top-k 1 are set for this model (its windows "
                   "are 1 px apart: ~100,000 per photo).")
    return model, key, desc, arch_cfg, arch_note


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
    scales = sb.pills("Scales", list(ALL_SCALES), selection_mode="multi", key="scales",
                      format_func=lambda s: f"{s + 1}: {sizes[s][0]}x{sizes[s][1]}",
                      help="Input sizes (height x width) of the six scales for this image.")
    # Side by side in the sidebar; one under the other in presenter mode, whose larger text
    # would cut the labels to "Fli..." and "Off...".
    c1, c2 = (sb, sb) if presenter else sb.columns(2)
    flips = c1.checkbox("Flips", key="flips", help="Also evaluate the mirrored image.")
    fine = c2.checkbox("Offsets", key="fine",
                       help="Offset max pooling: fine stride 12 px instead of 36 (paper §3.3, Fig. 3).")
    if presenter:
        top_k, min_score, score = ss["top_k"], ss["min_score"], ss["score"]
        t_lit, t_cor, by_class = ss["t_literal"], ss["t_corrected"], ss["by_class"]
        average = ss["average"]
    else:
        top_k, min_score, score, t_lit, t_cor, by_class, average = merge_knobs_ui()
    if not scales:
        sb.warning("Choose at least one scale: using all six meanwhile.")
        scales = list(ALL_SCALES)
    return appstate.Knobs(scales=tuple(scales), flips=flips, fine=fine, rule=rule,
                          top_k=int(top_k), min_score=float(min_score), score=score,
                          t_literal=float(t_lit), t_corrected=float(t_cor), by_class=by_class,
                          average=average)


def merge_knobs_ui():
    sb = st.sidebar
    top_k = sb.slider("top-k classes per scale", 1, 5, key="top_k",
                      help="Merge step (a): the boxes of these classes enter the merge.")
    min_score = sb.slider("min score of a window", 0.0, 1.0, step=0.01, key="min_score",
                          help="Boxes of windows whose class probability is lower are dropped.")
    score = sb.radio("Match score", SCORES, key="score", horizontal=True,
                     help="literal: centre distance + intersection area (the paper's words). "
                          "corrected: centre distance / mean box side - IoU.")
    c1, c2 = sb.columns(2)
    t_lit = c1.number_input("t (literal)", step=10.0, key="t_literal", format="%.1f")
    t_cor = c2.number_input("t (corrected)", step=0.05, key="t_corrected", format="%.2f")
    by_class = sb.checkbox("Merge within a class only", key="by_class",
                           help="The paper does not say; merging across classes is allowed "
                                "when unticked (the merged box takes the stronger label).")
    average = sb.radio("Box merge", AVERAGES, key="average", horizontal=True,
                       help="weighted: the merged box is the confidence-weighted mean of all "
                            "its raw boxes (project choice). plain: the average of the two "
                            "boxes, as the paper writes; a big cluster then moves halfway "
                            "towards every stray box it swallows.")
    return top_k, min_score, score, t_lit, t_cor, by_class, average


def page_name(p) -> str:
    """A page's name in links: its URL path ("" is the default page, the Overview)."""
    return p.url_path or "overview"


def restore_link(by_name: dict, current) -> None:
    """Once per session: the view a shared link describes (st.query_params) becomes the
    sidebar's state; bad values are skipped with a note; another page is switched to."""
    if st.session_state.get("_link_done"):
        return
    st.session_state["_link_done"] = True
    state, want, notes = share.decode(st.query_params.to_dict(), len(appstate.GALLERY),
                                      tuple(by_name))
    if state:  # a model's own knob values (appstate.MODEL_KNOBS), then the link's, which win
        model = state.get("model_source", "default")
        st.session_state["_knobs_for"] = model
        for k, v in appstate.MODEL_KNOBS.get(model, {}).items():
            st.session_state[k] = v
    for k, v in state.items():
        st.session_state[k] = v
    # Pages that reset a view setting for a new image or scale keep a linked one (once).
    st.session_state["_link_pending"] = set(state)
    st.session_state["_link_notes"] = notes
    if want is not None and want != page_name(current):
        st.switch_page(by_name[want])


def sync_link(current) -> dict:
    """Write the current view into the URL (the address bar becomes a shareable link)."""
    q = share.encode({k: st.session_state.get(k) for k in SHARED_KEYS}, page_name(current))
    if q != st.query_params.to_dict():
        st.query_params.from_dict(q)
    return q


SHARED_KEYS = share.SHARED_KEYS  # what a link carries: overfeat.share.PARAMS


def build_context() -> tuple[common.Context, list[str]]:
    errors: list[str] = []
    notes: list[str] = st.session_state.pop("_link_notes", [])
    presenter = st.sidebar.toggle("Presenter mode", key="presenter",
                                  help="Larger text for a projector; hides the upload, model "
                                       "and merge controls (their values stay).")
    if presenter:
        st.html(PRESENTER_CSS)
    st.sidebar.caption("The address bar links to this view (page, sample image, knobs): copy "
                       "it to share." + (" An uploaded image is not part of the link."
                                         if st.session_state.get("img_source") == "upload"
                                         else ""))
    image, image_key, label, truth = image_ui(errors, notes, presenter)
    model, model_key, desc, arch_cfg, arch_note = model_ui(errors, presenter)
    knobs = knobs_ui(model, (image.size[1], image.size[0]), presenter)
    ctx = common.Context(model=model, model_key=model_key, model_desc=desc, arch_cfg=arch_cfg,
                         arch_note=arch_note, image=image, image_key=image_key,
                         image_label=label, truth=truth, knobs=knobs, notes=notes)
    return ctx, errors


pages = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/route:", default=True),
    st.Page("app_pages/architecture.py", title="Architecture", icon=":material/account_tree:"),
    st.Page("app_pages/scales.py", title="Scales", icon=":material/zoom_in:"),
    st.Page("app_pages/offsets.py", title="Offsets", icon=":material/grid_on:"),
    st.Page("app_pages/regressor.py", title="Regressor", icon=":material/crop_free:"),
    st.Page("app_pages/merge.py", title="Merge", icon=":material/join_inner:"),
    st.Page("app_pages/training.py", title="Training", icon=":material/model_training:"),
    st.Page("app_pages/detection.py", title="Detection", icon=":material/select_all:"),
    st.Page("app_pages/compare.py", title="Greedy vs NMS", icon=":material/compare:"),
    st.Page("app_pages/experiments.py", title="Experiments", icon=":material/table_chart:"),
    st.Page("app_pages/efficiency.py", title="Efficiency", icon=":material/speed:"),
]
page = st.navigation(pages)
restore_link({page_name(p): p for p in pages}, page)
ctx, errors = build_context()
sync_link(page)
st.session_state[common.CTX_KEY] = ctx
st.caption(f"Model: **{ctx.model_desc}** · Image: **{ctx.image_label}** "
           f"({ctx.image.size[0]} wide x {ctx.image.size[1]} high)")
for msg in errors:
    st.error(msg)
for msg in ctx.notes + ([ctx.arch_note] if ctx.arch_note else []):
    st.info(msg)
if st.session_state.get("_suggest_imagenet") and ctx.model_key.startswith("default"):
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.info("A photo? The pictogram model knows only 20 drawn pictograms: the ImageNet model "
            "knows 1000 real-world classes (and Faces boxes faces).")
    c2.button("Use ImageNet", on_click=_use_model, args=("imagenet",), key="use_imagenet")
page.run()

# Prefetch: once the page is on screen, compute the two merges for the current settings, so
# that opening the Merge page later is instant (cached; a no-op when they already are).
if page.title != "Merge":
    for kind in ("literal", "corrected"):
        ctx.merge(kind)
