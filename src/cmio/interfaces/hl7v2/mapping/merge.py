"""ADT^A40 patient merge: Patient.link and the prior patient's resources moved.

HL7 v2.5.1 chapter 3 section 3.3.40 "ADT/ACK - merge patient - patient identifier list"
(https://v2plus.hl7.org/2021Jan/index.html ) and FHIR R4 Patient.link
(https://hl7.org/fhir/R4/patient.html#links ): the prior record (MRG-1) gets
``link: replaced-by`` the surviving one and ``active: false``; the surviving record gets
``link: replaces``; every resource of the prior patient's compartment that refers to it is
rewritten to refer to the surviving patient. All of it is one atomic transaction through a
FHIR client (:class:`FhirClient`), with ``If-Match`` on every resource read, so a concurrent change fails the merge
rather than being overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from cmio.interfaces.hl7v2.mapping.context import (
    MappingError,
    Merge,
    PatientLinks,
    identifier_query,
)

__all__ = ["FhirClient", "MergeOutcome", "apply_merge", "merge_bundle", "store_patient_links"]

_PAGE = 200


class FhirClient(Protocol):
    """The FHIR REST interactions a merge needs (e.g. a thin adapter over ``FhirRouter.handle``).

    ``request(method, path, query, body)`` performs one interaction below the FHIR base
    (``path`` like ``Patient`` or ``Patient/1/$everything``; ``""`` with a Bundle body for a
    transaction) and returns the status and the parsed JSON body.

    See https://hl7.org/fhir/R4/patient.html#links .
    """

    def request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        body: dict[str, Any] | None,
    ) -> tuple[int, dict[str, Any]]:
        """Perform one FHIR interaction."""
        ...


@dataclass(frozen=True)
class MergeOutcome:
    """What a merge did: patient ids and the number of resources moved.

    See https://hl7.org/fhir/R4/patient.html#links .
    """

    surviving_id: str
    prior_id: str | None
    moved: int


def _get(client: FhirClient, path: str, query: list[tuple[str, str]]) -> dict[str, Any]:
    status, body = client.request("GET", path, query, None)
    if status != 200:
        raise MappingError(f"GET {path} failed ({status}): {body}", "MRG-1")
    return body


def _find_patient(client: FhirClient, ident: tuple[str, str]) -> dict[str, Any] | None:
    query = identifier_query(*ident).split("=", 1)[1]
    found = _get(client, "Patient", [("identifier", unquote(query))])
    entries = [
        e for e in found.get("entry", []) if e.get("resource", {}).get("resourceType") == "Patient"
    ]
    if len(entries) > 1:
        raise MappingError(f"several patients have identifier {ident[0]}|{ident[1]}", "MRG-1")
    return entries[0]["resource"] if entries else None


def _compartment(client: FhirClient, patient_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = _get(
            client,
            f"Patient/{patient_id}/$everything",
            [("_count", str(_PAGE)), ("_offset", str(offset))],
        )
        entries = page.get("entry", [])
        out.extend(
            e["resource"] for e in entries if e.get("search", {}).get("mode", "match") == "match"
        )
        if not any(link.get("relation") == "next" for link in page.get("link", [])):
            return out
        offset += _PAGE


def _rewrite(value: Any, old: str, new: str) -> tuple[Any, bool]:
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k == "reference" and v == old:
                out[k], hit = new, True
            else:
                out[k], hit = _rewrite(v, old, new)
            changed = changed or hit
        return out, changed
    if isinstance(value, list):
        items = [_rewrite(v, old, new) for v in value]
        return [i for i, _ in items], any(h for _, h in items)
    return value, False


def _with_link(resource: dict[str, Any], other: str, kind: str) -> dict[str, Any]:
    links = [
        link for link in resource.get("link", []) if link.get("other", {}).get("reference") != other
    ]
    links.append({"other": {"reference": other}, "type": kind})
    return {**resource, "link": links}


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    version = resource.get("meta", {}).get("versionId")
    request: dict[str, Any] = {
        "method": "PUT",
        "url": f"{resource['resourceType']}/{resource['id']}",
    }
    if version:
        request["ifMatch"] = f'W/"{version}"'
    return {"resource": resource, "request": request}


def merge_bundle(client: FhirClient, merge: Merge) -> tuple[dict[str, Any] | None, MergeOutcome]:
    """The transaction Bundle that performs ``merge`` (None when there is nothing to do).

    Raises:
        MappingError: the surviving patient is not in the store, or an identifier is ambiguous.

    See https://hl7.org/fhir/R4/patient.html#links .
    """
    surviving = _find_patient(client, merge.surviving)
    if surviving is None:
        raise MappingError(
            f"surviving patient {merge.surviving[0]}|{merge.surviving[1]} is not in the store",
            "PID-3",
        )
    prior = _find_patient(client, merge.prior)
    if prior is None or prior["id"] == surviving["id"]:
        return None, MergeOutcome(surviving["id"], prior["id"] if prior else None, 0)
    old, new = f"Patient/{prior['id']}", f"Patient/{surviving['id']}"
    entries = [
        _entry({**_with_link(prior, new, "replaced-by"), "active": False}),
        _entry(_with_link(surviving, old, "replaces")),
    ]
    moved = 0
    for resource in _compartment(client, prior["id"]):
        if resource["resourceType"] == "Patient":
            continue
        rewritten, changed = _rewrite(resource, old, new)
        if changed:
            entries.append(_entry(rewritten))
            moved += 1
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return bundle, MergeOutcome(surviving["id"], prior["id"], moved)


def apply_merge(client: FhirClient, merge: Merge) -> MergeOutcome:
    """Perform an ADT^A40 merge through a FHIR client (one atomic transaction).

    Apply it after the message's own Bundle (which writes the surviving patient).

    Raises:
        MappingError: the surviving patient is missing, an identifier is ambiguous, or the
            transaction failed (e.g. a concurrent change: 412 on ``If-Match``).

    See https://hl7.org/fhir/R4/patient.html#links .
    """
    bundle, outcome = merge_bundle(client, merge)
    if bundle is None:
        return outcome
    status, body = client.request("POST", "", [], bundle)
    if status != 200:
        raise MappingError(f"merge transaction failed ({status}): {str(body)[:500]}", "MRG-1")
    return outcome


def store_patient_links(client: FhirClient) -> PatientLinks:
    """A ``MappingOptions.patient_links`` lookup reading ``Patient.link`` through a FHIR client.

    ``lookup(system, value)`` returns the links of the stored patient with that identifier
    (``[]`` when there is none), so an ADT that replaces the Patient keeps what a merge set.
    Map a message only after the merges before it are applied (per-patient order).

    See https://hl7.org/fhir/R4/patient.html#links .
    """

    def lookup(system: str, value: str) -> list[dict[str, Any]]:
        found = _find_patient(client, (system, value))
        return list(found.get("link", [])) if found else []

    return lookup
