"""PV1 locations as Location resources (IG datatype map PL[Location], PV1[Encounter])."""

from __future__ import annotations

from typing import Any

from cmio.interfaces.hl7v2.mapping.locations import LOCATION_SYSTEM
from cmio.model import Model
from tests.interfaces.hl7v2.mapping.conftest import (
    RouterClient,
    assert_valid,
    mapped,
    one,
    resources,
)
from tests.interfaces.hl7v2.mapping.samples import (
    ADT_A01_EPIC,
    ADT_A02,
    ADT_A03,
    ADT_A05,
    ORU_R01_LAB_V231,
)

PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"


def _by_url(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def _chain(bundle: dict[str, Any], url: str) -> list[tuple[str, str, str]]:
    """(name, physical type, identifier value) from a Location up its partOf chain."""
    by_url = _by_url(bundle)
    out = []
    while url:
        loc = by_url[url]
        out.append((loc["name"], loc["physicalType"]["coding"][0]["code"],
                    loc["identifier"][0]["value"]))  # fmt: skip
        url = loc.get("partOf", {}).get("reference", "")
    return out


def test_pl_levels_become_a_partof_chain(model: Model) -> None:
    result = mapped(ADT_A01_EPIC)  # PV1-3 4W^401^A^UHOSP^^^^^4 West
    assert_valid(model, result)
    enc = one(result, "Encounter")
    (place,) = enc["location"]
    assert _chain(result.bundle, place["location"]["reference"]) == [
        ("A", "bd", "UHOSP~~~4W~401~A"),
        ("401", "ro", "UHOSP~~~4W~401"),
        ("4W", "wa", "UHOSP~~~4W"),
        ("UHOSP", "si", "UHOSP"),
    ]
    bed = _by_url(result.bundle)[place["location"]["reference"]]
    assert bed["description"] == "4 West"  # PL.9 on the finest level
    assert bed["mode"] == "instance"
    assert bed["identifier"][0]["system"] == LOCATION_SYSTEM
    assert bed["physicalType"]["coding"][0]["system"] == PHYSICAL
    assert len(resources(result, "Location")) == 4


def test_transfer_shares_the_common_levels() -> None:
    result = mapped(ADT_A02)  # ICU^1^1^UHOSP now, 4W^401^A^UHOSP before
    names = sorted(loc["identifier"][0]["value"] for loc in resources(result, "Location"))
    assert names == sorted(
        ["UHOSP", "UHOSP~~~ICU", "UHOSP~~~ICU~1", "UHOSP~~~ICU~1~1",
         "UHOSP~~~4W", "UHOSP~~~4W~401", "UHOSP~~~4W~401~A"]
    )  # fmt: skip
    enc = one(result, "Encounter")
    urls = [p["location"]["reference"] for p in enc["location"]]
    assert len(set(urls)) == 2


def test_statuses_for_discharge_and_preadmit() -> None:
    discharged = one(mapped(ADT_A03), "Encounter")
    assert discharged["location"][0]["status"] == "completed"
    assert discharged["location"][0]["period"]["end"] == "2025-03-05T11:30:00-05:00"
    preadmit = one(mapped(ADT_A05), "Encounter")
    assert [p["status"] for p in preadmit.get("location", [])] in ([], ["planned"])


def test_results_refer_to_locations_by_text_only() -> None:
    result = mapped(ORU_R01_LAB_V231)
    assert resources(result, "Location") == []
    enc = one(result, "Encounter")
    assert enc["location"][0]["location"] == {"display": "4W 401 A UHOSP"}


def test_pending_temporary_locations_and_authority(model: Model) -> None:
    text = ADT_A01_EPIC.replace(
        "4W^401^A^UHOSP^^^^^4 West", "4W^401^A^UHOSP^^^^^4 West^^UHOSP&1.2.3.4&ISO"
    )
    pv1 = next(s for s in text.split("\r") if s.startswith("PV1|"))
    fields = pv1.split("|")
    fields += [""] * (43 - len(fields))
    fields[11] = "XRAY^^^UHOSP"
    fields[42] = "5E^510^B^UHOSP"
    result = mapped(text.replace(pv1, "|".join(fields)))
    assert_valid(model, result)
    enc = one(result, "Encounter")
    assert [(p["location"]["display"], p["status"]) for p in enc["location"]] == [
        ("4W 401 A UHOSP", "active"),
        ("XRAY UHOSP", "active"),
        ("5E 510 B UHOSP", "reserved"),
    ]
    bed = _by_url(result.bundle)[enc["location"][0]["location"]["reference"]]
    assert bed["identifier"][0]["system"] == "urn:oid:1.2.3.4"  # PL.11 assigning authority


def test_locations_are_matched_not_duplicated(client: RouterClient) -> None:
    for text in (ADT_A01_EPIC, ADT_A02, ADT_A01_EPIC):
        client.post(mapped(text))
    locations = client.search("Location")
    assert len(locations) == 7
    (bed,) = client.search("Location", identifier=f"{LOCATION_SYSTEM}|UHOSP~~~ICU~1~1")
    (room,) = client.search("Location", identifier=f"{LOCATION_SYSTEM}|UHOSP~~~ICU~1")
    assert bed["partOf"]["reference"] == f"Location/{room['id']}"
    (enc,) = client.search("Encounter", identifier="urn:id:UHOSP|V5550001")
    assert enc["location"][0]["location"]["reference"].startswith("Location/")
