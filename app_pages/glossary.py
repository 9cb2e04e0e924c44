"""Glossary: every term the pages use, in one line, with its definition, the paper's section and
what it is on the current image and model (overfeat.glossary: the same lines are the pages'
tooltips)."""

import streamlit as st

from overfeat import glossary
from overfeat.app import export
from overfeat.app import state as appstate
from overfeat.predict import detections
from app_pages.common import context, is_phone, notice, show_code, table

ctx = context()


def _plain(text: str) -> str:
    """Text shown as is in Markdown (no emphasis, code or maths from its characters)."""
    for c in "\\*_`$[]<>~#|":
        text = text.replace(c, "\\" + c)
    return text


def phone_entry(t: glossary.Term, example: str) -> str:
    """One term as a block of Markdown lines (a phone's Glossary): the term and the paper's
    section, the one-line explanation, its value on this image, the pages that use it."""
    head = f"**{_plain(t.name)}**" + (f" · paper {_plain(t.section)}" if t.section else "")
    lines = [head, _plain(t.line)]
    if example:
        lines.append(f"*On this image:* {_plain(example)}")
    if t.pages:
        lines.append(f"*Pages:* {_plain(', '.join(t.pages))}")
    return "  \n".join(lines)


st.title("Glossary")
st.caption("Every term the pages use, in plain words, with what it is on this image "
           f"({ctx.image_label}, {ctx.model_desc}). The same one-line explanations appear as "
           "tooltips (the ? next to a setting) where a term is used.")

a = ctx.analysis()
info = appstate.pipeline_info(a, ctx.model)
answer = None
if info["regressor"]:
    r = ctx.merge(ctx.knobs.score)
    answer = export.final_box_rows(detections(a, r, 1)) or None
ex = glossary.examples(info, ctx.knobs, answer)

find = st.text_input("Find a term", key="gloss_find", placeholder="e.g. stride, IoU, support",
                     help="Filters the list by name or by words in the explanation.")
want = " ".join(find.split()).lower()
terms = [t for t in glossary.TERMS
         if not want or want in t.name.lower() or want in t.line.lower() or want in t.more.lower()]
if not terms:
    st.info(f"No term matches '{find.strip()}'. Clear the box to see all {len(glossary.TERMS)}.")
elif is_phone():
    # A phone (issue 27): five columns in 360 px left one word per line; one block per term
    # instead (one Markdown element for all of them: a page of 23 elements costs more).
    st.markdown("\n\n".join(phone_entry(t, ex.get(t.name, "")) for t in terms))
else:
    # (keyed: its sentences wrap in presenter mode, where other tables keep a line per cell)
    table([{"term": t.name, "in one line": t.line, "on this image": ex.get(t.name, ""),
            "paper": t.section or "", "pages": ", ".join(t.pages)} for t in terms],
          where=st.container(key="gloss_table"))
if terms:
    notice([f"{len(terms)} of {len(glossary.TERMS)} terms shown; each line is also the "
            "tooltip where the term is used.",
            f"On this image: {ex['views']} {ex['stride'].capitalize()}"])
    with st.expander("The definitions in full"):
        for t in terms:
            sec = f" *(paper, section {t.section})*" if t.section[:1].isdigit() else (
                f" *{t.section}*" if t.section else "")
            st.markdown(f"**{t.name}**: {t.more}{sec}")
show_code(glossary.help_for, glossary.examples)
