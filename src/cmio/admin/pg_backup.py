"""Online backup and atomic restore of a PostgreSQL store.

The snapshot is one ``REPEATABLE READ READ ONLY`` transaction
(https://www.postgresql.org/docs/15/transaction-iso.html#XACT-REPEATABLE-READ)
that ``COPY``s every store table out in text format: all tables see the same
committed state while writers go on. Restore loads a fresh schema beside the
target, checks it, then swaps the tables in with one transaction (DDL is
transactional in PostgreSQL), so a failed restore leaves the target untouched.
"""

from __future__ import annotations

import secrets
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from cmio.admin.archive import (
    RESOURCE_SQL,
    STORE_TABLES,
    BackupError,
    Manifest,
    Progress,
    checksum_lines,
    compare_checksums,
    now_utc,
    redact_url,
    verify_member,
    write_archive,
)

__all__ = ["backup_postgres", "restore_postgres"]

_AUDIT_FUNCTION = "cmio_audit_append_only"


def _schema(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        raise BackupError("the connection has no current schema (check search_path)")
    return str(row[0])


def _tables(conn: psycopg.Connection[Any], schema: str) -> dict[str, list[str]]:
    """Store tables present in ``schema`` with their stored (non-generated) columns."""
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND is_generated = 'NEVER' ORDER BY table_name,"
        " ordinal_position",
        (schema,),
    ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(str(table), []).append(str(column))
    return {t: found[t] for t in STORE_TABLES if t in found}


def _copy_sql(schema: str, table: str, columns: list[str], direction: str) -> sql.Composed:
    return sql.SQL(
        "COPY {}.{} ({}) {} STDOUT" if direction == "TO" else "COPY {}.{} ({}) {} STDIN"
    ).format(
        sql.Identifier(schema),
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(direction),
    )


def backup_postgres(url: str, out: Path, progress: Progress | None = None) -> Manifest:
    """COPY the store's tables from one snapshot into the archive ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="cmio-backup-", dir=out.parent) as tmp,
        psycopg.connect(url) as conn,
    ):
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            created = now_utc()
            schema = _schema(conn)
            tables = _tables(conn, schema)
            if "resource" not in tables:
                raise BackupError(f"no cmio store in schema {schema!r} of {redact_url(url)}")
            members: dict[str, Path] = {}
            counts: dict[str, int] = {}
            for done, (table, columns) in enumerate(tables.items()):
                if progress is not None:
                    progress(f"copy {table}", done, len(tables))
                path = Path(tmp) / f"{table}.copy"
                rows = 0
                with (
                    conn.cursor() as cur,
                    path.open("wb") as f,
                    cur.copy(_copy_sql(schema, table, columns, "TO")) as copy,
                ):
                    for chunk in copy:
                        data = bytes(chunk)
                        rows += data.count(b"\n")
                        f.write(data)
                members[f"tables/{table}.copy"] = path
                counts[table] = rows
            tsv = Path(tmp) / "resources.tsv"
            lines = 0
            with tsv.open("wb") as f, conn.cursor(name="cmio_backup_sums") as cur:
                cur.itersize = 2000
                for line in checksum_lines(cur.execute(RESOURCE_SQL)):
                    f.write(line)
                    lines += 1
            row = conn.execute(
                "SELECT version FROM schema_version WHERE component = 'store'"
            ).fetchone()
        members["resources.tsv"] = tsv
        version = 0 if row is None else int(row[0])
        manifest = Manifest(
            "postgres", version, created, redact_url(url), counts, {}, lines, "copy"
        )
        if progress is not None:
            progress("archive", len(tables), len(tables))
        write_archive(out, manifest, members)
        return manifest


def _non_empty(conn: psycopg.Connection[Any], schema: str) -> bool:
    tables = _tables(conn, schema)
    for table in ("resource", "audit_log"):
        if table in tables:
            query = sql.SQL("SELECT 1 FROM {}.{} LIMIT 1").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            if conn.execute(query).fetchone() is not None:
                return True
    return False


def restore_postgres(
    archive: Path, manifest: Manifest, tar: tarfile.TarFile, url: str, *, force: bool
) -> None:
    """Load the archive into a new schema, verify it, then swap its tables into place.

    Raises:
        BackupError: a non-empty target without ``force``, or a corrupt archive.
    """
    from cmio.store.postgres import PostgresRepository

    if manifest.dialect != "postgres":
        raise BackupError(f"{archive} holds a {manifest.dialect} backup, not postgres")
    with psycopg.connect(url, autocommit=True) as conn:
        target = _schema(conn)
        if not force and _non_empty(conn, target):
            raise BackupError(f"schema {target!r} already holds data; use --force to replace it")
        staging = f"cmio_restore_{secrets.token_hex(4)}"
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(staging)))
        try:
            # the store's own DDL creates every table, index and trigger in the staging schema
            PostgresRepository(make_conninfo(url, options=f"-csearch_path={staging}")).close()
            with tempfile.TemporaryDirectory(prefix="cmio-restore-") as tmp:
                _load(conn, tar, manifest, staging, Path(tmp))
            _swap(conn, staging, target)
        except BaseException:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(staging))
            )
            raise


def _load(
    conn: psycopg.Connection[Any], tar: tarfile.TarFile, manifest: Manifest, schema: str, tmp: Path
) -> None:
    tables = _tables(conn, schema)
    with conn.transaction():
        conn.execute(sql.SQL("DELETE FROM {}.schema_version").format(sql.Identifier(schema)))
        for table, want in manifest.tables.items():
            if table not in tables:
                raise BackupError(f"archive table {table!r} is unknown to this cmio")
            path = verify_member(tar, manifest, f"tables/{table}.copy", tmp / f"{table}.copy")
            with (
                conn.cursor() as cur,
                path.open("rb") as f,
                cur.copy(_copy_sql(schema, table, tables[table], "FROM")) as copy,
            ):
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            found = conn.execute(query).fetchone()
            if found is None or int(found[0]) != want:
                raise BackupError(f"table {table}: restored {found} rows, manifest says {want}")
        conn.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'seq'),"
            f" (SELECT coalesce(max(seq), 0) + 1 FROM {sql.Identifier(schema).as_string(conn)}"
            ".resource_history), false)",
            (f"{sql.Identifier(schema).as_string(conn)}.resource_history",),
        )
        tsv = verify_member(tar, manifest, "resources.tsv", tmp / "resources.tsv")
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
            compare_checksums(tsv, checksum_lines(cur.execute(RESOURCE_SQL)))


def _swap(conn: psycopg.Connection[Any], staging: str, target: str) -> None:
    """Replace the target's store tables by the staging ones, in one transaction."""
    t, s = sql.Identifier(target), sql.Identifier(staging)
    fn = sql.Identifier(_AUDIT_FUNCTION)
    with conn.transaction():
        for table in STORE_TABLES:
            conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}.{} CASCADE").format(t, sql.Identifier(table))
            )
        conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}.{}() CASCADE").format(t, fn))
        for table in _tables(conn, staging):
            conn.execute(
                sql.SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(s, sql.Identifier(table), t)
            )
        conn.execute(sql.SQL("ALTER FUNCTION {}.{}() SET SCHEMA {}").format(s, fn, t))
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(s))
