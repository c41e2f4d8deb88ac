"""The data of an expansion: its options, its members and the result.

https://hl7.org/fhir/R4/valueset-operation-expand.html (the parameters that change what an
expansion holds) and https://hl7.org/fhir/R4/valueset-definitions.html#ValueSet.expansion
(what it holds). Computed by :class:`cmio.terminology.expansion.Expander`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cmio.terminology.codesystem import CodeSystemSource, Entry

__all__ = ["ExpandOptions", "Expansion", "Member"]


@dataclass(slots=True)
class ExpandOptions:
    """Parameters that change what an expansion holds
    (https://hl7.org/fhir/R4/valueset-operation-expand.html).

    Attributes:
        active_only: leave inactive codes out.
        system_versions: ``system-version``: the version to use when a compose names none.
        force_versions: ``force-system-version``: the version to use whatever the compose says.
        check_versions: ``check-system-version``: the version a compose must name if it names one.
        exclude_systems: ``exclude-system``: systems (``url`` or ``url|version``) left out.
        display_language: preferred language of displays.
        value_versions: the versions the values being validated state: an include whose
            version is a pattern they match (``1.x``) uses them, not its newest match.
        valueset_versions: ``default-valueset-version``: the version of a value set to
            import when the import names none.
    """

    active_only: bool = False
    system_versions: dict[str, str] = field(default_factory=dict)
    force_versions: dict[str, str] = field(default_factory=dict)
    check_versions: dict[str, str] = field(default_factory=dict)
    exclude_systems: frozenset[str] = frozenset()
    display_language: str | None = None
    value_versions: dict[str, str] = field(default_factory=dict)
    valueset_versions: dict[str, str] = field(default_factory=dict)

    def key(self) -> tuple[Any, ...]:
        """A hashable summary (for caching expansions)."""
        if not (
            self.active_only
            or self.system_versions
            or self.force_versions
            or self.check_versions
            or self.exclude_systems
            or self.display_language
            or self.value_versions
            or self.valueset_versions
        ):
            return _DEFAULT_KEY
        return (
            self.active_only,
            tuple(sorted(self.system_versions.items())),
            tuple(sorted(self.force_versions.items())),
            tuple(sorted(self.check_versions.items())),
            tuple(sorted(self.exclude_systems)),
            self.display_language,
            tuple(sorted(self.value_versions.items())),
            tuple(sorted(self.valueset_versions.items())),
        )


_DEFAULT_KEY = (False, (), (), (), (), None, (), ())


@dataclass(slots=True)
class Member:
    """One code of an expansion.

    Attributes:
        system: code system URL.
        version: code system version.
        code: the code.
        source: the code system (None when it is not known here).
        display: display given by the compose (overrides the code system's).
        designations: designations given by the compose.
        marks: the compose concept's extensions carried onto its expansion row
            (``valueset-deprecated``, ``structuredefinition-standards-status``,
            ``valueset-concept-definition``, ``rendering-style``, ``rendering-xhtml``).
        extras: the concept properties the compose concept states by extension
            (``valueset-label``, ``valueset-conceptOrder``, ``itemWeight``), which take
            precedence over the code system's.
    """

    system: str
    version: str | None
    code: str
    source: CodeSystemSource | None = None
    display: str | None = None
    designations: list[dict[str, Any]] = field(default_factory=list)
    _entry: Entry | None = None
    marks: list[dict[str, Any]] = field(default_factory=list)
    extras: tuple[tuple[str, str, Any], ...] = ()

    def entry(self) -> Entry | None:
        """The code system's concept (looked up once)."""
        if self._entry is None and self.source is not None:
            self._entry = self.source.get(self.code)
        return self._entry


@dataclass(slots=True)
class Expansion:
    """The members of a value set, in order, with what was used to compute them.

    Attributes:
        valueset: the ValueSet resource expanded.
        members: ``(system, code)`` -> member, in expansion order.
        used: ``(parameter name, canonical)`` pairs (``used-codesystem``, ``used-valueset``).
        complete: False when a part could not be resolved.
        alternates: the same code from includes of other versions of its system (an
            overloaded value set), beside the one in ``members``.
        status_notes: the draft/experimental/deprecated/withdrawn status parameters of what
            was used (:mod:`cmio.terminology.status_warnings`), once computed.
    """

    valueset: dict[str, Any]
    members: dict[tuple[str, str], Member]
    used: list[tuple[str, str]] = field(default_factory=list)
    complete: bool = True
    alternates: dict[tuple[str, str], list[Member]] = field(default_factory=dict)
    status_notes: list[dict[str, Any]] | None = None

    def candidates(self, system: str, code: str) -> list[Member]:
        """Every member for a code: the first included, then those of other versions."""
        first = self.members.get((system, code))
        return [] if first is None else [first, *self.alternates.get((system, code), ())]

    def contains(self, system: str, code: str) -> bool:
        """Membership test (exact code)."""
        return (system, code) in self.members
