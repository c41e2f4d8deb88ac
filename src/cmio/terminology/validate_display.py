"""Display checks of ``$validate-code`` across languages.

The display given with a code is checked against the concept's displays in the
languages asked for (https://hl7.org/fhir/R4/valueset-operation-validate-code.html,
``display`` and ``displayLanguage``): the ``displayLanguage`` parameter, else the
request's ``Accept-Language``, else the value set's ``language`` or its
``displayLanguage`` expansion parameter
(https://hl7.org/fhir/R4/extension-valueset-expansion-parameter.html). A language list
is read as Accept-Language is (https://www.rfc-editor.org/rfc/rfc9110#name-accept-language:
comma-separated tags, ``q`` weights, ``q=0`` excluded). The concept's displays are the
code system's display (in the code system's ``language``) and its designations
(https://hl7.org/fhir/R4/codesystem-definitions.html#CodeSystem.concept.designation).
"""

from __future__ import annotations

import re
from typing import Any

from cmio.terminology.errors import TerminologyError
from cmio.terminology.validate_types import Issue

__all__ = ["display_issue", "parse_languages", "valueset_language"]

_TAG = re.compile(r"\*|[A-Za-z]{1,8}([-_][A-Za-z0-9]{1,8})*")  # en_US from lax clients too
_EXPANSION_PARAMETER = "http://hl7.org/fhir/StructureDefinition/valueset-expansion-parameter"


