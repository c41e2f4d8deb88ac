"""Which code system version a ``$validate-code`` uses, and the issues when versions differ.

The version comes from, in order: ``force-system-version``; the value's own version
(checked against the value set's include); the include's version (a pattern such as
``1.x`` takes the newest match, or the value's version when it matches); for a
versionless include ``system-version``, else the newest version ``check-system-version``
allows, else the newest. ``check-system-version`` then checks the version used
(https://hl7.org/fhir/R4/valueset-operation-expand.html, the R5 parameters
https://hl7.org/fhir/R5/valueset-operation-expand.html).
"""

from __future__ import annotations

from typing import Any

from cmio.terminology.codesystem import CodeSystemSource
from cmio.terminology.expansion import ExpandOptions, Expansion, Member
from cmio.terminology.resources import TerminologyResources, version_key, version_matches
from cmio.terminology.validate_types import Issue

__all__ = [
    "check_issue",
    "default_version",
    "include_version",
    "includes",
    "pick_member",
    "several_versions",
    "source_with_code",
    "valueset_version",
    "version_mismatch",
    "with_alternates",
]


def includes(valueset: dict[str, Any] | None, system: str) -> bool:
    """Whether the value set's compose includes codes of ``system`` (when that system is
    unknown, membership cannot be decided)."""
    return any(
        isinstance(include, dict) and include.get("system") == system
        for include in ((valueset or {}).get("compose") or {}).get("include") or ()
    )


def include_version(valueset: dict[str, Any] | None, system: str) -> str | None:
    """The one version the value set's includes of ``system`` name (None: none, or several:
    then the code's own version decides)."""
    versions = {
        str(include.get("version") or "")
        for include in ((valueset or {}).get("compose") or {}).get("include") or ()
        if isinstance(include, dict) and include.get("system") == system
    }
    return versions.pop() or None if len(versions) == 1 else None


def default_version(
    options: ExpandOptions, system: str, resources: TerminologyResources
) -> str | None:
    """The version a versionless include takes: ``system-version``, else the newest one
    ``check-system-version`` allows (None: the newest)."""
    default = options.system_versions.get(system)
    wanted = options.check_versions.get(system)
    if default is None and wanted and resources.code_system(system, wanted) is not None:
        return wanted
    return default


def valueset_version(
    valueset: dict[str, Any] | None,
    options: ExpandOptions,
    system: str,
    resources: TerminologyResources,
    stated: str | None = None,
) -> str | None:
    """The version of ``system`` the value set uses: its include's (the one ``stated``
    matches when it includes several), else the default as given (a pattern stays one),
    else the newest."""
    if valueset is None:
        return None
    named = [
        str(include["version"])
        for include in (valueset.get("compose") or {}).get("include") or ()
        if isinstance(include, dict) and include.get("system") == system and include.get("version")
    ]
    if stated is not None and len(set(named)) > 1:
        for version in named:
            if version_matches(version, stated):
                return version
    for include in (valueset.get("compose") or {}).get("include") or ():
        if isinstance(include, dict) and include.get("system") == system:
            if include.get("version"):
                return str(include["version"])
            break
    else:
        return None
    chosen = default_version(options, system, resources)  # as given (``1.0.x``)
    if chosen is not None:
        return chosen
    newest = resources.code_system(system)
    return newest.version if newest is not None else None


def version_mismatch(
    system: str, vs_version: str | None, stated: str, path: str, where: str = "in"
) -> Issue:
    """The error for a value whose version is not the one the value set's include uses."""
    return Issue(
        "error",
        "invalid",
        "vs-invalid",
        f"The code system '{system}' version '{vs_version}' {where} the ValueSet include is "
        f"different to the one in the value ('{stated}')",
        path,
    )


def check_issue(options: ExpandOptions, system: str, used: str | None, path: str) -> Issue | None:
    """``check-system-version``: the error when the version used does not match it."""
    wanted = options.check_versions.get(system)
    if wanted is None or system in options.force_versions or version_matches(wanted, used):
        return None
    return Issue(
        "error",
        "exception",
        "version-error",
        f"The version '{used}' is not allowed for system '{system}': required to be "
        f"'{wanted}' by a version-check parameter",
        path,
    )


def pick_member(candidates: list[Member], display: str | None) -> Member:
    """The member a versionless value stands for when the value set includes its code from
    several versions of the system: the newest whose display is the one given, else the
    newest (https://hl7.org/fhir/R4/valueset.html#compositions: each include is its own
    version of the system)."""
    if len(candidates) == 1:  # the usual case: one include of the system
        return candidates[0]
    ordered = sorted(candidates, key=lambda m: version_key(m.version), reverse=True)
    if display is not None:
        for member in ordered:
            entry = member.entry()
            if (member.display or (entry.display if entry else None)) == display:
                return member
    return ordered[0]


def source_with_code(
    valueset: dict[str, Any] | None, system: str, code: str, resources: TerminologyResources
) -> CodeSystemSource | None:
    """The newest version the value set's includes name for ``system`` that has ``code``
    (an overloaded value set: the newest version may not have it)."""
    named = {
        str(include["version"])
        for include in ((valueset or {}).get("compose") or {}).get("include") or ()
        if isinstance(include, dict) and include.get("system") == system and include.get("version")
    }
    for version in sorted(named, key=version_key, reverse=True):
        source = resources.code_system(system, version)
        if source is not None and source.get(code) is not None:
            return source
    return None


def with_alternates(result: Expansion) -> dict[tuple[str, str], Member]:
    """The members of an overloaded value set, each version's own (newest first), keyed
    ``(system, code|version)``."""
    out: dict[tuple[str, str], Member] = {}
    for key, first in result.members.items():
        same = sorted(
            [first, *result.alternates.get(key, ())],
            key=lambda m: version_key(m.version),
            reverse=True,
        )
        out.update(((m.system, f"{m.code}|{m.version}"), m) for m in same)
    return out


def several_versions(valueset: dict[str, Any]) -> bool:
    """Whether the compose includes one system in several versions (its members then say
    which version they come from, even when a forced version made them one)."""
    seen: dict[str, str] = {}
    compose = valueset.get("compose")
    for include in compose.get("include") or () if isinstance(compose, dict) else ():
        if isinstance(include, dict) and isinstance(include.get("system"), str):
            version = str(include.get("version") or "")
            if seen.setdefault(include["system"], version) != version:
                return True
    return False
