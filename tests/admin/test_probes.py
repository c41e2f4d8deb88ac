"""/healthz and /readyz: public, and 503 with reasons when the server cannot work."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.model import load_model
from cmio.security.oauth.settings import AuthSettings
from cmio.store.sqlite import SCHEMA_VERSION as SQLITE_VERSION
from cmio.testing.server import ServerThread


def test_probes_are_public_and_report_why_not_ready(tmp_path: Path) -> None:
    db = tmp_path / "cmio.db"
    auth = AuthSettings(password_time_cost=1, password_memory_kib=8)
    settings = Settings(auth=auth, validation="off", audit=False)
    app = CmioApp(build_env(f"sqlite:///{db}", settings, load_model()))
    with (
        ServerThread(app, close_app=True) as server,
        httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as http,
    ):
        assert http.get("/fhir/Patient").status_code == 401  # the gate is on
        live = http.get("/healthz")
        assert live.status_code == 200 and live.json() == {"status": "alive"}
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "store": "sqlite"}
        with sqlite3.connect(db) as conn:  # an old schema: migrations not done
            conn.execute("UPDATE schema_version SET version = 1 WHERE component = 'store'")
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert "migrations not done" in ready.json()["reasons"][0]
        with sqlite3.connect(db) as conn:
            conn.execute(  # back to this cmio's version
                "UPDATE schema_version SET version = ? WHERE component = 'store'",
                (SQLITE_VERSION,),
            )
        assert http.get("/readyz").status_code == 200
        writer = app.writer
        assert writer is not None
        writer._ensure_started()
        thread = writer._thread
        assert thread is not None
        writer._queue.put(None)  # the writer thread stops (as if it had crashed)
        thread.join(5)
        ready = http.get("/readyz")
        assert ready.status_code == 503 and "writer" in ready.json()["reasons"][0]
        writer._thread = None
        app.env.repository.close()  # the store no longer answers
        ready = http.get("/readyz")
        assert ready.status_code == 503 and "trivial query" in ready.json()["reasons"][0]
        assert http.get("/healthz").status_code == 200  # alive all the same
