"""Vendor-style messages (v2.3 to v2.8) mapped field by field against the V2-to-FHIR IG maps."""

from __future__ import annotations

import base64

import pytest

from cmio.interfaces.hl7v2 import parse
from cmio.interfaces.hl7v2.mapping import SUPPORTED, MappingError, MappingOptions, map_message
from cmio.model import Model
from tests.interfaces.hl7v2.mapping.conftest import assert_valid, mapped, one, resources
from tests.interfaces.hl7v2.mapping.samples import (
    ADT_A01_EPIC,
    ADT_A02,
    ADT_A03,
    ADT_A04_CERNER,
    ADT_A05,
    ADT_A11,
    ADT_A13,
    ADT_A40,
    ALL,
    MDM_T02_PDF,
    MDM_T02_TEXT,
    OML_O21_V27,
    ORM_O01_V24,
    ORU_R01_LAB_V231,
    ORU_R01_V24,
    SIU_S12_V28,
    SIU_S15_V28,
    VXU_V04_CDC,
    VXU_V04_V26,
)

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
NPI = "urn:oid:2.16.840.1.113883.4.6"


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_sample_maps_to_valid_resources(name: str, model: Model) -> None:
    result = mapped(ALL[name])
    assert result.bundle["type"] == "transaction"
    assert result.bundle["entry"]
    assert_valid(model, result)
    for entry in result.bundle["entry"]:
        assert entry["fullUrl"].startswith("urn:uuid:")
        assert entry["request"]["method"] in ("PUT", "POST")
    assert result.patient_key


def test_epic_adt_a01_patient_fields() -> None:
    result = mapped(ADT_A01_EPIC)
    patient = one(result, "Patient")
    mrn, internal, ssn = patient["identifier"]
    assert mrn == {
        "system": "urn:id:UHOSP",
        "value": "E1001",
        "type": {"coding": [{"system": V2_0203, "code": "MRN"}]},
    }
    assert internal["system"] == "urn:id:EPI" and internal["value"] == "Z99123"
    assert ssn["system"] == "urn:oid:2.16.840.1.113883.4.1" and ssn["value"] == "123-45-6789"
    legal, maiden = patient["name"]
    assert legal == {
        "family": "O'Brien",
        "given": ["Mary", "Kate"],
        "prefix": ["Ms"],
        "suffix": ["Jr"],
        "use": "official",
    }
    assert maiden["use"] == "maiden" and maiden["family"] == "Smith"
    assert patient["gender"] == "female"
    assert patient["birthDate"] == "1972-04-15"
    assert patient["_birthDate"]["extension"][0]["valueDateTime"] == "1972-04-15T08:30:00-05:00"
    home, mailing = patient["address"]
    assert home == {
        "line": ["12 Elm St", "Apt 3"],
        "city": "Springfield",
        "state": "IL",
        "postalCode": "62701",
        "country": "USA",
        "district": "SANGAMON",
        "use": "home",
    }
    assert mailing["type"] == "postal"
    assert patient["telecom"] == [
        {"value": "+1 217 5550101", "system": "phone", "use": "home"},
        {"value": "mary.obrien@example.org", "system": "email"},  # NET: no FHIR use in the IG
        {"value": "+1 217 5550199", "system": "phone", "use": "mobile"},
        {"value": "+1 217 5550300 X12", "system": "phone", "use": "work"},
    ]
    assert patient["maritalStatus"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
        "code": "M",
        "display": "Married",
    }
    religion = patient["extension"][0]
    assert religion["url"].endswith("patient-religion")
    assert religion["valueCodeableConcept"]["coding"][0]["code"] == "CAT"
    assert patient["deceasedBoolean"] is False
    spouse, child = patient["contact"]
    assert spouse["name"]["family"] == "O'Brien" and spouse["name"]["given"] == ["Sean"]
    assert [r["coding"][0]["code"] for r in spouse["relationship"]] == ["SPS", "C"]
    assert spouse["telecom"][0]["value"] == "+1 217 5550102"
    assert child["relationship"][0]["coding"][0]["code"] == "CHILD"
    assert result.patient_key == "urn:id:UHOSP|E1001"
    assert result.ignored_segments == ["EVN", "PD1", "PV2", "ZPD"]  # kept in the journal only
    entry = result.bundle["entry"][0]
    assert entry["request"] == {"method": "PUT", "url": "Patient?identifier=urn:id:UHOSP|E1001"}


