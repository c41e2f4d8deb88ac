"""EHR-use measures (Sinsky et al., JAMIA 2020) on a hand-written clinic, on DuckDB and
PostgreSQL: session rules (gaps just under, at and over the 5-minute timeout, work
crossing the end of scheduled time, after-hours work, point events), attribution,
scheduled time from Slots and Appointments, teamwork from Provenance, peers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from cmio.measures.ehr_use import (
    CsvMapping,
    Period,
    SessionRules,
    SqlEngine,
    compute_ehr_use,
    read_audit_csv,
    read_views,
)
from cmio.measures.ehr_use.inputs import ACTIVITY_SYSTEM
from cmio.measures.ehr_use.metrics import ehr_use

PERIOD = Period.parse("2026-03/2026-04")
DAY = "2026-03-02"


def _ts(day: str, clock: str) -> str:
    return f"{day}T{clock}-05:00"


def _event(
    eid: str,
    user: str,
    start: str,
    end: str | None,
    activity: str | None,
    obj: str | None = None,
    *,
    action: str = "R",
    outcome: str = "0",
    day: str = DAY,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": eid,
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
        "action": action,
        "recorded": _ts(day, end or start),
        "outcome": outcome,
        "agent": [
            {"who": {"reference": "Device/ehr"}, "requestor": False},
            {"who": {"reference": f"Practitioner/{user}"}, "requestor": True},
        ],
        "source": {"observer": {"reference": "Device/ehr"}},
        "entity": [{"what": {"reference": "Patient/p1"}, "role": {"code": "1"}}],
    }
    if end is not None:
        event["period"] = {"start": _ts(day, start), "end": _ts(day, end)}
    if activity is not None:
        event["subtype"] = [{"system": ACTIVITY_SYSTEM, "code": activity}]
    if obj is not None:
        event["entity"].append({"what": {"reference": obj}, "role": {"code": "4"}})
    return event


def _slot(sid: str, schedule: str, day: str, start: str, end: str, status: str = "busy") -> Any:
    return {"resourceType": "Slot", "id": sid, "schedule": {"reference": f"Schedule/{schedule}"},
            "status": status, "start": _ts(day, start), "end": _ts(day, end)}  # fmt: skip


def _appt(aid: str, user: str, day: str, start: str, end: str, status: str) -> Any:
    return {"resourceType": "Appointment", "id": aid, "status": status,
            "start": _ts(day, start), "end": _ts(day, end),
            "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                            {"actor": {"reference": f"Practitioner/{user}"},
                             "status": "accepted"}]}  # fmt: skip


def _role(rid: str, user: str, dept: str, specialty: str) -> Any:
    return {"resourceType": "PractitionerRole", "id": rid,
            "practitioner": {"reference": f"Practitioner/{user}"},
            "organization": {"reference": f"Organization/{dept}"},
            "specialty": [{"coding": [{"system": "http://snomed.info/sct", "code": "x",
                                       "display": specialty}]}]}  # fmt: skip


def _order(kind: str, oid: str, user: str, at: str, intent: str = "order") -> Any:
    return {
        "resourceType": kind,
        "id": oid,
        "status": "active",
        "intent": intent,
        "requester": {"reference": f"Practitioner/{user}"},
        "authoredOn": _ts(DAY, at),
    }


def _provenance(pid: str, target: str, author: str, enterer: str) -> Any:
    code = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
    return {"resourceType": "Provenance", "id": pid, "target": [{"reference": target}],
            "recorded": _ts(DAY, "09:05:00"),
            "agent": [
                {"type": {"coding": [{"system": code, "code": "author"}]},
                 "who": {"reference": f"Practitioner/{author}"}},
                {"type": {"coding": [{"system": code, "code": "enterer"}]},
                 "who": {"reference": f"Practitioner/{enterer}"}},
            ]}  # fmt: skip


def clinic() -> list[dict[str, Any]]:
    """Clinicians a and b (family practice, Clinic One), c (cardiology), nurse n.

    Clinician a on 2026-03-02, scheduled 09:00-09:40 (two touching slots, one also an
    Appointment), 10:00-10:40 and 13:00-13:20 (an Appointment without Slot); a free
    slot and a cancelled appointment do not count: 6000 s. Events (timeout 300 s):
    session 1: 08:50:00-08:52:00 chart, 08:56:59-08:58:00 note (gap 299 s),
    09:03:00-09:05:00 prescription (gap exactly 300 s): 900 s, slices 419 chart,
    361 note, 120 Rx, of which 180 + 120 in hours. Session 2 (gap 301 s): inbox
    09:10:01-09:11:00, 59 s in hours. Session 3: note 09:38:00-09:44:00 crossing the
    end of scheduled time (120 in, 240 out). Session 4 after hours: inbox
    21:00:00-21:10:00 and a point read at 21:12:00 (gap 120 s): 720 s inbox.
    A failed event and events outside the period are ignored. April: 1200 s
    scheduled, a 300 s note inside it.
    """
    a, b = "a", "b"
    return [
        {"resourceType": "Organization", "id": "d1", "name": "Clinic One"},
        {"resourceType": "Organization", "id": "d2", "name": "Heart Center"},
        _role("ra", a, "d1", "Family practice"),
        _role("rb", b, "d1", "Family practice"),
        _role("rc", "c", "d2", "Cardiology"),
        _role("rn", "n", "d1", "Nursing"),
        {"resourceType": "Schedule", "id": "sa", "active": True,
         "actor": [{"reference": f"Practitioner/{a}"}, {"reference": "Location/l1"}]},
        {"resourceType": "Schedule", "id": "sb", "active": True,
         "actor": [{"reference": f"Practitioner/{b}"}]},
        {"resourceType": "Schedule", "id": "sc", "active": True,
         "actor": [{"reference": "Practitioner/c"}]},
        _slot("s1", "sa", DAY, "09:00:00", "09:20:00"),
        _slot("s2", "sa", DAY, "09:20:00", "09:40:00"),
        _slot("s3", "sa", DAY, "10:00:00", "10:40:00"),
        _slot("s4", "sa", DAY, "11:00:00", "11:20:00", "free"),
        _slot("s5", "sa", "2026-04-01", "08:00:00", "08:20:00"),
        _slot("s6", "sa", "2026-02-27", "08:00:00", "08:20:00"),
        _appt("p1", a, DAY, "09:00:00", "09:20:00", "fulfilled"),
        _appt("p2", a, DAY, "13:00:00", "13:20:00", "fulfilled"),
        _appt("p3", a, DAY, "14:00:00", "14:20:00", "cancelled"),
        _slot("s7", "sb", "2026-03-03", "13:00:00", "13:40:00"),
        _slot("s8", "sc", "2026-03-03", "08:00:00", "08:20:00"),
        _event("e1", a, "08:50:00", "08:52:00", "chart-review"),
        _event("e2", a, "08:56:59", "08:58:00", "notes", "DocumentReference/n1", action="C"),
        _event("e3", a, "09:03:00", "09:05:00", "orders", "MedicationRequest/m1", action="C"),
        _event("e4", a, "09:10:01", "09:11:00", "inbox", "Communication/c1"),
        _event("e5", a, "09:38:00", "09:44:00", "notes", "DocumentReference/n2", action="C"),
        _event("e6", a, "21:00:00", "21:10:00", "inbox", "Communication/c2"),
        _event("e7", a, "21:12:00", None, "chart-review"),
        _event("e8", a, "10:10:00", "10:20:00", "notes", outcome="4"),
        _event("e9", a, "08:05:00", "08:10:00", "notes", "DocumentReference/n3",
               action="C", day="2026-04-01"),
        _event("e10", a, "12:00:00", "12:30:00", "notes", day="2026-02-28"),
        _event("e11", b, "13:05:00", "13:15:00", "notes", day="2026-03-03"),
        _event("e12", b, "18:00:00", "18:05:00", "chart-review", day="2026-03-03"),
        _event("e13", "n", "09:03:00", "09:04:00", "orders", "MedicationRequest/m1"),
        _order("MedicationRequest", "m1", a, "09:03:00"),
        _order("ServiceRequest", "r1", a, "09:04:00"),
        _order("ServiceRequest", "r2", a, "09:06:00"),
        _order("MedicationRequest", "m2", a, "09:07:00", intent="proposal"),
        _provenance("v1", "MedicationRequest/m1", a, "n"),
        _provenance("v2", "ServiceRequest/r2", a, a),
    ]  # fmt: skip


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request: pytest.FixtureRequest) -> Iterator[SqlEngine]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        with SqlEngine("postgres", database=url) as eng:
            yield eng
    else:
        with SqlEngine("duckdb", threads=1) as eng:
            yield eng


@pytest.fixture(scope="module")
def clinic_inputs() -> dict[str, pa.Table]:
    """The clinic's input tables, read once."""
    return read_views(clinic())


