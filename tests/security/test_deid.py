"""Safe Harbor de-identification of FHIR resources (cmio.security.deid)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.model import Model, load_model
from cmio.security.deid import AGE_90_EXTENSION, Deidentifier, DeidPolicy
from cmio.security.deid_values import RESTRICTED_ZIP3, shift_date, zip3
from cmio.security.secrets import InsecureSecretError, MissingSecretError
from tests.security.deid_checks import days_of, gather, scan, shift

BULK = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "synthea-r4"
    / "bulk-ndjson-10-patients-partial"
)
KEY = b"0123456789abcdef0123456789abcdef"
REF = re.compile(r'"reference":"([A-Z][A-Za-z]+)/([^"]+)"')


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def deid(model: Model) -> Deidentifier:
    return Deidentifier(KEY, model, DeidPolicy(as_of=date(2026, 1, 1)))


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "text": {"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>x</div>"},
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-12-3456"}],
        "name": [{"family": "Quixote", "given": ["Alonso"], "_given": [{"id": "g"}]}],
        "telecom": [{"system": "email", "value": "alonso@example.org"}],
        "gender": "male",
        "birthDate": "1980-02-29",
        "_birthDate": {"extension": [{"url": "http://x/e", "valueString": "born at home"}]},
        "address": [
            {"line": ["1 Windmill Rd"], "city": "La Mancha", "postalCode": "03601", "state": "NH"},
            {"line": ["2 Main St"], "postalCode": "02139-4307", "country": "US"},
        ],
        "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}],
        "contact": [{"name": {"family": "Panza"}, "telecom": [{"value": "555-0100"}]}],
        "generalPractitioner": [{"reference": "Practitioner/dr1", "display": "Dr. Who"}],
    }


def test_direct_identifiers_removed_and_address_generalized(deid: Deidentifier) -> None:
    out = deid.deidentify(patient())
    assert out is not None
    raw = orjson.dumps(out)
    for secret in (b"999-12-3456", b"Quixote", b"Alonso", b"alonso@", b"Windmill", b"Mancha"):
        assert secret not in raw
    assert b"Panza" not in raw and b"555-0100" not in raw and b"Dr. Who" not in raw
    assert b"born at home" not in raw and b"iVBOR" not in raw and b"xhtml" not in raw
    assert "text" not in out and "identifier" not in out and "telecom" not in out
    assert out["address"] == [
        {"state": "NH", "postalCode": "000"},
        {"country": "US", "postalCode": "021"},
    ]
    assert out["id"] == deid.pseudonym("Patient", "p1") != "p1"
    assert out["generalPractitioner"] == [
        {"reference": f"Practitioner/{deid.pseudonym('Practitioner', 'dr1')}"}
    ]
    assert out["meta"]["security"][0]["code"] == "PSEUDED"
    assert out["gender"] == "male"


def test_dates_shift_by_one_offset_per_patient(deid: Deidentifier) -> None:
    days = deid.offset_days("p1")
    assert 1 <= abs(days) <= 180
    enc = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2020-01-31T10:00:00+01:00", "end": "2020-02-02"},
    }
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "free text only"},
        "subject": {"reference": "http://example.org/fhir/Patient/p1/_history/3"},
        "effectiveDateTime": "2020-01-31",
        "issued": "2020-02-01T00:00:00Z",
        "valueString": "Patient says Alonso visited",
        "note": [{"text": "call 555-0100"}],
    }
    p = deid.deidentify(patient())
    e = deid.deidentify(enc)
    o = deid.deidentify(obs)
    assert p is not None and e is not None and o is not None
    assert p["birthDate"] == shift("1980-02-29", days)
    assert e["period"] == {
        "start": shift("2020-01-31", days) + "T10:00:00+01:00",
        "end": shift("2020-02-02", days),
    }
    assert o["effectiveDateTime"] == shift("2020-01-31", days)
    assert o["issued"] == shift("2020-02-01", days) + "T00:00:00Z"
    assert e["subject"] == o["subject"] == {"reference": f"Patient/{p['id']}"}
    assert "valueString" not in o and "note" not in o and "code" not in o
    # another patient, another offset (the key decides; the offsets spread)
    assert len({deid.offset_days(f"p{i}") for i in range(50)}) > 30


def test_partial_dates_and_bad_values() -> None:
    assert shift_date("2020", 100) == "2020"
    assert shift_date("2020-12", 30) == "2021-01"
    assert shift_date("2020-01-01T00:00:00Z", -1) == "2019-12-31T00:00:00Z"
    assert shift_date("not a date", 3) is None
    assert zip3("12345") == "123" and zip3("89012-1234") == "000" and zip3("K1A 0B1") is None
    assert len(RESTRICTED_ZIP3) == 17


def test_ages_over_89_grouped(deid: Deidentifier) -> None:
    old = {**patient(), "birthDate": "1930-06-01"}
    out = deid.deidentify(old)
    assert out is not None
    assert out["birthDate"] == "1936"  # reads 90 on the as-of day 2026-01-01
    assert {"url": AGE_90_EXTENSION, "valueBoolean": True} in out["extension"]
    assert "_birthDate" not in out
    died_young = {**patient(), "birthDate": "1930-06-01", "deceasedDateTime": "1990-01-01"}
    out = deid.deidentify(died_young)
    assert out is not None and len(out["birthDate"]) == 10
    age = {
        "resourceType": "Observation",
        "id": "o",
        "status": "final",
        "code": {"coding": [{"code": "30525-0"}]},
        "valueQuantity": {"value": 97, "unit": "a", "system": "http://unitsofmeasure.org"},
    }
    out = deid.deidentify(age)
    assert out is not None and out["valueQuantity"]["value"] == 90
    assert out["valueQuantity"]["comparator"] == ">="


def test_contained_and_urn_references(deid: Deidentifier) -> None:
    res = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "contained": [{"resourceType": "Medication", "id": "med", "code": {"text": "x"}}],
        "medicationReference": {"reference": "#med"},
        "subject": {"reference": "urn:uuid:8b5e3f4c-0000-4000-8000-000000000001"},
        "requester": {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|123"},
        "dosageInstruction": [{"text": "take with Alonso's dog"}],
    }
    out = deid.deidentify(res)
    assert out is not None
    assert out["contained"][0]["id"] == "med" and out["medicationReference"] == {
        "reference": "#med"
    }
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", out["subject"]["reference"])
    assert "8b5e3f4c" not in out["subject"]["reference"]
    assert out["requester"]["reference"].startswith("Practitioner/")
    assert "123" not in out["requester"]["reference"].split("/")[0]
    assert "dosageInstruction" not in out
    assert deid.deidentify({"resourceType": "Binary", "id": "b", "data": "AA=="}) is None
    bundle = {
        "resourceType": "Bundle",
        "id": "b1",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "http://example.org/fhir/Patient/p1",
                "resource": {**patient(), "id": "p1"},
            }
        ],
    }
    out = deid.deidentify(bundle)
    assert out is not None
    entry = out["entry"][0]
    assert entry["fullUrl"] == f"Patient/{deid.pseudonym('Patient', 'p1')}"
    assert entry["resource"] == deid.deidentify(patient())  # its own pseudonym and offset
    assert b"Quixote" not in orjson.dumps(out) and b"/p1" not in orjson.dumps(out)
    assert deid.deidentify({"resourceType": "NotAType"}) is None


def test_same_key_same_output_other_key_other_pseudonyms(model: Model) -> None:
    a = Deidentifier(KEY, model, DeidPolicy(as_of=date(2026, 1, 1)))
    b = Deidentifier(KEY, model, DeidPolicy(as_of=date(2026, 1, 1)))
    c = Deidentifier(b"another key, 32 bytes long......", model)
    assert a.deidentify(patient()) == b.deidentify(patient())
    assert a.pseudonym("Patient", "p1") != c.pseudonym("Patient", "p1")
    with pytest.raises(ValueError, match="16 bytes"):
        Deidentifier(b"short", model)


def test_key_from_environment_or_private_file(model: Model, tmp_path: Path) -> None:
    with pytest.raises(MissingSecretError, match="CMIO_DEID_KEY"):
        Deidentifier.from_environment(model, environ={})
    key = tmp_path / "deid.key"
    key.write_bytes(KEY + b"\n")
    key.chmod(0o644)
    with pytest.raises(InsecureSecretError, match="chmod 600"):
        Deidentifier.from_environment(model, environ={"CMIO_DEID_KEY_FILE": str(key)})
    key.chmod(0o600)
    d = Deidentifier.from_environment(model, environ={"CMIO_DEID_KEY_FILE": str(key)})
    assert d.pseudonym("Patient", "x") == Deidentifier(KEY, model).pseudonym("Patient", "x")


def test_ndjson_stream_names_bad_line(deid: Deidentifier) -> None:
    lines = [orjson.dumps(patient()), b"", b"[1]"]
    stream = deid.deidentify_ndjson(lines)
    assert orjson.loads(next(stream))["resourceType"] == "Patient"
    with pytest.raises(ValueError, match="line 3"):
        next(stream)


def test_synthea_bulk_ndjson_leaves_no_identifier(deid: Deidentifier) -> None:
    """The Synthea bulk NDJSON (13 patients; up to 400 resources of each type) as a stream."""
    if not BULK.is_dir():
        pytest.fail(f"Synthea test data missing at {BULK}")
    inputs: list[dict[str, Any]] = []
    outputs: list[bytes] = []
    for path in sorted(BULK.glob("*.ndjson")):
        if path.name == "log.ndjson":
            continue
        lines = path.read_bytes().splitlines()[:400]  # every type, bounded (test budget)
        inputs.extend(orjson.loads(line) for line in lines)
        outputs.extend(deid.deidentify_ndjson(lines))
    assert len(outputs) == len(inputs) > 2000
    blob = b"".join(outputs)
    secrets = gather(inputs)
    assert len(secrets.names) > 20 and len(secrets.identifiers) > 100 and secrets.zips
    assert scan(blob, secrets) == []
    control = scan((BULK / "Patient.000.ndjson").read_bytes(), secrets)  # the scan does find
    assert all(any(leak.startswith(kind + " ") for leak in control) for kind in secrets.all())
    by_pseudonym = {orjson.loads(line)["id"]: orjson.loads(line) for line in outputs}
    offsets: dict[str, set[int]] = defaultdict(set)
    checked = 0
    for source in inputs:
        out = by_pseudonym[deid.pseudonym(source["resourceType"], source["id"])]
        owner = deid.patient_of(source)
        days = deid.offset_days(owner if owner else f"{source['resourceType']}/{source['id']}")
        allowed = {shift(d, days) for d in days_of(source)}
        out_days = days_of(out)
        assert set(out_days) <= allowed, (source["resourceType"], set(out_days) - allowed)
        if owner and out_days:
            offsets[owner].add(days)
            checked += len(out_days)
    assert checked > 5000
    assert all(len(v) == 1 for v in offsets.values()) and len(offsets) == 13
    ids = set(by_pseudonym)
    kept = {deid.pseudonym(r["resourceType"], r["id"]) for r in inputs}
    resolved = 0
    for ref_type, ref_id in REF.findall(blob.decode()):
        if ref_type == "Patient":  # every Patient is in the input: each reference resolves
            assert ref_id in ids, f"{ref_type}/{ref_id} does not resolve"
        resolved += ref_id in kept
    assert resolved > 2000
