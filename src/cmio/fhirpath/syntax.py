"""The FHIRPath abstract syntax tree (http://hl7.org/fhirpath/N1/#grammar).

Immutable nodes produced by :mod:`cmio.fhirpath.parser` and consumed by the
compiler and the static checker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Binary",
    "EnvVar",
    "Expr",
    "Function",
    "Indexer",
    "Literal",
    "Member",
    "TypeOp",
    "TypeSpec",
    "Unary",
    "Variable",
]


@dataclass(frozen=True, slots=True)
class Expr:
    """Base class; ``pos`` is the offset of the node in the expression text."""

    pos: int


@dataclass(frozen=True, slots=True)
class Literal(Expr):
    """A literal; ``value`` None is the empty collection ``{}``."""

    value: Any


@dataclass(frozen=True, slots=True)
class Member(Expr):
    """``target.name``, or ``name`` at the start of a path (``target`` None)."""

    target: Expr | None
    name: str


@dataclass(frozen=True, slots=True)
class Function(Expr):
    """``target.name(args)``, or ``name(args)`` on the focus (``target`` None)."""

    target: Expr | None
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Indexer(Expr):
    """``target[index]``."""

    target: Expr
    index: Expr


@dataclass(frozen=True, slots=True)
class Variable(Expr):
    """``$this``, ``$index`` or ``$total`` (name without ``$``)."""

    name: str


@dataclass(frozen=True, slots=True)
class EnvVar(Expr):
    """An external constant ``%name`` (name without ``%``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Unary(Expr):
    """Polarity ``+x`` or ``-x``."""

    op: str
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary(Expr):
    """A binary operator (``*``, ``+``, ``|``, ``=``, ``and``, ``implies``...)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """A type specifier: ``namespace`` None when unqualified (``Quantity``, ``FHIR.code``)."""

    namespace: str | None
    name: str

    def __str__(self) -> str:
        return self.name if self.namespace is None else f"{self.namespace}.{self.name}"


@dataclass(frozen=True, slots=True)
class TypeOp(Expr):
    """``operand is Type`` or ``operand as Type``."""

    op: str
    operand: Expr
    type: TypeSpec
