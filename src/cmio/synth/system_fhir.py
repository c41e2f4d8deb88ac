"""FHIR resources of the health system itself.

Organization (system, sites, departments, payers; https://hl7.org/fhir/R4/organization.html),
Location (https://hl7.org/fhir/R4/location.html), Practitioner and PractitionerRole
with NUCC and SNOMED CT specialties (https://hl7.org/fhir/R4/practitionerrole.html),
Schedule per clinic clinician (https://hl7.org/fhir/R4/schedule.html) and the EHR
Device that observes the audit trail.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from cmio.synth.codes import SPECIALTIES, concept
from cmio.synth.system import (
    _ORG_TYPE,
    BASE_URL,
    SESSION_HOURS,
    SYSTEM_NAME,
    HealthSystem,
    address,
    taxonomy,
)

__all__ = ["system_resources"]

_SPEC = {s.key: s for s in SPECIALTIES}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri")
_NPI = "http://hl7.org/fhir/sid/us-npi"
_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"


def _org_type(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": _ORG_TYPE, "code": code, "display": display}]}]


def _org(oid: str, name: str, kind: tuple[str, str], part_of: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Organization",
        "id": oid,
        "active": True,
        "type": _org_type(*kind),
        "name": name,
    }
    if part_of:
        out["partOf"] = {"reference": f"Organization/{part_of}"}
    return out


def session_text(sessions: tuple[bool, ...]) -> str:
    """Human-readable weekly clinic template, e.g. ``Mon AM, Mon PM, Wed AM``."""
    names = []
    for i, on in enumerate(sessions):
        if on:
            names.append(f"{_DAYS[i // 2]} {'PM' if i % 2 else 'AM'}")
    return ", ".join(names)


def system_resources(system: HealthSystem) -> Iterator[dict[str, Any]]:
    """Yield every resource of ``system`` (Organizations first, then Locations, staff)."""
    rng = random.Random(f"system-fhir/{system.seed}")
    root = _org(system.org_id, SYSTEM_NAME, ("prov", "Healthcare Provider"), None)
    root["identifier"] = [{"system": f"{BASE_URL}/fhir/sid/org", "value": "RBH"}]
    root["telecom"] = [{"system": "url", "value": BASE_URL}]
    yield root
    for payer in system.payers.values():
        if payer.kind != "self":
            yield _org(payer.org_id, payer.name, ("pay", "Payer"), None)
    for site in system.sites:
        org = _org(site.org_id, site.name, ("prov", "Healthcare Provider"), system.org_id)
        org["address"] = [address(rng, site.city, site.zip)]
        yield org
        for key, (dept_org, _) in site.departments.items():
            yield _org(
                dept_org, f"{site.name} {_SPEC[key].name}", ("dept", "Hospital Department"),
                site.org_id,
            )  # fmt: skip
    for site in system.sites:
        kind = ("HOSP", "Hospital") if site.hospital else ("PROFF", "Provider's Office")
        yield {
            "resourceType": "Location",
            "id": site.location_id,
            "status": "active",
            "name": site.name,
            "mode": "instance",
            "type": [concept_of("http://terminology.hl7.org/CodeSystem/v3-RoleCode", *kind)],
            "address": address(rng, site.city, site.zip),
            "managingOrganization": {"reference": f"Organization/{site.org_id}"},
        }
        for key, (dept_org, dept_loc) in site.departments.items():
            spec = _SPEC[key]
            yield {
                "resourceType": "Location",
                "id": dept_loc,
                "status": "active",
                "name": f"{site.name} {spec.name}",
                "mode": "instance",
                "type": [concept(spec.location_type)],
                "managingOrganization": {"reference": f"Organization/{dept_org}"},
                "partOf": {"reference": f"Location/{site.location_id}"},
            }
    for c in system.clinicians:
        yield {
            "resourceType": "Practitioner",
            "id": c.id,
            "identifier": [{"system": _NPI, "value": c.npi}],
            "active": True,
            "name": [{"use": "official", "family": c.name[1], "given": [c.name[0]],
                      "suffix": [c.display.rpartition(", ")[2]]}],
        }  # fmt: skip
    for c in system.clinicians:
        spec = _SPEC[c.dept]
        dept_org, dept_loc = system.dept_ids(c)
        role = "nurse" if c.kind in ("nurse", "np") else "doctor"
        role_resource = {
            "resourceType": "PractitionerRole",
            "id": c.role_id,
            "active": True,
            "practitioner": {"reference": f"Practitioner/{c.id}"},
            "organization": {"reference": f"Organization/{dept_org}"},
            "code": [concept_of(_ROLE, role, role.title())],
            "specialty": [concept(taxonomy(spec, c.kind)), concept(spec.snomed)],
            "location": [{"reference": f"Location/{dept_loc}"}],
        }
        if any(c.sessions):
            role_resource["availableTime"] = _available(c.sessions)
        yield role_resource
    for c in system.clinicians:
        if c.kind == "nurse" or not any(c.sessions):
            continue
        spec = _SPEC[c.dept]
        _, dept_loc = system.dept_ids(c)
        yield {
            "resourceType": "Schedule",
            "id": c.schedule_id,
            "active": True,
            "specialty": [concept(spec.snomed)],
            "actor": [
                {"reference": f"PractitionerRole/{c.role_id}"},
                {"reference": f"Practitioner/{c.id}"},
                {"reference": f"Location/{dept_loc}"},
            ],
            "comment": f"Clinic sessions: {session_text(c.sessions)}",
        }
    yield {
        "resourceType": "Device",
        "id": system.ehr_device_id,
        "status": "active",
        "manufacturer": "cmio",
        "deviceName": [{"name": f"{SYSTEM_NAME} EHR", "type": "user-friendly-name"}],
        "owner": {"reference": f"Organization/{system.org_id}"},
    }


def concept_of(system: str, code: str, display: str) -> dict[str, Any]:
    """A one-coding CodeableConcept."""
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _available(sessions: tuple[bool, ...]) -> list[dict[str, Any]]:
    out = []
    day_codes = ("mon", "tue", "wed", "thu", "fri")
    for i, on in enumerate(sessions):
        if on:
            start, end = SESSION_HOURS[i % 2]
            out.append(
                {
                    "daysOfWeek": [day_codes[i // 2]],
                    "availableStartTime": f"{start // 60:02d}:{start % 60:02d}:00",
                    "availableEndTime": f"{end // 60:02d}:{end % 60:02d}:00",
                }
            )
    return out
