"""The chart's content from a patient's resources, the break-the-glass cookie and the
chart's reads (unit level: no server)."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cmio.security.grant import AccessGrant
from cmio.security.scopes import ScopeSet
from cmio.web.context import Viewer
from cmio.web.pages.chart import ChartPages
from cmio.web.pages.chart_access import COOKIE, GlassAccess
from cmio.web.pages.chart_data import build_chart
from cmio.web.pages.chart_views import sparkline

LOINC = "http://loinc.org"


def _obs(code: str, when: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
        **value,
    }


def _bp(when: str, systolic: float, diastolic: float) -> dict[str, Any]:
    parts = [("8480-6", systolic), ("8462-4", diastolic)]
    return _obs(
        "85354-9",
        when,
        component=[
            {"code": {"coding": [{"system": LOINC, "code": c}]}, "valueQuantity": {"value": v}}
            for c, v in parts
        ],
    )


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"use": "official", "family": "Rivera", "given": ["Ana"]}],
    "gender": "female",
    "birthDate": "1960-05-20",
    "identifier": [
        {"type": {"coding": [{"code": "SS"}]}, "value": "999-00-1111"},
        {"type": {"coding": [{"code": "MR"}]}, "value": "MRN-7"},
    ],
}


def _resources() -> list[dict[str, Any]]:
    note = base64.b64encode(b"Seen for follow-up.\nPlan: recheck A1c.").decode()
    return [
        PATIENT,
        {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"text": "Type 2 diabetes"},
            "onsetDateTime": "2019-01-02",
        },
        {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"code": "resolved"}]},
            "code": {"text": "Bronchitis"},
        },
        {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"code": "recurrence"}]},
            "code": {"text": "Gout"},
        },
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "medicationCodeableConcept": {"text": "metformin"},
        },
        {
            "resourceType": "MedicationRequest",
            "status": "stopped",
            "medicationCodeableConcept": {"text": "glipizide"},
        },
        _obs("4548-4", "2025-06-01", valueQuantity={"value": 8.1, "unit": "%"}),
        _obs("4548-4", "2025-01-01", valueQuantity={"value": 7.2, "unit": "%"}),
        _obs(
            "4548-4",
            "2025-03-01",
            status="entered-in-error",
            valueQuantity={"value": 99, "unit": "%"},
        ),
        _bp("2025-02-01", 150, 95),
        _obs("2345-7", "2025-02-01", valueQuantity={"value": 120, "unit": "mg/dL"}),
        _obs("2345-7", "2025-04-01", valueQuantity={"value": 140, "unit": "mg/dL"}),
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "date": "2025-06-01T10:00:00Z",
            "type": {"text": "Progress note"},
            "author": [{"display": "Dr Lee"}],
            "content": [{"attachment": {"contentType": "text/plain", "data": note}}],
        },
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "date": "2025-05-01T10:00:00Z",
            "type": {"text": "Scan"},
            "content": [{"attachment": {"contentType": "application/pdf", "data": "JVBERg=="}}],
        },
        {
            "resourceType": "Communication",
            "sent": "2025-07-01T08:00:00Z",
            "sender": {"reference": "Patient/p1"},
            "payload": [{"contentString": "Question about my dose."}],
        },
    ]


def test_chart_sections_from_the_resources() -> None:
    chart = build_chart(_resources(), "p1", date(2026, 5, 19))
    head = chart.patient
    assert (head.name, head.sex, head.mrn, head.age) == ("Ana Rivera", "female", "MRN-7", 65)
    assert [p.display for p in chart.problems] == ["Type 2 diabetes", "Gout"]
    assert [m.display for m in chart.medications] == ["metformin"]
    assert chart.a1c is not None
    assert [(p.when, p.value) for p in chart.a1c.points] == [
        ("2025-01-01", 7.2),
        ("2025-06-01", 8.1),
    ]
    assert [(b.systolic, b.diastolic) for b in chart.blood_pressure] == [(150, 95)]
    [glucose] = chart.results
    assert glucose.values == [120, 140] and glucose.latest.text == "140 mg/dL"
    texts = {n.title: n for n in chart.notes}
    assert texts["Progress note"].text == "Seen for follow-up.\nPlan: recheck A1c."
    assert "application/pdf" in texts["Scan"].text
    assert texts["Message"].author == "Ana Rivera"  # the patient's own message
    assert [n.when[:10] for n in chart.notes] == ["2025-07-01", "2025-06-01", "2025-05-01"]
    assert "from 120 to 140" in sparkline(glucose)


def _request(cookies: dict[str, str] | None = None) -> Request:
    header = "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/patients/p1",
        "headers": [(b"cookie", header.encode())] if header else [],
        "query_string": b"",
        "scheme": "http",
        "server": ("testserver", 80),
    }
    return Request(scope)


def _viewer(name: str) -> Viewer:
    grant = AccessGrant(name, "user", frozenset({"user/*.cruds"}), frozenset({"clinician"}))
    return Viewer(grant, ScopeSet.parse(grant.scopes))


def test_break_the_glass_cookie_is_bound_to_user_patient_and_time() -> None:
    glass = GlassAccess(seconds=60)
    response = Response()
    glass.grant(response, _request(), _viewer("doc"), "p1", "ED visit")
    cookie = response.headers["set-cookie"]
    assert "Path=/patients/p1" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    request = _request({COOKIE: value})
    assert glass.reason(request, _viewer("doc"), "p1") == "ED visit"
    assert glass.reason(request, _viewer("someone-else"), "p1") is None
    assert glass.reason(request, _viewer("doc"), "p2") is None
    expired = Response()
    GlassAccess(seconds=-1).grant(expired, _request(), _viewer("doc"), "p1", "late")
    stale = expired.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert glass.reason(_request({COOKIE: stale}), _viewer("doc"), "p1") is None
    assert glass.reason(_request({COOKIE: "not-base64!"}), _viewer("doc"), "p1") is None


class _Recorder:
    """Stands for the web context: records the chart's FHIR reads, answers two pages."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, str]], dict[str, str]]] = []

    def fhir(
        self,
        request: Request,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        self.calls.append((path, list(query or []), dict(headers or {})))
        if len(self.calls) == 1:
            nxt = "http://x/fhir/Patient/p1/$everything?_count=1000&_offset=1000"
            return {"entry": [{"resource": PATIENT}], "link": [{"relation": "next", "url": nxt}]}
        return {"entry": [{"resource": {"resourceType": "Condition"}}], "link": []}


def test_the_chart_reads_every_page_with_the_break_the_glass_reason() -> None:
    recorder = _Recorder()
    pages = ChartPages(recorder)  # type: ignore[arg-type]
    found = pages.everything(_request(), "p1", "ED visit")
    assert [r["resourceType"] for r in found] == ["Patient", "Condition"]
    assert [c[0] for c in recorder.calls] == ["Patient/p1/$everything"] * 2
    assert all(c[2] == {"x-break-glass": "ED visit"} for c in recorder.calls)
    assert ("_offset", "1000") in recorder.calls[1][1]
    pages.everything(_request(), "p1", None)
    assert recorder.calls[-1][2] == {}
