"""The seam for terminology-aware token modifiers ``:in``, ``:not-in``, ``:above``, ``:below``.

See https://hl7.org/fhir/R4/search.html#modifiers. A provider expands a value
set or a subsumption hierarchy into ``(system, code)`` pairs; without one these
modifiers are refused as not supported.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from cmio.search.values import split_token
from cmio.store.base import InvalidRequestError

__all__ = ["TerminologyNotSupportedError", "TerminologyProvider", "expand_token"]


class TerminologyNotSupportedError(InvalidRequestError):
    """A terminology modifier was used and no provider is configured (400 not-supported)."""


class TerminologyProvider(Protocol):
    """What search needs from a terminology service."""

    def expand(self, valueset: str) -> Iterable[tuple[str, str]]:
        """All ``(system, code)`` pairs of a value set (by canonical URL)."""
        ...

    def subsumption(self, system: str, code: str, above: bool) -> Iterable[tuple[str, str]]:
        """Codes subsumed by (``above=False``) or subsuming (``above=True``) ``system|code``."""
        ...


def expand_token(
    provider: TerminologyProvider | None, code: str, modifier: str, values: Iterable[str]
) -> list[tuple[str | None, str | None]]:
    """The ``(system, code)`` pairs a terminology modifier stands for.

    Raises:
        TerminologyNotSupportedError: no provider.
    """
    if provider is None:
        raise TerminologyNotSupportedError(
            f"{code}:{modifier} needs a terminology service, which is not configured"
        )
    pairs: list[tuple[str | None, str | None]] = []
    for value in values:
        if modifier in ("in", "not-in"):
            pairs.extend(provider.expand(value))
            continue
        system, token = split_token(value)
        if not system or token is None:
            raise InvalidRequestError(f"{code}:{modifier} needs system|code")
        pairs.extend(provider.subsumption(system, token, modifier == "above"))
    return pairs