def test_epic_adt_a01_encounter_allergies_diagnoses() -> None:
    result = mapped(ADT_A01_EPIC)
    enc = one(result, "Encounter")
    assert enc["identifier"][0]["value"] == "V5550001"
    assert enc["identifier"][0]["system"] == "urn:id:UHOSP"
    assert enc["identifier"][0]["type"]["coding"][0]["code"] == "VN"
    assert enc["status"] == "in-progress"
    assert enc["class"]["code"] == "IMP"
    assert enc["serviceType"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0069",
        "code": "MED",
    }
    assert enc["period"] == {"start": "2025-03-01T08:00:00-05:00"}
    (place,) = enc["location"]
    assert place["location"]["display"] == "4W 401 A UHOSP"
    assert place["status"] == "active"
    assert place["period"] == {"start": "2025-03-01T08:00:00-05:00"}  # PV1-44
    assert enc["hospitalization"]["admitSource"]["coding"][0]["code"] == "7"
    roles = [p["type"][0]["coding"][0]["code"] for p in enc["participant"]]
    assert roles == ["ATND", "REF", "ADM"]
    practitioners = resources(result, "Practitioner")
    assert {p["identifier"][0]["value"] for p in practitioners} == {"1111111111", "2222222222"}
    assert all(p["identifier"][0]["system"] == NPI for p in practitioners)
    assert enc["subject"]["reference"] == result.bundle["entry"][0]["fullUrl"]
    penicillin, peanuts = resources(result, "AllergyIntolerance")
    assert (
        penicillin["code"]["coding"][0]["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
    )
    assert penicillin["category"] == ["medication"] and penicillin["criticality"] == "high"
    assert penicillin["reaction"][0]["manifestation"] == [{"text": "Hives"}, {"text": "Wheezing"}]
    assert peanuts["category"] == ["food"]
    assert "criticality" not in peanuts  # MO has no FHIR code in the IG map
    condition = one(result, "Condition")
    assert condition["code"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "code": "R07.9",
        "display": "Chest pain, unspecified",
    }
    height, weight = resources(result, "Observation")  # ADT OBX (ADT_A01 message map)
    assert height["valueQuantity"] == {
        "value": 165,
        "unit": "cm",
        "system": "http://unitsofmeasure.org",
        "code": "cm",
    }
    assert weight["code"]["coding"][0]["code"] == "29463-7"
    assert height["subject"] == {"reference": enc["subject"]["reference"]}
    enc_url = next(
        e["fullUrl"] for e in result.bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
    )
    assert height["encounter"] == {"reference": enc_url}
    assert height["effectiveDateTime"] == "2025-03-01T08:10:00-05:00"
    plan = one(result, "Coverage")  # IN1[Coverage]
    assert plan["status"] == "active"
    assert plan["subscriberId"] == "XJW123456789"  # IN1-36
    assert plan["beneficiary"] == plan["subscriber"] == {"reference": enc["subject"]["reference"]}
    assert plan["relationship"]["coding"][0]["code"] == "ONESELF"  # IN1-17 via Relationship
    assert plan["period"] == {"start": "2025-01-01", "end": "2025-12-31"}  # IN1-12, IN1-13
    assert plan["payor"] == [
        {
            "display": "Blue Shield of Illinois",
            "identifier": {"system": "urn:oid:2.16.840.1.113883.3.999", "value": "BCBS01"},
        }
    ]
    assert [(c["type"]["coding"][0]["code"], c["value"]) for c in plan["class"]] == [
        ("plan", "PPO-GOLD"),
        ("group", "GRP-778"),
    ]
    assert plan["type"]["coding"][0]["code"] == "PPO"
    unmapped = {(u.path, u.code) for u in result.unmapped}
    assert ("AL1[2]-3", "LOC123") in unmapped  # local allergen code, kept and reported
    assert ("AL1[2]-4", "MO") in unmapped
    assert peanuts["code"]["coding"][0] == {
        "system": "urn:cmio:v2:cs:99EPIC",
        "code": "LOC123",
        "display": "Peanuts",
    }


def test_cerner_v23_lf_terminators_and_times_without_zone() -> None:
    result = mapped(ADT_A04_CERNER, MappingOptions(timezone="-05:00"))
    patient = one(result, "Patient")
    values = [(i["system"], i["value"]) for i in patient["identifier"]]
    assert values == [
        ("urn:id:CERNER", "X77"),
        ("urn:id:CERNERHOSP", "C2002"),
        ("http://hl7.org/fhir/sid/us-ssn", "999-88-7777"),
    ]
    assert result.patient_key == "urn:id:CERNERHOSP|C2002"
    assert patient["name"][0] == {"family": "SMITH", "given": ["JOHN", "Q"]}
    assert patient["birthDate"] == "1960-02-29"
    assert patient["gender"] == "male"
    assert patient["telecom"] == [{"value": "(216)555-1212", "system": "phone", "use": "home"}]
    assert patient["maritalStatus"]["coding"][0]["code"] == "S"
    enc = one(result, "Encounter")
    assert enc["class"]["code"] == "AMB"
    assert enc["period"]["start"] == "2005-03-01T11:45:00-05:00"
    assert enc["participant"][0]["individual"]["display"] == "ALAN JONES"


def test_transfer_moves_the_location() -> None:
    moved = one(mapped(ADT_A02), "Encounter")  # PV1-3 now, PV1-6 before
    at = "2025-03-02T09:00:00-05:00"  # EVN-2: the transfer
    assert [
        (p["location"]["display"], p["status"], p.get("period")) for p in moved["location"]
    ] == [
        ("ICU 1 1 UHOSP", "active", {"start": at}),
        ("4W 401 A UHOSP", "completed", {"end": at}),
    ]
    assert moved["status"] == "in-progress"


def test_discharge_cancel_and_preadmit_statuses() -> None:
    discharged = one(mapped(ADT_A03), "Encounter")
    assert discharged["status"] == "finished"
    assert discharged["period"]["end"] == "2025-03-05T11:30:00-05:00"
    assert discharged["hospitalization"]["dischargeDisposition"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0112",
        "code": "01",
        "display": "Discharged to home",
    }
    assert one(mapped(ADT_A11), "Encounter")["status"] == "cancelled"
    assert one(mapped(ADT_A13), "Encounter")["status"] == "in-progress"
    preadmit = one(mapped(ADT_A05), "Encounter")
    assert preadmit["status"] == "planned"
    assert preadmit["class"]["code"] == "PRENC"


def test_merge_message_names_both_patients() -> None:
    result = mapped(ADT_A40)
    assert result.merge is not None
    assert result.merge.surviving == ("urn:id:UHOSP", "E4004")
    assert result.merge.prior == ("urn:id:UHOSP", "E2002")
    no_mrg = ADT_A40.replace("MRG|E2002^^^UHOSP^MR\r", "")
    with pytest.raises(MappingError) as info:
        mapped(no_mrg)
    assert info.value.path == "MRG-1"


def test_lab_oru_v231_report_observations_specimen() -> None:
    result = mapped(ORU_R01_LAB_V231, MappingOptions(timezone="-05:00"))
    report = one(result, "DiagnosticReport")
    assert [i["type"]["coding"][0]["code"] for i in report["identifier"]] == ["PLAC", "FILL"]
    assert report["identifier"][1]["value"] == "LAB555"
    assert report["identifier"][1]["system"] == "urn:id:SUNQUEST"
    assert report["code"]["coding"] == [
        {"system": "urn:cmio:v2:cs:99LAB", "code": "CBC", "display": "Complete blood count"},
        {"system": "http://loinc.org", "code": "58410-2", "display": "CBC panel"},
    ]
    assert report["status"] == "final"
    assert report["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
        "code": "HM",
    }
    assert report["effectiveDateTime"] == "2025-03-01T07:30:00-05:00"
    assert report["issued"] == "2025-03-01T11:59:00-05:00"
    assert report["conclusion"] == "Specimen slightly hemolyzed"
    specimen = one(result, "Specimen")
    assert specimen["type"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0070",
        "code": "BLD",
        "display": "Blood",
    }
    obs = resources(result, "Observation")
    assert len(obs) == len(report["result"]) == 8
    hgb, wbc, plt, titer, rng, comment, culture, fasting = obs
    assert hgb["valueQuantity"] == {"value": 13.2, "unit": "g/dL"}
    assert hgb["referenceRange"] == [{"text": "12.0-16.0"}]
    assert hgb["interpretation"][0]["coding"][0]["code"] == "N"
    assert hgb["status"] == "final"
    assert hgb["effectiveDateTime"] == "2025-03-01T07:30:00-05:00"
    assert wbc["valueQuantity"] == {
        "value": 15.7,
        "unit": "10*3/uL",
        "system": "http://unitsofmeasure.org",
        "code": "10*3/uL",
    }
    assert wbc["status"] == "corrected"
    assert wbc["note"] == [{"text": "Repeat confirmed"}]
    assert wbc["interpretation"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "code": "H",
        "display": "High",
    }
    assert plt["valueQuantity"]["comparator"] == ">" and plt["valueQuantity"]["value"] == 1000
    assert plt["interpretation"][0]["coding"][0]["code"] == "HH"
    assert titer["valueRatio"] == {"numerator": {"value": 1}, "denominator": {"value": 128}}
    assert rng["valueRange"]["low"]["value"] == 10 and rng["valueRange"]["high"]["value"] == 20
    assert comment["valueString"] == "Line one\nLine two"
    assert culture["valueCodeableConcept"]["coding"][0]["system"] == "http://snomed.info/sct"
    assert culture["status"] == "preliminary"
    assert fasting["valueDateTime"] == "2025-02-28T20:00:00-05:00"
    assert all(o["specimen"]["reference"] == report["specimen"][0]["reference"] for o in obs)
    enc = one(result, "Encounter")
    assert all(o["encounter"]["reference"] == report["encounter"]["reference"] for o in obs)
    entries = {e["resource"]["resourceType"]: e for e in result.bundle["entry"]}
    assert entries["Patient"]["request"]["method"] == "POST"  # lab feeds do not update demographics
    assert entries["Patient"]["request"]["ifNoneExist"] == "identifier=urn:id:UHOSP|E1001"
    assert entries["Encounter"]["request"]["ifNoneExist"] == "identifier=urn:id:UHOSP|V5550001"
    assert enc["identifier"][0]["value"] == "V5550001"


def test_results_written_by_id_derived_from_their_identifier() -> None:
    first = mapped(ORU_R01_V24)
    again = mapped(ORU_R01_V24.replace("|RL-9|", "|RL-10|"))  # a resend with a new control id
    requests = [e["request"] for e in first.bundle["entry"]]
    assert [r["url"].split("?")[0].split("/")[0] for r in requests] == [
        "Patient",
        "Specimen",
        "Observation",
        "DiagnosticReport",
    ]
    assert requests[0]["method"] == "POST" and "ifNoneExist" in requests[0]
    for entry, other in zip(first.bundle["entry"][1:], again.bundle["entry"][1:], strict=True):
        rid = entry["resource"]["id"]
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{entry['resource']['resourceType']}/{rid}",
        }
        assert other["resource"]["id"] == rid  # same identifier, same id
    searched = mapped(ORU_R01_V24, MappingOptions(deterministic_ids=False))
    report = searched.bundle["entry"][-1]
    assert report["request"]["url"] == "DiagnosticReport?identifier=urn:id:REFLAB|RL555"
    assert "id" not in report["resource"]


