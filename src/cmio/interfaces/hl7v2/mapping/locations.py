"""PL (person location) to Location resources, and PV1 locations to Encounter.location.

Datatype map PL[Location] and the location rows of segment map PV1[Encounter] of the HL7
V2-to-FHIR IG (https://build.fhir.org/ig/HL7/v2-to-fhir/ ). Each valued PL level becomes
a Location, the most granular one (bed, then room, floor, point of care, building,
facility) referenced from the Encounter and the coarser ones chained by ``Location.partOf``.

A Location is matched by an identifier built from its place in the hierarchy, so room 402
of unit 4W and room 402 of unit 5E are different Locations and a repeated message finds the
same ones: system ``urn:cmio:v2:location`` (or the system of the assigning authority PL.11),
value the PL levels down to it (facility, building, floor, point of care, room, bed),
``~``-separated, empty levels kept in place. The IG leaves the physical type of a point of
care open (``/extension??-poc/``): it gets ``wa`` (ward) here. PV1-11's
``subject-locationClassification`` extension (not an R4 core extension) is not written.
"""

from __future__ import annotations

from typing import Any

from cmio.interfaces.hl7v2.fields import Repetition
from cmio.interfaces.hl7v2.mapping.context import MapContext, identifier_query
from cmio.interfaces.hl7v2.mapping.datatypes import authority_system, datetime, entity_identifier
from cmio.interfaces.hl7v2.message import Segment

__all__ = ["LOCATION_SYSTEM", "encounter_locations", "location"]

LOCATION_SYSTEM = "urn:cmio:v2:location"
"""The identifier system of Locations built from PL without an assigning authority (PL.11)."""

_PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"
# (PL component, physical type, display), coarsest first: the identifier's hierarchy order
_LEVELS = (
    (4, "si", "Site"),
    (7, "bu", "Building"),
    (8, "lvl", "Level"),
    (1, "wa", "Ward"),
    (2, "ro", "Room"),
    (3, "bd", "Bed"),
)


def location(ctx: MapContext, rep: Repetition, path: str) -> dict[str, str] | None:
    """PL -> Location resources (IG map PL[Location]); returns the reference to the finest.

    The reference is ``{"reference": <fullUrl>, "display": <text>}``; ``None`` when no level
    of the PL is valued. Locations already written for this message are reused.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (datatype map PL[Location]).
    """
    if not rep:
        return None
    values = [rep.component(n).subcomponent(1) for n, _, _ in _LEVELS]
    if not any(values):
        return None
    authority = rep.component(11).subcomponents
    system = authority_system(ctx, *authority[:3]) if any(authority) else LOCATION_SYSTEM
    finest = max(i for i, v in enumerate(values) if v)
    parent = ""
    for depth, ((_, code, display), value) in enumerate(zip(_LEVELS, values, strict=True)):
        if not value:
            continue
        ident = {"system": system, "value": "~".join(values[: depth + 1])}
        key = f"Location|{ident['system']}|{ident['value']}"
        if ctx.has(key):
            parent = ctx.full_url(key)
            continue
        resource: dict[str, Any] = {
            "resourceType": "Location",
            "identifier": [ident],
            "name": value,
            "mode": "instance",
            "physicalType": {"coding": [{"system": _PHYSICAL, "code": code, "display": display}]},
        }
        if depth == finest:
            if rep.get(9):
                resource["description"] = rep.get(9)
            comprehensive = entity_identifier(ctx, rep.component(10).subcomponents, f"{path}.10")
            if comprehensive and comprehensive != ident:
                resource["identifier"].append(comprehensive)
        if parent:
            resource["partOf"] = {"reference": parent}
        parent = ctx.put(resource, key, identifier_query(ident["system"], ident["value"]))
    text = " ".join(v for v in (values[3], values[4], values[5], values[0]) if v)
    return {"reference": parent, "display": text or values[finest]}


def encounter_locations(
    ctx: MapContext, pv1: Segment, patient_class: str, event: str, resources: bool = True
) -> list[dict[str, Any]]:
    """PV1-3, -6, -11, -42 -> Encounter.location with status and period (IG map PV1[Encounter]).

    PV1-3 (assigned) is ``active`` (``planned`` for pre-admits, ``completed`` on a discharge,
    A03); PV1-6 (prior) ``completed``; PV1-11 (temporary) ``active``; PV1-42 (pending)
    ``reserved``. Periods: on a transfer (A02) the new location starts and the prior one ends
    at the event time (EVN-6, else EVN-2); otherwise the assigned location spans the visit's
    admit and discharge times (PV1-44, PV1-45). ``resources=False`` (messages that only
    create a missing visit: results, orders...) refers to the locations by display text and
    writes no Location, leaving locations to the ADT feed and the result path fast.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment map PV1[Encounter]).
    """
    evn = ctx.message.segment("EVN")
    moved = ""
    if event == "A02" and evn is not None:
        moved = datetime(ctx, evn.get(6) or evn.get(2), "EVN-6") or ""
    admitted = datetime(ctx, pv1.get(44), "PV1-44") or ""
    discharged = datetime(ctx, pv1.get(45), "PV1-45") or ""
    assigned = "planned" if patient_class == "P" else "active"
    if event == "A03":
        assigned = "completed"
    out: list[dict[str, Any]] = []
    for n, status in ((3, assigned), (6, "completed"), (11, "active"), (42, "reserved")):
        rep = pv1.field(n).repetition(1)
        ref = location(ctx, rep, f"PV1-{n}") if resources else _display(rep)
        if ref is None:
            continue
        entry: dict[str, Any] = {"location": ref, "status": status}
        if n == 3:
            start = moved or admitted
            period = {k: v for k, v in (("start", start), ("end", discharged)) if v}
        elif n == 6:
            period = {"end": moved} if moved else {}
        else:
            period = {}
        if period:
            entry["period"] = period
        out.append(entry)
    return out


def _display(rep: Repetition) -> dict[str, str] | None:
    """PL as a display-only reference: point of care, room, bed, facility, or PL.9."""
    if not rep:
        return None
    text = " ".join(p for p in (rep.get(1), rep.get(2), rep.get(3), rep.get(4)) if p)
    text = text or rep.get(9)
    return {"display": text} if text else None
