"""Shareable views: the app's page, sample image and knobs <-> URL query parameters.

A teacher copies the address bar and students open exactly that view. encode() turns the
sidebar's state into short query parameters; decode() turns parameters back into the values
the sidebar's widgets hold, validating each one: a bad value is left out with a note for the
user, never an exception (a link may be hand-edited or truncated). Streamlit-free (STYLE 9);
app.py reads and writes st.query_params with these two functions.

    ?page=scales&img=gallery&g=3 (or img=photo&p=1)&model=imagenet&scales=0,2,4&flips=0&fine=1&rule=aspect&topk=2&min=0.1
     &score=literal&tl=60&tc=0.4&byclass=1&avg=plain&present=1
     &dmin=0.3&dtopk=3&iou=0.5       (the Detection and Greedy vs NMS pages' own controls)
"""

from __future__ import annotations

from collections.abc import Mapping

from .merge import AVERAGES, SCORES
from .multiscale import SCALE_RULES

# The default page names (app.py passes the pages it actually registers).
PAGES = ("overview", "architecture", "scales", "offsets", "regressor", "merge", "training",
         "detection", "compare", "experiments", "efficiency")
SOURCES = ("gallery", "generate", "photo")  # an upload or a camera photo cannot travel in a link
# The sidebar's model choices a link may carry (a checkpoint file cannot travel in a link).
MODELS = ("default", "imagenet", "faces")
N_PHOTOS = 5  # the sample photos of appstate.PHOTOS (checked by a test)
SEED_MAX = 10**6


def encode(state: Mapping, page: str | None = None) -> dict[str, str]:
    """Query parameters for the view in `state` (the app's session-state keys: img_source,
    gallery, scene_seed, scene_kind and the Knobs fields; presenter). Keys that are missing
    are left out; an uploaded image is not encoded (the link shows the gallery's default)."""
    q: dict[str, str] = {}
    if page:
        q["page"] = page
    src = state.get("img_source")
    if src == "gallery":
        q["img"] = "gallery"
        if state.get("gallery") is not None:
            q["g"] = str(int(state["gallery"]))
    elif src == "photo":
        q["img"] = "photo"
        q["p"] = str(int(state.get("photo") or 0))
    elif src == "generate":
        q["img"] = "generate"
        q["seed"] = str(int(state.get("scene_seed", 0)))
        q["kind"] = str(state.get("scene_kind", "det"))
    if state.get("scales") is not None:
        q["scales"] = ",".join(str(int(s)) for s in sorted(state["scales"]))
    for key, name in (("flips", "flips"), ("fine", "fine"), ("by_class", "byclass")):
        if state.get(key) is not None:
            q[name] = "1" if state[key] else "0"
    if state.get("rule") is not None:
        q["rule"] = str(state["rule"])
    if state.get("top_k") is not None:
        q["topk"] = str(int(state["top_k"]))
    if state.get("min_score") is not None:
        q["min"] = f"{float(state['min_score']):g}"
    if state.get("score") is not None:
        q["score"] = str(state["score"])
    if state.get("t_literal") is not None:
        q["tl"] = f"{float(state['t_literal']):g}"
    if state.get("t_corrected") is not None:
        q["tc"] = f"{float(state['t_corrected']):g}"
    if state.get("average") is not None:
        q["avg"] = str(state["average"])
    if state.get("det_min_score") is not None:
        q["dmin"] = f"{float(state['det_min_score']):g}"
    if state.get("det_top_k") is not None:
        q["dtopk"] = str(int(state["det_top_k"]))
    if state.get("cmp_iou") is not None:
        q["iou"] = f"{float(state['cmp_iou']):g}"
    if state.get("model_source") in MODELS[1:]:
        q["model"] = str(state["model_source"])
    if state.get("presenter"):
        q["present"] = "1"
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

    def number(name: str, kind, lo, hi):
        v = get(name)
        if v is None:
            return None
        try:
            x = kind(v)
        except ValueError:
            bad(name, v, f"expected {'an integer' if kind is int else 'a number'}")
            return None
        if not lo <= x <= hi or x != x:  # x != x: NaN
            bad(name, v, f"expected {lo}..{hi}")
            return None
        return x

    def flag(name: str, key: str) -> None:
        v = get(name)
        if v is None:
            return
        if v.lower() in ("1", "true", "on", "yes"):
            state[key] = True
        elif v.lower() in ("0", "false", "off", "no"):
            state[key] = False
        else:
            bad(name, v, "expected 1 or 0")

    def choice(name: str, key: str, options) -> None:
        v = get(name)
        if v is None:
            return
        if v in options:
            state[key] = v
        else:
            bad(name, v, f"expected one of {', '.join(options)}")

    v = get("page")
    if v is not None:
        if v.lower() in pages:
            page = v.lower()
        else:
            bad("page", v, f"expected one of {', '.join(pages)}")

    choice("img", "img_source", SOURCES)
    g = number("g", int, 0, n_gallery - 1)
    if g is not None:
        state["gallery"] = g
    seed = number("seed", int, 0, SEED_MAX)
    if seed is not None:
        state["scene_seed"] = seed
    choice("kind", "scene_kind", ("loc", "det"))
    p = number("p", int, 0, N_PHOTOS - 1)
    if p is not None:
        state["photo"] = p
    choice("model", "model_source", MODELS)

    v = get("scales")
    if v is not None:
        try:
            scales = sorted({int(s) for s in v.split(",") if s.strip()})
            if not scales or any(not 0 <= s <= 5 for s in scales):
                raise ValueError
            state["scales"] = scales
        except ValueError:
            bad("scales", v, "expected scale indices 0..5 separated by commas")
    flag("flips", "flips")
    flag("fine", "fine")
    flag("byclass", "by_class")
    choice("rule", "rule", SCALE_RULES)
    top_k = number("topk", int, 1, 5)
    if top_k is not None:
        state["top_k"] = top_k
    m = number("min", float, 0.0, 1.0)
    if m is not None:
        state["min_score"] = round(m, 2)
    choice("score", "score", SCORES)
    t = number("tl", float, -1e9, 1e9)
    if t is not None:
        state["t_literal"] = t
    t = number("tc", float, -1e6, 1e6)
    if t is not None:
        state["t_corrected"] = t
    choice("avg", "average", AVERAGES)
    # The pages' sliders step by 0.05: a value off that grid would not be one of theirs.
    for name, key, lo, hi in (("dmin", "det_min_score", 0.0, 1.0), ("iou", "cmp_iou", 0.05, 0.95)):
        x = number(name, float, lo, hi)
        if x is not None:
            state[key] = round(round(x / 0.05) * 0.05, 2)
    k = number("dtopk", int, 1, 5)
    if k is not None:
        state["det_top_k"] = k
    flag("present", "presenter")
    return state, page, notes