def test_oru_v24_spm_and_utc_times() -> None:
    result = mapped(ORU_R01_V24)
    report = one(result, "DiagnosticReport")
    assert report["identifier"] == [
        {
            "system": "urn:id:REFLAB",
            "value": "RL555",
            "type": {"coding": [{"system": V2_0203, "code": "FILL"}]},
        }
    ]
    assert report["effectiveDateTime"] == "2025-04-01T08:00:00Z"
    specimen = one(result, "Specimen")
    assert specimen["identifier"] == [
        {"system": "urn:id:CMIO", "value": "SPC1"},
        {"system": "urn:id:REFLAB", "value": "RLSPC1"},
    ]
    assert specimen["type"]["coding"][0]["code"] == "SER"
    assert specimen["collection"] == {"collectedDateTime": "2025-04-01T08:00:00Z"}
    assert specimen["receivedTime"] == "2025-04-01T09:00:00Z"
    glucose = one(result, "Observation")
    assert glucose["valueQuantity"]["code"] == "mg/dL"
    assert glucose["interpretation"][0]["coding"][0]["code"] == "H"


def test_observations_after_spm_belong_to_that_specimen() -> None:
    text = ORU_R01_V24 + (
        "SPM|2|SPC2&CMIO^RLSPC2&REFLAB||UR^Urine^HL70487\r"
        "OBX|1|ST|5778-6^Color of urine^LN||Yellow||||||F\r"
    )
    result = mapped(text)
    serum, urine = (
        e["fullUrl"] for e in result.bundle["entry"] if e["resource"]["resourceType"] == "Specimen"
    )
    glucose, color = resources(result, "Observation")
    assert glucose["specimen"] == {"reference": serum}
    assert color["specimen"] == {"reference": urine}
    assert color["valueString"] == "Yellow"
    assert len(one(result, "DiagnosticReport")["result"]) == 2


