"""The whole analysis of one image as plain JSON (the app's "Download the analysis" button).

analysis_dict() keeps what a student needs to redo the paper's steps elsewhere: the scale
sizes, every view's spatial-max scores (paper §3.3), the final class ranking, the top-k classes per
scale (merge step a), every raw box with its provenance (paper §4.2), a summary of each greedy
merge's trace (paper §4.3) and its final boxes. Large maps (features, class maps) are left out:
they are recomputed in seconds from the image and the settings recorded here. A pyramid net's
views and raw boxes carry their level and stride (one view per scale, flip and level).

The pages' provenance tables come from here too (box_rows: a raw box's scale, flip, offset or
stride, cell and window; final_box_rows: a final box's summed confidence beside its score).
"""

from __future__ import annotations

import json

import torch

from ..merge import MergeResult
from ..multiscale import Analysis, BoxTable
from ..predict import detections
from . import state as appstate
from .state import offset_label


def level_strides(analysis: Analysis) -> dict[int, int]:
    """{level: stride (px, resized input)} of the analysis' views; one entry (level 0) for a
    net with one map per input."""
    return {v.level: v.stride for v in analysis.views}


def box_rows(table: BoxTable, idx, class_names, k: int,
             strides: dict[int, int] | None = None) -> list[dict]:
    """A table row per raw box (its provenance, paper section 4.2; overfeat.app.state.box_rows),
    in the order of idx. strides: a pyramid net's {level: stride}; its rows then give the stride
    of the box's map instead of an offset (it has none)."""
    rows = appstate.box_rows(table, idx, class_names, k)
    if not strides or len(strides) < 2:
        return rows
    out = []
    for i, r in zip(idx.tolist() if isinstance(idx, torch.Tensor) else list(idx), rows):
        row = {}
        for key, v in r.items():
            if key == "offset":
                row["stride"] = strides[int(table.level[i])]
            else:
                row[key] = v
        out.append(row)
    return out


def keep_levels(table: BoxTable, idx: torch.Tensor, levels) -> torch.Tensor:
    """The indices of idx whose box comes from one of these levels (a pyramid's stride filter)."""
    idx = torch.as_tensor(idx, dtype=torch.long)
    return idx[torch.isin(table.level[idx], torch.tensor(list(levels), dtype=torch.long))]


def final_box_rows(dets: list) -> list[dict]:
    """A table row per final box (overfeat.app.state.detection_rows) with its probability-like
    score beside the summed confidence, when the merge gave one (MergeResult.final.score)."""
    rows = appstate.detection_rows(dets)
    if not dets or all(d.score is None for d in dets):
        return rows
    out = []
    for d, r in zip(dets, rows):
        row = {}
        for key, v in r.items():
            row[key] = v
            if key == "confidence":
                row["score"] = None if d.score is None else round(d.score, 3)
        out.append(row)
    return out

FORMAT = "overfeat-analysis/1"


def _r(x: float, n: int = 4) -> float:
    return round(float(x), n)


def analysis_dict(analysis: Analysis, merges: dict[str, MergeResult], image: str = "",
                  model: str = "") -> dict:
    """A JSON-ready dict of `analysis` and its merges ({"literal": MergeResult, ...}).

    Boxes are [x1, y1, x2, y2] in original-image pixels (1 decimal); scores 4 decimals.
    Counts: len(out["raw_boxes"]) == len(analysis.table), len(out["views"]) ==
    len(analysis.views) (a pyramid net: one per scale, flip and level; out["inputs"] counts the
    (scale, flip) inputs), len(out["merges"][kind]["final_boxes"]) == len(merge.final), each
    final box with its "score" where the merge gave one.
    """
    a, t = analysis, analysis.table
    names = a.class_names
    s = a.settings
    strides = level_strides(a)
    views = []
    for v in a.views:
        sm = v.spatial_max
        views.append({"scale": v.scale + 1, "flip": bool(v.flip), "level": v.level,
                      "size": list(v.size), "stride": v.stride,
                      "fine_map": list(v.fine.shape[-2:]),
                      "spatial_max": {names[c]: _r(sm[c]) for c in a.object_classes}})
    raw = []
    for i in range(len(t)):
        level = int(t.level[i])
        raw.append({"id": i, "class": names[int(t.labels[i])], "score": _r(t.scores[i]),
                    "box": [_r(x, 1) for x in t.boxes[i].tolist()],
                    "window": [_r(x, 1) for x in t.windows[i].tolist()],
                    "scale": int(t.scale[i]) + 1, "flip": bool(t.flip[i]),
                    "offset": offset_label(int(t.offset[i]), a.k),
                    "level": level, "stride": strides.get(level),
                    "cell": [int(t.row[i]), int(t.col[i])]})
    merges_out = {}
    for kind, r in merges.items():
        merges_out[kind] = {
            "match_score": r.score_kind, "threshold": r.threshold, "input_boxes": len(r.boxes),
            "steps": r.n_steps,
            "step_scores": {"first": _r(r.step_scores[0], 6) if r.n_steps else None,
                            "last": _r(r.step_scores[-1], 6) if r.n_steps else None},
            "stop_score": None if r.stop_score is None else _r(r.stop_score, 6),
            "final_boxes": [d.to_dict() for d in detections(a, r)],
        }
    return {
        "format": FORMAT, "image": image, "model": model,
        "image_size": {"height": a.image_size[0], "width": a.image_size[1]},
        "settings": {"scales": [x + 1 for x in s.scales], "flips": s.flips, "fine": s.fine,
                     "rule": s.rule, "top_k": s.top_k, "min_score": s.min_score},
        "window": a.window, "k": a.k, "strides": [strides[lv] for lv in sorted(strides)],
        "inputs": a.n_views,
        "scale_sizes": [list(hw) for hw in a.sizes],
        "views": views,
        "top_classes": [{"class": names[c], "score": _r(sc)} for c, sc in a.top(5)],
        "top_k_per_scale": {str(sc + 1): [names[c] for c in cs]
                            for sc, cs in sorted(a.top_classes.items())},
        "raw_boxes": raw,
        "merges": merges_out,
    }


def analysis_json(analysis: Analysis, merges: dict[str, MergeResult], image: str = "",
                  model: str = "") -> str:
    """analysis_dict() as indented JSON text (what the download button serves)."""
    return json.dumps(analysis_dict(analysis, merges, image, model), indent=1)
