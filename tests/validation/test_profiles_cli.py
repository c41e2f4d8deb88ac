"""``cmio validate FILE... [--profile URL] [--package PKG.tgz]``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cmio.cli.main import app

NARRATIVE = {"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>x</div>"}


def test_cli_reports_issues_and_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"resourceType": "Patient", "text": NARRATIVE, "gender": "male"}))
    bad = tmp_path / "bad.ndjson"
    lines = [{"resourceType": "Patient", "text": NARRATIVE, "gender": g} for g in ("male", "bloke")]
    bad.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0, result.output
    assert "good.json: OK" in result.output
    unknown = "http://example.org/unknown"
    result = runner.invoke(app, ["validate", str(good), str(bad), "--profile", unknown, "-q"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "bad.ndjson:2: 2 error(s)" in output.replace("│", "").replace(" ", "") or (
        "2 error(s)" in output
    )
    assert "code-invalid" in output
    assert "not-found" in output
    result = runner.invoke(app, ["validate", str(good), "--package", str(tmp_path / "no.tgz")])
    assert result.exit_code == 2