def test_vxu_immunizations() -> None:
    result = mapped(VXU_V04_CDC)
    flu, mmr = resources(result, "Immunization")
    assert flu["identifier"][0]["value"] == "IZ-783274"
    assert flu["identifier"][0]["type"]["coding"][0]["code"] == "FILL"
    assert flu["vaccineCode"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/cvx",
        "code": "140",
        "display": "Influenza, seasonal, injectable, preservative free",
    }
    assert flu["status"] == "completed"
    assert flu["occurrenceDateTime"] == "2025-01-15T10:00:00-05:00"
    assert flu["recorded"] == "2025-01-15T10:30:00-05:00"
    assert flu["primarySource"] is True
    assert flu["doseQuantity"] == {
        "value": 0.5,
        "unit": "mL",
        "system": "http://unitsofmeasure.org",
        "code": "mL",
    }
    assert flu["lotNumber"] == "FLU123"
    assert flu["manufacturer"] == {
        "display": "GlaxoSmithKline",
        "identifier": {"system": "http://terminology.hl7.org/CodeSystem/MVX", "value": "SKB"},
    }
    assert flu["performer"][0]["function"]["coding"][0]["code"] == "AP"
    assert flu["site"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0163",
        "code": "LD",
        "display": "Left Deltoid",
    }
    assert flu["route"]["coding"][0]["code"] == "C28161"
    assert mmr["status"] == "not-done"
    assert mmr["primarySource"] is False
    assert "doseQuantity" not in mmr  # 999 = unknown amount
    assert (
        mmr["route"]["coding"][0]
        == {
            "system": "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
            "code": "SQ",
            "display": "Injection, subcutaneous",
        }
        or mmr["route"]["coding"][0]["code"] == "SC"
    )
    funding = one(result, "Observation")
    assert funding["partOf"][0]["reference"] == result.bundle["entry"][2]["fullUrl"]
    assert funding["valueCodeableConcept"]["coding"][0]["code"] == "V01"


