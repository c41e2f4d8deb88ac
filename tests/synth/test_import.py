"""The generated output loads through cmio's bulk import into SQLite with nothing rejected."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from cmio.bulk.importer import import_paths
from cmio.cli.main import app
from cmio.model import Model
from cmio.store import open_repository
from cmio.synth import SynthConfig, generate

from .conftest import SEED, Generated

IMPORTED_PATIENTS = 100
"""The imported system: every resource type of the session's 600 patients (about 11,600
resources, a sixth of its import time); test_structure validates each of the 600 patients'
resources with the validator the import uses."""


def test_bulk_import_into_sqlite(generated: Generated, model: Model, tmp_path: Path) -> None:
    out = tmp_path / "out"
    synth = generate(SynthConfig(IMPORTED_PATIENTS, out, years=1.0, seed=SEED, workers=1))
    assert set(synth.by_type) == set(generated.summary.by_type)  # every resource type
    url = f"sqlite:///{tmp_path / 'synth.db'}"
    summary = import_paths(
        url, [out], model=model, workers=0, report_path=tmp_path / "report.ndjson"
    )
    assert summary.rejected == 0
    assert {t: c.created for t, c in summary.by_type.items()} == synth.by_type
    repository = open_repository(url)
    try:
        stored = Counter(r.type for r in repository.iter_current())
    finally:
        repository.close()
    assert dict(stored) == synth.by_type


def test_cli_synth_bundles_then_import(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "bundles"
    result = runner.invoke(
        app,
        [
            "synth",
            "--patients",
            "12",
            "--years",
            "0.5",
            "--seed",
            "9",
            "--out",
            str(out),
            "--format",
            "bundles",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "system.json").is_file()
    assert (out / "audit-log.csv").is_file()
    db = tmp_path / "b.db"
    result = runner.invoke(
        app,
        [
            "import",
            str(out),
            "--database",
            f"sqlite:///{db}",
            "--workers",
            "0",
            "--report",
            str(tmp_path / "r.ndjson"),
        ],
    )
    assert result.exit_code == 0, result.output
