"""Shareable views: the app's page, sample image and knobs <-> URL query parameters.

A teacher copies the address bar and students open exactly that view. encode() turns the
sidebar's state into short query parameters; decode() turns parameters back into the values
the sidebar's widgets hold, validating each one: a bad value is left out with a note for the
user, never an exception (a link may be hand-edited or truncated). Streamlit-free;
app.py reads and writes st.query_params with these two functions.

    ?page=scales&img=gallery&g=3 (or img=photo&p=1)&model=imagenet&scales=0,2,4&flips=0&fine=1&rule=aspect&topk=2&min=0.1
     &score=literal&tl=60&tc=0.4&byclass=1&avg=plain&present=1
     &dconf=30&bscore=0.35&iou=0.5   (the Detection and Greedy vs NMS pages' own controls)
     &cls=12&step=40&oscale=3&orow=4&ocol=7 ...   (what each page shows: see PARAMS)

PARAMS is the one table of the app's state: session key, URL name (or none: kept across pages,
not linked), type, range and default; it drives the link, the defaults of a new session and
what is kept across pages. A page's own range (the number of merge steps, the fine map's size) is not known here; the page clamps a
linked value into it (app_pages.common.clamp_state).
"""

from __future__ import annotations

import logging
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from ..compare import DEFAULT_MIN_SUPPORT, DEFAULT_NMS_IOU, SUPPORT_STEPS
from ..detection import CONFIDENCE_STEPS, DEFAULT_MIN_CONFIDENCE
from ..experiments import RECOMPUTE_IMAGES
from ..merge import AVERAGES, SCORES
from ..models.registry import CARDS, MODEL_NAMES
from ..multiscale import N_SCALES, SCALE_RULES
from .state import PHOTOS, Knobs

# The default page names (app.py passes the pages it actually registers).
# The lesson's order (issue 27: the inference story, then training): the pages' Previous / Next.
LESSON = ("overview", "architecture", "scales", "offsets", "regressor", "merge", "detection",
          "compare", "experiments", "efficiency", "training")
PAGES = LESSON + ("glossary",)
SOURCES = ("gallery", "generate", "photo")  # an upload or a camera photo cannot travel in a link
# The sidebar's model choices a link may carry (a checkpoint file cannot travel in a link):
# "default" is the shipped pictogram checkpoint, the others the registry's pretrained nets.
MODELS = ("default",) + tuple(n for n in MODEL_NAMES if n != "pictogram")
N_PHOTOS = len(PHOTOS)  # the sample photos of state.PHOTOS
# The minimum score of a final box on the pages that count boxes by their probability-like
# score (a model whose card sets min_box_score: the Detection and Greedy vs NMS pages). Every
# card's own default is one of the steps.
BOX_SCORE_STEPS = tuple(sorted({0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9} | {
    c.min_box_score for c in CARDS.values() if c.min_box_score is not None}))
SEED_MAX = 10**6
DEFAULT_SCENE = 3  # state.GALLERY[3]: det scene 1 (seed 7); a test checks its answer
MERGE_JUMPS = (1, 5, 20, 100, 500)
MERGE_VIEWS = ("corrected", "literal", "both")  # the Merge page's figure: one score or both
COLOUR_SCALES = ("absolute", "stretch")  # the Merge page's steps per click / tick


PAGE_DEFAULT = object()  # a Param whose default the page computes (the image's top class...)


@dataclass(frozen=True)
class Param:
    """One setting of the app's state: session-state key, URL name (None: kept across pages
    but not carried by a link), kind, valid values and the value a new session starts with."""

    key: str
    name: str | None
    kind: str  # "int", "float", "flag", "choice" or "ints" (comma-separated)
    lo: float = 0
    hi: float = 0
    options: tuple = ()
    grid: float | None = None  # floats snap to this step (the slider's own grid)
    default: object = PAGE_DEFAULT
    # Choices the session may hold that a link does not carry (an uploaded checkpoint).
    session_only: tuple = ()