def test_vxu_v26_without_orc_gets_a_derived_identifier() -> None:
    result = mapped(VXU_V04_V26)
    shot = one(result, "Immunization")
    assert shot["identifier"][0]["system"] == "urn:cmio:v2:immunization"
    assert shot["vaccineCode"]["coding"][0]["code"] == "08"
    assert shot["route"]["coding"][0]["code"] == "IM"
    patient = one(result, "Patient")
    assert patient["identifier"][0]["system"] == "urn:oid:2.16.840.1.113883.19.5"


def test_orders_to_service_requests() -> None:
    result = mapped(ORM_O01_V24)
    new, cancelled = resources(result, "ServiceRequest")
    assert new["status"] == "active" and new["intent"] == "order"
    assert new["identifier"][0]["value"] == "ORD777"
    assert new["identifier"][0]["type"]["coding"][0]["code"] == "PLAC"
    assert new["code"]["coding"][0]["code"] == "58410-2"
    assert new["authoredOn"] == "2025-03-01T06:55:00-05:00"
    assert new["requester"]["reference"].startswith("urn:uuid:")
    assert new["reasonCode"][0]["coding"][0]["code"] == "R07.9"
    assert new["note"] == [{"text": "Draw with morning labs"}]
    assert new["priority"] == "stat"
    assert cancelled["status"] == "revoked"
    oml = mapped(OML_O21_V27)
    request = one(oml, "ServiceRequest")
    assert request["status"] == "active"
    assert one(oml, "Patient")["name"][0]["given"] == ["Mary#Jo"]  # \P\ is the v2.7 truncation char


