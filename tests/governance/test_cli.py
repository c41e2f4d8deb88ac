"""``cmio governance ...`` over a SQLite store."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from cmio.cli.main import app
from cmio.store import open_repository
from tests.governance.conftest import valueset


def test_cli_lifecycle_requests_diff_agenda(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    repository = open_repository(url)
    with repository.transaction() as tx:
        tx.update(valueset(["4548-4", "17856-6"]))
        tx.update(valueset(["4548-4", "59261-8"], version="1.1.0", rid="vs-a1c-2"))
    repository.close()
    runner = CliRunner()
    db = ["--database", url]
    clin = ["--user", "dr-house", "--role", "clinician"]
    tech = ["--user", "ada", "--role", "informaticist"]

    created = runner.invoke(
        app,
        ["governance", "requests", "new", "Add IFCC HbA1c", "--rationale", "missed results",
         "--priority", "urgent", "--artifact", "ValueSet/vs-a1c", *clin, *db],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    task_id = re.search(r"Task/(\S+) requested", created.output)
    assert task_id is not None
    steps = [
        ("submit", clin, "in-review"),
        ("approve", clin, "in-review"),
        ("approve", tech, "approved"),
        ("activate", tech, "active"),
    ]
    for action, who, state in steps:
        result = runner.invoke(app, ["governance", action, "ValueSet/vs-a1c", *who, *db])
        assert result.exit_code == 0, result.output
        assert result.output.strip().endswith(f"{action} -> {state}")
    denied = runner.invoke(app, ["governance", "retire", "ValueSet/vs-a1c", "--user", "x", *db])
    assert denied.exit_code == 1 and "needs one of the roles" in denied.output

    moved = runner.invoke(
        app, ["governance", "requests", "move", task_id[1], "accepted", *clin, *db]
    )
    assert moved.exit_code == 0, moved.output
    board = runner.invoke(app, ["governance", "requests", "board", *db])
    assert "accepted" in board.output and "Add IFCC HbA1c" in board.output

    command = ["governance", "diff", "ValueSet/vs-a1c-2", "--other", "ValueSet/vs-a1c", *db]
    unexpandable = runner.invoke(app, command)  # LOINC is not loaded in this store
    assert unexpandable.exit_code == 1
    assert "CodeSystem 'http://loinc.org' could not be found" in unexpandable.output
    diff = runner.invoke(app, [*command, "--no-expand"])
    assert diff.exit_code == 0, diff.output
    body = json.loads(diff.output)
    assert body["codesAdded"] == [{"system": "http://loinc.org", "code": "59261-8"}]
    assert body["codesRemoved"] == [{"system": "http://loinc.org", "code": "17856-6"}]

    out = tmp_path / "agenda.html"
    agenda = runner.invoke(
        app,
        ["governance", "agenda", "--start", "2000-01-01", "--end", "2999-01-01",
         "--format", "html", "--out", str(out), *db],
    )  # fmt: skip
    assert agenda.exit_code == 0, agenda.output
    assert "1 open request(s), 6 decision(s)" in agenda.output
    assert "Add IFCC HbA1c" in out.read_text(encoding="utf-8")
    from cmio.security.audit.log import AuditLog

    repository = open_repository(url)
    try:  # each CLI decision is in the audit trail (the API's auditor does not see it)
        events = [json.loads(row.data) for row in AuditLog(repository).rows()]
    finally:
        repository.close()
    assert len(events) == 6 and all(e["action"] == "E" for e in events)


def test_cli_policy_from_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'policy.db'}"
    repository = open_repository(url)
    with repository.transaction() as tx:
        tx.update(valueset(["4548-4"]))
    repository.close()
    runner = CliRunner()
    clin = ["--user", "dr-house", "--role", "clinician", "--database", url]
    env = {"CMIO_GOVERNANCE_APPROVERS": "pharmacy-lead=clinician"}
    for action, state in (("submit", "in-review"), ("approve", "approved")):
        result = runner.invoke(app, ["governance", action, "ValueSet/vs-a1c", *clin], env=env)
        assert result.exit_code == 0, result.output
        assert result.output.strip().endswith(state)
    broken = runner.invoke(
        app,
        ["governance", "retire", "ValueSet/vs-a1c", *clin],
        env={"CMIO_GOVERNANCE_APPROVERS": "nonsense"},
    )
    assert broken.exit_code == 2 and "capacity=role" in broken.output