def parse_languages(spec: str | None) -> list[str]:
    """The language tags of ``spec`` (``de``, ``en, en-AU; q=0.4``), by descending
    weight; tags with ``q=0`` and the wildcard ``*`` are left out.

    Raises:
        TerminologyError: a tag that is not a language tag (400, ``invalid-display``).
    """
    if spec is None or not spec.strip():
        return []
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(spec.split(",")):
        tag, _, params = part.partition(";")
        tag = tag.strip()
        weight = 1.0
        match = re.search(r"q\s*=\s*([0-9.]+)", params)
        if match:
            try:
                weight = float(match.group(1))
            except ValueError:
                weight = 1.0
        if not _TAG.fullmatch(tag):
            raise TerminologyError(
                400,
                "processing",
                f"Invalid displayLanguage: '{spec}'",
                detail="invalid-display",
            )
        if tag != "*" and weight > 0:
            weighted.append((-weight, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


def valueset_language(valueset: dict[str, Any] | None) -> str | None:
    """The display language a value set asks for: its ``displayLanguage`` expansion
    parameter, else its ``language``."""
    if valueset is None:
        return None
    compose = valueset.get("compose") or {}
    for extension in compose.get("extension") or ():
        if not isinstance(extension, dict) or extension.get("url") != _EXPANSION_PARAMETER:
            continue
        parts = {
            str(p.get("url")): p.get("valueCode") or p.get("valueString")
            for p in extension.get("extension") or ()
            if isinstance(p, dict)
        }
        if parts.get("name") == "displayLanguage" and isinstance(parts.get("value"), str):
            return str(parts["value"])
    language = valueset.get("language")
    return language if isinstance(language, str) else None


def _matches(language: str | None, wanted: list[str]) -> bool:
    """Whether a display in ``language`` (None: unstated, valid in any) is one of ``wanted``."""
    if language is None:
        return True
    base = language.lower().split("-")[0]
    return any(w.lower() == language.lower() or w.lower().split("-")[0] == base for w in wanted)


def _choices(entry: Any, language: Any, member_display: str | None) -> list[tuple[str, str | None]]:
    """(display, language) of the concept: the value set's, the code system's, designations."""
    own = language if isinstance(language, str) else None
    found: list[tuple[str, str | None]] = []
    candidates = [(member_display, own), (entry.display, own)] + [
        (d.get("value"), d.get("language")) for d in entry.designations
    ]
    for text, lang in candidates:
        if isinstance(text, str) and all(text != c[0] for c in found):
            found.append((text, lang if isinstance(lang, str) else None))
    return found


def _same(a: str, b: str) -> bool:
    """Displays compare ignoring case, not whitespace (``Display  1`` is wrong)."""
    return a.lower() == b.lower()


def _listed(choices: list[tuple[str, str | None]]) -> str:
    shown = [f"'{text}' ({lang})" if lang else f"'{text}'" for text, lang in choices]
    if len(shown) == 1:
        return shown[0]
    return f"one of {len(shown)} choices: " + ", ".join(shown[:-1]) + " or " + shown[-1]


_STANDARDS_STATUS = "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status"


def _retired_display(display: str, entry: Any) -> str | None:
    """The warning text when ``display`` is a designation marked deprecated or withdrawn
    (``structuredefinition-standards-status`` on the designation,
    https://hl7.org/fhir/extensions/StructureDefinition-structuredefinition-standards-status.html):
    a valid display once, its use now deprecated; None otherwise."""
    if display == entry.display:
        return None
    retired = False
    for designation in entry.designations:
        if not _same(display, str(designation.get("value") or "")):
            continue
        marks = [
            e.get("valueCode")
            for e in designation.get("extension") or ()
            if isinstance(e, dict) and e.get("url") == _STANDARDS_STATUS
        ]
        if not any(m in ("deprecated", "withdrawn") for m in marks):
            return None  # a current designation with this text
        retired = True
    if not retired:
        return None
    shown = ", ".join(f'"{d}"' for d in [entry.display] if isinstance(d, str))
    return (
        f"'{display}' is no longer considered a correct display for code '{entry.code}' "
        f"(status = deprecated). The correct display is one of {shown}."
    )


def display_issue(
    display: str,
    entry: Any,
    cs_language: Any,
    member_display: str | None,
    languages: list[str],
    spec: str | None,
    where: str,
    path: str,
    lenient: bool,
) -> Issue | None:
    """The issue about ``display`` for the concept ``entry`` (None: it is a valid display in
    a language asked for, or in any language when none is).

    Args:
        display: the display given.
        entry: the code system concept.
        cs_language: the code system's ``language``.
        member_display: the value set compose's display for the code.
        languages: the languages asked for (:func:`parse_languages`), in order.
        spec: the language list as given (shown in the message; None: ``--``).
        where: ``system#code`` as the message names the concept.
        path: the element path of the display.
        lenient: a wrong display is a warning (``lenient-display-validation``).
    """
    if not languages and (display == entry.display or display == member_display):
        return None  # the common case: the concept's own display, no language asked for
    retired = _retired_display(display, entry)
    if retired is not None:
        return Issue("warning", "invalid", "display-comment", retired, path, quiet=True)
    choices = _choices(entry, cs_language, member_display)
    valid = [c for c in choices if not languages or _matches(c[1], languages)]
    if any(_same(display, text) for text, _ in valid):
        return None
    severity = "warning" if lenient else "error"
    wanted = ", ".join(languages) if languages else "--"
    if valid:
        text = (
            f"Wrong Display Name '{display}' for {where}. Valid display is {_listed(valid)} "
            f"(for the language(s) '{spec if spec and languages else wanted}')"
        )
        return Issue(severity, "invalid", "invalid-display", text, path)
    if any(_same(display, text) for text, _ in choices):
        text = (
            f"There are no valid display names found for the code {where} for language(s) "
            f"'{wanted}'. The display is '{display}' which is a valid display for the default "
            "language"
        )
        return Issue("information", "invalid", "invalid-display", text, path)
    default = entry.display if entry.display is not None else (choices[0][0] if choices else "")
    text = (
        f"Wrong Display Name '{display}' for {where}. There are no valid display names found "
        f"for language(s) '{wanted}'. Default display is '{default}'"
    )
    return Issue(severity, "invalid", "invalid-display", text, path)