def test_scheduling_appointments() -> None:
    booked = one(mapped(SIU_S12_V28), "Appointment")
    assert booked["status"] == "booked"
    assert [i["value"] for i in booked["identifier"]] == ["APT100", "APTF100"]
    assert booked["start"] == "2025-04-01T09:30:00-05:00"
    assert booked["end"] == "2025-04-01T10:00:00-05:00"
    assert booked["minutesDuration"] == 30
    assert booked["appointmentType"]["coding"][0]["code"] == "NORMAL"
    assert booked["reasonCode"][0]["coding"][0]["code"] == "FOLLOWUP"
    assert booked["comment"] == "Bring medication list"
    actors = [p["actor"] for p in booked["participant"]]
    assert actors[0]["reference"].startswith("urn:uuid:")
    assert {"display": "CLINIC UHOSP"} in actors
    ais_only = SIU_S12_V28.replace("^^^20250401093000-0500^20250401100000-0500", "").replace(
        "TQ1|1||||||20250401093000-0500|20250401100000-0500\r", ""
    )
    from_ais = one(mapped(ais_only), "Appointment")  # AIS-4 start + AIS-7 duration
    assert (from_ais["start"], from_ais["end"]) == (booked["start"], booked["end"])
    cancelled = one(mapped(SIU_S15_V28), "Appointment")
    assert cancelled["status"] == "cancelled"
    assert cancelled["identifier"] == booked["identifier"]


