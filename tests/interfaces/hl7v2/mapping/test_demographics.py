"""PID-10 race and PID-22 ethnic group as US Core race/ethnicity extensions."""

from __future__ import annotations

from typing import Any

from cmio.interfaces.hl7v2.mapping.demographics import CDC_RACE_ETHNICITY
from cmio.model import Model
from tests.interfaces.hl7v2.mapping.conftest import RouterClient, assert_valid, mapped, one
from tests.interfaces.hl7v2.mapping.samples import ADT_A01_EPIC, ADT_A28

RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"


def _with(pid10: str, pid22: str) -> str:
    pid = next(s for s in ADT_A28.split("\r") if s.startswith("PID|"))
    fields = pid.split("|")
    fields += [""] * (23 - len(fields))
    fields[10], fields[22] = pid10, pid22
    return ADT_A28.replace(pid, "|".join(fields))


def _ext(patient: dict[str, Any], url: str) -> list[tuple[str, Any]]:
    (ext,) = [e for e in patient.get("extension", []) if e["url"] == url]
    return [(e["url"], e.get("valueCoding", e.get("valueString"))) for e in ext["extension"]]


def test_cdc_codes_become_us_core_extensions(model: Model) -> None:
    result = mapped(
        _with("2106-3^White^CDCREC~2029-7^Asian Indian^CDCREC", "2135-2^Hispanic or Latino^CDCREC")
    )
    assert_valid(model, result)
    patient = one(result, "Patient")
    assert _ext(patient, RACE) == [
        ("ombCategory", {"system": CDC_RACE_ETHNICITY, "code": "2106-3", "display": "White"}),
        ("detailed", {"system": CDC_RACE_ETHNICITY, "code": "2029-7", "display": "Asian Indian"}),
        ("text", "White, Asian Indian"),
    ]
    assert _ext(patient, ETHNICITY) == [
        (
            "ombCategory",
            {"system": CDC_RACE_ETHNICITY, "code": "2135-2", "display": "Hispanic or Latino"},
        ),
        ("text", "Hispanic or Latino"),
    ]
    assert result.unmapped == []


def test_epic_sample_race() -> None:
    patient = one(mapped(ADT_A01_EPIC), "Patient")  # PID-10 2106-3^White^CDCREC
    assert _ext(patient, RACE)[0][1]["code"] == "2106-3"


def test_legacy_table_values_and_unknown(model: Model) -> None:
    result = mapped(_with("B~U", "N^Not Hispanic^HL70189"))
    assert_valid(model, result)
    patient = one(result, "Patient")
    race = _ext(patient, RACE)
    assert race[0] == (
        "ombCategory",
        {"system": CDC_RACE_ETHNICITY, "code": "2054-5", "display": "Black or African American"},
    )
    assert race[1][1]["code"] == "UNK"
    assert _ext(patient, ETHNICITY)[0][1]["code"] == "2186-5"


def test_local_codes_are_kept_and_reported(model: Model) -> None:
    result = mapped(_with("ZZ^Martian^LOCALRACE", ""))
    assert_valid(model, result)
    patient = one(result, "Patient")
    assert not [e for e in patient.get("extension", []) if e["url"] == RACE]
    (kept,) = [e for e in patient["extension"] if e["url"] == "urn:cmio:v2:extension:PID-10"]
    assert kept["valueCodeableConcept"]["coding"][0]["code"] == "ZZ"
    assert any(u.path == "PID-10(1)" and u.code == "ZZ" for u in result.unmapped)


def test_store_accepts_race_extensions(client: RouterClient) -> None:
    client.post(mapped(_with("2106-3^White^CDCREC~ZZ^Martian^L", "H")))
    (patient,) = client.search("Patient", identifier="urn:id:UHOSP|E4004")
    assert {e["url"] for e in patient["extension"]} >= {RACE, ETHNICITY}
