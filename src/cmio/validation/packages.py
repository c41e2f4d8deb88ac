"""FHIR NPM packages: the conformance resources profile validation needs.

A FHIR package (https://confluence.hl7.org/display/FHIR/NPM+Package+Specification)
is a ``.tgz`` whose ``package/`` folder holds one JSON resource per file and a
``package.json`` manifest. :func:`load_package` keeps its StructureDefinitions,
ValueSets and CodeSystems; :class:`Definitions` looks canonical resources up by
URL across the core package (https://hl7.org/fhir/R4/downloads.html) and the
packages a user supplies (https://hl7.org/fhir/R4/references.html#canonical).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from cmio.model.package import FhirPackageError, find_package_tarball

__all__ = [
    "CONFORMANCE_TYPES",
    "CORE_PREFIX",
    "Definitions",
    "FhirPackage",
    "FhirPackageError",
    "core_package",
    "load_package",
    "strip_version",
]

CONFORMANCE_TYPES = frozenset({"StructureDefinition", "ValueSet", "CodeSystem"})
"""The resource types a package contributes to validation."""

CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
"""Canonical URL prefix of the core (base) StructureDefinitions."""


def strip_version(url: str) -> str:
    """A canonical URL without its ``|version`` suffix
    (https://hl7.org/fhir/R4/references.html#canonical)."""
    return url.partition("|")[0]


@dataclass(frozen=True, slots=True)
class FhirPackage:
    """The conformance resources of one FHIR NPM package.

    Attributes:
        name: the package name (``hl7.fhir.r4.core``), from ``package.json``.
        version: the package version.
        resources: the StructureDefinitions, ValueSets and CodeSystems it holds.
    """

    name: str
    version: str
    resources: tuple[dict[str, Any], ...] = field(repr=False)


def _members(archive: tarfile.TarFile) -> Iterator[tuple[str, bytes]]:
    for member in archive:
        if not member.isfile():
            continue
        folder, _, filename = member.name.rpartition("/")
        if folder.lstrip("./") != "package" or not filename.endswith(".json"):
            continue
        handle = archive.extractfile(member)
        if handle is not None:
            with handle:
                yield filename, handle.read()


def _directory_members(folder: Path) -> Iterator[tuple[str, bytes]]:
    root = folder / "package" if (folder / "package").is_dir() else folder
    for path in sorted(root.glob("*.json")):
        yield path.name, path.read_bytes()


def load_package(path: str | Path) -> FhirPackage:
    """Read a FHIR NPM package: a ``.tgz`` file, or an unpacked package folder.

    Only the files directly under ``package/`` are read (examples in
    ``package/example/`` are not conformance resources); of those, the
    StructureDefinitions, ValueSets and CodeSystems are kept.

    Args:
        path: the ``.tgz`` file or the folder.

    Returns:
        The package.

    Raises:
        FhirPackageError: if it cannot be read or a file is not JSON.
    """
    source = Path(path)
    name, version = source.name, ""
    resources: list[dict[str, Any]] = []
    try:
        if source.is_dir():
            members: Iterable[tuple[str, bytes]] = list(_directory_members(source))
        else:
            with tarfile.open(source, mode="r:gz") as archive:
                members = list(_members(archive))
    except (OSError, tarfile.TarError) as exc:
        raise FhirPackageError(f"cannot read FHIR package {source}: {exc}") from exc
    for filename, data in members:
        is_manifest = filename == "package.json"
        if not is_manifest and filename.partition("-")[0] not in CONFORMANCE_TYPES:
            continue  # NPM convention: <ResourceType>-<id>.json
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FhirPackageError(f"{source}: {filename}: invalid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            continue
        if is_manifest:
            name = str(parsed.get("name", name))
            version = str(parsed.get("version", ""))
        elif parsed.get("resourceType") in CONFORMANCE_TYPES and type(parsed.get("url")) is str:
            resources.append(parsed)
    return FhirPackage(name, version, tuple(resources))


def core_package() -> FhirPackage:
    """The official ``hl7.fhir.r4.core`` 4.0.1 package (see :mod:`cmio.model.package`)."""
    return load_package(find_package_tarball())


class Definitions:
    """Canonical resources by URL, across packages.

    The first package that defines a URL wins, so the core package (given
    first) cannot be overridden by a user package.

    Args:
        packages: the packages, core first.
    """

    def __init__(self, packages: Iterable[FhirPackage]) -> None:
        tables: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in CONFORMANCE_TYPES}
        names: list[str] = []
        for package in packages:
            names.append(f"{package.name}#{package.version}")
            for resource in package.resources:
                tables[resource["resourceType"]].setdefault(resource["url"], resource)
        self.packages: tuple[str, ...] = tuple(names)
        self.structure_definitions: Mapping[str, dict[str, Any]] = MappingProxyType(
            tables["StructureDefinition"]
        )
        self.value_sets: Mapping[str, dict[str, Any]] = MappingProxyType(tables["ValueSet"])
        self.code_systems: Mapping[str, dict[str, Any]] = MappingProxyType(tables["CodeSystem"])

    def structure_definition(self, url: str) -> dict[str, Any] | None:
        """The StructureDefinition with canonical ``url`` (a ``|version`` is ignored)."""
        return self.structure_definitions.get(strip_version(url))

    def value_set(self, url: str) -> dict[str, Any] | None:
        """The ValueSet with canonical ``url`` (a ``|version`` is ignored)."""
        return self.value_sets.get(strip_version(url))

    def code_system(self, url: str) -> dict[str, Any] | None:
        """The CodeSystem with canonical ``url`` (a ``|version`` is ignored)."""
        return self.code_systems.get(strip_version(url))

    def base_definition(self, type_name: str) -> dict[str, Any] | None:
        """The core StructureDefinition of a type (``Patient``, ``HumanName``, ``code``)."""
        return self.structure_definitions.get(CORE_PREFIX + type_name)
