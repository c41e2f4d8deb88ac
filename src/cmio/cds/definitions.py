"""CDS service definitions as governed artifacts (https://cds-hooks.hl7.org/2.0/#discovery).

A service is a ``Library`` of the cmio rule profile (:mod:`cmio.rules.definition`) with
``topic`` ``cds-service``; its JSON holds the discovery fields (``id``, ``hook``,
``title``, ``description``, ``prefetch``), the ``logic`` that computes its cards (one of
:data:`cmio.cds.logic.LOGIC`) and the logic's ``parameters``. Only ``active`` services
are discovered and fire; the highest active version per canonical URL wins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from cmio.rules.catalog import active_artifacts
from cmio.rules.definition import RuleError, artifact_as_library
from cmio.rules.starter import install_libraries
from cmio.store.base import Repository

__all__ = [
    "HOOKS",
    "CdsService",
    "active_services",
    "install_starter_services",
    "service_as_library",
    "service_from_json",
    "starter_services",
]

HOOKS = ("patient-view", "order-select", "order-sign")


@dataclass(frozen=True, slots=True)
class CdsService:
    """One CDS service: its discovery entry plus the logic and parameters behind it."""

    id: str
    hook: str
    title: str
    description: str
    logic: str
    prefetch: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    version: str = "1.0.0"
    status: str = "active"

    def discovery(self) -> dict[str, Any]:
        """The service's entry in the discovery response (spec 2.0, "Discovery")."""
        entry: dict[str, Any] = {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
        }
        if self.prefetch:
            entry["prefetch"] = dict(self.prefetch)
        return entry

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in the service's Library."""
        return {**self.discovery(), "logic": self.logic, "parameters": dict(self.parameters)}


def service_from_json(
    data: Mapping[str, Any], *, version: str = "1.0.0", status: str = "active"
) -> CdsService:
    """Parse a service's JSON form.

    Raises:
        RuleError: a missing or malformed field.
    """
    sid = data.get("id")
    if not isinstance(sid, str) or not sid or "/" in sid:
        raise RuleError("service.id is required (no '/')")
    if data.get("hook") not in HOOKS:
        raise RuleError(f"service.hook must be one of {', '.join(HOOKS)} (service {sid})")
    for name in ("title", "description", "logic"):
        if not isinstance(data.get(name), str):
            raise RuleError(f"service.{name} is required (service {sid})")
    prefetch = data.get("prefetch") or {}
    if not isinstance(prefetch, dict) or not all(isinstance(v, str) for v in prefetch.values()):
        raise RuleError(f"service.prefetch must map keys to query strings (service {sid})")
    return CdsService(
        sid,
        str(data["hook"]),
        str(data["title"]),
        str(data["description"]),
        str(data["logic"]),
        prefetch,
        dict(data.get("parameters") or {}),
        version,
        status,
    )


def service_as_library(service: CdsService) -> dict[str, Any]:
    """The ``Library`` storing ``service``."""
    return artifact_as_library(
        "cds-service",
        service.to_json(),
        url=f"https://cmio.dev/fhir/Library/cds-{service.id}",
        version=service.version,
        status=service.status,
        title=service.title,
    )


def starter_services(status: str = "active") -> list[CdsService]:
    """The starter services (package data ``data/starter-services.json``)."""
    text = resources.files("cmio.cds").joinpath("data/starter-services.json").read_text("utf-8")
    return [service_from_json(item, status=status) for item in json.loads(text)]


def install_starter_services(repository: Repository, status: str = "active") -> int:
    """Store the starter services as Libraries (existing versions are kept)."""
    return install_libraries(repository, [service_as_library(s) for s in starter_services(status)])


def active_services(repository: Repository) -> dict[str, CdsService]:
    """The active services by id (highest version per canonical URL)."""
    found: dict[str, CdsService] = {}
    for library, data in active_artifacts(repository, "cds-service"):
        service = service_from_json(data, version=str(library.get("version")), status="active")
        found[service.id] = service
    return found
