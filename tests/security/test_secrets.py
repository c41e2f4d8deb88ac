"""Secrets only from the environment or from owner-only files (cmio.security.secrets)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cmio.security.secrets import (
    InsecureSecretError,
    MissingSecretError,
    check_private_file,
    read_secret,
    read_secret_file,
    write_secret_file,
)


def test_environment_value_wins() -> None:
    assert read_secret("K", {"K": "s3cret", "K_FILE": "/nonexistent"}) == b"s3cret"
    assert read_secret("K", {}) is None
    with pytest.raises(MissingSecretError):
        read_secret("K", {"K": ""})


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o666, 0o644, 0o620])
def test_group_or_other_bits_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"abc")
    path.chmod(mode)
    with pytest.raises(InsecureSecretError, match=f"{mode:04o}"):
        read_secret("K", {"K_FILE": str(path)})


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_files_read(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"abc\n")
    path.chmod(mode)
    assert read_secret("K", {"K_FILE": str(path)}) == b"abc"


def test_missing_empty_and_not_regular(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_secret_file(tmp_path / "none")
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    empty.chmod(0o600)
    with pytest.raises(MissingSecretError):
        read_secret_file(empty)
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(InsecureSecretError, match="regular"):
        check_private_file(folder)


def test_write_secret_file_is_private_and_never_overwrites(tmp_path: Path) -> None:
    path = write_secret_file(tmp_path / "sub" / "key", b"xyz")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_secret_file(path) == b"xyz"
    with pytest.raises(FileExistsError):
        write_secret_file(path, b"other")