def test_documents() -> None:
    pdf = one(mapped(MDM_T02_PDF), "DocumentReference")
    assert pdf["masterIdentifier"]["value"] == "DOC555"
    assert pdf["status"] == "current" and pdf["docStatus"] == "final"
    assert pdf["type"]["coding"][0]["code"] == "DS"
    assert pdf["date"] == "2025-03-02T14:30:00-05:00"
    attachment = pdf["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf"
    assert base64.b64decode(attachment["data"]).startswith(b"%PDF-1.4")
    assert attachment["title"] == "Discharge summary"
    assert pdf["author"][0]["reference"].startswith("urn:uuid:")
    text = one(mapped(MDM_T02_TEXT), "DocumentReference")
    assert text["docStatus"] == "preliminary"
    content = base64.b64decode(text["content"][0]["attachment"]["data"]).decode()
    assert content == "Patient seen and examined.\nPlan: continue & monitor."


def test_unsupported_type_and_missing_patient_are_errors_naming_the_field() -> None:
    ack = "MSH|^~\\&|A|B|C|D|20250101||ACK^A01|1|P|2.5\rMSA|AA|X\r"
    with pytest.raises(MappingError) as info:
        map_message(parse(ack))
    assert info.value.path == "MSH-9" and "ACK^A01" in str(info.value)
    no_id = "MSH|^~\\&|A|B|C|D|20250101||ADT^A08|1|P|2.5\rPID|1||||Doe^J\r"
    with pytest.raises(MappingError) as info:
        map_message(parse(no_id))
    assert info.value.path == "PID-3"
    assert "ADT^A08" in SUPPORTED and "MDM^T02" in SUPPORTED


def test_bad_optional_values_are_issues_not_failures() -> None:
    text = ADT_A03.replace("20250305113000-0500", "2025-03-05")
    result = mapped(text)
    assert "end" not in one(result, "Encounter")["period"]
    assert any(i.startswith("PV1-45") for i in result.issues)


def test_patient_matched_by_the_mr_identifier_wherever_it_is_in_pid3() -> None:
    text = ADT_A03.replace("E1001^^^UHOSP^MRN", "T77^^^TEMP^PI~E1001^^^UHOSP^MRN")
    assert mapped(text).patient_key == "urn:id:UHOSP|E1001"
    plain = ADT_A03.replace("E1001^^^UHOSP^MRN", "T77^^^TEMP^PI")
    assert mapped(plain).patient_key == "urn:id:TEMP|T77"  # no MR: the first PID-3


def test_versions_outside_the_range_map_with_an_issue() -> None:
    old = mapped(ADT_A03.replace("|P|2.5.1", "|P|2.2", 1))
    assert one(old, "Encounter")["status"] == "finished"
    assert any(i.startswith("MSH-12") for i in old.issues)
    assert not mapped(ADT_A03).issues


@pytest.mark.parametrize(
    "bad", ["20251301", "20250230", "202503011260", "20250301120000+2500", "0000"]
)
def test_impossible_dates_are_issues(bad: str) -> None:
    result = mapped(ADT_A03.replace("20250305113000-0500", bad))
    assert "end" not in one(result, "Encounter")["period"]
    assert any(i.startswith("PV1-45") for i in result.issues)


def test_options_from_channel_yaml() -> None:
    options = MappingOptions.from_dict(
        {"authority_systems": {"UHOSP": "http://uhosp.example.org/mrn"}, "timezone": "+01:00"}
    )
    result = map_message(parse(ADT_A03), options)
    assert result.patient_key == "http://uhosp.example.org/mrn|E1001"
    bare = ORU_R01_V24.replace("C2002^^^CERNERHOSP^MR", "C2002^^^^MR")
    assert mapped(bare).patient_key == "urn:id:REFLAB|C2002"  # the sender's facility
    lab = MappingOptions(authority_systems={"REFLAB": "urn:id:CERNERHOSP"})
    assert mapped(bare, lab).patient_key == mapped(ORU_R01_V24).patient_key
    with pytest.raises(ValueError, match="unknown mapping option"):
        MappingOptions.from_dict({"colour": "blue"})
    with pytest.raises(ValueError, match="authority_systems"):
        MappingOptions.from_dict({"authority_systems": ["UHOSP"]})
    with pytest.raises(ValueError, match="timezone"):
        MappingOptions.from_dict({"timezone": 5})
    assert map_message(parse(ADT_A03), {"timezone": "Z"}).patient_key == "urn:id:UHOSP|E1001"
