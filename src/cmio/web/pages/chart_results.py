"""The patient chart's results and notes: observations grouped by code (HbA1c LOINC
4548-4, blood pressure 85354-9 with components 8480-6 and 8462-4, other laboratory,
vital-sign and survey results) and the text of ``DocumentReference`` attachments and
``Communication`` payloads (https://hl7.org/fhir/R4/observation.html,
https://hl7.org/fhir/R4/documentreference.html).
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "A1C",
    "BP_PANEL",
    "DIASTOLIC",
    "LOINC",
    "SYSTOLIC",
    "BloodPressure",
    "Note",
    "Point",
    "Series",
    "code_of",
    "day_of",
    "display",
    "notes",
    "ref_display",
    "results",
]

LOINC = "http://loinc.org"
A1C = "4548-4"
"""Hemoglobin A1c/Hemoglobin.total in Blood."""
BP_PANEL, SYSTOLIC, DIASTOLIC = "85354-9", "8480-6", "8462-4"
"""Blood pressure panel and its systolic and diastolic components."""
_RESULT_CATEGORIES = ("laboratory", "vital-signs", "survey")
_MAX_NOTE = 4000


def display(concept: Any) -> str:
    """A CodeableConcept's text, else its first coding's display or code."""
    if not isinstance(concept, Mapping):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding", []):
        if isinstance(coding, Mapping) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return ""


def code_of(concept: Any, system: str | None = None) -> str:
    """The code of a CodeableConcept's first coding (of ``system`` when given)."""
    if not isinstance(concept, Mapping):
        return ""
    for coding in concept.get("coding", []):
        if isinstance(coding, Mapping) and (system is None or coding.get("system") == system):
            return str(coding.get("code") or "")
    return ""


def day_of(value: Any) -> str:
    """The date part of a FHIR date/dateTime (empty when absent)."""
    return str(value)[:10] if isinstance(value, str) else ""


def ref_display(ref: Any) -> str:
    """A Reference's display, else its reference."""
    return str(ref.get("display") or ref.get("reference") or "") if isinstance(ref, Mapping) else ""


@dataclass(frozen=True, slots=True)
class Point:
    """One result: when (ISO dateTime), the number (None: not numeric) and its text."""

    when: str
    value: float | None
    text: str


@dataclass(frozen=True, slots=True)
class Series:
    """The results of one code, oldest first."""

    code: str
    display: str
    unit: str
    category: str
    points: tuple[Point, ...]

    @property
    def latest(self) -> Point:
        """The most recent result."""
        return self.points[-1]

    @property
    def values(self) -> list[float]:
        """The numeric results, oldest first."""
        return [p.value for p in self.points if p.value is not None]


@dataclass(frozen=True, slots=True)
class BloodPressure:
    """One blood pressure reading (mm[Hg])."""

    when: str
    systolic: float | None
    diastolic: float | None


@dataclass(frozen=True, slots=True)
class Note:
    """A clinical note (DocumentReference) or message (Communication), as text."""

    when: str
    kind: str
    title: str
    author: str
    text: str


def _when(obs: Mapping[str, Any]) -> str:
    period = obs.get("effectivePeriod") or {}
    return str(obs.get("effectiveDateTime") or period.get("start") or obs.get("issued") or "")


def _quantity(holder: Mapping[str, Any]) -> tuple[float | None, str, str]:
    """(number, text, unit) of an Observation (or component) value."""
    q = holder.get("valueQuantity")
    if isinstance(q, Mapping) and isinstance(q.get("value"), (int, float)):
        unit = str(q.get("unit") or q.get("code") or "")
        value = float(q["value"])
        return value, f"{q['value']} {unit}".strip(), unit
    for key in ("valueCodeableConcept", "valueString", "valueBoolean", "valueInteger"):
        if key in holder:
            raw = holder[key]
            text = display(raw) if isinstance(raw, Mapping) else str(raw)
            number = float(raw) if key == "valueInteger" else None
            return number, text, ""
    return None, "", ""