def _run(
    inputs: dict[str, pa.Table], audit: pa.Table | None = None, rules: SessionRules | None = None
) -> dict[str, pa.Table]:
    tables = dict(inputs) if audit is None else {**inputs, "audit_events": audit}
    with SqlEngine(threads=1) as engine:
        return ehr_use(tables, PERIOD, engine, rules)


def _rows(table: pa.Table, *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r[k] for k in keys): r for r in table.to_pylist()}


def test_sessions_attribution_and_metrics(engine: SqlEngine) -> None:
    out = compute_ehr_use(clinic(), PERIOD, engine=engine)
    months = _rows(out["clinician_month"], "user_id", "month")
    a_march = months[("a", "2026-03")]
    ehr, inside = 900 + 59 + 360 + 720, 300 + 59 + 120
    expected = {"sched_s": 6000, "ehr_s": ehr, "in_s": inside, "out_s": ehr - inside,
                "note_s": 361 + 360, "rx_s": 120, "inbox_s": 59 + 720,
                "orders": 3, "team_orders": 1}  # fmt: skip
    assert {k: a_march[k] for k in expected} == expected
    assert a_march["ehr_time8"] == pytest.approx(8 * ehr / 6000, rel=1e-12)
    assert a_march["wow8"] == pytest.approx(8 * (ehr - inside) / 6000, rel=1e-12)
    assert a_march["note_time8"] == pytest.approx(8 * 721 / 6000, rel=1e-12)
    assert a_march["prescription_time8"] == pytest.approx(8 * 120 / 6000, rel=1e-12)
    assert a_march["inbox_time8"] == pytest.approx(8 * 779 / 6000, rel=1e-12)
    assert a_march["teamwork_orders"] == pytest.approx(1 / 3, rel=1e-12)
    assert a_march["undivided_attention"] == pytest.approx((6000 - inside) / 6000, rel=1e-12)
    assert a_march["department"] == "Clinic One"
    assert a_march["specialty"] == "Family practice"
    a_april = months[("a", "2026-04")]
    assert (a_april["sched_s"], a_april["ehr_s"], a_april["in_s"]) == (1200, 300, 300)
    b = months[("b", "2026-03")]
    assert (b["sched_s"], b["ehr_s"], b["in_s"], b["note_s"]) == (2400, 900, 600, 600)
    assert b["undivided_attention"] == pytest.approx(0.75, rel=1e-12)
    nurse = months[("n", "2026-03")]
    assert (nurse["sched_s"], nurse["ehr_s"], nurse["ehr_time8"]) == (0, 60, None)
    assert ("a", "2026-02") not in months

    clinicians = _rows(out["clinicians"], "user_id")
    assert clinicians[("a",)]["ehr_s"] == ehr + 300
    assert clinicians[("a",)]["ehr_time8"] == pytest.approx(8 * (ehr + 300) / 7200, rel=1e-12)
    # Pooled levels leave out the time of clinicians without scheduled patient time.
    dept = _rows(out["departments"], "department_id")[("d1",)]
    assert (dept["sched_s"], dept["ehr_s"]) == (7200 + 2400, ehr + 300 + 900)
    trend = _rows(out["months"], "month")
    assert trend[("2026-03",)]["ehr_s"] == ehr + 900
    assert trend[("2026-04",)]["ehr_time8_change"] == pytest.approx(
        8 * 300 / 1200 - 8 * (ehr + 900) / 9600, rel=1e-12
    )

    peers = _rows(out["peers"], "user_id", "metric")
    va, vb = 8 * (ehr + 300) / 7200, 8 * 900 / 2400
    low, high = min(va, vb), max(va, vb)
    mine = peers[("a", "ehr_time8")]
    assert mine["peers"] == 2
    assert mine["percentile_rank"] == (1.0 if va > vb else 0.0)
    assert mine["p50"] == pytest.approx((low + high) / 2, rel=1e-12)
    assert mine["p90"] == pytest.approx(low + 0.9 * (high - low), rel=1e-12)
    assert peers[("c", "ehr_time8")]["peers"] == 1


