"""Secrets (keys, passwords) only from the environment or from files only their owner can read.

A secret named ``NAME`` is read from the environment variable ``NAME`` or from the
file named by ``NAME_FILE``; a file readable or writable by its group or by others
(any bit of ``0o077``) is refused, so a key never sits world-readable on disk.
Secrets are never written in code or in the repository. This follows the
"protect stored secrets" guidance of OWASP ASVS 4.0 V6.4
(https://owasp.org/www-project-application-security-verification-standard/).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "InsecureSecretError",
    "MissingSecretError",
    "check_private_file",
    "read_secret",
    "read_secret_file",
    "write_secret_file",
]


class InsecureSecretError(PermissionError):
    """A secret file that its group or other users can read or write."""


class MissingSecretError(LookupError):
    """A secret that is neither in the environment nor in a file."""


def check_private_file(path: str | Path) -> None:
    """Refuse a secret file whose permissions let the group or others read or write it.

    Args:
        path: the file (a private key, a signing key, a de-identification key).

    Raises:
        InsecureSecretError: the file has a group/other permission bit (wanted 0600 or 0400),
            or is not a regular file.
        FileNotFoundError: the file does not exist.
    """
    info = Path(path).stat()
    if not stat.S_ISREG(info.st_mode):
        raise InsecureSecretError(f"secret {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise InsecureSecretError(
            f"secret file {path} has mode {mode:04o}: it must be readable by its owner only "
            f"(chmod 600 {path})"
        )


def read_secret_file(path: str | Path) -> bytes:
    """The content of a secret file, after :func:`check_private_file` (trailing newline dropped).

    Args:
        path: the file.

    Returns:
        The bytes of the file without a trailing ``\\n``/``\\r\\n``.

    Raises:
        InsecureSecretError: see :func:`check_private_file`.
        MissingSecretError: the file is empty.
    """
    check_private_file(path)
    data = Path(path).read_bytes().rstrip(b"\r\n")
    if not data:
        raise MissingSecretError(f"secret file {path} is empty")
    return data


def read_secret(name: str, environ: Mapping[str, str] | None = None) -> bytes | None:
    """A secret from ``$NAME`` or from the private file named by ``$NAME_FILE``.

    Args:
        name: the variable name, e.g. ``CMIO_DEID_KEY``.
        environ: the environment (default ``os.environ``).

    Returns:
        The secret, or None when neither variable is set.

    Raises:
        InsecureSecretError: ``$NAME_FILE`` names a file others can read.
        MissingSecretError: the variable or the file is empty.
        FileNotFoundError: ``$NAME_FILE`` names a missing file.
    """
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is not None:
        if not value:
            raise MissingSecretError(f"${name} is empty")
        return value.encode()
    path = env.get(f"{name}_FILE")
    if path is None:
        return None
    return read_secret_file(path)


def write_secret_file(path: str | Path, secret: bytes) -> Path:
    """Create a secret file readable by its owner only (mode 0600, created so, never widened).

    Args:
        path: the file to create (its folder is created; an existing file is refused).
        secret: the bytes to write.

    Returns:
        The path written.

    Raises:
        FileExistsError: the file already exists.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    return target
