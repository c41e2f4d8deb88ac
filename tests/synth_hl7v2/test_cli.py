"""``cmio synth-feeds`` end to end."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from cmio.cli.main import app
from tests.synth_hl7v2.conftest import Feeds


def test_cli_writes_feeds(feeds: Feeds, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["synth-feeds", "--in", str(feeds.source), "--out", str(out), "--seed", "7"]
    )
    assert result.exit_code == 0, result.output
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["messages"] == feeds.summary.by_type
    assert (out / "all.hl7").read_bytes() == (feeds.out / "all.hl7").read_bytes()