_K = Knobs()  # the sidebar's defaults: evaluate's settings (overfeat.app.state.Knobs)
BIG = 10**7  # upper bound for counts whose real range only the page knows
# In decode order (a bad value's note names them in this order).
PARAMS = (
    # The first screen: det scene 1 (three objects), on which the default answer is right and
    # greedy and NMS differ (issue 27). hi: the gallery's size, given to decode().
    Param("gallery", "g", "int", 0, None, default=DEFAULT_SCENE),
    Param("scene_seed", "seed", "int", 0, SEED_MAX, default=0),
    Param("scene_kind", "kind", "choice", options=("loc", "det"), default="det"),
    Param("photo", "p", "int", 0, N_PHOTOS - 1, default=0),
    Param("model_source", "model", "choice", options=MODELS, default="default",
          session_only=("upload", "preset", "trained")),
    Param("scales", "scales", "ints", 0, N_SCALES - 1, default=list(_K.scales)),
    Param("flips", "flips", "flag", default=_K.flips),
    Param("fine", "fine", "flag", default=_K.fine),
    Param("by_class", "byclass", "flag", default=_K.by_class),
    Param("rule", "rule", "choice", options=SCALE_RULES, default=_K.rule),
    Param("top_k", "topk", "int", 1, 5, default=_K.top_k),
    Param("min_score", "min", "float", 0.0, 1.0, grid=0.01, default=_K.min_score),
    Param("score", "score", "choice", options=SCORES, default=_K.score),
    Param("t_literal", "tl", "float", -1e9, 1e9, default=_K.t_literal),
    Param("t_corrected", "tc", "float", -1e6, 1e6, default=_K.t_corrected),
    Param("average", "avg", "choice", options=AVERAGES, default=_K.average),
    Param("det_min_conf", "dconf", "float", 0.0, 500.0, options=CONFIDENCE_STEPS,
          default=DEFAULT_MIN_CONFIDENCE),
    # The page computes the default: the model's card's min_box_score (set with the model).
    Param("min_box_score", "bscore", "float", 0.0, 1.0, options=BOX_SCORE_STEPS),
    Param("cmp_iou", "iou", "float", 0.05, 0.95, grid=0.05, default=DEFAULT_NMS_IOU),
    Param("cmp_min_support", "support", "float", 0.0, 500.0, options=SUPPORT_STEPS,
          default=DEFAULT_MIN_SUPPORT),
    Param("presenter", "present", "flag", default=False),
    # Heat maps: one absolute 0-1 probability scale for every class and scale (comparable),
    # or stretched to the shown class's own range (issue 27).
    Param("colour_scale", "colour", "choice", options=COLOUR_SCALES, default="absolute"),
    # What each page shows (page controls): the class, the Scales flip, the Offsets view and
    # cell, the Regressor's filters and picked box, the Merge step and its view.
    Param("cls", "cls", "int", 0, 999),
    Param("scales_flip", "sflip", "flag", default=False),
    # The Scales page's picked cell, whose window is drawn: its scale, (a pyramid net's) level,
    # row and column; the page starts at the class's best cell and clamps a linked one.
    Param("scales_at", "sat", "int", 0, N_SCALES - 1),
    Param("scales_level", "slevel", "int", 0, 9),
    Param("scales_row", "srow", "int", 0, BIG),
    Param("scales_col", "scol", "int", 0, BIG),
    Param("off_scale", "oscale", "int", 0, N_SCALES - 1),
    Param("off_flip", "oflip", "flag", default=False),
    Param("off_channel", "och", "int", 0, BIG),
    Param("off_row", "orow", "int", 0, BIG),
    Param("off_col", "ocol", "int", 0, BIG),
    Param("off_band", "oband", "int", 0, BIG),  # the Fig. 3 strip's first row
    # The Architecture page's layer view: the scale, the layer shown larger, the output map
    # and the traced cell (issue 27: every view setting in the link).
    Param("arch_scale", "ascale", "int", 0, N_SCALES - 1),
    Param("arch_layer", "alayer", "int", 0, 999),
    Param("arch_out", "aout", "int", 0, 999),
    Param("arch_row", "arow", "int", 0, BIG),
    Param("arch_col", "acol", "int", 0, BIG),
    # Sections drawn only while open (expanders whose state is a view setting): the
    # Architecture page's traced cell and tables, the Offsets page's Fig. 3 strip and
    # differences, Detection's background class.
    Param("arch_sizes_open", "asizes", "flag", default=False),
    Param("arch_trace_open", "atrace", "flag", default=False),
    Param("off_strip_open", "ofig3", "flag", default=False),
    Param("off_diffs_open", "odiffs", "flag", default=False),
    Param("det_bg_open", "dbg", "flag", default=False),
    # The sidebar's window filter and merge knobs (folded: app_pages/sidebar.merge_knobs_ui).
    Param("knobs_open", "knobs", "flag", default=False),
    Param("reg_scales", "rscales", "ints", 0, N_SCALES - 1),
    Param("reg_offsets", "roffs", "ints", -1, 8),  # -1: offsets off (the fine stride)
    Param("reg_classes", "rcls", "ints", 0, 999),
    Param("reg_all", "rall", "flag", default=False),
    Param("reg_pick", "rpick", "int", 0, BIG),
    Param("merge_step", "step", "int", 0, BIG, default=0),
    Param("merge_jump", "jump", "int", 1, 500, options=MERGE_JUMPS, default=1),
    Param("merge_all", "mall", "flag", default=False),
    Param("merge_n_final", "nfinal", "int", 1, 50, default=5),
    # The Merge page's main figure (the page's default: the sidebar's match score), its class
    # filter (-1: every class) and the chart of every step's score (issue 27).
    Param("merge_view", "mview", "choice", options=MERGE_VIEWS),
    Param("merge_class", "mcls", "int", -1, 999, default=-1),
    Param("merge_chart", "mchart", "flag", default=False),
    # Kept across pages, not in a link: a checkpoint path, the preset, experiment and
    # training settings (a link should not start a training run or a long recomputation).
    Param("preset", None, "choice", default="demo"),  # options: config.PRESETS' names
    Param("app_ckpt", None, "choice"),  # a path: the sidebar checks it against the runs
    Param("exp_n", None, "int", 1, 200, default=RECOMPUTE_IMAGES),
    Param("eff_scale", None, "int", 0, N_SCALES - 1),
    # Training: the Training page's widget ranges (overfeat.app.jobs.JobSpec checks a run).
    Param("train_stages", None, "ints", 1, 3, default=[1]),
    Param("train_epochs", None, "int", 1, 20, default=1),
    Param("train_scenes", None, "int", 2, 500, default=12),
    Param("train_kind", None, "choice", options=("loc", "det"), default="det"),
    Param("train_width", None, "float", 0.03125, 0.25, default=0.0625),
)
LINKED = tuple(p for p in PARAMS if p.name is not None)
# The session keys a link carries: the image source and every linked PARAMS key.
SHARED_KEYS = ("img_source",) + tuple(p.key for p in LINKED)
# Every key the app keeps across pages (Streamlit drops a widget's key when its page is not
# drawn; app.py writes these back on every run).
KEPT_KEYS = ("img_source",) + tuple(p.key for p in PARAMS)


