"""Mapped Bundles through the FHIR router into a store: updates update, nothing duplicates,
merges move references, local codes go through a ConceptMap-style translation."""

from __future__ import annotations

from collections.abc import Sequence

from cmio.interfaces.hl7v2.mapping import ConceptMapTranslator, MappingOptions, apply_merge
from cmio.terminology.resources import TerminologyResources
from tests.interfaces.hl7v2.mapping.conftest import RouterClient, mapped, one
from tests.interfaces.hl7v2.mapping.samples import (
    ADT_A01_EPIC,
    ADT_A03,
    ADT_A08_EPIC,
    ADT_A11,
    ADT_A28,
    ADT_A31,
    ADT_A40,
    ALL,
    ORU_R01_LAB_V231,
)

MRN = "urn:id:UHOSP|E1001"


def test_admit_update_discharge_one_patient_one_encounter(client: RouterClient) -> None:
    for text in (ADT_A01_EPIC, ADT_A01_EPIC, ADT_A08_EPIC):
        client.post(mapped(text))
    patients = client.search("Patient", identifier=MRN)
    assert len(patients) == 1
    assert patients[0]["address"][0]["line"] == ["98 Oak Ave"]  # the A08 update
    assert len(client.search("Encounter", identifier="urn:id:UHOSP|V5550001")) == 1
    assert len(client.search("AllergyIntolerance")) == 2
    assert len(client.search("Condition")) == 1
    assert len(client.search("Practitioner")) == 2
    client.post(mapped(ADT_A03))
    (enc,) = client.search("Encounter", identifier="urn:id:UHOSP|V5550001")
    assert enc["status"] == "finished"
    assert enc["subject"]["reference"] == f"Patient/{patients[0]['id']}"


def test_lab_results_resent_do_not_duplicate_or_overwrite_demographics(
    client: RouterClient,
) -> None:
    result = mapped(ORU_R01_LAB_V231)
    client.post(result)
    client.post(result)
    corrected = ORU_R01_LAB_V231.replace("|13.2|g/dL|", "|13.4|g/dL|")
    client.post(mapped(corrected))
    (patient,) = client.search("Patient", identifier=MRN)
    assert patient["name"][0]["given"] == ["Mary", "Kate"]  # the ORU PID did not replace it
    (report,) = client.search("DiagnosticReport", identifier="urn:id:SUNQUEST|LAB555")
    assert len(report["result"]) == 8
    observations = client.search("Observation", subject=f"Patient/{patient['id']}")
    assert len(observations) == 8 + 2  # the lab results and the ADT height and weight, once
    hgb = [o for o in observations if o["code"]["coding"][0]["code"] == "718-7"]
    assert [o["valueQuantity"]["value"] for o in hgb] == [13.4]
    assert len(client.search("Specimen")) == 1
    (enc,) = client.search("Encounter", identifier="urn:id:UHOSP|V5550001")
    assert report["encounter"]["reference"] == f"Encounter/{enc['id']}"


def test_person_update_and_merge_move_references(client: RouterClient) -> None:
    client.post(mapped(ADT_A28))
    client.post(mapped(ADT_A31))
    (survivor,) = client.search("Patient", identifier="urn:id:UHOSP|E4004")
    assert survivor["address"][0]["line"] == ["7 Birch Ln"]
    client.post(mapped(ADT_A11))
    (prior,) = client.search("Patient", identifier="urn:id:UHOSP|E2002")
    (visit,) = client.search("Encounter", identifier="urn:id:UHOSP|V5550002")
    assert visit["subject"]["reference"] == f"Patient/{prior['id']}"
    result = mapped(ADT_A40)
    client.post(result)
    assert result.merge is not None
    outcome = apply_merge(client, result.merge)
    assert (outcome.surviving_id, outcome.prior_id, outcome.moved) == (
        survivor["id"],
        prior["id"],
        1,
    )
    (visit,) = client.search("Encounter", identifier="urn:id:UHOSP|V5550002")
    assert visit["subject"]["reference"] == f"Patient/{survivor['id']}"
    (old,) = client.search("Patient", identifier="urn:id:UHOSP|E2002")
    assert old["active"] is False
    assert old["link"] == [
        {"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}
    ]
    (new,) = client.search("Patient", identifier="urn:id:UHOSP|E4004")
    assert new["link"] == [{"other": {"reference": f"Patient/{prior['id']}"}, "type": "replaces"}]
    again = apply_merge(client, result.merge)
    assert again.moved == 0  # nothing refers to the prior patient any more


def test_local_codes_translated_through_a_concept_map(client: RouterClient) -> None:
    calls: list[tuple[str, str]] = []

    def translate(system: str, code: str) -> Sequence[tuple[str, str, str]]:
        calls.append((system, code))
        if (system, code) == ("urn:cmio:v2:cs:99LAB", "COMM"):
            return [("http://loinc.org", "48767-8", "Annotation comment")]
        return []

    result = mapped(ORU_R01_LAB_V231, MappingOptions(translate=translate))
    assert ("urn:cmio:v2:cs:99LAB", "COMM") in calls
    assert ("http://loinc.org", "718-7") not in calls  # standard codes are not translated
    comment = next(
        e["resource"]
        for e in result.bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] == "COMM"
    )
    assert comment["code"]["coding"] == [
        {"system": "urn:cmio:v2:cs:99LAB", "code": "COMM", "display": "Comment"},
        {"system": "http://loinc.org", "code": "48767-8", "display": "Annotation comment"},
    ]
    unmapped = {u.code for u in result.unmapped}
    assert "COMM" not in unmapped and {"CBC", "FAST"} <= unmapped
    client.post(result)
    assert one(result, "DiagnosticReport")["code"]["coding"][1]["code"] == "58410-2"


def test_concept_map_translator_over_the_terminology_service() -> None:
    concept_map = {
        "resourceType": "ConceptMap",
        "url": "http://example.org/ConceptMap/lab-local-to-loinc",
        "status": "active",
        "group": [
            {
                "source": "urn:cmio:v2:cs:99LAB",
                "target": "http://loinc.org",
                "element": [
                    {
                        "code": "FAST",
                        "target": [
                            {
                                "code": "49541-6",
                                "display": "Fasting status",
                                "equivalence": "equivalent",
                            }
                        ],
                    },
                    {
                        "code": "COMM",
                        "target": [{"code": "48767-8", "equivalence": "narrower"}],
                    },
                ],
            }
        ],
    }
    resources = TerminologyResources().with_overlay([concept_map])
    translator = ConceptMapTranslator(resources)
    assert translator("urn:cmio:v2:cs:99LAB", "FAST") == [
        ("http://loinc.org", "49541-6", "Fasting status")
    ]
    assert translator("urn:cmio:v2:cs:99LAB", "COMM") == []  # narrower: not a stand-in
    assert translator("urn:cmio:v2:cs:OTHER", "X") == []  # no ConceptMap applies
    result = mapped(ORU_R01_LAB_V231, MappingOptions(translate=translator))
    fasting = next(
        e["resource"]
        for e in result.bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] == "FAST"
    )
    assert fasting["code"]["coding"][1] == {
        "system": "http://loinc.org",
        "code": "49541-6",
        "display": "Fasting status",
    }
    assert {u.code for u in result.unmapped} >= {"CBC", "COMM"}
    assert "FAST" not in {u.code for u in result.unmapped}


def test_the_store_accepts_every_sample(client: RouterClient) -> None:
    """Write-time validation (invariants, required bindings) accepts every mapped sample."""
    for name in sorted(ALL):
        status, body = client.request("POST", "", [], mapped(ALL[name]).bundle)
        assert status == 200, (name, body)
