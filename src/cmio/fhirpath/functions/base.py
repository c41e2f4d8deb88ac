"""The function registry's building blocks (http://hl7.org/fhirpath/N1/#functions)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cmio.fhirpath.context import Context
from cmio.fhirpath.errors import FhirPathError
from cmio.fhirpath.values import prim, single

__all__ = ["Fn", "FunctionSpec", "single_string", "spec"]

Fn = Callable[[Context, list[Any]], list[Any]]
"""A compiled expression: (context, focus collection) -> result collection."""


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """How to call one function.

    Attributes:
        impl: ``impl(ctx, input, *args)``; arguments listed in ``lazy`` arrive as
            :data:`Fn` closures (to evaluate per item), the others as collections
            evaluated once on the focus; for ``kind="type"`` the argument is the
            tuple of qualified type names it may denote.
        min_args: minimum number of arguments.
        max_args: maximum number of arguments.
        lazy: positions of the arguments passed unevaluated.
        kind: ``normal`` or ``type`` (``is``/``as``/``ofType``).
    """

    impl: Callable[..., list[Any]]
    min_args: int = 0
    max_args: int = 0
    lazy: tuple[int, ...] = ()
    kind: str = "normal"


def spec(
    impl: Callable[..., list[Any]],
    min_args: int = 0,
    max_args: int | None = None,
    lazy: tuple[int, ...] = (),
    kind: str = "normal",
) -> FunctionSpec:
    """Shorthand for :class:`FunctionSpec` (``max_args`` defaults to ``min_args``)."""
    return FunctionSpec(impl, min_args, min_args if max_args is None else max_args, lazy, kind)


def single_string(items: list[Any], what: str) -> str | None:
    """The String of a singleton (None if empty); error for another type or several items."""
    item = single(items, what)
    if item is None:
        return None
    value = prim(item)
    if value is None:
        return None
    if type(value) is not str:
        raise FhirPathError(f"{what} must be a String")
    return value


def single_int(items: list[Any], what: str) -> int | None:
    """The Integer of a singleton (None if empty); error for another type."""
    item = single(items, what)
    if item is None:
        return None
    value = prim(item)
    if type(value) is not int:
        raise FhirPathError(f"{what} must be an Integer")
    return value