def defaults() -> dict:
    """The value each setting starts with in a new session (those the page does not compute);
    lists are fresh copies, so a session cannot change another's defaults."""
    return {"img_source": "gallery"} | {
        p.key: list(p.default) if isinstance(p.default, list) else p.default
        for p in PARAMS if p.default is not PAGE_DEFAULT}
# Keys encoded only with their image source.
_SOURCE_KEYS = {"gallery": "gallery", "scene_seed": "generate", "scene_kind": "generate",
                "photo": "photo"}


BY_KEY = {p.key: p for p in PARAMS}
log = logging.getLogger(__name__)
_logged: set[tuple[str, str]] = set()  # (key, type of the bad value): each logged once


def check(p: Param, v, n_gallery: int | None = None):
    """The canonical value of setting p (a bool, an int, a float, a str or a sorted list of
    ints), or ValueError naming what was expected and what came.

    Session state is written by widgets, callbacks and links; a widget whose options or
    labels changed between runs can hand back its display text instead of an option
    (issue 25: the class picker's 'ox (0.103)' reached the int key `cls`). Everything that
    reads the state through this table (the link, clean_state) sees only valid values.
    Bools are not ints here and ints are not bools: a flag's True is never a class 1."""
    hi = (n_gallery - 1 if n_gallery is not None else math.inf) if p.hi is None else p.hi
    if p.kind == "flag":
        if isinstance(v, bool) or (isinstance(v, numbers.Integral) and v in (0, 1)):
            return bool(v)
        raise ValueError(f"{p.key}: expected True or False, got {v!r}")
    if p.kind == "choice":
        if isinstance(v, str) and (not p.options or v in p.options + p.session_only):
            return v
        raise ValueError(f"{p.key}: expected one of {', '.join(p.options) or 'a text'}, got {v!r}")
    if p.kind == "ints":
        if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
            raise ValueError(f"{p.key}: expected a list of indices, got {v!r}")
        xs = list(v)
        if any(isinstance(x, bool) or not isinstance(x, numbers.Integral) or not p.lo <= x <= hi
               for x in xs):
            raise ValueError(f"{p.key}: expected indices {p.lo}..{hi}, got {v!r}")
        return sorted({int(x) for x in xs})
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ValueError(f"{p.key}: expected a number, got {v!r}")
    if not math.isfinite(v):
        raise ValueError(f"{p.key}: expected a finite number, got {v!r}")
    if p.kind == "int":
        if v != int(v):
            raise ValueError(f"{p.key}: expected an integer, got {v!r}")
        v = int(v)
    else:
        v = float(v)
    if not p.lo <= v <= hi:
        raise ValueError(f"{p.key}: expected {p.lo}..{hi}, got {v!r}")
    if p.options and v not in p.options:
        raise ValueError(f"{p.key}: expected one of {', '.join(map(str, p.options))}, got {v!r}")
    if p.grid:  # onto the slider's grid, as a link is read (decode): 0.125 is 0.12 both ways
        v = round(round(v / p.grid) * p.grid, 2)
    return v


