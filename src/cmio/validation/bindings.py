"""Terminology bindings: coded values against the value set they are bound to.

See https://hl7.org/fhir/R4/terminologies.html#strength: a ``required``
binding is an error when the code is not in the value set, ``extensible`` a
warning, ``preferred`` and ``example`` are not checked. A CodeableConcept is
in the value set when one of its codings is; one with text only satisfies an
extensible binding and is not judged for a required one. When membership is
unknown (the value set needs a terminology server) nothing is reported.
"""

from __future__ import annotations

from typing import Any

from cmio.validation.structural import Issue
from cmio.validation.terminology import TerminologyProvider

__all__ = ["check_binding", "codings_of", "in_valueset"]


def codings_of(value: Any, type_code: str) -> list[tuple[str | None, str]] | None:
    """The (system, code) pairs of a coded value (None: not a coded type or no code).

    ``code``, ``string`` and ``uri`` values have no system (the value set implies it);
    Coding, Quantity and the codings of a CodeableConcept carry theirs.
    """
    if type(value) is str:
        return [(None, value)] if type_code in ("code", "string", "uri") else None
    if type(value) is not dict:
        return None
    if type_code == "CodeableConcept":
        codings = value.get("coding")
        if type(codings) is not list:
            return None
        pairs = [_pair(c) for c in codings]
        found = [p for p in pairs if p is not None]
        return found or None
    if type_code in ("Coding", "Quantity") or type_code in _QUANTITIES:
        pair = _pair(value)
        return [pair] if pair is not None else None
    return None


_QUANTITIES = frozenset({"Age", "Count", "Distance", "Duration", "MoneyQuantity", "SimpleQuantity"})


def _pair(coding: Any) -> tuple[str | None, str] | None:
    if type(coding) is not dict:
        return None
    code = coding.get("code")
    if type(code) is not str:
        return None
    system = coding.get("system")
    return (system if type(system) is str else None, code)


def in_valueset(
    terminology: TerminologyProvider, valueset: str, value: Any, type_code: str
) -> bool | None:
    """Whether a coded value is in a value set: True, False, or None (unknown or not coded)."""
    pairs = codings_of(value, type_code)
    if not pairs:
        return None
    unknown = False
    for system, code in pairs:
        answer = terminology.validate_code(valueset, system, code)
        if answer:
            return True
        unknown |= answer is None
    return None if unknown else False


def check_binding(
    terminology: TerminologyProvider,
    binding: tuple[str, str],
    value: Any,
    type_code: str,
    where: str,
    out: list[Issue],
) -> None:
    """Check one value against a required or extensible binding; append an issue if it fails.

    See https://hl7.org/fhir/R4/terminologies.html#binding.

    Args:
        terminology: answers value set membership.
        binding: (strength, value set URL).
        value: the JSON value.
        type_code: its type (``code``, ``Coding``, ``CodeableConcept``, ``Quantity``...).
        where: its location.
        out: where issues go.
    """
    if in_valueset(terminology, binding[1], value, type_code) is not False:
        return
    strength, valueset = binding
    pairs = codings_of(value, type_code) or []
    shown = ", ".join(f"{s}#{c}" if s else repr(c) for s, c in pairs)
    if strength == "required":
        message = f"The value {shown} is not in the required value set {valueset}"
        out.append(Issue("error", "code-invalid", where, message))
    else:
        message = (
            f"None of the codes ({shown}) is in the value set {valueset}, "
            "and a code from it should be used if one applies (extensible binding)"
        )
        out.append(Issue("warning", "code-invalid", where, message))
