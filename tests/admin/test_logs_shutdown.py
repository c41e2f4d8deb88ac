"""JSON logs with request ids, and graceful shutdown draining an in-flight write."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn

from cmio.admin.logs import JsonLogging
from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.model import Model, load_model
from cmio.store import open_repository
from cmio.testing.server import ServerThread, free_port


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


def _app(db: Path, model: Model) -> CmioApp:
    settings = Settings(auth=None, validation="off", audit=False)
    return CmioApp(build_env(f"sqlite:///{db}", settings, model))


@pytest.fixture()
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield
    root.handlers[:] = saved
    root.setLevel(level)


def test_json_logs_carry_the_request_id(tmp_path: Path, model: Model, root_logging: None) -> None:
    stream = io.StringIO()
    logs = JsonLogging()
    logs.install("info", stream)
    app = _app(tmp_path / "cmio.db", model)
    with ServerThread(logs.middleware(app)) as server, httpx.Client(timeout=30) as http:
        given = http.get(f"{server.base}/metadata", headers={"x-request-id": "req-42"})
        fresh = http.get(f"{server.base}/Patient")
        logging.getLogger("cmio.test").warning("outside %s", "requests")
    app.close()
    assert given.headers["x-request-id"] == "req-42"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [e for e in lines if e["logger"] == "cmio.access"]
    assert [e["request_id"] for e in access[:2]] == ["req-42", fresh.headers["x-request-id"]]
    assert access[0]["path"] == "/fhir/metadata" and access[0]["status"] == 200
    assert access[1]["level"] == "info" and access[1]["message"] == "GET /fhir/Patient 200"
    outside = next(e for e in lines if e["logger"] == "cmio.test")
    assert outside["request_id"] is None and outside["message"] == "outside requests"
    assert set(outside) >= {"time", "level", "logger", "message", "request_id"}


def test_shutdown_lets_an_in_flight_write_finish(tmp_path: Path, model: Model) -> None:
    db = tmp_path / "cmio.db"
    app = _app(db, model)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="error", lifespan="off",
        timeout_graceful_shutdown=20,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    body = orjson.dumps({"resourceType": "Patient", "id": "inflight", "gender": "other"})
    head = (
        f"PUT /fhir/Patient/inflight HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/fhir+json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + body[:10])  # the request is in flight, its body half sent
        time.sleep(0.3)
        server.should_exit = True  # shutdown starts (what SIGTERM does)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the listener closes: no new requests
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the server kept accepting connections after shutdown began")
        sock.sendall(body[10:])
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 201"), reply[:200]
    thread.join(20)
    assert not thread.is_alive()
    app.close()  # the group-commit writer finishes its batch before the store closes
    repo = open_repository(f"sqlite:///{db}")
    try:
        assert repo.read("Patient", "inflight").version == 1
    finally:
        repo.close()