def clean_state(state: Mapping, n_gallery: int | None = None) -> dict:
    """{key: replacement} for every PARAMS key of `state` whose value is invalid: its default,
    or None where the page computes the default (the caller then drops the key). Each kind of
    bad value is logged once per server (a warning, not a traceback)."""
    fixes = {}
    for key, v in state.items():
        p = BY_KEY.get(key)
        if p is None or v is None:
            continue
        try:
            check(p, v, n_gallery)
        except ValueError as e:
            d = p.default
            fixes[key] = None if d is PAGE_DEFAULT else (list(d) if isinstance(d, list) else d)
            if (key, type(v).__name__) not in _logged:
                _logged.add((key, type(v).__name__))
                log.warning("session value dropped back to its default: %s", e)
    return fixes


def _text(p: Param, v) -> str:
    """A valid value (check) as link text; floats exactly (shortest round-trip form)."""
    if p.kind == "flag":
        return "1" if v else "0"
    if p.kind == "ints":
        return ",".join(str(x) for x in v)
    if p.kind == "int":
        return str(v)
    if p.kind == "float":
        t = repr(float(v))
        return t[:-2] if t.endswith(".0") else t
    return str(v)


def encode(state: Mapping, page: str | None = None, n_gallery: int | None = None) -> dict[str, str]:
    """Query parameters for the view in `state` (the app's session-state keys, SHARED_KEYS).
    Keys that are missing are left out, and so are invalid values (check; logged once, never
    raised: the link is written on every run, and one bad value must not break every page);
    an uploaded image is not encoded (the link shows the gallery's default); the pictogram
    model and presenter mode off are the defaults."""
    q: dict[str, str] = {}
    if page:
        q["page"] = page
    src = state.get("img_source")
    if src in SOURCES:
        q["img"] = src
    for p in LINKED:
        v = state.get(p.key)
        if p.key in _SOURCE_KEYS and _SOURCE_KEYS[p.key] != src:
            continue
        if p.key == "photo" and src == "photo":
            v = v or 0
        if v is None or (p.key == "model_source" and v not in MODELS[1:]) or (
                p.key == "presenter" and not v):
            continue
        try:
            v = check(p, v, n_gallery)
        except ValueError as e:
            if (p.key, type(v).__name__) not in _logged:
                _logged.add((p.key, type(v).__name__))
                log.warning("left out of the link: %s", e)
            continue
        q[p.name] = _text(p, v)
    return q


