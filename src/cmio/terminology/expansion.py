"""Value set expansion: ``compose`` include/exclude, imports and filters.

Implements https://hl7.org/fhir/R4/valueset.html#compositions and the filter
operators of https://hl7.org/fhir/R4/valueset-filter-operator.html (``=``,
``is-a``, ``descendent-of``, ``is-not-a``, ``regex``, ``in``, ``not-in``,
``generalizes``, ``exists``, plus ``child-of``). The result keeps every member in
order as a lightweight :class:`Member`; displays and flags are filled in for the
page that is rendered only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cmio.terminology.codesystem import (
    RENDERING,
    CodeSystemSource,
    Entry,
    ResourceCodeSystem,
    extension_properties,
)
from cmio.terminology.errors import TerminologyError, unknown_system_text
from cmio.terminology.expansion_types import ExpandOptions, Expansion, Member
from cmio.terminology.filters import filter_codes
from cmio.terminology.resources import TerminologyResources, version_matches

__all__ = ["ExpandOptions", "Expander", "Expansion", "Member"]


_Members = dict[tuple[str, str], Member]


class Expander:
    """Expands ValueSet resources against the resources and the concept store.

    Args:
        resources: where referenced code systems and value sets come from.
        options: expansion parameters.
        max_depth: bound on nested value set imports (cycles are an error).
    """

    def __init__(
        self, resources: TerminologyResources, options: ExpandOptions, max_depth: int = 32
    ) -> None:
        self.resources = resources
        self.options = options
        self.max_depth = max_depth
        self._stack: list[str] = []
        self._holders: list[dict[str, Any]] = []

    def expand(self, valueset: dict[str, Any]) -> Expansion:
        """Expand one ValueSet resource (its ``compose``, else an ``expansion`` it carries)."""
        url = f"{valueset.get('url', '')}|{valueset.get('version', '')}"
        if url in self._stack:
            raise TerminologyError(
                400,
                "processing",
                f"Value set {url} imports itself (cycle: {self._stack})",
                detail="vs-invalid",
            )
        if len(self._stack) >= self.max_depth:
            raise TerminologyError(400, "too-costly", "Value set imports are nested too deeply")
        self._stack.append(url)
        self._holders.append(valueset)
        try:
            result = Expansion(valueset, {})
            compose = valueset.get("compose")
            if isinstance(compose, dict):
                self._compose(compose, result)
            elif isinstance(valueset.get("expansion"), dict):
                self._listed(valueset["expansion"].get("contains") or (), result)
            else:
                raise TerminologyError(
                    400,
                    "invalid",
                    f"Value set {url} has neither compose nor expansion",
                    expression="ValueSet.compose",
                )
            if self.options.active_only or (
                isinstance(compose, dict) and compose.get("inactive") is False
            ):
                result.members = {
                    k: m for k, m in result.members.items() if not _inactive(m.entry())
                }
            return result
        finally:
            self._stack.pop()
            self._holders.pop()

    def _listed(self, contains: Iterable[Any], result: Expansion) -> None:
        for item in contains:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("code"), str) and isinstance(item.get("system"), str):
                source = self.resources.code_system(item["system"], item.get("version"))
                member = Member(
                    item["system"], item.get("version"), item["code"], source, item.get("display")
                )
                result.members.setdefault((member.system, member.code), member)
            self._listed(item.get("contains") or (), result)

    def _compose(self, compose: dict[str, Any], result: Expansion) -> None:
        for index, include in enumerate(compose.get("include") or ()):
            where = f"ValueSet.compose.include[{index}]"
            for key, member in self._part(include, result, where).items():
                kept = result.members.setdefault(key, member)
                if kept is not member and kept.version != member.version:
                    others = result.alternates.setdefault(key, [])
                    if all(o.version != member.version for o in others):
                        others.append(member)
        for index, exclude in enumerate(compose.get("exclude") or ()):
            where = f"ValueSet.compose.exclude[{index}]"
            for key in self._part(exclude, result, where):
                result.members.pop(key, None)
                result.alternates.pop(key, None)

    def _part(self, part: dict[str, Any], result: Expansion, where: str) -> _Members:
        sets: list[_Members] = []
        for canonical in part.get("valueSet") or ():
            sets.append(self._import(canonical, result, where))
        system = part.get("system")
        if isinstance(system, str):
            sets.append(self._system_part(part, system, result, where))
        elif part.get("concept") or part.get("filter"):
            raise TerminologyError(
                400,
                "invalid",
                "A compose part with concepts or filters needs a system",
                expression=where,
            )
        if not sets:
            return {}
        first, rest = sets[0], sets[1:]
        return {k: m for k, m in first.items() if all(k in other for other in rest)}

    def _contained(self, reference: str) -> dict[str, Any] | None:
        """A ``#id`` reference: a value set contained in one being expanded (innermost
        first), https://hl7.org/fhir/R4/references.html#contained."""
        for holder in reversed(self._holders):
            for item in holder.get("contained") or ():
                if (
                    isinstance(item, dict)
                    and item.get("resourceType") == "ValueSet"
                    and item.get("id") == reference[1:]
                ):
                    return item
        return None

    def _import(self, canonical: str, result: Expansion, where: str) -> _Members:
        default = self.options.valueset_versions.get(canonical)  # a versionless import
        if canonical.startswith("#"):
            found = self._contained(canonical)
        else:
            found = self.resources.find("ValueSet", canonical, default)
        if default is not None:
            applied = ("default-valueset-version", f"{canonical}|{default}")
            if applied not in result.used:
                result.used.append(applied)
            canonical = f"{canonical}|{default}"  # named so in an error
        if found is None:
            raise TerminologyError(
                404,
                "not-found",
                f"A definition for the value Set '{canonical}' could not be found",
                detail="not-found",
                expression=f"{where}.valueSet",
            )
        sub = self.expand(found)
        if not canonical.startswith("#"):  # a contained one is part of this value set
            result.used.append(("used-valueset", _canonical(found)))
        result.used.extend(u for u in sub.used if u not in result.used)
        return sub.members

    def _version_for(self, system: str, stated: str | None) -> str | None:
        options = self.options
        if system in options.force_versions:
            return options.force_versions[system]
        if stated is not None:
            value = options.value_versions.get(system)
            return value if value and version_matches(stated, value) else stated
        default = options.system_versions.get(system)
        wanted = options.check_versions.get(system)
        if default is None and wanted and self.resources.code_system(system, wanted):
            return wanted  # a versionless include: the newest version the check allows
        return default

    def _check_version(self, system: str, actual: str | None) -> None:
        """``check-system-version``: the version used must match the pattern given."""
        wanted = self.options.check_versions.get(system)
        if wanted is None or system in self.options.force_versions:
            return
        if not version_matches(wanted, actual):
            raise TerminologyError(
                400,
                "exception",
                f"The version '{actual}' is not allowed for system '{system}': required to "
                f"be '{wanted}' by a version-check parameter",
                detail="version-error",
            )

    def _system_part(
        self, part: dict[str, Any], system: str, result: Expansion, where: str
    ) -> _Members:
        version = self._version_for(system, part.get("version"))
        default = self.options.system_versions.get(system)
        checked = self.options.check_versions.get(system)
        if part.get("version") is None and system not in self.options.force_versions:
            applied = None  # echoed when it chose the version
            if default:
                applied = ("system-version", f"{system}|{default}")
            elif checked and version == checked:
                applied = ("check-system-version", f"{system}|{checked}")
            if applied is not None and applied not in result.used:
                result.used.append(applied)
        if system in self.options.exclude_systems or (
            version and f"{system}|{version}" in self.options.exclude_systems
        ):
            return {}
        source = self.resources.code_system(system, version)
        if source is None:
            known = self.resources.known_versions("CodeSystem", system)
            so = "the value set cannot be expanded"
            if version and known:
                message = unknown_system_text(system, version, known, so)
            else:
                message = f"A definition for CodeSystem '{system}' could not be found, so {so}"
            raise TerminologyError(
                404, "not-found", message, detail="not-found", expression=f"{where}.system"
            )
        self._check_version(system, source.version)
        used = (
            "used-codesystem",
            f"{source.url}|{source.version}" if source.version else source.url,
        )
        if used not in result.used:
            result.used.append(used)
        concepts = part.get("concept")
        filters = part.get("filter") or ()
        if concepts:
            out: _Members = {}
            for concept in concepts:
                code = concept.get("code") if isinstance(concept, dict) else None
                if not isinstance(code, str):
                    continue
                entry = source.get(code)
                if entry is None:
                    continue  # not in the code system: not a member
                member = Member(
                    source.url,
                    source.version,
                    entry.code,
                    source,
                    concept.get("display"),
                    [d for d in concept.get("designation") or () if isinstance(d, dict)],
                    entry,
                    [e for e in concept.get("extension") or () if _is_mark(e)],
                    _stated(concept),
                )
                out.setdefault((source.url, entry.code), member)
            return out
        codes: list[str] | None = None
        for index, flt in enumerate(filters):
            selected = list(dict.fromkeys(self._filter(source, flt, f"{where}.filter[{index}]")))
            if codes is None:
                codes = selected
            else:
                keep = set(selected)
                codes = [c for c in codes if c in keep]
        if codes is None:
            codes = list(source.codes())
        elif isinstance(source, ResourceCodeSystem) and len(codes) > 1:
            keep = set(codes)
            codes = [c for c in source.codes() if c in keep]
        return {(source.url, c): Member(source.url, source.version, c, source) for c in codes}

    def _filter(self, source: CodeSystemSource, flt: Any, where: str) -> Iterable[str]:
        if not isinstance(flt, dict):
            raise TerminologyError(400, "invalid", "A filter must be an object", expression=where)
        prop, op, value = flt.get("property"), flt.get("op"), flt.get("value")
        if isinstance(prop, str) and isinstance(op, str) and not isinstance(value, str):
            raise TerminologyError(
                400,
                "invalid",
                f"The system {source.url} filter with property = {prop}, op = {op} has no value",
                detail="vs-invalid",
                expression=where,
            )
        if not isinstance(prop, str) or not isinstance(op, str) or not isinstance(value, str):
            raise TerminologyError(
                400, "invalid", "A filter needs property, op and value", expression=where
            )
        return filter_codes(source, prop, op, value, where)


