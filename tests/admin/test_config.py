"""Configuration by file: CMIO_* variables from an environment file, the environment wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmio.admin.config import ConfigError, apply_env_file, read_env_file


def test_env_file_sets_unset_variables_only(tmp_path: Path) -> None:
    path = tmp_path / "cmio.env"
    path.write_text(
        "# cmio\n\nCMIO_DATABASE_URL=sqlite:///x.db\nexport CMIO_AUTH = 'off'\n"
        'CMIO_CORS_ORIGINS="https://a.example, https://b.example"\nCMIO_RATE_LIMIT=5\n'
    )
    assert read_env_file(path)["CMIO_CORS_ORIGINS"] == "https://a.example, https://b.example"
    environ = {"CMIO_RATE_LIMIT": "50"}
    applied = apply_env_file(path, environ)
    assert applied == ["CMIO_DATABASE_URL", "CMIO_AUTH", "CMIO_CORS_ORIGINS"]
    assert environ["CMIO_AUTH"] == "off" and environ["CMIO_RATE_LIMIT"] == "50"


def test_bad_lines_and_missing_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.env"
    path.write_text("CMIO_AUTH=on\nPATH=/tmp\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_env_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        read_env_file(tmp_path / "missing.env")