def decode(params: Mapping, n_gallery: int,
           pages: tuple[str, ...] = PAGES) -> tuple[dict, str | None, list[str]]:
    """(session-state values, page or None, notes) from query parameters.

    params: {name: str or list of str} (st.query_params.to_dict() gives the last value of a
    repeated name). Every value is checked; a bad one is skipped and named in a note.
    Unknown names are ignored silently (other tools add their own, e.g. utm_*).
    pages: the page names the app has (the file names of app_pages/ it registers).
    """
    state: dict = {}
    notes: list[str] = []
    page = None

    def get(name: str) -> str | None:
        v = params.get(name)
        if isinstance(v, (list, tuple)):
            v = v[-1] if v else None
        return None if v is None else str(v).strip()

    def bad(name: str, value: str, why: str) -> None:
        notes.append(f"link parameter {name}={value!r} ignored: {why}")

    v = get("page")
    if v is not None:
        if v.lower() in pages:
            page = v.lower()
        else:
            bad("page", v, f"expected one of {', '.join(pages)}")
    v = get("img")
    if v is not None:
        if v in SOURCES:
            state["img_source"] = v
        else:
            bad("img", v, f"expected one of {', '.join(SOURCES)}")
    for p in LINKED:
        v = get(p.name)
        if v is None:
            continue
        x, why = _parse(p, v, n_gallery)
        if why is None:
            state[p.key] = x
        else:
            bad(p.name, v, why)
    return state, page, notes


def _parse(p: Param, v: str, n_gallery: int) -> tuple[object, str | None]:
    """(the value of link parameter p, None), or (None, why v is not one)."""
    hi = n_gallery - 1 if p.hi is None else p.hi
    if p.kind == "flag":
        if v.lower() in ("1", "true", "on", "yes"):
            return True, None
        if v.lower() in ("0", "false", "off", "no"):
            return False, None
        return None, "expected 1 or 0"
    if p.kind == "choice":
        return (v, None) if v in p.options else (None, f"expected one of {', '.join(p.options)}")
    if p.kind == "ints":
        try:  # "" is an empty choice (the sidebar's scales then says "choose at least one")
            xs = sorted({int(x) for x in v.split(",") if x.strip()})
            if (not xs and v.strip(", ")) or any(not p.lo <= x <= hi for x in xs):
                raise ValueError
            return xs, None
        except ValueError:
            return None, f"expected indices {p.lo}..{hi} separated by commas"
    kind = int if p.kind == "int" else float
    try:
        x = kind(v)
    except ValueError:
        return None, f"expected {'an integer' if kind is int else 'a number'}"
    if not p.lo <= x <= hi or x != x:  # x != x: NaN
        return None, f"expected {p.lo}..{hi}"
    if p.options and x not in p.options:
        return None, f"expected one of {', '.join(map(str, p.options))}"
    return (round(round(x / p.grid) * p.grid, 2) if p.grid else x), None


# --- lesson views: named links a teacher saves and opens in order (issue 27) -------------------
MAX_LESSON_VIEWS = 30
_LESSON_LINE = re.compile(r"^\s*(?:\d+[.)]\s*)?(?:\[(?P<md>[^\]]*)\]\((?P<mdurl>[^)\s]+)\)"
                          r"|(?P<name>.*?)\s*\|\s*(?P<url>\S+))\s*$")


def view_url(base: str, page: str, query: Mapping[str, str]) -> str:
    """The link to a view: the app's base URL, the page's path (none for the Overview) and
    the query. base: the app's root URL (with or without a trailing slash)."""
    path = "" if page in (None, "", "overview") else page
    return f"{base.rstrip('/')}/{path}?{urlencode(dict(query))}"


def lesson_markdown(views: list[tuple[str, str]]) -> str:
    """A lesson's views as a numbered Markdown list of named links (what the teacher downloads
    and pastes back)."""
    return "\n".join(f"{i}. [{name.replace('[', '(').replace(']', ')')}]({url})"
                     for i, (name, url) in enumerate(views, 1)) + ("\n" if views else "")


def parse_lesson(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Named links from pasted text: lines "1. [name](url)" (lesson_markdown's) or
    "name | url"; blank lines are skipped. -> (views, one-line errors for the other lines). A
    view's link must carry a query this app reads (checked again when it is opened)."""
    views, errors = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LESSON_LINE.match(line)
        url = m and (m.group("mdurl") or m.group("url"))
        name = m and (m.group("md") if m.group("mdurl") else m.group("name"))
        if not url or "?" not in url:
            errors.append(f"line {n}: not a named link ('[name](link)' or 'name | link'): "
                          f"{line.strip()[:60]!r}")
            continue
        if len(views) >= MAX_LESSON_VIEWS:
            errors.append(f"line {n}: a lesson holds at most {MAX_LESSON_VIEWS} views")
            break
        views.append(((name or "").strip() or f"view {len(views) + 1}", url))
    return views, errors


def link_query(url: str) -> dict[str, str]:
    """The query parameters of a link (the last value of a repeated name)."""
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}
