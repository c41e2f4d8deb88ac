"""Value sets inside views: ``memberOf()`` answered from materialized expansions.

A view that calls ``memberOf('http://.../ValueSet/x')`` (FHIRPath,
https://hl7.org/fhir/R4/fhirpath.html#functions) is compiled by the SQL engines
to a join against an expansion table (:func:`table_name`), one per value set,
filled once per run from the terminology service (:class:`ValueSetExpander`, e.g.
:class:`cmio.terminology.providers.ServiceTerminology`), never a call per row.
The table has one column ``key``: ``system|code`` for each member, and
``*|code`` so that a code without a system (a ``code`` element, or a Coding
without ``system``) matches a member of any system, as ``$validate-code`` does.
:class:`ExpansionMembership` answers the in-memory evaluator from the same keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import pyarrow as pa

from cmio.views.parse import ViewDefinitionError

__all__ = [
    "ANY_SYSTEM",
    "ExpansionMembership",
    "ValueSetExpander",
    "expansion_keys",
    "expansion_table",
    "table_name",
]

ANY_SYSTEM = "*"
"""The system part of a key that matches a code of any system."""


class ValueSetExpander(Protocol):
    """What views need from a terminology service: a value set's members."""

    def expand(self, valueset: str) -> Iterable[tuple[str, str]]:
        """All ``(system, code)`` pairs of the value set with this canonical URL.

        Raises:
            Exception: the value set is unknown or cannot be expanded.
        """
        ...


def table_name(valueset: str) -> str:
    """The SQL name of a value set's expansion table (stable: derived from the URL)."""
    return "cmio_vs_" + hashlib.sha1(valueset.encode(), usedforsecurity=False).hexdigest()[:16]


def expansion_keys(expander: ValueSetExpander | None, valueset: str) -> list[str]:
    """The join keys of a value set: ``system|code`` and ``*|code`` per member (distinct).

    Raises:
        ViewDefinitionError: no terminology service, or it cannot expand the value set.
    """
    if expander is None:
        raise ViewDefinitionError(
            f"memberOf({valueset!r}) needs a terminology service (terminology=...)",
            "ViewDefinition",
        )
    try:
        members = list(expander.expand(valueset))
    except Exception as exc:
        raise ViewDefinitionError(
            f"memberOf(): cannot expand value set {valueset!r}: {exc}", "ViewDefinition"
        ) from exc
    keys = dict.fromkeys(f"{system}|{code}" for system, code in members)
    keys.update(dict.fromkeys(f"{ANY_SYSTEM}|{code}" for _, code in members))
    return list(keys)


def expansion_table(expander: ValueSetExpander | None, valueset: str) -> pa.Table:
    """The expansion table of a value set as Arrow (one ``key`` column)."""
    return pa.table({"key": pa.array(expansion_keys(expander, valueset), pa.string())})


class ExpansionMembership:
    """FHIRPath ``memberOf()`` for the in-memory evaluator, from the expansion keys.

    Implements :class:`cmio.fhirpath.context.TerminologyProvider`; each value set is
    expanded once per object.

    Args:
        expander: the terminology service.
    """

    def __init__(self, expander: ValueSetExpander | None) -> None:
        self.expander = expander
        self._keys: dict[str, frozenset[str]] = {}

    def member_of(self, code: Mapping[str, Any], valueset: str) -> bool | None:
        """Whether any coding of a Coding/CodeableConcept/code is in the value set (None: no
        code to test)."""
        keys = self._keys.get(valueset)
        if keys is None:
            keys = self._keys[valueset] = frozenset(expansion_keys(self.expander, valueset))
        codings = code.get("coding") if "coding" in code else [code]
        tested = [
            f"{c.get('system') or ANY_SYSTEM}|{c['code']}"
            for c in codings or ()
            if isinstance(c, Mapping) and isinstance(c.get("code"), str)
        ]
        if not tested:
            return None
        return any(key in keys for key in tested)
