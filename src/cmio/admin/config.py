"""Configuration by file: an environment file of ``CMIO_*`` variables.

One ``KEY=VALUE`` per line; blank lines and ``#`` comments are skipped, an
``export`` prefix and matching single or double quotes around the value are
accepted (the format of systemd ``EnvironmentFile=`` and ``docker --env-file``).
Variables already in the environment win over the file. See
https://www.freedesktop.org/software/systemd/man/latest/systemd.exec.html#EnvironmentFile=.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from pathlib import Path

__all__ = ["ConfigError", "apply_env_file", "read_env_file"]

_LINE = re.compile(r"(?:export\s+)?(CMIO_[A-Z0-9_]+)\s*=\s*(.*)")


class ConfigError(ValueError):
    """A configuration file that cannot be read (the message names the line)."""


def read_env_file(path: str | Path) -> dict[str, str]:
    """The variables an environment file sets.

    Raises:
        ConfigError: unreadable file, or a line that is not ``CMIO_NAME=value``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from exc
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise ConfigError(f"{path}, line {number}: expected CMIO_NAME=value, got {line!r}")
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[match.group(1)] = value
    return out


def apply_env_file(path: str | Path, environ: MutableMapping[str, str]) -> list[str]:
    """Set the file's variables in ``environ`` where not already set; returns those set."""
    applied = []
    for key, value in read_env_file(path).items():
        if key not in environ:
            environ[key] = value
            applied.append(key)
    return applied
