"""Full-text rows (cmio.indexing.text): one walk, one normalization per document."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from cmio.indexing.text import MAX_WORDS, content_text, matches, text_rows

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SYNTHEA = SHARED / "data" / "synthea-r4" / "bulk-ndjson-10-patients-partial"


def _reference_words(resource: dict[str, Any]) -> set[str]:
    """Every word of every string, each string normalized on its own (the definition)."""
    found: set[str] = set()

    def walk(node: Any, top: bool = False, in_meta: bool = False) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if top and key == "meta":
                walk(value, in_meta=True)
            elif in_meta and key in ("versionId", "lastUpdated"):
                continue
            elif isinstance(value, str):
                if key == "div":
                    value = re.sub(r"<[^>]*>", " ", value).replace("&eacute;", "é")
                folded = "".join(
                    c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c)
                ).casefold()
                found.update(re.findall(r"[^\W_]+", folded))
            elif isinstance(value, dict | list):
                walk(value)

    walk(resource, top=True)
    return found


def _rows(resource: dict[str, Any]) -> dict[str, list[str]]:
    return {param: body.split() for param, body in text_rows(resource)}


def test_content_words_are_every_strings_words() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "7", "lastUpdated": "2026-01-01T00:00:00Z", "tag": [{"code": "Tg"}]},
        "text": {"status": "generated", "div": "<div>Caf&eacute; <b>Ünïcode</b></div>"},
        "name": [{"family": "\u0301Ångström-Müller", "given": ["Zoë", "ﬁne"]}],
        "extension": [{"url": "u", "valueString": "a_b"}],
    }
    rows = _rows(patient)
    assert set(rows["_content"]) == _reference_words(patient)
    assert rows["_text"] == ["cafe", "unicode"]
    assert "7" not in rows["_content"] and "2026" not in rows["_content"]
    assert {"angstrom", "muller", "zoe", "fine", "tg", "a", "b"} <= set(rows["_content"])
    body = " ".join(rows["_content"])
    assert matches(body, "ÅNGSTRÖM zo") and not matches(body, "zz")
    assert list(content_text({"resourceType": "Basic", "code": {"text": "x"}})) == [
        "Basic",
        "x",
    ]


def test_words_are_distinct_in_first_use_order_and_capped() -> None:
    many = " ".join(f"w{i}" for i in range(MAX_WORDS + 500))
    rows = _rows({"resourceType": "Basic", "code": {"text": f"w1 {many} w2"}})
    assert rows["_content"][:3] == ["basic", "w1", "w0"]
    assert len(rows["_content"]) == MAX_WORDS
    assert len(set(rows["_content"])) == MAX_WORDS
    assert "_text" not in rows


@pytest.mark.skipif(not SYNTHEA.is_dir(), reason="needs ../shared/data/synthea-r4")
def test_synthea_resources_match_the_definition() -> None:
    checked = 0
    for path in sorted(SYNTHEA.glob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines()[:150]:
            resource = json.loads(line)
            rows = _rows(resource)
            assert set(rows.get("_content", [])) == _reference_words(resource), path.name
            checked += 1
    assert checked > 500


def test_ascii_documents_split_like_the_definition() -> None:
    """The ASCII fast path (one bytes pass folds case and splits) gives the words, in
    order and distinct, that normalizing and ``[^\\W_]+`` give: every ASCII character,
    separators and mixed case included."""
    every = "".join(chr(i) for i in range(128))
    texts = [every, "Body Weight_kg 29463-7", "MiXeD\tcase\x0bSPLIT\x1fhere", "ZZ zz Zz"]
    resource = {"resourceType": "Basic", "code": {"text": "\n".join(texts)}}
    expected = ["basic"]
    for word in re.findall(r"[^\W_]+", "\n".join(texts).casefold()):
        if word not in expected:
            expected.append(word)
    assert _rows(resource)["_content"] == expected
    assert "\n".join(texts).isascii()
