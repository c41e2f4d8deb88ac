"""Transport hardening (cmio.api.hardening): headers, CORS, limits, rate limits, no stack traces."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.api.hardening import (
    DATA_CSP,
    HTML_CSP,
    HardeningMiddleware,
    HardeningPolicy,
    RateLimiter,
)
from cmio.cli.main import app as cli
from cmio.model import Model, load_model

ORIGIN = "https://app.example.org"


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


def make_app(tmp: Path, model: Model, policy: HardeningPolicy | None) -> CmioApp:
    settings = Settings(
        terminology_db=None,
        export_dir=str(tmp / "exports"),
        hardening=policy,
        max_body_bytes=4096,
        validation="off",
    )
    return CmioApp(build_env(f"sqlite:///{tmp / 'h.db'}", settings, model=model))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[CmioApp]:
    policy = HardeningPolicy(cors_origins=frozenset({ORIGIN}), rate_per_second=0.5, burst=200)
    application = make_app(tmp_path_factory.mktemp("hardening"), model, policy)
    try:
        yield application
    finally:
        application.close()


class Client:
    """A synchronous client calling the ASGI app in-process (one event loop per request)."""

    def __init__(self, application: Any, base: str) -> None:
        self.transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        self.base = base

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url=self.base) as http:
                return await http.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("OPTIONS", url, **kwargs)


def client(application: Any, base: str = "http://testserver") -> Client:
    return Client(application, base)


def outcome(body: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(body)
    assert parsed["resourceType"] == "OperationOutcome"
    return parsed


def test_security_headers_on_api_and_pages(server: CmioApp) -> None:
    with client(server) as http:
        api = http.get("/fhir/Patient", headers={"authorization": "Bearer a"})
        page = http.get("/", headers={"authorization": "Bearer b"})
    for response in (api, page):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in response.headers  # plain HTTP
    assert api.status_code == 200
    assert api.headers["content-security-policy"] == DATA_CSP
    assert api.headers["cache-control"] == "no-store"
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == HTML_CSP
    with client(server, "https://testserver") as http:
        secure = http.get("/fhir/metadata", headers={"authorization": "Bearer c"})
    assert secure.headers["strict-transport-security"].startswith("max-age=31536000")


def test_cors_allow_list_and_preflight(server: CmioApp) -> None:
    with client(server) as http:
        ok = http.get("/fhir/metadata", headers={"origin": ORIGIN, "authorization": "Bearer d"})
        other = http.get(
            "/fhir/metadata",
            headers={"origin": "https://evil.example", "authorization": "Bearer d"},
        )
        pre = http.options(
            "/fhir/Patient",
            headers={
                "origin": ORIGIN,
                "access-control-request-method": "POST",
                "authorization": "Bearer d",
            },
        )
        denied = http.options(
            "/fhir/Patient",
            headers={
                "origin": "https://evil.example",
                "access-control-request-method": "DELETE",
                "authorization": "Bearer d",
            },
        )
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert ok.headers["access-control-allow-credentials"] == "true"
    assert "etag" in ok.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in other.headers
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "authorization" in pre.headers["access-control-allow-headers"]
    assert denied.status_code == 403 and "access-control-allow-origin" not in denied.headers
    outcome(denied.content)
    with pytest.raises(ValueError, match="origin"):
        HardeningPolicy.from_environment({"CMIO_CORS_ORIGINS": "*"})
    policy = HardeningPolicy.from_environment({"CMIO_CORS_ORIGINS": f"{ORIGIN}/, http://x.org"})
    assert policy.cors_origins == {ORIGIN, "http://x.org"} and policy.rate_per_second == 100
    assert HardeningPolicy.from_environment({"CMIO_AUTH": "off"}).rate_per_second == 0
    limited = HardeningPolicy.from_environment({"CMIO_AUTH": "off", "CMIO_RATE_LIMIT": "5"})
    assert limited.rate_per_second == 5


def test_url_header_and_body_limits(server: CmioApp) -> None:
    with client(server) as http:
        long_url = http.get("/fhir/Patient?name=" + "a" * 9000, headers={"authorization": "B e"})
        many = http.get(
            "/fhir/metadata",
            headers={f"x-h{i}": "v" for i in range(120)} | {"authorization": "B e"},
        )
        huge = http.get("/fhir/metadata", headers={"x-big": "v" * 40_000, "authorization": "B e"})
        body = http.post(
            "/fhir/Patient",
            content=b"{" + b" " * 5000 + b"}",
            headers={"content-type": "application/fhir+json", "authorization": "B e"},
        )
    assert (
        long_url.status_code == 414
        and outcome(long_url.content)["issue"][0]["code"] == "too-costly"
    )
    assert many.status_code == 431 and huge.status_code == 431
    assert body.status_code == 413
    for response in (long_url, many, huge, body):
        assert response.headers["x-content-type-options"] == "nosniff"


def test_rate_limit_per_client_answers_429_with_retry_after(server: CmioApp) -> None:
    limited_app = HardeningMiddleware(
        server._dispatch, HardeningPolicy(rate_per_second=0.2, burst=3)
    )
    with client(limited_app) as http:
        first = [http.get("/fhir/metadata").status_code for _ in range(3)]
        limited = http.get("/fhir/metadata")
        other = http.get("/fhir/metadata", headers={"authorization": "Bearer other"})
    assert first == [200, 200, 200]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert outcome(limited.content)["issue"][0]["code"] == "throttled"
    assert other.status_code == 200  # another token, another bucket


def test_token_bucket_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=2, max_clients=2, clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a")] == [0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    now[0] = 0.5
    assert limiter.take("a") == 0.0
    limiter.take("b")
    limiter.take("c")  # evicts the least recently used bucket ("a")
    assert limiter.take("a") == 0.0


def test_no_stack_trace_in_any_response(
    server: CmioApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"boom at {os.path.abspath(__file__)}"

    def failing_route(*_: Any) -> Any:
        raise RuntimeError(secret)

    async def failing_app(*_: Any) -> None:
        raise RuntimeError(secret)

    monkeypatch.setattr(server.fhir.router, "_route", failing_route)
    with client(server) as http:
        in_route = http.get("/fhir/Patient/1", headers={"authorization": "Bearer s"})
    with client(HardeningMiddleware(failing_app)) as http:
        escaped = http.get("/anything")
    for response in (in_route, escaped):
        assert response.status_code == 500
        text = response.text
        assert "Traceback" not in text and secret not in text and ".py" not in text
        assert outcome(response.content)["issue"][0]["code"] == "exception"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "reference" in escaped.text
    logged = [r for r in caplog.records if r.exc_info is not None]
    assert len(logged) >= 2  # the tracebacks went to the server log


def test_serve_refuses_a_tls_key_others_can_read(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    key.chmod(0o644)
    runner = CliRunner()
    done = runner.invoke(cli, ["serve", "--tls-cert", str(cert), "--tls-key", str(key)])
    assert done.exit_code == 2 and "0644" in done.output
    done = runner.invoke(cli, ["serve", "--tls-cert", str(cert)])
    assert done.exit_code == 2 and "--tls-key" in done.output


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (0600)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp / "cert.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = tmp / "key.pem"
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_serves_https_with_hsts(tmp_path: Path, server: CmioApp) -> None:
    import ssl
    import threading
    import time

    import uvicorn

    from cmio.api.serving import http_protocol
    from cmio.cli.serve_cmd import _tls_files
    from cmio.testing.server import free_port

    cert, key = _tls_files(*map(str, self_signed(tmp_path)))
    assert cert is not None and key is not None
    port = free_port()
    config = uvicorn.Config(
        server,
        host="127.0.0.1",
        port=port,
        log_level="error",
        lifespan="off",
        ssl_certfile=cert,
        ssl_keyfile=key,
        http=http_protocol(),  # as cmio serve: one write per response, through TLS
    )
    https = uvicorn.Server(config)
    thread = threading.Thread(target=https.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not https.started:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.02)
        context = ssl.create_default_context(cafile=cert)
        url = f"https://127.0.0.1:{port}/fhir/metadata"
        response = httpx.get(url, verify=context, headers={"authorization": "Bearer t"})
        with pytest.raises(httpx.ConnectError):
            httpx.get(url)  # a certificate nobody trusts by default
    finally:
        https.should_exit = True
        thread.join(10)
    assert response.status_code == 200
    assert response.headers["strict-transport-security"].startswith("max-age=")
