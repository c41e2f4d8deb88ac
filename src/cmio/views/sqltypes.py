"""Static types and compiled values of the FHIRPath-to-SQL compiler.

A :class:`Val` is one compiled FHIRPath value (an SQL expression, its cardinality
and static FHIR type); :class:`FType` a FHIR type with its JSON properties from
the R4 model (http://hl7.org/fhir/R4/fhirpath.html#types).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlglot import exp

from cmio.model.types import JsonProperty
from cmio.views.dialects.base import SqlKind

__all__ = ["SYSTEM_KINDS", "UNKNOWN", "FType", "Val"]

SYSTEM_KINDS: dict[str, SqlKind] = {
    "System.String": "string",
    "System.Boolean": "boolean",
    "System.Integer": "integer",
    "System.Decimal": "decimal",
}
"""The SQL kind of each FHIRPath System primitive type."""


@dataclass(frozen=True, slots=True)
class FType:
    """A static FHIR type: its code and, for complex types, its JSON properties."""

    code: str | None
    index: Mapping[str, JsonProperty] | None = field(default=None, repr=False)


UNKNOWN = FType(None)


@dataclass(frozen=True, slots=True)
class Val:
    """A compiled FHIRPath value.

    Attributes:
        sql: the expression.
        many: a list of items (else one item, NULL when empty).
        ftype: the items' static FHIR type.
        kind: set when the items are typed SQL scalars; None when they are JSON.
        path: for the resource, a lambda item, and chains of non-repeating elements from
            them: the JSON property names from there (values from the resource are
            prefetched once per resource; from an item, extracted with one path).
        anchor: the JSON expression ``path`` starts from (None: the resource).
    """

    sql: exp.Expression
    many: bool
    ftype: FType = UNKNOWN
    kind: SqlKind | None = None
    path: tuple[str, ...] | None = None
    anchor: exp.Expression | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        # sqlglot's repr of a deep tree is slow; tracebacks print this.
        return f"Val(<{type(self.sql).__name__}>, many={self.many}, type={self.ftype.code})"
