"""Value set filters: the codes of a code system matching one ``compose.include.filter``.

Implements the operators of https://hl7.org/fhir/R4/valueset-filter-operator.html
(``=``, ``is-a``, ``descendent-of``, ``is-not-a``, ``regex``, ``in``, ``not-in``,
``generalizes``, ``exists``, plus ``child-of``); regular expressions run with a time
limit (backtracking-safe ``regex``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import regex

from cmio.terminology.codesystem import CodeSystemSource
from cmio.terminology.errors import TerminologyError

__all__ = ["filter_codes"]


def _concept_codes(source: CodeSystemSource, value: str) -> str | None:
    entry = source.get(value)
    return entry.code if entry is not None else None


def filter_codes(
    source: CodeSystemSource, prop: str, op: str, value: str, where: str
) -> Iterable[str]:
    """The codes of ``source`` a compose filter selects.

    Args:
        source: the code system.
        prop: the filter property (``concept``/``code`` for the hierarchy, ``display``,
            or a property code).
        op: the operator.
        value: the filter value.
        where: the element path for errors.

    Raises:
        TerminologyError: an unsupported operator or a bad regex.
    """
    if prop in ("concept", "code"):
        return _hierarchy_filter(source, op, value, where)
    if op == "regex":
        pattern = _regex(value, where)
        if prop == "display":
            return [c for c in source.codes() if _display_matches(source, c, pattern)]
        return [
            c
            for c in source.codes()
            if any(pattern.fullmatch(_text(v)) for v in _values(source, c, prop))
        ]
    if op == "=":
        if prop == "display":
            return [c for c in source.codes() if (e := source.get(c)) and e.display == value]
        if prop in ("parent", "child"):
            return _relatives(source, prop, value)
        return list(source.with_property(prop, value))
    if op in ("in", "not-in"):
        wanted = {v.strip() for v in value.split(",")}
        chosen = [
            c for c in source.codes() if any(_text(v) in wanted for v in _values(source, c, prop))
        ]
        if op == "in":
            return chosen
        chosen_set = set(chosen)
        return [c for c in source.codes() if c not in chosen_set]
    if op == "exists":
        want = value == "true"
        return [c for c in source.codes() if bool(_values(source, c, prop)) is want]
    raise TerminologyError(
        400,
        "not-supported",
        f"The filter operator '{op}' is not supported for the property '{prop}' of {source.url}",
        expression=where,
    )


def _relatives(source: CodeSystemSource, prop: str, value: str) -> list[str]:
    if prop == "parent":
        return list(source.children(value))
    entry = source.get(value)
    return list(entry.parents) if entry else []


def _hierarchy_filter(source: CodeSystemSource, op: str, value: str, where: str) -> Iterable[str]:
    code = _concept_codes(source, value)
    if op in ("is-a", "descendent-of", "child-of", "generalizes", "="):
        if code is None:
            return []
        if op == "=":
            return [code]
        if op == "child-of":
            return list(source.children(code))
        if op == "generalizes":
            return [code, *source.ancestors(code)]
        below = list(source.descendants(code))
        return [code, *below] if op == "is-a" else below
    if op == "is-not-a":
        excluded = set(source.descendants(code)) | {code} if code else set()
        return [c for c in source.codes() if c not in excluded]
    if op in ("in", "not-in"):
        wanted = {v.strip() for v in value.split(",")}
        if op == "in":
            return [c for c in wanted if source.get(c) is not None]
        return [c for c in source.codes() if c not in wanted]
    if op == "regex":
        pattern = _regex(value, where)
        return [c for c in source.codes() if pattern.fullmatch(c)]
    if op == "exists":
        return list(source.codes()) if value == "true" else []
    raise TerminologyError(
        400,
        "not-supported",
        f"The filter operator '{op}' is not supported for concept",
        expression=where,
    )


class _Matcher:
    """A ``regex`` filter: full match, backtracking-safe (the ``regex`` engine), and a
    time budget per value so a hostile pattern cannot stall the server."""

    def __init__(self, pattern: regex.Pattern[str], where: str) -> None:
        self.pattern = pattern
        self.where = where

    def fullmatch(self, text: str) -> bool:
        try:
            return self.pattern.fullmatch(text, timeout=_REGEX_SECONDS) is not None
        except TimeoutError as exc:
            raise TerminologyError(
                422,
                "too-costly",
                f"The regex '{self.pattern.pattern}' takes too long to evaluate",
                detail="vs-invalid",
                expression=f"{self.where}.value",
            ) from exc


_REGEX_SECONDS = 0.25


def _regex(value: str, where: str) -> _Matcher:
    try:
        return _Matcher(regex.compile(value), where)
    except regex.error as exc:
        raise TerminologyError(
            400,
            "invalid",
            f"The regex '{value}' is not valid: {exc}",
            detail="vs-invalid",
            expression=f"{where}.value",
        ) from exc


def _values(source: CodeSystemSource, code: str, prop: str) -> list[Any]:
    entry = source.get(code)
    return entry.values_of(prop) if entry is not None else []


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _display_matches(source: CodeSystemSource, code: str, pattern: _Matcher) -> bool:
    entry = source.get(code)
    return entry is not None and entry.display is not None and pattern.fullmatch(entry.display)
