"""The synthetic health system's v2.5.1 feeds mapped back to FHIR, field by field against the
FHIR resources they were generated from (IG maps PID, PV1, OBR, OBX, RXA, RXR)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.interfaces.hl7v2 import parse, split_messages
from cmio.interfaces.hl7v2.mapping import MappingResult, map_message
from cmio.model import Model
from cmio.synth import SynthConfig, generate
from cmio.synth.hl7v2 import write_feeds
from cmio.synth.hl7v2.context import digits
from tests.interfaces.hl7v2.mapping.conftest import RouterClient, assert_valid, one, resources

Json = dict[str, Any]


@dataclass
class Mapped:
    """Every feed message mapped, and the FHIR source by type and id."""

    messages: list[tuple[str, MappingResult]]
    source: dict[str, dict[str, Json]]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Mapped:
    root: Path = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(20, root / "fhir", seed=5))
    write_feeds(root / "fhir", root / "feeds", seed=3)
    source: dict[str, dict[str, Json]] = defaultdict(dict)
    for kind in ("Patient", "Encounter", "DiagnosticReport", "Observation", "Immunization"):
        for line in (root / "fhir" / f"{kind}.ndjson").read_bytes().splitlines():
            resource = orjson.loads(line)
            source[kind][resource["id"]] = resource
    data = (root / "feeds" / "all.hl7").read_bytes()
    out = []
    for raw in split_messages(data):
        message = parse(raw, strict=True)
        out.append(
            (f"{message.message_type.code}^{message.message_type.event}", map_message(message))
        )
    return Mapped(out, dict(source))


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _mr(patient: Json) -> tuple[str, str]:
    for ident in patient["identifier"]:
        if any(c["code"] == "MR" for c in ident.get("type", {}).get("coding", [])):
            return ident.get("system", ""), ident["value"]
    raise AssertionError(f"no MR identifier in {patient['id']}")


def test_every_feed_message_maps_to_valid_resources(synth: Mapped, model: Model) -> None:
    kinds = {kind for kind, _ in synth.messages}
    assert {"ADT^A01", "ADT^A03", "ADT^A04", "ORU^R01", "VXU^V04"} <= kinds
    ignored: set[str] = set()
    for _, result in synth.messages:
        assert_valid(model, result)
        assert not result.issues, result.issues
        ignored.update(result.ignored_segments)
    assert ignored == {"EVN", "ZPI"}  # the sender's Z-segment and the event header


def test_patients_field_by_field(synth: Mapped) -> None:
    by_mrn = {_mr(p): p for p in synth.source["Patient"].values()}
    checked = 0
    for kind, result in synth.messages:
        if not kind.startswith("ADT"):
            continue
        patient = one(result, "Patient")
        mr = patient["identifier"][0]
        src = by_mrn[(mr["system"], mr["value"])]  # PID-3 CX.1 + CX.4 -> identifier
        assert result.patient_key == f"{mr['system']}|{mr['value']}"
        name, src_name = patient["name"][0], src["name"][0]
        assert name["family"] == src_name["family"]  # PID-5.1
        assert name["given"] == src_name["given"]  # PID-5.2, 5.3
        assert patient["birthDate"] == src["birthDate"]  # PID-7
        assert patient["gender"] == src["gender"]  # PID-8 via AdministrativeSex
        if "deceasedDateTime" in src:
            assert _instant(patient["deceasedDateTime"]) == _instant(src["deceasedDateTime"])
        if kind == "ADT^A08":  # the update carries the current address and phone
            assert patient["address"][0]["line"][0] == src["address"][0]["line"][0]  # PID-11
            assert patient["address"][0]["city"] == src["address"][0]["city"]
            assert patient["telecom"][0]["value"] == src["telecom"][0]["value"]  # PID-13
        checked += 1
    assert checked > 20


def test_encounters_field_by_field(synth: Mapped) -> None:
    by_number = {digits(e["id"], 12): e for e in synth.source["Encounter"].values()}
    checked = 0
    for kind, result in synth.messages:
        if not kind.startswith("ADT"):
            continue
        enc = one(result, "Encounter")
        src = by_number[enc["identifier"][0]["value"]]  # PV1-19 visit number
        # PV1-2 (I/E/O; v2 has no virtual or home class) -> class via PatientClass[EncounterClass]
        expected = {"IMP": "IMP", "EMER": "EMER"}.get(src["class"]["code"], "AMB")
        assert enc["class"]["code"] == expected
        assert _instant(enc["period"]["start"]) == _instant(src["period"]["start"])  # PV1-44
        if kind == "ADT^A03":
            assert enc["status"] == "finished"
            assert _instant(enc["period"]["end"]) == _instant(src["period"]["end"])  # PV1-45
        checked += 1
    assert checked > 20


def test_lab_results_field_by_field(synth: Mapped) -> None:
    reports = {"L" + digits(r["id"], 9): r for r in synth.source["DiagnosticReport"].values()}
    observations = synth.source["Observation"]
    numeric = 0
    for kind, result in synth.messages:
        if kind != "ORU^R01":
            continue
        report = one(result, "DiagnosticReport")
        filler = next(i for i in report["identifier"] if i["type"]["coding"][0]["code"] == "FILL")
        src = reports[filler["value"]]  # OBR-3
        assert report["code"]["coding"][0]["code"] == src["code"]["coding"][0]["code"]  # OBR-4
        assert report["code"]["coding"][0]["system"] == "http://loinc.org"
        mapped = resources(result, "Observation")
        assert len(mapped) == len(src["result"])
        for obs, ref in zip(mapped, src["result"], strict=True):
            src_obs = observations[ref["reference"].split("/")[1]]
            assert obs["code"]["coding"][0] == {
                k: v for k, v in src_obs["code"]["coding"][0].items() if k != "version"
            }  # OBX-3 CWE -> CodeableConcept
            assert obs["status"] == "final"  # OBX-11 F
            if "valueQuantity" in src_obs:
                q, sq = obs["valueQuantity"], src_obs["valueQuantity"]
                assert q["value"] == pytest.approx(sq["value"])  # OBX-5 NM
                assert (q["system"], q["code"]) == (
                    "http://unitsofmeasure.org",
                    sq["code"],
                )  # OBX-6
                interpretation = obs["interpretation"][0]["coding"][0]  # OBX-8
                assert interpretation["code"] in ("N", "H", "L")
                assert interpretation["system"].endswith("v3-ObservationInterpretation")
                numeric += 1
            elif "valueCodeableConcept" in src_obs:
                assert (
                    obs["valueCodeableConcept"]["coding"][0]["code"]
                    == src_obs["valueCodeableConcept"]["coding"][0]["code"]
                )
    assert numeric > 10


def test_immunizations_field_by_field(synth: Mapped) -> None:
    by_filler = {"I" + digits(i["id"], 9): i for i in synth.source["Immunization"].values()}
    checked = 0
    for kind, result in synth.messages:
        if kind != "VXU^V04":
            continue
        imm = one(result, "Immunization")
        filler = next(i for i in imm["identifier"] if i["type"]["coding"][0]["code"] == "FILL")
        src = by_filler[filler["value"]]  # ORC-3
        coding = imm["vaccineCode"]["coding"][0]  # RXA-5 CVX
        assert (coding["system"], coding["code"]) == (
            "http://hl7.org/fhir/sid/cvx",
            src["vaccineCode"]["coding"][0]["code"],
        )
        assert _instant(imm["occurrenceDateTime"]) == _instant(src["occurrenceDateTime"])  # RXA-3
        assert imm["status"] == "completed"  # RXA-20 CP
        assert imm["route"]["coding"][0]["code"]  # RXR-1
        checked += 1
    assert checked > 5


def test_coverages_from_in1(synth: Mapped) -> None:
    checked = 0
    for _, result in synth.messages:
        patient_url = result.bundle["entry"][0]["fullUrl"]
        for plan in resources(result, "Coverage"):
            assert plan["beneficiary"] == {"reference": patient_url}
            payor = plan["payor"][0]  # IN1-4 with IN1-3, else self-pay
            assert payor.get("display") or payor == {"reference": patient_url}
            assert plan["subscriberId"] == plan["identifier"][1]["value"]  # IN1-36 = IN1-49
            checked += 1
    assert checked > 10


def test_feed_into_the_store_twice_without_duplicates(synth: Mapped, client: RouterClient) -> None:
    sample = synth.messages[:25]
    for _ in range(2):
        for _, result in sample:
            client.post(result)
    keys = {r.patient_key for _, r in sample}
    visits = {
        one(r, "Encounter")["identifier"][0]["value"] for k, r in sample if k.startswith("ADT")
    }
    patients = [p for p in client.search("Patient") if f"{_mr(p)[0]}|{_mr(p)[1]}" in keys]
    assert len(patients) == len(keys)
    stored_visits = [
        e["identifier"][0]["value"]
        for e in client.search("Encounter")
        if e["identifier"][0]["value"] in visits
    ]
    assert sorted(stored_visits) == sorted(visits)
