"""The :class:`Validator`: structure, base definitions and profiles in one call.

Implements https://hl7.org/fhir/R4/validation.html for FHIR JSON::

    validator = Validator(load_model(), packages=["us-core.tgz"])
    issues = validator.validate(resource, profiles=["http://example.org/Profile"])

1. structural validation (:func:`cmio.validation.validate_structure`);
2. the base pass: every invariant and required/extensible binding of the core
   definitions, contained and bundled resources and known extensions included;
3. a profile pass per profile, from ``meta.profile`` and the ``profiles`` argument
   (https://hl7.org/fhir/R4/profiling.html).

Definitions come from the core package and the packages given; each
StructureDefinition is compiled (and each constraint's FHIRPath) once per
Validator, on first use. A Validator is safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cmio.fhirpath.context import TerminologyProvider as FhirPathTerminology
from cmio.fhirpath.fhirtypes import FhirTypes
from cmio.model.types import Model
from cmio.validation.bindings import in_valueset
from cmio.validation.packages import (
    Definitions,
    FhirPackage,
    core_package,
    load_package,
    strip_version,
)
from cmio.validation.profiles import CompiledProfile, compile_profile
from cmio.validation.structural import Issue, validate_structure
from cmio.validation.terminology import PackageTerminology, TerminologyProvider
from cmio.validation.walker import Walk

__all__ = ["MODES", "Validator"]

MODES = ("off", "base", "profiles")
"""Validation levels on write: structure only, plus the base definitions, plus ``meta.profile``."""


class _FallbackTerminology:
    """Ask the given provider first, the package expansions when it does not know."""

    def __init__(self, first: TerminologyProvider, second: TerminologyProvider) -> None:
        self.first = first
        self.second = second

    def validate_code(self, valueset_url: str, system: str | None, code: str) -> bool | None:
        answer = self.first.validate_code(valueset_url, system, code)
        return (
            answer if answer is not None else self.second.validate_code(valueset_url, system, code)
        )


class _MemberOf:
    """``memberOf()`` for invariants, over the validator's terminology."""

    def __init__(self, terminology: TerminologyProvider) -> None:
        self.terminology = terminology

    def member_of(self, code: Mapping[str, Any], valueset: str) -> bool | None:
        kind = "CodeableConcept" if "coding" in code else "Coding"
        return in_valueset(self.terminology, valueset, dict(code), kind)


