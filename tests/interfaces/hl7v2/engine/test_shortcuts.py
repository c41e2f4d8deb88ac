"""Identifier conditionals resolved by a read, unchanged resources not rewritten."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from cmio.api.app import build_env
from cmio.api.env import Env, Settings
from cmio.api.hl7 import RouterClient, RouterSink
from cmio.api.router import FhirRouter
from cmio.interfaces.hl7v2.engine.destinations import (
    SinkItem,
    marker_id,
    marker_resource,
    with_marker,
)
from cmio.interfaces.hl7v2.engine.shortcuts import (
    carries_identifier,
    identifier_condition,
    replace_references,
    same_content,
)
from cmio.interfaces.hl7v2.mapping import MappingOptions, map_message
from cmio.interfaces.hl7v2.mapping.context import identifier_query
from cmio.interfaces.hl7v2.parser import parse
from tests.interfaces.hl7v2.engine.conftest import adt, oru


def test_identifier_conditions_parse_what_the_mapping_writes() -> None:
    for system, value in [("urn:id:HOSP", "MRN1"), ("urn:id:A|B", "x,y$z\\w"), ("", "só")]:
        query = identifier_query(system, value)
        create = {"request": {"method": "POST", "url": "Patient", "ifNoneExist": query}}
        update = {"request": {"method": "PUT", "url": f"Encounter?{query}"}}
        for entry, kind, rtype in ((create, "create", "Patient"), (update, "update", "Encounter")):
            cond = identifier_condition(entry)
            assert cond is not None and (cond.kind, cond.resource_type) == (kind, rtype)
            assert (cond.system, cond.value) == (system, value)
    for request in [
        {"method": "PUT", "url": "Patient/1"},
        {"method": "POST", "url": "Patient"},
        {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=a|b&active=true"},
        {"method": "PUT", "url": "Patient?name=x"},
        {"method": "PUT", "url": "Patient?identifier=a|b", "ifMatch": 'W/"1"'},
    ]:
        assert identifier_condition({"request": request}) is None


def test_content_comparison_and_reference_rewrite() -> None:
    stored = {"resourceType": "Patient", "id": "p1", "active": True,
              "meta": {"versionId": "3", "lastUpdated": "2024-01-01T00:00:00Z"},
              "identifier": [{"system": "s", "value": "v"}]}  # fmt: skip
    new = {"resourceType": "Patient", "active": True, "identifier": [{"system": "s", "value": "v"}]}
    assert same_content(stored, new) and carries_identifier(stored, "s", "v")
    assert not same_content(stored, {**new, "active": False})
    assert not same_content(stored, {**new, "meta": {"tag": [{"code": "x"}]}})
    assert not carries_identifier(stored, "s", "other")
    raw = orjson.dumps({"subject": {"reference": "urn:uuid:1"}, "note": "urn:uuid:1"})
    out = orjson.loads(replace_references(raw, {"urn:uuid:1": "Patient/p1"}))
    assert out == {"subject": {"reference": "Patient/p1"}, "note": "urn:uuid:1"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    path = tmp_path_factory.mktemp("shortcuts") / "store.db"
    env = build_env(f"sqlite:///{path}", Settings(terminology_db=None))
    yield env
    env.repository.close()


def item(raw: bytes) -> SinkItem:
    message = parse(raw)
    mapped = map_message(message, MappingOptions())
    marker = marker_resource(mapped.bundle, marker_id("t", "s", message.control_id),
                             channel="t", sender="s", control_id=message.control_id,
                             recorded="2024-01-01T12:00:00Z")  # fmt: skip
    return SinkItem(with_marker(mapped.bundle, marker))


def search(env: Env, rtype: str, **params: str) -> list[dict[str, Any]]:
    status, body = RouterClient(FhirRouter(env)).request("GET", rtype, list(params.items()), None)
    assert status == 200, body
    return [e["resource"] for e in body.get("entry", [])]


def test_known_identifiers_skip_the_search_and_unchanged_updates(env: Env) -> None:
    sink = RouterSink(FhirRouter(env))
    (first,) = sink.apply([item(oru("S1", "MRN7"))])
    assert first.status == 200 and sink.skipped == 1  # an index probe: none yet, a create
    (second,) = sink.apply([item(oru("S2", "MRN7"))])
    assert second.status == 200 and sink.skipped == 2  # the patient: a read, no search
    (patient,) = search(env, "Patient", identifier="MRN7")
    assert f"Patient/{patient['id']}/_history/1" in second.locations
    observations = search(env, "Observation", subject=f"Patient/{patient['id']}")
    assert len(observations) == 6  # 3 per message, all on the one patient
    # ADT: the first names the patient by a conditional update (changed: written, as a PUT
    # by id), the same message again changes nothing (not written), a new name is written.
    sink.apply([item(adt("A1", "MRN7", family="ROE"))])
    version = env.repository.read("Patient", patient["id"]).version
    assert version == 2
    skipped = sink.skipped
    (same,) = sink.apply([item(adt("A2", "MRN7", family="ROE"))])
    assert same.status == 200 and sink.skipped == skipped + 2  # the patient and the visit
    assert env.repository.read("Patient", patient["id"]).version == version
    sink.apply([item(adt("A3", "MRN7", family="POE"))])
    stored = env.repository.read("Patient", patient["id"])
    assert stored.version == version + 1 and b"POE" in (stored.data or b"")
    # The marker of the skipped update still points at the patient.
    marker = orjson.loads(env.repository.read("Provenance", marker_id("t", "s", "A2")).data or b"")
    assert {"reference": f"Patient/{patient['id']}"} in marker["target"]
    assert len(search(env, "Patient", identifier="MRN7")) == 1


def test_the_index_probe_finds_what_others_stored(env: Env) -> None:
    with env.repository.transaction() as tx:
        tx.create({"resourceType": "Patient", "identifier": [{"system": "urn:id:HOSP",
                   "value": "MRN9"}], "active": True}, id="outside")  # fmt: skip
        tx.create({"resourceType": "Patient", "identifier": [{"value": "NOSYS"}]}, id="nosys")
        assert tx.token_ids("Patient", "identifier", "urn:id:HOSP", "MRN9") == ["outside"]
        assert tx.token_ids("Patient", "identifier", None, "NOSYS") == ["nosys"]
        assert tx.token_ids("Patient", "identifier", "urn:id:OTHER", "MRN9") == []
        assert tx.token_ids("Patient", "identifier", None, "MRN9") == []
    sink = RouterSink(FhirRouter(env))
    (outcome,) = sink.apply([item(oru("P1", "MRN9"))])
    assert outcome.status == 200 and sink.skipped == 1
    assert [p["id"] for p in search(env, "Patient", identifier="urn:id:HOSP|MRN9")] == ["outside"]
    assert len(search(env, "Observation", subject="Patient/outside")) == 3


def test_a_stale_memory_falls_back_to_the_search(env: Env) -> None:
    sink = RouterSink(FhirRouter(env))
    sink.apply([item(oru("T1", "MRN8"))])
    (patient,) = search(env, "Patient", identifier="MRN8")
    with env.repository.transaction() as tx:  # someone deletes the patient outside the engine
        tx.delete("Patient", patient["id"])
    (outcome,) = sink.apply([item(oru("T2", "MRN8"))])
    assert outcome.status == 200
    (again,) = search(env, "Patient", identifier="MRN8")
    assert again["id"] != patient["id"]  # created anew, as the conditional create would
    observations = search(env, "Observation", subject=f"Patient/{again['id']}")
    assert len(observations) == 3


def test_same_store_state_with_and_without_shortcuts(env: Env) -> None:
    states = []
    for prefix, shortcuts in (("X", True), ("Y", False)):  # other patients, same store
        messages = [oru("E1", "M1"), adt("E2", "M1"), adt("E3", "M1"), oru("E4", "M1"),
                    adt("E5", "M2"), oru("E6", "M2"), adt("E7", "M2", family="NEW")]  # fmt: skip
        sink = RouterSink(FhirRouter(env), shortcuts=shortcuts)
        for raw in messages:
            raw = raw.replace(b"|E", f"|{prefix}E".encode()).replace(b"|M", f"|{prefix}M".encode())
            (outcome,) = sink.apply([item(raw)])
            assert outcome.status == 200, outcome.detail
        state = {}
        for mrn in ("M1", "M2"):
            (patient,) = search(env, "Patient", identifier=f"{prefix}{mrn}")
            subject = f"Patient/{patient['id']}"
            state[mrn] = (patient["name"][0]["family"], int(patient["meta"]["versionId"]),
                          len(search(env, "Observation", subject=subject)),
                          len(search(env, "Encounter", subject=subject)))  # fmt: skip
        states.append(state)
    with_shortcuts, without = states
    for mrn, (family, version, observations, encounters) in without.items():
        assert with_shortcuts[mrn][0] == family and with_shortcuts[mrn][2:] == (
            observations, encounters)  # fmt: skip
        assert with_shortcuts[mrn][1] <= version  # fewer versions: no-op updates skipped
    assert with_shortcuts["M1"][1] < without["M1"][1]
