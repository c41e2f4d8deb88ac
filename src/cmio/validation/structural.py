"""Structural validation of FHIR R4 JSON resources, on write.

Checks a resource against the base R4 definitions (no profiles, terminology or
FHIRPath invariants) and the JSON rules of https://hl7.org/fhir/R4/json.html:
known, concrete ``resourceType`` (nested resources too); known elements and choice
variants (one per choice); JSON kinds, arrays exactly for repeating elements;
cardinality; primitive regexes and ranges (https://hl7.org/fhir/R4/datatypes.html);
no empty strings, objects or arrays; ``null`` only to align primitive arrays with
their ``_name`` twins; ``Reference.reference`` format and targets
(https://hl7.org/fhir/R4/references.html#literal); ext-1, dom-2, narrative div;
bounded nesting depth and issue count, so hostile input stays cheap.
Single values (primitives, literal references) are checked by
:mod:`cmio.validation.primitives`.

Walking is dict lookups into the model's precomputed ``json_index``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from cmio.model.types import (
    K_BOOLEAN,
    K_SHADOW,
    K_STRING,
    LAST_PRIMITIVE_KIND,
    ElementDef,
    JsonProperty,
    Model,
    Required,
)
from cmio.validation.primitives import (
    MAX_STRING_LENGTH,
    json_kind,
    primitive_problem,
    reference_problem,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_ISSUES",
    "MAX_STRING_LENGTH",
    "Issue",
    "StructureValidator",
    "validate_structure",
]

MAX_DEPTH = 64
"""Deepest JSON nesting (objects and arrays) that is validated."""

MAX_ISSUES = 1000
"""Validation stops after this many issues (bounding the work on hostile input)."""

# Shortcuts implied by the R4 regexes: a printable string (no control or
# separator characters other than " ") matches `[ \r\n\t\S]+` (string, markdown);
# a printable string without spaces also matches `\S*` and `[^\s]+(\s[^\s]+)*`.
_TEXT = frozenset({"string", "markdown"})
_TOKEN = frozenset({"code", "uri", "url", "canonical"})
Memo = dict[tuple[Any, ...], None]
#: the small datatypes that repeat across resources, which a :class:`StructureValidator`
#: remembers when found valid (not backbone elements, Narrative or Attachment: large and
#: rarely repeated, and serializing them at every level would cost more than it saves)
_REMEMBERED = frozenset(
    (
        *("CodeableConcept", "Coding", "Reference", "Quantity", "Identifier", "Period"),
        *("HumanName", "ContactPoint", "Address", "Meta", "Extension", "Dosage", "Timing"),
        *("Range", "Ratio", "Annotation"),
    )
)
#: longer serialized values are walked every time (memory stays bounded)
_MAX_KEY = 1024
"""Complex values found valid: (element structure and required members, reference
targets, depth, JSON bytes)."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found, shaped like ``OperationOutcome.issue``.

    See https://hl7.org/fhir/R4/operationoutcome.html.

    Attributes:
        severity: ``fatal``, ``error``, ``warning`` or ``information``.
        code: IssueType code (``structure``, ``required``, ``value``, ``invalid``,
            ``invariant``, ``not-supported``, ``too-long``).
        expression: FHIRPath-like location, e.g. ``Patient.name[0].given[1]``.
        message: what was expected and what was found.
    """

    severity: str
    code: str
    expression: str
    message: str

    def to_fhir(self) -> dict[str, Any]:
        """This issue as an ``OperationOutcome.issue`` JSON object."""
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code}
        issue["diagnostics"] = self.message
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


def validate_structure(model: Model, resource: Any) -> list[Issue]:
    """Check a parsed FHIR JSON resource against the R4 structure definitions.

    Implements the JSON format rules of https://hl7.org/fhir/R4/json.html and
    the base definitions' cardinalities and datatypes
    (https://hl7.org/fhir/R4/datatypes.html). Never raises for any JSON input.

    Args:
        model: the FHIR model (:func:`cmio.model.load_model`).
        resource: the resource as parsed from JSON (dict, list, str, int, float,
            ``Decimal``, bool, None).

    Returns:
        The issues found; empty if the resource is structurally valid.
    """
    return _validate(model, resource, None)


class StructureValidator:
    """:func:`validate_structure` for one model, remembering the complex values it found
    valid (a CodeableConcept, Reference or Quantity met again is not walked again).

    The issues are exactly those of :func:`validate_structure`: a valid value is valid
    wherever it occurs under the same element definition and nesting depth (only the
    messages of invalid ones name their location, and those are never remembered).
    See https://hl7.org/fhir/R4/json.html.

    Args:
        model: the FHIR model.
        limit: values remembered at most (the memo is emptied when full).
    """

    def __init__(self, model: Model, limit: int = 50_000) -> None:
        self.model = model
        self.limit = limit
        self._memo: Memo = {}

    def __call__(self, resource: Any) -> list[Issue]:
        """The issues of ``resource`` (see :func:`validate_structure`)."""
        if len(self._memo) >= self.limit:
            self._memo.clear()
        return _validate(self.model, resource, self._memo)


def _validate(model: Model, resource: Any, memo: Memo | None) -> list[Issue]:
    out: list[Issue] = []
    if type(resource) is not dict:
        message = f"expected a JSON object, found {json_kind(resource)}"
        out.append(Issue("fatal", "structure", "", message))
        return out
    try:
        _resource(model, resource, "", 1, out, False, memo)
    except _TooManyIssues:
        message = f"validation stopped after {MAX_ISSUES} issues"
        out.append(Issue("error", "too-costly", "", message))
    return out


class _TooManyIssues(Exception):
    pass


def _err(out: list[Issue], code: str, where: str, message: str, severity: str = "error") -> None:
    out.append(Issue(severity, code, where, message))
    if len(out) >= MAX_ISSUES:
        raise _TooManyIssues


def _reference(
    model: Model, value: dict[str, Any], targets: tuple[str, ...], path: str, out: list[Issue]
) -> None:
    """Check ``Reference.reference`` (https://hl7.org/fhir/R4/references.html#literal)."""
    ref = value.get("reference")
    if type(ref) is not str or not ref or ref[0] == "#":
        return
    problem = reference_problem(model.resource_types, ref, targets)
    if problem is not None:
        _err(out, "value", f"{path}.reference", problem)


def _resource(
    model: Model,
    res: dict[str, Any],
    where: str,
    depth: int,
    out: list[Issue],
    contained: bool,
    memo: Memo | None = None,
) -> None:
    severity = "error" if where else "fatal"
    rtype = res.get("resourceType")
    rpath = f"{where}.resourceType" if where else "resourceType"
    tdef = model.types.get(rtype) if type(rtype) is str else None
    if rtype is None:
        _err(out, "required", rpath, "missing resourceType", severity)
    elif tdef is None or tdef.kind != "resource":
        _err(out, "not-supported", rpath, f"unknown resource type {rtype!r}", severity)
    elif tdef.abstract:
        _err(out, "invalid", rpath, f"{rtype} is abstract, not a concrete type", severity)
    else:
        path = where or rtype
        if contained and "contained" in res:
            message = "dom-2: a contained resource cannot contain resources"
            _err(out, "invariant", f"{path}.contained", message)
        _object(model, res, tdef.json_index, tdef.required, path, depth, out, True, memo)


def _object(
    model: Model,
    obj: dict[str, Any],
    members: dict[str, JsonProperty],
    required: Required,
    path: str,
    depth: int,
    out: list[Issue],
    is_resource: bool,
    memo: Memo | None = None,
) -> None:
    """Validate the properties of a JSON object against a structure's json_index
    (``memo``: see :class:`StructureValidator`)."""
    if depth > MAX_DEPTH:
        _err(out, "too-long", path, f"JSON nested deeper than {MAX_DEPTH} levels")
        return
    if not obj:
        _err(out, "structure", path, "empty object (not allowed in FHIR JSON)")
        return
    chosen: dict[ElementDef, str] | None = None
    for key, value in obj.items():
        prop = members.get(key)
        if prop is None:
            if not (is_resource and key == "resourceType"):
                _unknown(members, key, path, out)
            continue
        elem, code, kind, repeats, partner, regex, sub, req = prop
        if elem.choice:
            variant = (partner or key) if kind == K_SHADOW else key
            chosen = chosen if chosen is not None else {}
            previous = chosen.setdefault(elem, variant)
            if previous != variant:
                message = f"{elem.name}[x] has one type only: found {previous} and {variant}"
                _err(out, "structure", f"{path}.{key}", message)
        if kind <= LAST_PRIMITIVE_KIND:
            if repeats:
                _primitive_array(obj, key, value, prop, path, out)
                continue
            if (
                type(value) is str
                and kind == K_STRING
                and value
                and len(value) <= MAX_STRING_LENGTH
            ):
                if value.isprintable() and (code in _TEXT or (code in _TOKEN and " " not in value)):
                    continue  # shortcut, see _TEXT
                if regex is None or regex.fullmatch(value) is not None:
                    continue
            elif type(value) is bool and kind == K_BOOLEAN:
                continue
            problem = primitive_problem(kind, code, regex, value)
            if problem is not None:
                _err(out, problem[0], f"{path}.{key}", problem[1])
            continue
        if kind == K_SHADOW:
            _shadow(model, obj, key, value, prop, path, depth, out, memo)
            continue
        # Objects: complex datatypes, backbone elements, resources.
        items: list[Any] | tuple[dict[str, Any]]
        if repeats:
            if not _is_array(out, elem, key, value, path):
                continue
            items, step = value, 2
        elif type(value) is dict:
            items, step = (value,), 1
        else:
            found = "an array (max is 1)" if type(value) is list else json_kind(value)
            _err(out, "structure", f"{path}.{key}", f"expected an object ({code}), found {found}")
            continue
        for i, item in enumerate(items):
            ipath = f"{path}.{key}[{i}]" if repeats else f"{path}.{key}"
            if type(item) is not dict:
                _err(
                    out, "structure", ipath, f"expected an object ({code}), found {json_kind(item)}"
                )
            elif sub is None:  # K_RESOURCE
                _resource(model, item, ipath, depth + step, out, elem.name == "contained", memo)
            else:
                seen = None
                if memo is not None and code in _REMEMBERED:
                    try:
                        data = orjson.dumps(item)
                    except TypeError:  # not plain JSON: walked every time
                        data = b""
                    if 0 < len(data) <= _MAX_KEY:
                        targets = elem.target_types if code == "Reference" else None
                        seen = (id(sub), id(req), targets, depth + step, data)
                        if seen in memo:
                            continue
                before = len(out)
                _object(model, item, sub, req, ipath, depth + step, out, False, memo)
                if code == "Reference":
                    _reference(model, item, elem.target_types, ipath, out)
                elif code == "Extension" and ("extension" in item) == (
                    # Any key besides these is value[x] (or unknown, reported already).
                    len(item) > ("id" in item) + ("url" in item) + ("extension" in item)
                ):
                    message = "ext-1: an extension has extensions or a value[x], not both"
                    _err(out, "invariant", ipath, message)
                if seen is not None and len(out) == before:
                    kept = (*seen[:4], memoryview(data).tobytes())  # right-sized copy
                    memo[kept] = None  # type: ignore[index]
    for rkey, names in required:
        for name in names:
            if name in obj:
                break
        else:
            where = f"{path}.{rkey.removesuffix('[x]')}"
            _err(out, "required", where, f"missing required element {rkey!r}")


def _unknown(members: dict[str, JsonProperty], key: Any, path: str, out: list[Issue]) -> None:
    message = f"unknown element {key!r}"
    if isinstance(key, str):
        bare = key[1:] if key.startswith("_") else key
        if bare != key and bare in members:
            message = f"{key!r}: only primitive elements have '_' twins ({bare!r} is {members[bare].type_code})"
        for prop in members.values():
            name = prop.element.name
            if prop.element.choice and bare.startswith(name) and bare[len(name) :][:1].isupper():
                allowed = ", ".join(prop.element.json_name(t) for t in prop.element.types)
                message = f"{key!r} is not a valid type for {name}[x]; expected one of {allowed}"
                break
    _err(out, "structure", f"{path}.{key}", message)


def _is_array(out: list[Issue], elem: ElementDef, key: str, value: Any, path: str) -> bool:
    """Check the JSON array of a repeating element: non-empty, not above max."""
    if type(value) is not list or not value:
        found = "an empty array" if type(value) is list else json_kind(value)
        _err(
            out, "structure", f"{path}.{key}", f"{key!r} repeats: expected an array, found {found}"
        )
        return False
    if elem.max is not None and len(value) > elem.max:
        message = f"{key!r} allows {elem.max} items at most, found {len(value)}"
        _err(out, "structure", f"{path}.{key}", message)
    return True


def _primitive_array(
    obj: dict[str, Any], key: str, value: Any, prop: JsonProperty, path: str, out: list[Issue]
) -> None:
    elem, code, kind, _, partner, regex, _, _ = prop
    if not _is_array(out, elem, key, value, path):
        return
    shadow = obj.get(partner) if partner else None
    twins = shadow if type(shadow) is list else None
    if twins is not None and len(twins) != len(value):
        message = (
            f"{key!r} has {len(value)} items but {partner!r} has {len(twins)}: arrays must align"
        )
        _err(out, "structure", f"{path}.{key}", message)
    for i, item in enumerate(value):
        if item is None:
            if twins is None or i >= len(twins) or twins[i] is None:
                _err(out, "structure", f"{path}.{key}[{i}]", f"null, and no {partner!r} twin")
            continue
        problem = primitive_problem(kind, code, regex, item)
        if problem is not None:
            _err(out, problem[0], f"{path}.{key}[{i}]", problem[1])


def _shadow(
    model: Model,
    obj: dict[str, Any],
    key: str,
    value: Any,
    prop: JsonProperty,
    path: str,
    depth: int,
    out: list[Issue],
    memo: Memo | None = None,
) -> None:
    """Check ``_name``, the id/extensions of a primitive (https://hl7.org/fhir/R4/json.html#primitive)."""
    elem, _, _, repeats, partner, _, sub, req = prop
    assert sub is not None and partner is not None
    base = f"{path}.{partner}"
    if not repeats:
        if type(value) is dict:
            _object(model, value, sub, req, base, depth + 1, out, False, memo)
        else:
            _err(out, "structure", f"{path}.{key}", f"expected an object, found {json_kind(value)}")
        return
    if not _is_array(out, elem, key, value, path):
        return
    values = obj.get(partner)
    for i, item in enumerate(value):
        if type(item) is dict:
            _object(model, item, sub, req, f"{base}[{i}]", depth + 2, out, False, memo)
        elif item is not None:
            found = json_kind(item)
            _err(
                out, "structure", f"{path}.{key}[{i}]", f"expected an object or null, found {found}"
            )
        elif type(values) is not list:
            _err(out, "structure", f"{path}.{key}[{i}]", f"null without a value in {partner!r}")
