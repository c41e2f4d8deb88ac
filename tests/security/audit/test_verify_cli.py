"""`cmio audit verify/checkpoint/export`: a clean chain passes, each kind of tamper is found."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from cmio.api.audit import Auditor
from cmio.api.context import RequestContext
from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.cli.main import app
from cmio.model import Model
from cmio.security.grant import AccessGrant
from cmio.store import open_repository
from cmio.store.base import Repository, SearchQuery

GRANT = AccessGrant("ops", "user", frozenset({"user/*.cruds"}), roles=frozenset({"administrator"}))


def _router(repository: Repository, model: Model) -> FhirRouter:
    env = Env(repository, model, lambda r: [], Settings(validation="off", terminology_db=None))
    env.auditor = Auditor(repository)
    return FhirRouter(env)


def _call(router: FhirRouter, method: str, path: str, body: Any = None) -> Any:
    request = FhirRequest(
        method,
        path,
        [],
        {"content-type": "application/fhir+json"},
        b"" if body is None else orjson.dumps(body),
        context=RequestContext(grant=GRANT, remote_addr="10.0.0.1"),
    )
    response = router.handle(request)
    assert response.status < 300, response.body
    return orjson.loads(response.body) if response.body else None


def _fill(url: str, model: Model, writers: int = 3, each: int = 4) -> int:
    """Concurrent writers and readers on one router; returns the number of records."""
    repository = open_repository(url)
    router = _router(repository, model)

    def work(_: int) -> None:
        for _n in range(each):
            pid = _call(router, "POST", "Patient", {"resourceType": "Patient"})["id"]
            _call(router, "GET", f"Patient/{pid}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert router.env.auditor is not None
    router.env.auditor.close()
    repository.close()
    return writers * each * 2


def _sql(url: str) -> Callable[[str], None]:
    """Run tampering SQL on the store directly (dropping the append-only guard first)."""
    if url.startswith("sqlite"):
        import sqlite3

        path = url.removeprefix("sqlite:///")

        def run_sqlite(sql: str) -> None:
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
            conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
            conn.executescript(sql)
            conn.close()

        return run_sqlite

    def run_pg(sql: str) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)

    return run_pg


def _verify(url: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify", "--database", url, *extra])
    return result.exit_code, result.output


def test_concurrent_writers_keep_one_chain_and_tampering_is_found(
    store_url: str, model: Model, tmp_path: Path
) -> None:
    total = _fill(store_url, model)
    code, out = _verify(store_url)
    assert code == 0 and f"{total:,} records" in out, out
    key = tmp_path / "key"
    key.write_text("secret-key")
    checkpoint = tmp_path / "head.json"
    result = CliRunner().invoke(
        app, ["audit", "checkpoint", "--database", store_url, "--out", str(checkpoint),
              "--key-file", str(key)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(checkpoint.read_text())["seq"] == total
    run = _sql(store_url)
    # a truncated tail is a valid shorter chain: only the checkpoint reveals it
    run(f"DELETE FROM audit_log WHERE seq = {total}")
    assert _verify(store_url)[0] == 0
    code, out = _verify(store_url, "--checkpoint", str(checkpoint), "--key-file", str(key))
    assert code == 1 and "truncated" in out, out
    # an edited record
    run("UPDATE audit_log SET data = replace(data, '\"outcome\":\"0\"', '\"outcome\":\"4\"')"
        " WHERE seq = 5")  # fmt: skip
    code, out = _verify(store_url)
    assert code == 1 and "BROKEN at record 5" in out, out


@pytest.mark.parametrize("tamper", ["delete", "swap"])
def test_deleted_and_swapped_records_are_found(store_url: str, model: Model, tamper: str) -> None:
    _fill(store_url, model, writers=1, each=3)
    run = _sql(store_url)
    if tamper == "delete":
        run("DELETE FROM audit_log WHERE seq = 3")
    else:  # swap the contents of records 2 and 4, hashes included
        run("UPDATE audit_log SET seq = -2 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 4;"
            " UPDATE audit_log SET seq = 4 WHERE seq = -2")  # fmt: skip
    code, out = _verify(store_url)
    assert code == 1
    assert ("record 3 is missing" if tamper == "delete" else "BROKEN at record 2") in out, out


def test_export_ndjson_and_csv(store_url: str, model: Model, tmp_path: Path) -> None:
    total = _fill(store_url, model, writers=1, each=2)
    ndjson, table = tmp_path / "a.ndjson", tmp_path / "a.csv"
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "export", "--database", store_url, "--out", str(ndjson)])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in ndjson.read_text().splitlines()]
    assert len(events) == total and all(e["resourceType"] == "AuditEvent" for e in events)
    result = runner.invoke(
        app, ["audit", "export", "--database", store_url, "--out", str(table), "--format", "csv",
              "--since", events[-1]["recorded"]],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert 1 <= len(rows) < total
    last = rows[-1]
    assert (last["interaction"], last["action"], last["user_id"], last["roles"]) == (
        "read", "R", "ops", "administrator",
    )  # fmt: skip
    assert last["patient"] and last["resource"].startswith(f"Patient/{last['patient']}/_history/")
    assert last["network_address"] == "10.0.0.1"
    result = runner.invoke(
        app, ["audit", "search", "--database", store_url, "--patient", last["patient"],
              "--action", "r"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("1 records") and last["patient"][:8] in result.output
    result = runner.invoke(app, ["audit", "index", "--database", store_url])
    assert result.exit_code == 0 and f"{total:,} audit records copied" in result.output
    repository = open_repository(store_url)
    try:
        assert repository.search(SearchQuery("AuditEvent", count=0)).total == total
    finally:
        repository.close()
