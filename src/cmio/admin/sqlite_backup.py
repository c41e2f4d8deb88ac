"""Online backup and atomic restore of a SQLite store.

The copy is made with SQLite's online backup API
(https://www.sqlite.org/backup.html) from a connection that holds a read
transaction for the whole copy: in WAL mode that pins one snapshot, so writers
keep committing while the copy sees none of their later work. The copy is then
checked with ``PRAGMA integrity_check`` (https://www.sqlite.org/pragma.html#pragma_integrity_check).
"""

from __future__ import annotations

import contextlib
import sqlite3
import tarfile
import tempfile
from pathlib import Path

from cmio.admin.archive import (
    RESOURCE_SQL,
    STORE_TABLES,
    BackupError,
    Manifest,
    Progress,
    checksum_lines,
    compare_checksums,
    durable_replace,
    now_utc,
    verify_member,
    write_archive,
)

__all__ = ["backup_sqlite", "integrity_errors", "restore_sqlite"]

_PAGES = 1024


def integrity_errors(conn: sqlite3.Connection) -> list[str]:
    """``PRAGMA integrity_check`` problems (empty when the database is sound)."""
    rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
    return [] if rows == ["ok"] else rows


def _summary(conn: sqlite3.Connection, tsv: Path) -> tuple[int, dict[str, int], int]:
    """Schema version, row counts and ``resources.tsv`` of a database."""
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    counts = {
        t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
        for t in STORE_TABLES
        if t in names
    }
    row = conn.execute("SELECT version FROM schema_version WHERE component = 'store'").fetchone()
    lines = 0
    with tsv.open("wb") as f:
        for line in checksum_lines(conn.execute(RESOURCE_SQL)):
            f.write(line)
            lines += 1
    return (0 if row is None else int(row[0])), counts, lines


def backup_sqlite(db: Path, out: Path, source: str, progress: Progress | None = None) -> Manifest:
    """Copy ``db`` while it is in use into the archive ``out``; returns its manifest.

    Raises:
        BackupError: no such database, or the copy fails its integrity check.
    """
    if not db.exists():
        raise BackupError(f"no database at {db}")
    with tempfile.TemporaryDirectory(prefix="cmio-backup-", dir=out.parent) as tmp:
        copy, tsv = Path(tmp) / "cmio.db", Path(tmp) / "resources.tsv"
        src = sqlite3.connect(db, isolation_level=None, timeout=30.0)
        dst = sqlite3.connect(copy, isolation_level=None)
        try:
            src.execute("BEGIN")  # one WAL snapshot for every step of the copy
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()
            created = now_utc()

            def step(status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress("copy", total - remaining, total)

            src.backup(dst, pages=_PAGES, progress=step)
            src.execute("COMMIT")
            problems = integrity_errors(dst)
            if problems:
                raise BackupError("the copy fails integrity_check: " + "; ".join(problems[:5]))
            version, counts, lines = _summary(dst, tsv)
        finally:
            dst.close()
            src.close()
        manifest = Manifest("sqlite", version, created, source, counts, {}, lines, "backup-api")
        if progress is not None:
            progress("archive", 0, 0)
        write_archive(out, manifest, {"cmio.db": copy, "resources.tsv": tsv})
        return manifest


def _non_empty(db: Path) -> bool:
    if not db.exists() or db.stat().st_size == 0:
        return False
    with contextlib.closing(sqlite3.connect(db)) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in ("resource", "audit_log"):
            if table in names and conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
                return True
    return False


def restore_sqlite(
    archive: Path, manifest: Manifest, tar: tarfile.TarFile, db: Path, *, force: bool
) -> None:
    """Restore into ``db``: extract and check a copy beside it, then rename it into place.

    The server must be stopped: the swap replaces the file (and drops its WAL).

    Raises:
        BackupError: a non-empty target without ``force``, or a corrupt archive.
    """
    if manifest.dialect != "sqlite":
        raise BackupError(f"{archive} holds a {manifest.dialect} backup, not sqlite")
    if not force and _non_empty(db):
        raise BackupError(f"{db} already holds data; use --force to replace it")
    db.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".cmio-restore-", dir=db.parent) as tmp:
        copy = verify_member(tar, manifest, "cmio.db", Path(tmp) / "cmio.db")
        tsv = verify_member(tar, manifest, "resources.tsv", Path(tmp) / "resources.tsv")
        with contextlib.closing(sqlite3.connect(copy, isolation_level=None)) as conn:
            problems = integrity_errors(conn)
            if problems:
                raise BackupError("restored copy fails integrity_check: " + problems[0])
            compare_checksums(tsv, checksum_lines(conn.execute(RESOURCE_SQL)))
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for suffix in ("-wal", "-shm"):  # a stale log must not replay onto the new file
            Path(str(db) + suffix).unlink(missing_ok=True)
        durable_replace(copy, db)
