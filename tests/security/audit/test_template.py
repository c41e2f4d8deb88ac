"""Records rendered from pre-serialized parts are byte for byte the canonical AuditEvent."""

from __future__ import annotations

import itertools
from dataclasses import replace

from cmio.security.audit import AuditFacts, build_event, canonical
from cmio.security.audit.events import INTERACTION_ACTIONS, AuditSource
from cmio.security.audit.template import Canonical, EventTemplates
from cmio.security.grant import AccessGrant

USER = AccessGrant(
    "alice",
    "user",
    frozenset({"user/*.rs"}),
    client_id="app",
    fhir_user="Practitioner/p1",
    token_id="jti-1",
    roles=frozenset({"clinician", "analyst"}),
)
BTG = replace(USER, break_glass='emergency "bed 4" — ünïcode')
BACKEND = AccessGrant("svc", "client", frozenset({"system/*.rs"}), client_id="svc")
SOURCE = AuditSource.hl7v2("adt", "REG|HOSP", "MSG-1")


def variants() -> list[AuditFacts]:
    out: list[AuditFacts] = []
    grants = [None, USER, BTG, BACKEND]
    for interaction, grant in itertools.product(INTERACTION_ACTIONS, grants):
        base = AuditFacts(interaction, grant=grant, id=f"id-{len(out)}", server="http://x/fhir")
        out += [
            base,
            replace(base, resource_type="Observation", resource_id="o1", version=3, patient="p1"),
            replace(base, resource_type="Patient", query="name=Zoë&_count=10", remote_addr="::1"),
            replace(base, outcome="8", outcome_desc='bad "thing"\n' * 200, status=500),
            replace(base, outcome="4", correlation_id="req-1", operation="everything"),
            replace(base, source=SOURCE, resources=("Patient/a/_history/1",), patients=("a",)),
            replace(base, outcome="12", recorded="2026-01-02T03:04:05.678Z", id=""),
            replace(
                base,
                resource_type="Patient",
                resource_id='a"ü',
                patient='a"ü',
                correlation_id="c\x01",
            ),
        ]
    return out


def test_rendered_bytes_equal_the_canonical_event() -> None:
    templates = EventTemplates()
    for facts in variants():
        for _ in range(2):  # the second time from the cache
            rendered = templates.render(facts)
            assert isinstance(rendered, Canonical) and rendered.recorded == facts.recorded
            if facts.id:
                assert rendered.data == canonical(build_event(facts))
            else:  # a fresh random id each time: equal once that id is set
                event = build_event(replace(facts, id="x"))
                generated = rendered.data.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
                assert rendered.data == canonical({**event, "id": generated})


def test_callers_never_share_a_cached_part() -> None:
    templates = EventTemplates(limit=3)
    facts = [
        AuditFacts("read", grant=g, remote_addr=a, id="i", recorded="r")
        for g in (USER, BACKEND, None, replace(USER, token_id="jti-2"))
        for a in ("10.0.0.1", "10.0.0.2")
    ]
    for _ in range(3):
        for f in facts:
            assert templates.render(f).data == canonical(build_event(f))


def test_evolve_is_dataclasses_replace() -> None:
    facts = AuditFacts("read", grant=USER, patient="p1", id="a")
    assert facts.evolve(outcome="4", id="b") == replace(facts, outcome="4", id="b")
    assert facts.evolve() == facts and facts.evolve() is not facts
    try:
        facts.evolve(nope=1)
    except TypeError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("an unknown field was accepted")


def test_an_import_batch_record_equals_the_canonical_event() -> None:
    from cmio.security.audit.jobs import JobAudit, _batch_record

    source = JobAudit.for_command("import").source
    facts = AuditFacts("create", operation="import", source=source, id="x", recorded="r")
    refs = (*(f"Observation/o{n}/_history/1" for n in range(50)), 'Odd/"q\\u/_history/2')
    patients = ("p1", 'ü"x')
    for p, r in [(patients, refs), ((), refs), (patients, ()), ((), ())]:
        record = _batch_record(facts, p, r)
        assert isinstance(record, Canonical)
        assert record.data == canonical(build_event(replace(facts, patients=p, resources=r)))