def test_timeout_is_a_parameter(clinic_inputs: dict[str, pa.Table]) -> None:
    out = _run(clinic_inputs, rules=SessionRules(timeout_s=60))
    a = _rows(out["clinician_month"], "user_id", "month")[("a", "2026-03")]
    # Every gap above is longer than a minute: each event is its own session, except
    # that the 21:12 point read still starts a (zero-length) session.
    assert a["ehr_s"] == 120 + 61 + 120 + 59 + 360 + 600


def _csv_rows(events: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    classes = {"notes": "Notes", "orders": "Orders", "inbox": "In Basket",
               "chart-review": "Chart Review"}  # fmt: skip
    rows: list[tuple[str, ...]] = []
    for e in events:
        period = e.get("period", {})
        start = period.get("start", e["recorded"])
        obj = next((x["what"]["reference"] for x in e["entity"] if x["role"]["code"] == "4"), "")
        if period:
            from datetime import datetime

            seconds = datetime.fromisoformat(period["end"]) - datetime.fromisoformat(start)
            duration = str(int(seconds.total_seconds()))
        else:
            duration = ""
        user = e["agent"][1]["who"]["reference"].split("/")[1]
        activity = classes[e["subtype"][0]["code"]]
        rows.append((user, "Dr X", start, "READ", "MRN1", activity, "S1", "WS1", duration, obj))
    return rows


def _write_csv(path: Path, rows: Sequence[tuple[str, ...]]) -> None:
    header = ("user_id,user_name,timestamp,action,patient_mrn,activity_class,session_id,"
              "device,duration_seconds,object")  # fmt: skip
    path.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")


def test_vendor_csv_gives_the_same_metrics(
    tmp_path: Path, clinic_inputs: dict[str, pa.Table]
) -> None:
    events = [r for r in clinic() if r["resourceType"] == "AuditEvent" and r["outcome"] == "0"]
    log = tmp_path / "log.csv"
    _write_csv(log, _csv_rows(events))
    balp = _run(clinic_inputs)
    mapped = _run(clinic_inputs, read_audit_csv([log], CsvMapping(object="object")))
    plain = _run(clinic_inputs, read_audit_csv([log]))
    for name in ("clinician_month", "clinicians", "departments", "peers"):
        assert mapped[name].to_pylist() == balp[name].to_pylist(), name
    # Without an object column prescriptions are unknown; everything else agrees.
    for got, want in zip(
        plain["clinician_month"].to_pylist(), balp["clinician_month"].to_pylist(), strict=True
    ):
        if got["ehr_s"]:
            assert got["prescription_time8"] is None and got["rx_s"] is None
        assert {k: v for k, v in got.items() if "rx" not in k and "prescription" not in k} == {
            k: v for k, v in want.items() if "rx" not in k and "prescription" not in k
        }


def test_cmio_audit_events_and_csv_agree(
    tmp_path: Path, clinic_inputs: dict[str, pa.Table]
) -> None:
    """cmio's own BALP AuditEvents (points at ``recorded``) and a vendor CSV with the same
    actions give identical metrics; the activity class follows the object."""
    from cmio.security.audit.events import AuditFacts, build_event
    from cmio.security.grant import AccessGrant

    grant = AccessGrant(subject="drx", kind="user", scopes=frozenset(), fhir_user="Practitioner/a")
    actions = [  # (clock, interaction, object type, object id, csv class)
        ("09:01:00", "read", "Patient", "p1", "Chart Review"),
        ("09:03:30", "create", "DocumentReference", "n1", "Notes"),
        ("09:07:00", "create", "MedicationRequest", "m1", "Orders"),
        ("09:12:30", "read", "Communication", "c1", "In Basket"),
        ("20:00:00", "update", "DocumentReference", "n1", "Notes"),
        ("20:04:59", "read", "Observation", "o1", "Results Review"),
    ]
    events = [
        build_event(AuditFacts(interaction=i, grant=grant, resource_type=t, resource_id=r,
                               version=1, patient="p1", recorded=_ts(DAY, clock)))
        for clock, i, t, r, _ in actions
    ]  # fmt: skip
    rows = [("a", "Dr A", _ts(DAY, clock), i.upper(), "MRN1", cls, "S", "W", "", f"{t}/{r}")
            for clock, i, t, r, cls in actions]  # fmt: skip
    _write_csv(tmp_path / "log.csv", rows)
    own = _run(clinic_inputs, read_views(events)["audit_events"])
    vendor = _run(
        clinic_inputs, read_audit_csv([tmp_path / "log.csv"], CsvMapping(object="object"))
    )
    a = _rows(own["clinician_month"], "user_id", "month")[("a", "2026-03")]
    # 09:01:00-09:07:00 (gaps 150 s, 210 s) then 330 s to 09:12:30: new session.
    assert (a["ehr_s"], a["note_s"], a["rx_s"], a["in_s"]) == (360 + 299, 210 + 299, 0, 360)
    assert own["clinician_month"].to_pylist() == vendor["clinician_month"].to_pylist()


def test_csv_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,timestamp,action\na,2026-03-02T09:00:00-05:00,READ\n")
    with pytest.raises(ValueError, match="lacks column"):
        read_audit_csv([bad])
    _write_csv(tmp_path / "dur.csv", [("a", "A", _ts(DAY, "09:00:00"), "READ", "M", "Notes",
                                       "S", "W", "ten", "")])  # fmt: skip
    with pytest.raises(ValueError, match=r"row 2, column duration_seconds"):
        read_audit_csv([tmp_path / "dur.csv"])


def test_period_parse() -> None:
    assert Period.parse("2026-01/2026-12") == Period.parse("2026-01-01/2026-12-31")
    assert Period.parse("2024-02/2024-02").last == "2024-02-29"
    for bad in ("2026-01", "2026-13/2026-12", "2026-02/2026-01", "x/y"):
        with pytest.raises(ValueError):
            Period.parse(bad)


def _keyed(table: pa.Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in table.to_pylist():
        key = "|".join(str(v) for k, v in row.items() if isinstance(v, str) or k == "metric")
        out[key] = {k: v for k, v in row.items() if not isinstance(v, str)}
    return out


def test_duckdb_and_postgres_agree_on_synthetic_system(tmp_path: Path, postgres_url: str) -> None:
    from cmio.synth.generate import SynthConfig, generate

    generate(SynthConfig(patients=40, out=tmp_path / "synth", seed=7))
    inputs = read_views(tmp_path / "synth")
    assert inputs["audit_events"].num_rows > 100
    period = Period.parse("2025-01/2026-12")
    with SqlEngine(threads=1) as duck, SqlEngine("postgres", database=postgres_url) as pg:
        a, b = ehr_use(inputs, period, duck), ehr_use(inputs, period, pg)
    for name in a:
        assert a[name].num_rows == b[name].num_rows > 0, name
        left, right = _keyed(a[name]), _keyed(b[name])
        assert left.keys() == right.keys(), name
        for key, row in left.items():
            assert row == pytest.approx(right[key], rel=1e-9, nan_ok=True), (name, key)


def test_store_source_gives_the_same_metrics(
    tmp_path: Path, clinic_inputs: dict[str, pa.Table]
) -> None:
    import copy

    from cmio.store import open_repository

    repository = open_repository(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with repository.transaction() as tx:
            for resource in copy.deepcopy(clinic()):
                tx.create(resource, id=resource["id"])
        with SqlEngine(threads=1) as engine:
            stored = compute_ehr_use(repository, PERIOD, engine=engine)
    finally:
        repository.close()
    assert stored["clinicians"].to_pylist() == _run(clinic_inputs)["clinicians"].to_pylist()
