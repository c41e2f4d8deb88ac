"""Full-text rows for ``_text`` and ``_content`` (https://hl7.org/fhir/R4/search.html#text).

``_text`` searches the narrative (``text.div`` without its XHTML markup),
``_content`` all the text of the resource (every string value, narrative
included). Both are stored as the document's distinct words, normalized like
string search (case and accents folded, :func:`cmio.indexing.values.normalize`)
and split on anything that is not a letter or digit, the way SQLite's
``unicode61`` tokenizer splits. A search value matches when each of its words
is the start of some word of the document; comma-separated values are OR-ed.
"""

from __future__ import annotations

import html
import re
from itertools import islice
from typing import Any

from cmio.indexing.values import normalize

__all__ = [
    "MAX_WORDS",
    "content_text",
    "matches",
    "narrative_text",
    "query_words",
    "text_rows",
    "words",
]

#: at most this many distinct words are kept per document
MAX_WORDS = 4000
_WORD = re.compile(r"[^\W_]+")
#: every ASCII character that is not a letter or digit -> a space: on ASCII text,
#: ``text.translate(_ASCII_GAPS).split()`` gives exactly ``_WORD.findall(text)``, in about
#: half the time (ASCII letters and digits are exactly the ASCII characters ``[^\W_]``
#: matches)
_ASCII_GAPS = str.maketrans({chr(i): " " for i in range(128) if not chr(i).isalnum()})
#: the same on ASCII bytes, folding upper to lower case too: for an ASCII ``text``,
#: ``text.encode().translate(_ASCII_FOLD).split()`` are the words of
#: ``_split(normalize(text))`` (:func:`~cmio.indexing.values.normalize` is ``lower()``
#: there) as bytes, in a fraction of the time
_ASCII_FOLD = bytes(
    (c + 32 if chr(c).isupper() else c) if c < 128 and chr(c).isalnum() else 32 for c in range(256)
)
_TAG = re.compile(r"<[^>]*>")
_VOLATILE = frozenset({"versionId", "lastUpdated"})


def words(text: str) -> list[str]:
    """The normalized words of ``text`` in order (repeats kept)."""
    return _split(normalize(text))


def _split(folded: str) -> list[str]:
    """The words of an already normalized text (see :data:`_ASCII_GAPS`)."""
    if folded.isascii():
        return folded.translate(_ASCII_GAPS).split()
    return _WORD.findall(folded)


def narrative_text(resource: dict[str, Any]) -> str:
    """The narrative's text: ``text.div`` without markup, entities decoded."""
    text = resource.get("text")
    div = text.get("div") if isinstance(text, dict) else None
    if not isinstance(div, str):
        return ""
    return html.unescape(_TAG.sub(" ", div))


def content_text(resource: dict[str, Any]) -> list[str]:
    """Every string in the resource (the narrative without markup), depth-first, except
    ``meta.versionId`` and ``meta.lastUpdated``, which each write changes.

    One walk over the JSON with an explicit stack; each container's own strings come
    first, then the containers it holds (last first).
    """
    out: list[str] = []
    append = out.append
    meta = resource.get("meta")
    stack: list[Any] = [{k: v for k, v in resource.items() if k != "meta"}]
    if isinstance(meta, dict):
        stack.append({k: v for k, v in meta.items() if k not in _VOLATILE})
    push = stack.append
    pop = stack.pop
    while stack:
        node = pop()
        if type(node) is not dict:  # a list: no "div" key among its items
            for value in node:
                kind = type(value)
                if kind is str:
                    append(value)
                elif kind is dict or kind is list:
                    push(value)
                elif isinstance(value, str):
                    append(value)
                elif isinstance(value, dict | list):
                    push(value)
            continue
        for key, value in node.items():
            kind = type(value)
            if kind is str:
                append(html.unescape(_TAG.sub(" ", value)) if key == "div" else value)
            elif kind is dict or kind is list:
                push(value)
            elif isinstance(value, str):
                append(value)
            elif isinstance(value, dict | list):
                push(value)
    return out


def _body(texts: list[str]) -> str:
    """The distinct words of ``texts`` in order of first use, at most :data:`MAX_WORDS`.

    The texts are joined by a newline (never part of a word, and a starter that
    Unicode normalization does not reorder across), so one normalization and one
    tokenizer pass give the words of each text in turn.
    """
    if not texts:
        return ""
    joined = "\n".join(texts)
    if joined.isascii():  # lower case and split in one bytes pass (see _ASCII_FOLD)
        found = joined.encode().translate(_ASCII_FOLD).split()
        return b" ".join(islice(dict.fromkeys(found), MAX_WORDS)).decode()
    return " ".join(islice(dict.fromkeys(_split(normalize(joined))), MAX_WORDS))


def text_rows(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """``(param, body)`` rows of ``text_index`` for a resource (none when empty)."""
    rows: list[tuple[str, str]] = []
    narrative = narrative_text(resource)
    body = _body([narrative]) if narrative else ""
    if body:
        rows.append(("_text", body))
    content = _body(content_text(resource))
    if content:
        rows.append(("_content", content))
    return rows


def query_words(value: str) -> list[str]:
    """The words of one search value (empty: the value has no letters or digits)."""
    return list(dict.fromkeys(words(value)))


def matches(body: str, value: str) -> bool:
    """Whether a stored ``body`` matches one search value (every word a prefix)."""
    found = body.split()
    wanted = query_words(value)
    return bool(wanted) and all(any(w.startswith(q) for w in found) for q in wanted)
