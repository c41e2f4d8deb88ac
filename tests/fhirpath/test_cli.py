"""``cmio fhirpath EXPRESSION FILE``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cmio.cli.main import app

PATIENT = {
    "resourceType": "Patient",
    "name": [{"given": ["Ann", "Bea"], "family": "Smith"}],
    "birthDate": "1970-01-02",
    "extension": [{"url": "http://x/height", "valueDecimal": 1.80}],
}


def test_evaluates_a_file(tmp_path: Path) -> None:
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(PATIENT))
    result = CliRunner().invoke(app, ["fhirpath", "Patient.name.given", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == ["Ann", "Bea"]


def test_reads_stdin_and_keeps_decimals_exact() -> None:
    text = '{"resourceType": "Patient", "extension": [{"url": "u", "valueDecimal": 1.80}]}'
    result = CliRunner().invoke(app, ["fhirpath", "extension.value | birthDate", "-"], input=text)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "[1.80]"


def test_dates_and_variables() -> None:
    result = CliRunner().invoke(
        app,
        ["fhirpath", "birthDate | %who", "-", "--var", "who=me"],
        input=json.dumps(PATIENT),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == ["1970-01-02", "me"]


def test_syntax_error_exits_1() -> None:
    result = CliRunner().invoke(app, ["fhirpath", "name.given(", "-"], input="{}")
    assert result.exit_code == 1
    assert "error" in result.output
