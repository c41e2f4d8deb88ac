"""Text for the PDF's core fonts (Latin-1 only).

No TrueType font ships with cmio's dependencies and the product must not depend on the
operating system's fonts, so the PDF uses the standard Helvetica
(https://www.adobe.com/jp/print/postscript/pdfs/PLRM.pdf, standard 14 fonts), whose
encoding covers Latin-1. :func:`latin1` maps common typographic characters to ASCII
equivalents (``≤`` -> ``<=``, dashes -> ``-``, curly quotes -> straight quotes), strips
accents that Latin-1 lacks (``ő`` -> ``o``) and writes anything else as ``?``. The HTML
rendering keeps the full Unicode text.
"""

from __future__ import annotations

import unicodedata

__all__ = ["latin1"]

_REPLACEMENTS = {
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2260": "!=",
    "\u2248": "~",
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2010": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": ",",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2026": "...",
    "\u2022": "*",
    "\u2192": "->",
    "\u2190": "<-",
    "\u2191": "^",
    "\u2193": "v",
    "\u2713": "yes",
    "\u2717": "no",
    "\u20ac": "EUR",
    "\u2122": "(TM)",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
}


def latin1(text: str) -> str:
    """``text`` with every character representable in Latin-1 (see the module notes)."""
    out: list[str] = []
    for char in text:
        if ord(char) < 256:
            out.append(char)
            continue
        replacement = _REPLACEMENTS.get(char)
        if replacement is None:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            replacement = base if base and all(ord(c) < 256 for c in base) else "?"
        out.append(replacement)
    return "".join(out)
