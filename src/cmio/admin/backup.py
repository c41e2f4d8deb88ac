"""``backup`` and ``restore`` of a whole store, either backend.

See :mod:`cmio.admin.archive` for the archive layout, :mod:`cmio.admin.sqlite_backup`
and :mod:`cmio.admin.pg_backup` for how each backend takes and swaps a snapshot.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from cmio.admin.archive import BackupError, Manifest, Progress, read_manifest, redact_url

__all__ = ["backup", "restore"]


def _scheme(url: str) -> str:
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    raise BackupError(f"unsupported database URL scheme {scheme!r} in {url!r}")


def backup(url: str, out: Path, progress: Progress | None = None) -> Manifest:
    """Write a consistent snapshot of the store at ``url`` to the archive ``out``.

    Online: the store may be in use (and written) meanwhile.

    Raises:
        BackupError: the source is missing or the snapshot fails its checks.
    """
    if out.is_dir():
        raise BackupError(f"{out} is a directory; --out names the archive file to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    if _scheme(url) == "sqlite":
        from cmio.admin.sqlite_backup import backup_sqlite
        from cmio.store import sqlite_path

        return backup_sqlite(sqlite_path(url), out, redact_url(url), progress)
    from cmio.admin.pg_backup import backup_postgres

    return backup_postgres(url, out, progress)


def restore(archive: Path, url: str, *, force: bool = False) -> Manifest:
    """Restore ``archive`` into the store at ``url``, atomically.

    Refuses a target holding resources or audit records unless ``force``; checks every
    member's SHA-256 and every resource's checksum before the swap.

    Raises:
        BackupError: wrong archive, corrupt member, differing resource, non-empty target.
    """
    if not archive.is_file():
        raise BackupError(f"no backup file at {archive}")
    try:
        tar = tarfile.open(archive, "r")  # noqa: SIM115 - closed by the with below
    except tarfile.TarError as exc:
        raise BackupError(f"{archive} is not a cmio backup archive: {exc}") from exc
    with tar:
        manifest = read_manifest(tar)
        if _scheme(url) == "sqlite":
            from cmio.admin.sqlite_backup import restore_sqlite
            from cmio.store import sqlite_path

            restore_sqlite(archive, manifest, tar, sqlite_path(url), force=force)
        else:
            from cmio.admin.pg_backup import restore_postgres

            restore_postgres(archive, manifest, tar, url, force=force)
    return manifest