class Validator:
    """Validates FHIR R4 JSON resources against the base definitions and profiles.

    See https://hl7.org/fhir/R4/validation.html.

    Args:
        model: the R4 model (:func:`cmio.model.load_model`).
        packages: extra FHIR packages: :class:`FhirPackage` objects, or paths of
            ``.tgz`` files or package folders.
        terminology: a terminology provider asked first about value set
            membership; the core package's value sets answer when it does not know.
        core: the core package, if already loaded (default: read it).
    """

    def __init__(
        self,
        model: Model,
        packages: Iterable[FhirPackage | str | Path] = (),
        terminology: TerminologyProvider | None = None,
        *,
        core: FhirPackage | None = None,
    ) -> None:
        self.model = model
        loaded = [p if isinstance(p, FhirPackage) else load_package(p) for p in packages]
        self.core = core if core is not None else core_package()
        """The core package (pass it as ``core`` to build more validators cheaply)."""
        self.definitions = Definitions([self.core, *loaded])
        package_terminology = PackageTerminology(self.definitions)
        self.terminology: TerminologyProvider = (
            package_terminology
            if terminology is None
            else _FallbackTerminology(terminology, package_terminology)
        )
        self.fhirpath_terminology: FhirPathTerminology = _MemberOf(self.terminology)
        self.types = FhirTypes(model)
        from cmio.validation.invariants import InvariantCompiler

        self.invariants = InvariantCompiler(self.types)
        self._compiled: dict[str, CompiledProfile | None] = {}
        self._base: dict[str, CompiledProfile] = {}
        self._elements: dict[str, dict[str, dict[str, Any]]] = {}

    # -- definitions -----------------------------------------------------------------
    def profile(self, url: str) -> CompiledProfile | None:
        """The compiled StructureDefinition with this canonical URL (None if unknown).

        Raises:
            ValueError: if the StructureDefinition has no snapshot.
        """
        key = strip_version(url)
        if key in self._compiled:
            return self._compiled[key]
        definition = self.definitions.structure_definition(key)
        compiled = None
        if definition is not None:
            compiled = compile_profile(
                definition,
                self.model,
                self.types,
                self.invariants,
                self._base_element,
                self._profile_type,
            )
        self._compiled[key] = compiled
        return compiled

    def base_profile(self, type_name: str) -> CompiledProfile | None:
        """The compiled core definition of a type (``Patient``, ``HumanName``)."""
        found = self._base.get(type_name)
        if found is None:
            found = self.profile("http://hl7.org/fhir/StructureDefinition/" + type_name)
            if found is not None:
                self._base[type_name] = found
        return found

    def is_resource_type(self, name: str) -> bool:
        """Whether ``name`` is a concrete R4 resource type."""
        return name in self.model.resource_types

    def _base_element(self, path: str) -> dict[str, Any] | None:
        type_name = path.partition(".")[0]
        elements = self._elements.get(type_name)
        if elements is None:
            definition = self.definitions.base_definition(type_name)
            snapshot = definition.get("snapshot", {}) if definition is not None else {}
            elements = {str(e.get("path")): e for e in snapshot.get("element", ())}
            self._elements[type_name] = elements
        return elements.get(path)

    def _profile_type(self, url: str) -> str | None:
        definition = self.definitions.structure_definition(url)
        found = definition.get("type") if definition is not None else None
        return found if type(found) is str else None

    # -- validation ------------------------------------------------------------------
    def validate(
        self,
        resource: Any,
        profiles: Iterable[str] = (),
        *,
        meta_profiles: bool = True,
        base: bool = True,
        structure: bool = True,
    ) -> list[Issue]:
        """Validate one resource (https://hl7.org/fhir/R4/validation.html).

        Args:
            resource: the parsed JSON resource.
            profiles: canonical URLs of profiles to check besides ``meta.profile``.
            meta_profiles: also check the profiles the resource claims in ``meta.profile``.
            base: check the base definitions' invariants and bindings.
            structure: run structural validation first (only skip it for
                resources already known to be structurally valid).

        Returns:
            The issues, errors first as found; empty when all is well.
        """
        out = validate_structure(self.model, resource) if structure else []
        if type(resource) is not dict or any(i.severity == "fatal" for i in out):
            return out
        rtype = str(resource.get("resourceType"))
        if base:
            definition = self.base_profile(rtype)
            if definition is not None:
                Walk(self, out, resource, False).root(definition, rtype)
        wanted: dict[str, bool] = {}
        if meta_profiles:
            meta = resource.get("meta")
            claimed = meta.get("profile") if type(meta) is dict else None
            for url in claimed if type(claimed) is list else ():
                if type(url) is str:
                    wanted.setdefault(strip_version(url), False)
        for url in profiles:
            wanted[strip_version(url)] = True
        for url, explicit in wanted.items():
            self._check_profile(resource, rtype, url, explicit, out)
        return _unique(out)

    def _check_profile(
        self, resource: dict[str, Any], rtype: str, url: str, explicit: bool, out: list[Issue]
    ) -> None:
        try:
            compiled = self.profile(url)
        except ValueError as exc:
            out.append(Issue("error" if explicit else "warning", "not-supported", "", str(exc)))
            return
        if compiled is None:
            if explicit:
                message = f"Profile {url} is unknown: it is in none of the loaded packages"
                out.append(Issue("error", "not-found", "", message))
            else:
                message = f"Profile {url} (meta.profile) is unknown, so it was not checked"
                out.append(Issue("warning", "not-supported", f"{rtype}.meta.profile", message))
            return
        if compiled.type != rtype:
            message = f"Profile {url} constrains {compiled.type}, not {rtype}"
            out.append(Issue("error", "invalid", "", message))
            return
        if compiled.is_base:
            return  # the base pass covers it
        Walk(self, out, resource, True).root(compiled, rtype)


def _unique(issues: list[Issue]) -> list[Issue]:
    seen: set[Issue] = set()
    unique: list[Issue] = []
    for issue in issues:
        if issue not in seen:
            seen.add(issue)
            unique.append(issue)
    return unique
