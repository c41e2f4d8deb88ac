"""Plain reads answered in one ASGI call (``FhirAsgiApp.read``) equal the general path's
answers byte for byte: status, headers (security headers included), body, metrics and
audit record."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.api.http import FhirRequest
from cmio.model import Model, load_model

Sent = tuple[int, list[tuple[bytes, bytes]], bytes]


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[CmioApp]:
    tmp = tmp_path_factory.mktemp("fastread")
    settings = Settings(
        terminology_db=None, export_dir=str(tmp / "exports"), validation="off", audit=True
    )
    application = CmioApp(build_env(f"sqlite:///{tmp / 'f.db'}", settings, model=model))
    try:
        yield application
    finally:
        application.close()


def scope(path: str, headers: list[tuple[bytes, bytes]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8080"), *headers],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8080),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
        **extra,
    }


def call(application: Any, sc: dict[str, Any], *args: Any) -> tuple[Sent, Any]:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    async def go() -> Any:
        return await (application(sc, send, *args) if args else application(sc, receive, send))

    result = asyncio.run(go())
    if not messages:
        return (0, [], b""), result
    start, body = messages
    return (start["status"], list(start["headers"]), body.get("body", b"")), result


def create(app: CmioApp, body: dict[str, Any]) -> str:
    request = FhirRequest("POST", body["resourceType"], body=orjson.dumps(body))
    request.headers["content-type"] = "application/fhir+json"
    response = app.fhir.router.handle(request)
    assert response.status == 201, response.body
    return str(orjson.loads(response.body)["id"])


def test_plain_reads_answer_exactly_as_the_general_path(app: CmioApp) -> None:
    pid = create(app, {"resourceType": "Patient", "name": [{"family": "Fast"}]})
    gone = create(app, {"resourceType": "Patient", "name": [{"family": "Gone"}]})
    assert app.fhir.router.handle(FhirRequest("DELETE", f"Patient/{gone}")).status in (200, 204)
    etag = b'W/"1"'
    cases = [
        (f"/fhir/Patient/{pid}", [], {}, 200),
        (f"/fhir/Patient/{pid}", [(b"if-none-match", etag)], {}, 304),
        (f"/fhir/Patient/{pid}", [(b"accept", b"application/xml")], {}, 406),
        (f"/fhir/Patient/{pid}", [(b"accept", b"application/fhir+json")], {"scheme": "https"}, 200),
        ("/fhir/Patient/nope", [], {}, 404),
        (f"/fhir/Patient/{gone}", [], {}, 410),
        ("/fhir/Patient/" + "x" * 70, [], {}, 400),
        ("/fhir/NoSuchType/1", [], {}, 404),
        (f"/fhir/metadata/{pid}", [], {}, 404),
    ]
    metrics = app.metrics.requests
    for n, (path, headers, extra, status) in enumerate(cases):
        rid = [(b"x-request-id", f"case-{n}".encode())]
        sc = scope(path, headers + rid, **extra)
        before = metrics.totals()
        general, _ = call(app.hardened, dict(sc))
        between = metrics.totals()
        fast, served = call(app.fhir.read, dict(sc), app.hardened.plain_headers(sc))
        after = metrics.totals()
        assert served is True, path
        assert general[0] == status, (path, general)
        assert fast == general, path
        counted = {k: v[0] - before.get(k, [0.0])[0] for k, v in between.items()}
        counted_fast = {k: v[0] - between.get(k, [0.0])[0] for k, v in after.items()}
        assert {k: v for k, v in counted.items() if v} == {
            k: v for k, v in counted_fast.items() if v
        }


def test_each_read_is_audited_alike(app: CmioApp) -> None:
    pid = create(app, {"resourceType": "Patient", "name": [{"family": "Audited"}]})
    sc = scope(f"/fhir/Patient/{pid}", [(b"x-request-id", b"general-1")])
    call(app.hardened, sc)
    sc = scope(f"/fhir/Patient/{pid}", [(b"x-request-id", b"fast-1")])
    call(app.fhir.read, sc, app.hardened.plain_headers(sc))
    auditor = app.env.auditor
    assert auditor is not None
    records: dict[str, dict[str, Any]] = {}
    for row in auditor.log.rows():
        event = orjson.loads(row.data)
        text = row.data.decode()
        for key in ("general-1", "fast-1"):
            if key in text:
                records[key] = event
    assert set(records) == {"general-1", "fast-1"}

    def scrub(event: dict[str, Any]) -> bytes:
        text = orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()
        for volatile in (event["id"], event["recorded"]):
            text = text.replace(volatile, "")
        return text.replace("general-1", "R").replace("fast-1", "R").encode()

    assert scrub(records["general-1"]) == scrub(records["fast-1"])


def test_only_plain_reads_take_the_short_way(app: CmioApp) -> None:
    pid = create(app, {"resourceType": "Patient", "name": [{"family": "Way"}]})
    taken: list[str] = []
    read = app.fhir.read

    async def spy(sc: dict[str, Any], send: Any, extra: Any) -> bool:
        served = await read(sc, send, extra)
        taken.append(f"{sc['path']}?{sc['query_string'].decode()}" if served else "-")
        return served

    app.fhir.read = spy  # type: ignore[method-assign]
    try:
        plain = f"/fhir/Patient/{pid}"
        variants = [
            scope(plain, []),
            scope(plain, [(b"origin", b"https://elsewhere.example")]),
            scope(plain, [], query_string=b"_pretty=true"),
            scope(plain, [], method="DELETE"),
            scope(f"{plain}/_history", []),
            scope("/fhir/Patient/$meta", []),
            scope(plain, [(b"content-length", b"5")]),
        ]
        for sc in variants:
            (status, _, _), _ = call(app, sc)
            assert status != 500
    finally:
        del app.fhir.read
    assert taken[0] == f"{plain}?"
    assert all(t == "-" for t in taken[1:]), taken


def test_https_reads_carry_hsts(app: CmioApp) -> None:
    pid = create(app, {"resourceType": "Patient", "name": [{"family": "Tls"}]})
    (status, headers, _), _ = call(app, scope(f"/fhir/Patient/{pid}", [], scheme="https"))
    names = dict(headers)
    assert status == 200
    assert names[b"strict-transport-security"].startswith(b"max-age=")
    assert names[b"cache-control"] == b"no-store"
    assert names[b"x-frame-options"] == b"DENY"