def results(
    observations: list[Mapping[str, Any]],
) -> tuple[Series | None, tuple[BloodPressure, ...], tuple[Series, ...]]:
    """The HbA1c series, the blood pressure readings and the other results by code."""
    groups: dict[str, list[tuple[Mapping[str, Any], Point, str]]] = defaultdict(list)
    pressures: list[BloodPressure] = []
    for obs in observations:
        if obs.get("status") in ("entered-in-error", "cancelled"):
            continue
        code = code_of(obs.get("code"), LOINC) or code_of(obs.get("code"))
        when = _when(obs)
        if code == BP_PANEL:
            parts = {
                code_of(c.get("code"), LOINC): _quantity(c)[0] for c in obs.get("component", [])
            }
            pressures.append(BloodPressure(when, parts.get(SYSTOLIC), parts.get(DIASTOLIC)))
            continue
        value, text, unit = _quantity(obs)
        if not text:
            continue
        groups[code].append((obs, Point(when, value, text), unit))
    a1c: Series | None = None
    series: list[Series] = []
    for code, members in groups.items():
        members.sort(key=lambda m: m[1].when)
        last = members[-1][0]
        categories = [code_of(c) for c in last.get("category", [])]
        known = [c for c in categories if c in _RESULT_CATEGORIES]
        category = (known or categories or [""])[0]
        unit = next((u for _, _, u in reversed(members) if u), "")
        points = tuple(p for _, p, _ in members)
        made = Series(code, display(last.get("code")), unit, category, points)
        if code == A1C:
            a1c = made
        else:
            series.append(made)
    order = {c: i for i, c in enumerate(_RESULT_CATEGORIES)}
    series.sort(key=lambda s: (order.get(s.category, 9), s.display))
    pressures.sort(key=lambda b: b.when)
    return a1c, tuple(pressures), tuple(series)


def _attachment_text(attachment: Mapping[str, Any]) -> str:
    kind = str(attachment.get("contentType") or "")
    data = attachment.get("data")
    if isinstance(data, str) and (not kind or kind.startswith("text/")):
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return "(attachment data is not valid base64)"
        return text[:_MAX_NOTE] + ("\u2026" if len(text) > _MAX_NOTE else "")
    if data is not None:
        return f"(attachment of type {kind or 'unknown'}, not shown)"
    if attachment.get("url"):
        return f"(attachment at {attachment['url']})"
    return ""


def notes(
    documents: Iterable[Mapping[str, Any]], messages: Iterable[Mapping[str, Any]]
) -> tuple[Note, ...]:
    """Clinical notes and messages as text, newest first."""
    found = []
    for d in documents:
        if d.get("status") == "entered-in-error":
            continue
        texts = [_attachment_text(c.get("attachment") or {}) for c in d.get("content", [])]
        authors = ", ".join(ref_display(a) for a in d.get("author", []))
        found.append(
            Note(
                str(d.get("date") or (d.get("context") or {}).get("period", {}).get("start") or ""),
                display(d.get("type")) or "Document",
                str(d.get("description") or display(d.get("type")) or "Document"),
                authors,
                "\n\n".join(t for t in texts if t),
            )
        )
    for m in messages:
        texts = []
        for p in m.get("payload", []):
            if p.get("contentString"):
                texts.append(str(p["contentString"]))
            elif isinstance(p.get("contentAttachment"), Mapping):
                texts.append(_attachment_text(p["contentAttachment"]))
        category = ", ".join(display(c) for c in m.get("category", []))
        found.append(
            Note(
                str(m.get("sent") or m.get("received") or ""),
                "Message",
                category or "Message",
                ref_display(m.get("sender")),
                "\n\n".join(texts),
            )
        )
    return tuple(sorted(found, key=lambda n: n.when, reverse=True))
