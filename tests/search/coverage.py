"""Minimal resources with a value for one search parameter (for the coverage test).

For a parameter whose expression (for one base type) is a plain element path,
optionally ending in ``ofType(T)``, :func:`example` builds a resource holding
one value at that path and a search value that must find it.
"""

from __future__ import annotations

import re
from typing import Any

from cmio.indexing.extract import search_expression
from cmio.model import Model
from cmio.model.types import ElementDef, SearchParamDef

__all__ = ["example"]

UCUM = "http://unitsofmeasure.org"
_OFTYPE = re.compile(r"^(.*)\.ofType\(([A-Za-z]+)\)$")
_STEP = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def _leaf(type_code: str, ptype: str, targets: tuple[str, ...]) -> tuple[Any, str] | None:
    """A JSON value of ``type_code`` and the search value that matches it."""
    if type_code in ("string", "markdown", "code", "id"):
        return "alpha-1", {"string": "alpha", "token": "alpha-1", "uri": "alpha-1"}.get(
            ptype, "alpha-1"
        )
    if type_code in ("uri", "url", "canonical", "oid", "uuid"):
        return "http://example.org/a", "http://example.org/a"
    if type_code == "boolean":
        return True, "true"
    if type_code in ("date", "dateTime", "instant"):
        return ("2020-05-17T10:00:00Z" if type_code == "instant" else "2020-05-17"), "2020-05-17"
    if type_code == "Period":
        return {"start": "2020-05-17", "end": "2020-05-18"}, "ge2020-05-17"
    if type_code == "Timing":
        return {"event": ["2020-05-17"]}, "2020-05-17"
    if type_code in ("integer", "decimal", "positiveInt", "unsignedInt"):
        return 42, "42"
    if type_code in ("Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity"):
        return {"value": 42, "system": UCUM, "code": "mg"}, "42"
    if type_code == "Money":
        return {"value": 42, "currency": "USD"}, "42"
    if type_code == "Range":
        return {"low": {"value": 42, "system": UCUM, "code": "mg"}}, "42"
    if type_code == "SampledData":
        return {"origin": {"value": 42}, "period": 1, "dimensions": 1}, "42"
    if type_code == "CodeableConcept":
        return {"coding": [{"system": "http://s", "code": "c1"}]}, "http://s|c1"
    if type_code == "Coding":
        return {"system": "http://s", "code": "c1"}, "http://s|c1"
    if type_code == "Identifier":
        return {"system": "http://s", "value": "c1"}, "http://s|c1"
    if type_code == "ContactPoint":
        return {"system": "phone", "value": "555"}, "555"
    if type_code == "HumanName":
        return {"family": "Alpha"}, "alp"
    if type_code == "Address":
        return {"city": "Alpha"}, "alp"
    if type_code == "Reference":
        target = targets[0] if targets else "Patient"
        return {"reference": f"{target}/x1"}, f"{target}/x1"
    return None


def example(model: Model, spd: SearchParamDef, rtype: str) -> tuple[dict[str, Any], str] | str:
    """``(resource, search value)`` for ``spd`` on ``rtype``, or the reason there is none."""
    expression = search_expression(spd, rtype)
    if expression is None:
        return "no expression"
    branches = [_unwrap(b.strip()) for b in expression.split("|")]
    reasons: list[str] = []
    for branch in branches:
        found = _branch(model, spd, rtype, branch)
        if isinstance(found, tuple):
            return found
        reasons.append(found)
    return "; ".join(dict.fromkeys(reasons))


def _unwrap(branch: str) -> str:
    return branch[1:-1] if branch.startswith("(") and branch.endswith(")") else branch


def _branch(
    model: Model, spd: SearchParamDef, rtype: str, branch: str
) -> tuple[dict[str, Any], str] | str:
    wanted: str | None = None
    m = _OFTYPE.match(branch)
    if m:
        branch, wanted = m.group(1), m.group(2)
    steps = branch.split(".")
    if steps[0] not in (rtype, "Resource", "DomainResource") or len(steps) < 2:
        return f"branch {branch!r} is not a path on {rtype}"
    if not all(_STEP.match(s) for s in steps[1:]):
        return f"branch {branch!r} is not a plain element path (where(), functions)"
    elements = model.types[rtype].elements
    resource: dict[str, Any] = {"resourceType": rtype, "id": "cov-1"}
    node = resource
    element: ElementDef | None = None
    for i, step in enumerate(steps[1:]):
        element = elements.get(step) or elements.get(step + "[x]")
        if element is None:
            return f"no element {step!r}"
        last = i == len(steps) - 2
        if last:
            break
        if element.children is None:
            type_code = element.types[0]
            children = model.types[type_code].elements
        else:
            children = element.children
        child: dict[str, Any] = {}
        node[element.json_name(element.types[0])] = [child] if element.repeats else child
        node, elements = child, children
    assert element is not None
    type_codes = [wanted] if wanted else list(element.types)
    for type_code in type_codes:
        if type_code not in element.types and not element.choice:
            continue
        targets = spd.target or element.target_types
        leaf = _leaf(type_code, spd.type, targets)
        if leaf is None:
            continue
        value, search = leaf
        node[element.json_name(type_code)] = [value] if element.repeats else value
        return resource, search
    return f"no example value for type(s) {', '.join(type_codes)}"