_MARKS = frozenset(
    {
        "http://hl7.org/fhir/StructureDefinition/valueset-deprecated",
        "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status",
        "http://hl7.org/fhir/StructureDefinition/valueset-concept-definition",
        *RENDERING,
    }
)
"""Extensions of a compose concept that hold for its expansion row: the marks of a code
deprecated in the value set
(https://hl7.org/fhir/extensions/StructureDefinition-valueset-deprecated.html) and the
value set's own definition of the concept
(https://hl7.org/fhir/extensions/StructureDefinition-valueset-concept-definition.html),
and how the value set shows it (rather than as its code system does)."""


def _stated(concept: dict[str, Any]) -> tuple[tuple[str, str, Any], ...]:
    """The label, order and weight a compose concept states (its standards status is a
    mark of the value set, not the concept's status)."""
    found = extension_properties(concept.get("extension") or ())
    return tuple(p for p in found if p[0] != "status") if found else ()


def _is_mark(extension: Any) -> bool:
    return isinstance(extension, dict) and extension.get("url") in _MARKS


def _inactive(entry: Entry | None) -> bool:
    return entry is not None and entry.inactive


def _canonical(resource: Mapping[str, Any]) -> str:
    url, version = resource.get("url", ""), resource.get("version")
    return f"{url}|{version}" if version else str(url)


def iter_page(
    members: Mapping[tuple[str, str], Member], offset: int, count: int | None
) -> Iterator[Member]:
    """Members ``offset .. offset+count`` in order."""
    for index, member in enumerate(members.values()):
        if index < offset:
            continue
        if count is not None and index >= offset + count:
            return
        yield member
