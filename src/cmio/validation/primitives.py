"""Checks of single JSON values in FHIR R4 resources: primitives and literal references.

The value-level half of structural validation (:mod:`cmio.validation.structural` walks
the resource and reports): a primitive's JSON kind, range, regex and length
(https://hl7.org/fhir/R4/datatypes.html, https://hl7.org/fhir/R4/json.html#primitive)
and the format and target type of ``Reference.reference``
(https://hl7.org/fhir/R4/references.html#literal). Each check returns the problem or
None and never raises.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from cmio.model.types import (
    K_BASE64,
    K_BOOLEAN,
    K_DECIMAL,
    K_INTEGER,
    K_POSITIVE_INT,
    K_UNSIGNED_INT,
    K_XHTML,
)

__all__ = ["MAX_STRING_LENGTH", "excerpt", "json_kind", "primitive_problem", "reference_problem"]

MAX_STRING_LENGTH = 1024 * 1024
"""``string`` maxLength (https://hl7.org/fhir/R4/datatypes.html#string)."""

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/=\s]*", re.ASCII)
_WHITESPACE = re.compile(r"\s+", re.ASCII)
_RELATIVE_REF = re.compile(
    r"([A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?", re.ASCII
)
_CONDITIONAL_REF = re.compile(r"([A-Za-z]+)\?\S*", re.ASCII)
_ABSOLUTE_REF = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+", re.ASCII)
_UUID_REF = re.compile(r"urn:uuid:[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", re.ASCII)
_OID_REF = re.compile(r"urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+", re.ASCII)
_JSON_KINDS: Mapping[type, str] = MappingProxyType(
    {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
)


def json_kind(value: Any) -> str:
    """The JSON kind of a parsed value (``object``, ``array``, ``number``...), for messages.

    See https://hl7.org/fhir/R4/json.html.

    Args:
        value: a value as parsed from JSON (or anything else: its Python type name).
    """
    kind = _JSON_KINDS.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, int | float | Decimal):
        return "number"
    return type(value).__name__


def excerpt(value: str) -> str:
    """``value`` quoted for a message, cut to 60 characters."""
    return repr(value if len(value) <= 60 else value[:57] + "...")


def reference_problem(
    resource_types: Collection[str], ref: str, targets: tuple[str, ...]
) -> str | None:
    """What is wrong with a literal ``Reference.reference`` (not ``#id``), or None.

    Implements https://hl7.org/fhir/R4/references.html#literal: ``Type/id[/_history/vid]``,
    ``Type?query``, an absolute URL, ``urn:uuid:`` or ``urn:oid:``; the type must be a
    known resource type and, when the element lists target types, one of them.

    Args:
        resource_types: the model's concrete resource types.
        ref: the reference, a non-empty string not starting with ``#``.
        targets: the element's allowed target types (empty: any).
    """
    rtype: str | None = None
    if ref.startswith("urn:"):
        if ref.startswith("urn:uuid:"):
            ok = _UUID_REF.fullmatch(ref) is not None
        elif ref.startswith("urn:oid:"):
            ok = _OID_REF.fullmatch(ref) is not None
        else:
            ok = _ABSOLUTE_REF.fullmatch(ref) is not None
    elif (match := _RELATIVE_REF.fullmatch(ref)) or (match := _CONDITIONAL_REF.fullmatch(ref)):
        rtype = match.group(1)
        ok = True
    else:
        ok = _ABSOLUTE_REF.fullmatch(ref) is not None and "://" in ref
    if not ok:
        expected = "Type/id[/_history/vid], Type?query, an absolute URL, urn:uuid:, urn:oid: or #id"
        return f"invalid reference {excerpt(ref)}: expected {expected}"
    if rtype is not None and rtype not in resource_types:
        return f"reference {excerpt(ref)}: unknown resource type {rtype!r}"
    if rtype is not None and targets and rtype not in targets:
        allowed = " | ".join(targets)
        return f"reference {excerpt(ref)}: {rtype} is not {allowed}"
    return None


def primitive_problem(
    kind: int, code: str, regex: re.Pattern[str] | None, value: Any
) -> tuple[str, str] | None:
    """The (issue code, message) when ``value`` is not a valid JSON ``code`` primitive.

    Implements https://hl7.org/fhir/R4/datatypes.html (regexes, ranges, maxLength) and
    the JSON representation of https://hl7.org/fhir/R4/json.html#primitive.

    Args:
        kind: the element's primitive kind (``cmio.model.types.K_*``).
        code: the FHIR type code, for messages.
        regex: the type's regex, or None.
        value: the value as parsed from JSON.

    Returns:
        None when the value is valid.
    """
    tvalue = type(value)
    if kind == K_BOOLEAN:
        return (
            None
            if tvalue is bool
            else ("structure", f"expected a boolean, found {json_kind(value)}")
        )
    if K_INTEGER <= kind <= K_DECIMAL:
        if tvalue is bool or not isinstance(value, int | float | Decimal):
            return ("structure", f"expected a JSON number ({code}), found {json_kind(value)}")
        if kind == K_DECIMAL:
            if isinstance(value, int) or (
                math.isfinite(value) if isinstance(value, float) else value.is_finite()
            ):
                return None
            return ("value", f"{value!r} is not a valid decimal")
        if not isinstance(value, int):
            return ("value", f"{value!r} is not a valid {code}: expected an integer")
        low = 1 if kind == K_POSITIVE_INT else 0 if kind == K_UNSIGNED_INT else _INT32_MIN
        if not low <= value <= _INT32_MAX:
            return ("value", f"{value} is out of range for {code} ({low}..{_INT32_MAX})")
        return None
    if tvalue is not str:
        return ("structure", f"expected a JSON string ({code}), found {json_kind(value)}")
    if not value:
        return ("value", f"empty string is not a valid {code}")
    if len(value) > MAX_STRING_LENGTH:
        return ("too-long", f"{code} value has {len(value)} characters (max {MAX_STRING_LENGTH})")
    if kind == K_BASE64:
        if _BASE64_CHARS.fullmatch(value) is None or len(_WHITESPACE.sub("", value)) % 4:
            return ("value", f"not valid base64Binary: {excerpt(value)}")
        return None
    if kind == K_XHTML:
        if not value.lstrip().startswith("<div"):
            return ("value", f"narrative must be an XHTML <div> element, found {excerpt(value)}")
        return None
    if regex is not None and regex.fullmatch(value) is None:
        return ("value", f"{excerpt(value)} is not a valid {code}")
    return None
