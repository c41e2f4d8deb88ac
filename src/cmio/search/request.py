"""The parsed search request: one node per query parameter (https://hl7.org/fhir/R4/search.html).

A query key such as ``subject:Patient.name:exact`` or
``_has:Observation:patient:code`` is resolved against the parameter definitions
of the model into a tree of :class:`Filter`, :class:`Chain` and :class:`Has`
nodes, shared by the SQL compiler and the in-memory matcher.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cmio.model import Model
from cmio.model.types import SearchParamDef
from cmio.store.base import InvalidRequestError, SearchClause

__all__ = [
    "RESULT_PARAMS",
    "SPECIAL",
    "TEXT_PARAMS",
    "Chain",
    "Filter",
    "Has",
    "Node",
    "UnknownParameterError",
    "clause_key",
    "resolve",
    "searchable",
]

#: parameters answered from the resource table, with their search type
SPECIAL = {"_id": "token", "_lastUpdated": "date", "_type": "token", "_compartment": "token"}
#: result-shaping parameters (not filters)
RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_total",
        "_summary",
        "_elements",
        "_format",
        "_pretty",
        "_offset",
        "_totalMethod",
        "_include",
        "_revinclude",
        "_contained",
        "_containedType",
        "_snapshot",
        "_after",
    }
)
_MODIFIERS = {
    "string": frozenset({"exact", "contains", "missing"}),
    "token": frozenset(
        {"text", "not", "missing", "of-type", "in", "not-in", "above", "below", "identifier"}
    ),
    "reference": frozenset({"missing", "identifier"}),
    "date": frozenset({"missing"}),
    "number": frozenset({"missing"}),
    "quantity": frozenset({"missing"}),
    "uri": frozenset({"below", "above", "missing"}),
}
_UNSUPPORTED_TYPES = frozenset({"special"})
#: full-text parameters (https://hl7.org/fhir/R4/search.html#text), type ``text`` here
TEXT_PARAMS = frozenset({"_text", "_content"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class UnknownParameterError(InvalidRequestError):
    """A parameter, modifier or chain the server does not know (HTTP 400).

    Attributes:
        expression: the query parameter name at fault.
    """

    def __init__(self, message: str, expression: str) -> None:
        super().__init__(message)
        self.expression = expression


@dataclass(frozen=True, slots=True)
class Filter:
    """A parameter of one resource type with OR-ed values."""

    rtype: str | None
    code: str
    type: str
    modifier: str | None
    values: tuple[str, ...]
    targets: tuple[str, ...] = ()
    #: for composites, the search types of the components
    components: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Chain:
    """``ref:Type.inner``: resources whose ``code`` reference matches ``inner`` per target type."""

    rtype: str
    code: str
    inner: tuple[tuple[str, Node], ...]


@dataclass(frozen=True, slots=True)
class Has:
    """``_has:source:ref:inner``: resources referenced by ``source`` resources matching ``inner``."""

    rtype: str
    source: str
    code: str
    inner: Node


Node = Filter | Chain | Has


def clause_key(clause: SearchClause) -> str:
    """The query key of a store clause (``name`` plus ``:modifier``)."""
    return f"{clause.name}:{clause.modifier}" if clause.modifier else clause.name


def _param(model: Model, rtype: str | None, code: str, key: str) -> SearchParamDef | None:
    if rtype is None:
        spd = model.search_params_for("Resource").get(code) if code.startswith("_") else None
        return spd
    return model.search_params_for(rtype).get(code)


def resolve(model: Model, rtype: str | None, key: str, values: tuple[str, ...]) -> Node:
    """Resolve one query key and its OR-ed values into a node.

    See https://hl7.org/fhir/R4/search.html#chaining and #has.

    Raises:
        UnknownParameterError: unknown parameter, modifier, type or chain.
        InvalidRequestError: a value holds a control character (FHIR strings cannot,
            https://hl7.org/fhir/R4/datatypes.html#string; a NUL would cut a SQL pattern).
    """
    if any(_CONTROL.search(v) for v in values):
        raise InvalidRequestError(f"{key}: search values cannot hold control characters")
    if key.startswith("_has:"):
        parts = key.split(":", 3)
        if rtype is None or len(parts) < 4 or not model.is_resource_type(parts[1]):
            raise UnknownParameterError(f"Malformed _has parameter {key!r}", key)
        source, ref = parts[1], parts[2]
        spd = model.search_params_for(source).get(ref)
        if spd is None or spd.type != "reference":
            raise UnknownParameterError(f"{source} has no reference parameter {ref!r}", key)
        if spd.target and rtype not in spd.target:
            raise UnknownParameterError(f"{source}.{ref} cannot reference {rtype}", key)
        return Has(rtype, source, ref, resolve(model, source, parts[3], values))
    head, dot, rest = key.partition(".")
    code, _, modifier = head.partition(":")
    if dot:
        return _chain(model, rtype, code, modifier or None, rest, values, key)
    if code in TEXT_PARAMS or code == "_list":
        if modifier:
            raise UnknownParameterError(f"Modifier :{modifier} is not supported on {code}", key)
        if rtype is not None and code not in model.search_params_for(rtype) and code != "_list":
            raise UnknownParameterError(f"Unknown search parameter {code!r} for {rtype}", key)
        return Filter(rtype, code, "text" if code in TEXT_PARAMS else "list", None, values)
    if code == "_compartment" and not modifier:
        found = _compartment(model, rtype, values, key)
        if found is not None:
            return found
    if code in SPECIAL:
        if modifier and not (code == "_id" and modifier == "missing"):
            raise UnknownParameterError(f"Modifier :{modifier} is not supported on {code}", key)
        if code == "_type" and rtype is not None:
            raise UnknownParameterError("_type is only allowed in system search", key)
        return Filter(rtype, code, SPECIAL[code], modifier or None, values)
    spd = _param(model, rtype, code, key)
    if spd is None:
        where = rtype or "system search"
        raise UnknownParameterError(f"Unknown search parameter {code!r} for {where}", key)
    if spd.type in _UNSUPPORTED_TYPES:
        raise UnknownParameterError(f"Search parameter {code!r} is not supported yet", key)
    if modifier and spd.type == "reference" and model.is_resource_type(modifier):
        if spd.target and modifier not in spd.target:
            raise UnknownParameterError(f"{code} cannot reference {modifier}", key)
        return Filter(rtype, code, "reference", None, values, (modifier,))
    if modifier and modifier not in _MODIFIERS.get(spd.type, frozenset()):
        raise UnknownParameterError(f"Modifier :{modifier} is not supported on {code}", key)
    if spd.type == "composite":
        from cmio.indexing.composite import component_types

        types = component_types(model, spd)
        if types is None:
            raise UnknownParameterError(f"Composite parameter {code!r} is not supported", key)
        if any(len(v.split("$")) != len(types) for v in values):
            raise UnknownParameterError(f"{code} needs {len(types)} values joined by $", key)
        return Filter(rtype, code, "composite", None, values, (), types)
    return Filter(rtype, code, spd.type, modifier or None, values, spd.target)


def _compartment(
    model: Model, rtype: str | None, values: tuple[str, ...], key: str
) -> Filter | None:
    """``_compartment=C|id`` for a compartment other than Patient (whose membership
    rows are written at index time): the references the CompartmentDefinition names
    for ``rtype``, matched at query time (https://hl7.org/fhir/R4/compartmentdefinition.html).

    Returns None for the Patient compartment.
    """
    ctype, bar, cid = values[0].partition("|") if values else ("", "", "")
    if ctype == "Patient":
        return None
    if len(values) != 1 or not bar or not cid or ctype not in model.compartments:
        raise UnknownParameterError("_compartment takes one Type|id value", key)
    params = model.compartments[ctype].resources.get(rtype or "", ())
    return Filter(rtype, "_compartment", "compartment", None, values, tuple(params))


def _chain(
    model: Model,
    rtype: str | None,
    code: str,
    type_modifier: str | None,
    rest: str,
    values: tuple[str, ...],
    key: str,
) -> Chain:
    spd = _param(model, rtype, code, key)
    if rtype is None or spd is None or spd.type != "reference":
        raise UnknownParameterError(f"{code!r} is not a reference parameter to chain on", key)
    if type_modifier is not None:
        if not model.is_resource_type(type_modifier):
            raise UnknownParameterError(f"Unknown type {type_modifier!r} in chain", key)
        targets: tuple[str, ...] = (type_modifier,)
    else:
        targets = spd.target or tuple(sorted(model.resource_types))
    inner_code = rest.partition(".")[0].partition(":")[0]
    inner: list[tuple[str, Node]] = []
    for target in targets:
        if inner_code in SPECIAL or inner_code in model.search_params_for(target):
            inner.append((target, resolve(model, target, rest, values)))
    if not inner:
        raise UnknownParameterError(f"No target of {code!r} has a parameter {inner_code!r}", key)
    return Chain(rtype, code, tuple(inner))


def searchable(model: Model, rtype: str) -> list[SearchParamDef]:
    """The parameters of ``rtype`` this server searches on, for the CapabilityStatement.

    Everything except special parameters, ``_query`` and ``_filter``
    (https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.rest.resource.searchParam).
    """
    skip = {"_query", "_filter"}
    return [
        spd
        for code, spd in sorted(model.search_params_for(rtype).items())
        if spd.type not in _UNSUPPORTED_TYPES and code not in skip
    ]
