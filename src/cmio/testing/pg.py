"""Start a throwaway PostgreSQL server for tests and benchmarks.

:func:`running_postgres` runs ``initdb`` into a temporary directory, starts the
server on ``127.0.0.1`` on a free port with ``fsync=on`` (so durability tests
mean something), yields a ``postgresql://`` URL and stops and deletes the server
afterwards. PostgreSQL refuses to run as root, so when we are root the server
binaries run as the ``postgres`` user via ``runuser``.

See https://www.postgresql.org/docs/15/app-initdb.html and
https://www.postgresql.org/docs/15/app-pg-ctl.html.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from cmio.testing.server import free_port

__all__ = [
    "PostgresNotInstalledError",
    "find_pg_bin",
    "running_postgres",
    "with_database",
    "with_search_path",
]


class PostgresNotInstalledError(RuntimeError):
    """No PostgreSQL server binaries (``initdb``, ``pg_ctl``) were found."""


def find_pg_bin() -> Path | None:
    """Return the directory holding ``initdb``/``pg_ctl``, newest major version first.

    Looks at ``$CMIO_PG_BIN``, then ``/usr/lib/postgresql/*/bin``, then ``$PATH``.
    """
    env = os.environ.get("CMIO_PG_BIN")
    if env and (Path(env) / "initdb").exists():
        return Path(env)

    def major(path: str) -> int:
        name = Path(path).parent.parent.name
        return int(name) if name.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major, reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _run(cmd: list[str], user: str | None) -> subprocess.CompletedProcess[str]:
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)


def _check(proc: subprocess.CompletedProcess[str], what: str, log: Path | None = None) -> None:
    if proc.returncode != 0:
        detail = proc.stdout + proc.stderr
        if log is not None and log.exists():
            detail += "\n--- server log ---\n" + log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{detail}")


@contextlib.contextmanager
def running_postgres(*, dbname: str = "cmio", user: str = "postgres") -> Iterator[str]:
    """Run a private PostgreSQL server for the duration of the ``with`` block.

    Args:
        dbname: database created in the new cluster (besides ``postgres``).
        user: the cluster's superuser name (trust authentication on loopback).

    Yields:
        A URL such as ``postgresql://postgres@127.0.0.1:54321/cmio``.

    Raises:
        PostgresNotInstalledError: when no server binaries are installed.
        RuntimeError: when ``initdb`` or ``pg_ctl`` fails (the server log is included).
    """
    bindir = find_pg_bin()
    if bindir is None:
        raise PostgresNotInstalledError("PostgreSQL server binaries (initdb, pg_ctl) not found")
    run_as: str | None = None
    base = Path(tempfile.mkdtemp(prefix="cmio-pg-"))
    if os.geteuid() == 0:
        run_as = "postgres"
        pw = pwd.getpwnam(run_as)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    base.chmod(0o700)
    datadir, log = base / "data", base / "server.log"
    started = False
    try:
        _check(
            _run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(datadir),
                    "-U",
                    user,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                run_as,
            ),
            "initdb",
        )
        for attempt in range(5):
            port = free_port()
            opts = (
                f"-c listen_addresses=127.0.0.1 -c port={port} -c fsync=on"
                f" -c unix_socket_directories={base} -c max_connections=200"
            )
            proc = _run(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(datadir),
                    "-l",
                    str(log),
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                run_as,
            )
            if proc.returncode == 0:
                started = True
                break
            if attempt == 4:
                _check(proc, "pg_ctl start", log)
            time.sleep(0.2)
        _check(
            _run(
                [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, dbname],
                run_as,
            ),
            "createdb",
        )
        yield f"postgresql://{user}@127.0.0.1:{port}/{dbname}"
    finally:
        if started:
            _run([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"], run_as)
        shutil.rmtree(base, ignore_errors=True)


def with_database(url: str, dbname: str) -> str:
    """Return ``url`` pointing at database ``dbname`` instead (other parts kept)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(dbname)))


def with_search_path(url: str, schema: str) -> str:
    """Return ``url`` with ``options=-csearch_path=<schema>`` so every session uses ``schema``."""
    parts = urllib.parse.urlsplit(url)
    query = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if k != "options"
    ]
    query.append(("options", f"-csearch_path={schema}"))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
