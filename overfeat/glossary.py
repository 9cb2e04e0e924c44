"""Plain words for the app's jargon: one table of terms, each with a one-line explanation (the
tooltip or caption where the term first appears on a page) and a longer definition (the
Glossary page, which adds a number from the current image).

The pages never write their own explanation of a term: they call `help_for(name)`, so the
tooltip on the Merge page and the Glossary's entry cannot drift apart. Section numbers are the
paper's (Sermanet et al., ICLR 2014).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    name: str  # as written on the pages
    line: str  # one line: the tooltip / caption
    more: str  # the Glossary's definition (a few sentences)
    section: str = ""  # the paper's section, where it has one
    pages: tuple[str, ...] = ()  # where the term is used (page titles)


TERMS: tuple[Term, ...] = (
    Term("window", "The input region one cell of the classifier map sees (221x221 px in the "
         "paper's fast model).",
         "The classifier was trained on 221x221 crops. Run over a larger image, every cell of "
         "its output map is the answer for one such window; neighbouring cells see windows "
         "shifted by the stride.", "3.3", ("Overview", "Scales", "Offsets")),
    Term("stride", "How far apart, in input pixels, two neighbouring windows are.",
         "The product of the network's pooling and convolution strides: 36 px for the fast "
         "model, 12 px with the offset trick (the 'fine' stride).", "3.3",
         ("Scales", "Offsets", "Efficiency")),
    Term("scale", "One size the whole image is resized to before the network runs on it.",
         "OverFeat runs the same network on 6 sizes of the image, so that small and large "
         "objects both fill a window at some scale.", "3.3", ("Scales", "Experiments")),
    Term("views", "The inputs the network sees: each scale, and its mirror image if flips "
         "are on.",
         "With 6 scales and horizontal flips the network runs on 12 views of one image; a "
         "class's score is averaged over them.", "3.3", ("Overview", "Scales", "Merge")),
    Term("flip", "The image mirrored left to right, run as a second view at every scale.",
         "The paper averages the predictions of each image and its horizontal flip.", "3.3",
         ("Scales", "Experiments")),
    Term("offset", "A shift (0, 1 or 2 pixels in x and y) of the last max-pool's grid; 3x3 "
         "offsets give 9 pooled maps.",
         "Pooling with a 3x3 window at stride 3 keeps every third position. Starting the pool at "
         "each of 3 offsets in x and 3 in y, and interleaving the 9 results, gives an output "
         "as dense as the map before pooling: the fine map.", "3.3, Fig. 3",
         ("Offsets", "Regressor")),
    Term("fine map", "The 9 offset-pooled maps interleaved: a classifier map with 3 times more "
         "cells in each direction (stride 12 instead of 36).",
         "The paper's answer to the coarse stride of a ConvNet: the same weights, the last pool "
         "applied at 3x3 offsets, the results woven together.", "3.3",
         ("Offsets", "Scales")),
    Term("a trous", "'With holes': skipping input positions, as the offset pooling does "
         "(each offset keeps every third pixel).",
         "The paper likens its offset pooling to the a trous algorithm of wavelet theory, which "
         "computes a dense result by running a strided filter at every shift.", "3.3",
         ("Offsets",)),
    Term("top-k", "Only the k most probable classes of the whole image get boxes.",
         "Localization (section 4) predicts boxes for the image's top classes; k = 1 for "
         "localization, more for detection.", "4.2", ("Regressor", "Merge")),
    Term("min score of a window", "A window proposes a box only if its class probability is "
         "at least this.",
         "The project's cut-off for raw boxes: a window with p(class) below it proposes no box "
         "(the paper keeps every window's box; without a cut-off thousands of near-zero boxes "
         "would enter the merge).", "(project choice)", ("Regressor", "Merge")),
    Term("raw box", "One box predicted by the regressor at one window, before any merging.",
         "Every window of every scale and view proposes one box per class; these are the "
         "boxes the greedy merge starts from.", "4.2", ("Regressor", "Merge")),
    Term("match score", "How different two boxes are: the merge joins the pair with the "
         "lowest score.",
         "The paper's match_score(b1, b2) is 'the sum of the distance between centers of the "
         "two bounding boxes and the intersection area of the boxes'.", "4.3", ("Merge",)),
    Term("literal match score", "centre distance + intersection area, as the paper writes it: "
         "pixels plus squared pixels, so overlapping boxes score HIGH.",
         "Read literally, the sum adds a distance (px) to an area (px^2): two boxes that "
         "overlap a lot get a large score and are not merged, which is the opposite of the "
         "intent.", "4.3", ("Merge",)),
    Term("corrected match score", "centre distance / mean box side - IoU: low when boxes are "
         "close and overlap.",
         "The project's reading of the intent: a unit-free distance minus the overlap (IoU), "
         "so near-identical boxes score about -1 and far-apart boxes score high.",
         "4.3 (project choice)", ("Merge",)),
    Term("t", "The merge stops when the best pair's match score is above t.",
         "The paper's threshold for the greedy merge; it does not give a value.", "4.3",
         ("Merge",)),
    Term("IoU", "Intersection over union: the overlap of two boxes, 0 (none) to 1 (the same "
         "box).",
         "Area of the intersection divided by the area of the union; a detection counts as "
         "correct if its IoU with a true box is at least 0.5.", "4.3", ("Merge", "Detection")),
    Term("confidence", "A merged box's summed window probabilities: it grows with the number "
         "of windows and views that saw the object.",
         "The paper ranks final boxes by 'the cumulated detection scores'; a sum, not a "
         "probability (hundreds on a scene with 12 views).", "4.3",
         ("Merge", "Detection", "Overview")),
    Term("score", "A merged box's probability-like score: the mean over views of its best "
         "window probability (0 to 1).",
         "A project choice shown beside the summed confidence: 1.0 means every view saw the "
         "object with certainty; it does not grow with the number of windows.",
         "(project choice)", ("Merge", "Detection", "Overview")),
    Term("support", "The summed class probability of the raw boxes behind a final box: about "
         "how many confident windows agree on it.",
         "The boxes merged into it (for the greedy merge, its confidence) or, for NMS, the kept "
         "box and those it suppressed. A box seen by many windows at many scales is more likely "
         "a real object; Greedy vs NMS counts only boxes with at least this support.",
         "4.3 (project choice)", ("Greedy vs NMS",)),
    Term("slot", "One of the regressor's class-specific output groups (4 numbers per class).",
         "The regressor has one 4-number output per class (x1, y1, x2, y2 of the box); the "
         "slot of class c is outputs 4c to 4c+3.", "4.2", ("Regressor", "Architecture")),
    Term("NMS", "Non-maximum suppression: keep the most confident box, drop boxes that overlap "
         "it by more than an IoU, repeat.",
         "The usual way to remove duplicate detections; the paper merges boxes instead of "
         "suppressing them.", "4.3 (for comparison)", ("Greedy vs NMS",)),
    Term("AP", "Average precision: the area under the precision-recall curve of one class.",
         "Precision (the share of boxes that are right) against recall (the share of objects "
         "found), as the confidence threshold goes down; mAP is the mean over classes.",
         "6", ("Detection", "Experiments")),
    Term("receptive field", "The input region a layer's cell depends on.",
         "Grows with every convolution and pooling layer; at the classifier it is the "
         "window.", "3.3", ("Architecture",)),
)

BY_NAME = {t.name: t for t in TERMS}


def help_for(name: str) -> str:
    """The one-line explanation of a term (KeyError for an unknown term: a typo in a page
    should fail its test, not show an empty tooltip)."""
    return BY_NAME[name].line


def describe(name: str) -> str:
    """The term's line and definition, with the paper's section."""
    t = BY_NAME[name]
    sec = f" (paper, section {t.section})" if t.section and t.section[0].isdigit() else (
        f" {t.section}" if t.section else "")
    return f"{t.line} {t.more}{sec}"


def _px(v) -> str:
    return f"{v:,} px"


def examples(info: dict, knobs, answer: list[dict] | None = None) -> dict[str, str]:
    """For each term, what it is on the current image and model (a number the Glossary page
    shows beside the definition). info: overfeat.app.state.pipeline_info of the analysis;
    knobs: the sidebar's Knobs; answer: the final boxes' rows (class, confidence, score,
    windows), best first, or None. Terms the model does not have say so."""
    H, W = info["image"]
    n_scales = len(info["sizes"])
    sizes = ", ".join(f"{w}x{h}" for h, w in info["sizes"])
    ex: dict[str, str] = {
        "scale": f"this image ({W} wide x {H} high) is run at {n_scales} scale(s) "
                 f"(width x height): {sizes}.",
        "IoU": "a detection is right at IoU >= 0.5 with a true object of its class (the VOC "
               "rule the Detection page uses).",
        "views": f"{info['inputs']} input(s): {n_scales} scale(s)"
                 + (" x 2 (flips)" if info["flips"] else ", no flips")
                 + (f"; {info['maps']} output maps (one per input and pyramid level)"
                    if info["maps"] != info["inputs"] else "") + ".",
        "flip": "on: every scale is also run mirrored." if info["flips"]
                else "off in the sidebar: each scale is run once.",
        "top-k": f"k = {knobs.top_k} here.",
        "min score of a window": f"{knobs.min_score:.2f} here.",
        "t": f"t = {knobs.t_corrected:g} (corrected), {knobs.t_literal:g} (literal) here.",
        "corrected match score": f"the merge stops once the best pair scores above "
                                 f"{knobs.t_corrected:g}.",
        "literal match score": f"the merge stops once the best pair scores above "
                               f"{knobs.t_literal:g}.",
    }
    if info["window"]:
        ex["window"] = f"{info['window']}x{info['window']} px for this model."
        ex["receptive field"] = (f"{info['window']}x{info['window']} px at the classifier "
                                 "(the window).")
    else:
        ex["window"] = "this model has no single window: each pyramid level's cells see " \
                       "their own region (strides " + ", ".join(map(str, info["strides"])) + ")."
    if info["pyramid"]:
        ex["stride"] = (f"{', '.join(map(str, info['strides']))} px here (one output map "
                        f"each); {info['windows']:,} windows in all.")
    else:
        ex["stride"] = (f"{_px(info['stride'])} here"
                        + (f" (coarse {info['coarse']} px, fine {info['prepool']} px)"
                           if info["offsets"] else "")
                        + f"; {info['windows']:,} windows in all.")
    if info["offsets"]:
        n = info["k"] ** 2
        ex["offset"] = f"{info['k']} x {info['k']} = {n} offsets here ({info['offset_kind']})."
        ex["fine map"] = (f"stride {info['prepool']} px instead of {info['coarse']} px"
                          if info["fine"] else "off in the sidebar: the coarse map only") + "."
        ex["a trous"] = f"each offset keeps every {info['k']}th position."
    else:
        why = "a feature pyramid" if info["pyramid"] else "no offset pooling"
        for t in ("offset", "fine map", "a trous"):
            ex[t] = f"this model has {why}: not used."
    if info["regressor"]:
        ex["raw box"] = f"{info['boxes']:,} raw boxes on this image at these settings."
        ex["slot"] = ("one 4-number slot per class" if info["per_class"]
                      else "this model's boxes are class-agnostic: one slot for all classes") + "."
    else:
        for t in ("raw box", "slot", "match score", "support", "confidence", "score", "NMS"):
            ex[t] = "this model predicts no boxes."
    if answer:
        b = answer[0]
        ex["confidence"] = (f"the top box ({b['class']}) has confidence {b['confidence']:,.1f} "
                            f"from {b['windows']:,} windows.")
        ex["support"] = (f"the top box ({b['class']}) has support {b['confidence']:,.1f}: "
                         f"the summed probabilities of its {b['windows']:,} windows.")
        ex["match score"] = (f"the {b['windows']:,} raw boxes behind the top box "
                             f"({b['class']}) were joined pair by pair, lowest score first.")
        if b.get("score") is not None:
            ex["score"] = f"the top box ({b['class']}) scores {b['score']:.2f}."
    if info["top"]:
        ex["AP"] = (f"this image's top class is {info['top'][0]} "
                    f"(p = {info['top'][1]:.2f}); the Detection page shows AP per class.")
    return ex
