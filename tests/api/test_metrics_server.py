"""``/metrics`` of a running server: request series, queue and pool gauges, export progress,
and the static scrape token (``CMIO_METRICS_TOKEN``)."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import httpx

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.model import Model
from cmio.testing.auth import auth_app, bearer, mint_token
from cmio.testing.server import ServerThread


def _value(text: str, pattern: str) -> float:
    """The value of the one series whose line matches ``pattern`` (a regex)."""
    found = [
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if not line.startswith("#") and re.search(pattern, line)
    ]
    assert len(found) == 1, f"{pattern}: {found}\n{text}"
    return found[0]


def _settings(root: Path, **changes: object) -> Settings:
    base = Settings(
        validation="off",
        terminology_db=None,
        hl7_journal=str(root / "journal.db"),
        export_dir=str(root / "exports"),
        audit=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_metrics_count_requests_and_report_gauges(
    database_url: str, model: Model, tmp_path: Path
) -> None:
    app = CmioApp(build_env(database_url, _settings(tmp_path), model))
    with ServerThread(app, close_app=True) as server, httpx.Client(base_url=server.base) as http:
        created = http.post("/Patient", json={"resourceType": "Patient", "gender": "male"})
        pid = created.json()["id"]
        for _ in range(3):
            assert http.get(f"/Patient/{pid}").status_code == 200
        assert http.get("/Patient/no-such-id").status_code == 404
        kicked = http.get("/$export", headers={"prefer": "respond-async"})
        assert kicked.status_code == 202
        status = kicked.headers["content-location"]
        deadline = time.monotonic() + 20
        while http.get(status).status_code == 202 and time.monotonic() < deadline:
            time.sleep(0.1)
        text = httpx.get(server.base.removesuffix("/fhir") + "/metrics").text
    read = r'type="Patient",interaction="read"'
    assert _value(text, rf'cmio_http_requests_total\{{.*{read},status="200"\}}') == 3
    assert _value(text, rf'cmio_http_requests_total\{{.*{read},status="404"\}}') == 1
    create = r'type="Patient",interaction="create",status="201"'
    assert _value(text, rf"cmio_http_requests_total\{{.*{create}\}}") == 1
    assert _value(text, rf"_duration_seconds_count\{{.*{read}\}}") == 4
    assert _value(text, rf'_duration_seconds_bucket\{{.*{read},le="\+Inf"\}}') == 4
    assert _value(text, r'cmio_export_jobs\{.*status="completed"\}') == 1
    assert _value(text, r"cmio_audit_queue_depth\{") >= 0
    if database_url.startswith("sqlite"):
        assert _value(text, r'cmio_writer_queue_depth\{.*store="sqlite"') == 0
    else:
        assert _value(text, r"cmio_db_pool_max\{") >= 1
        size = _value(text, r"cmio_db_pool_size\{")
        assert size >= 1 and _value(text, r"cmio_db_pool_available\{") <= size
        assert _value(text, r"cmio_db_pool_waiting\{") >= 0
        assert _value(text, r"cmio_db_executor_queue_depth\{") >= 0
    assert _value(text, r"cmio_gauge_errors\{") == 0
    assert "# TYPE cmio_http_request_duration_seconds histogram" in text


def test_metrics_off_keeps_the_gauges(model: Model, tmp_path: Path) -> None:
    settings = _settings(tmp_path, metrics=False)
    app = CmioApp(build_env(f"sqlite:///{tmp_path / 'off.db'}", settings, model))
    assert app.metrics.requests is None and app.fhir.metrics is None
    with ServerThread(app, close_app=True) as server:
        assert httpx.get(server.base + "/metadata").status_code == 200
        text = httpx.get(server.base.removesuffix("/fhir") + "/metrics").text
    assert "cmio_http_requests_total" not in text
    assert "cmio_writer_queue_depth" in text


def test_scrape_token_and_role(tmp_path: Path, model: Model) -> None:
    settings = _settings(tmp_path, metrics_token="scrape-secret-123", metrics_role="ops")
    settings = replace(settings, audit=False)
    app = auth_app(f"sqlite:///{tmp_path / 'auth.db'}", tmp_path, model=model, settings=settings)
    with ServerThread(app, close_app=True) as server:
        origin = server.base.removesuffix("/fhir")
        assert httpx.get(origin + "/metrics").status_code == 401
        assert httpx.get(origin + "/metrics", headers=bearer("wrong")).status_code == 401
        scraped = httpx.get(origin + "/metrics", headers=bearer("scrape-secret-123"))
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
        # the scrape token opens /metrics only
        refused = httpx.get(server.base + "/Patient", headers=bearer("scrape-secret-123"))
        assert refused.status_code == 401
        # a signed-in user needs the role CMIO_METRICS_ROLE names
        plain = mint_token(app, server.base, scopes=["user/*.read"], roles=["clinician"])
        forbidden = httpx.get(origin + "/metrics", headers=bearer(plain))
        assert forbidden.status_code == 403 and "'ops'" in forbidden.text
        assert httpx.get(server.base + "/Patient", headers=bearer(plain)).status_code == 200
        ops = mint_token(app, server.base, scopes=["user/*.read"], roles=["ops"])
        assert httpx.get(origin + "/metrics", headers=bearer(ops)).status_code == 200


def test_settings_from_environment() -> None:
    environ = {"CMIO_METRICS": "off", "CMIO_METRICS_TOKEN": "t0k", "CMIO_METRICS_ROLE": "ops"}
    settings = Settings.from_environment(environ)
    assert settings.metrics is False and settings.metrics_token == "t0k"
    assert settings.metrics_role == "ops"
    defaults = Settings.from_environment({})
    assert defaults.metrics is True and defaults.metrics_token is None
    assert defaults.metrics_role is None
