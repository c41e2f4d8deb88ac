"""The cmio backup archive: a tar file holding a manifest, data members and checksums.

Layout: ``manifest.json`` (format, dialect, store schema version, created-at, source,
row counts per table, SHA-256 of every other member), ``resources.tsv`` (one line
per resource: type, id, version, deleted flag and the SHA-256 of its JSON) and the
data: ``cmio.db`` (a SQLite copy) or ``tables/<name>.copy`` (PostgreSQL ``COPY`` text,
https://www.postgresql.org/docs/15/sql-copy.html#id-1.9.3.55.9.2).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import os
import tarfile
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cmio.indexing.tables import INDEX_TABLES

__all__ = [
    "FORMAT",
    "STORE_TABLES",
    "BackupError",
    "Manifest",
    "Progress",
    "checksum_lines",
    "compare_checksums",
    "durable_replace",
    "file_sha256",
    "read_manifest",
    "redact_url",
    "verify_member",
    "write_archive",
]

FORMAT = "cmio-backup/1"
#: the store's tables, in restore order (``resource_history`` keeps its ``seq``)
STORE_TABLES: tuple[str, ...] = (
    "schema_version",
    "resource",
    "resource_history",
    *(t.name for t in INDEX_TABLES),
    "job_state",
    "audit_log",
)
#: ``(stage, done, total)``: a long step's progress (total 0: unknown)
Progress = Callable[[str, int, int], None]
RESOURCE_SQL = "SELECT type, id, version, deleted, data FROM resource ORDER BY type, id"


class BackupError(Exception):
    """A backup or restore that cannot proceed (the message says why)."""


@dataclasses.dataclass
class Manifest:
    """What an archive holds and how to check it.

    Attributes:
        dialect: ``sqlite`` or ``postgres``.
        schema_version: the store schema version of the source.
        created_at: UTC instant the snapshot was taken.
        source: the source database URL without its password.
        tables: row count per table.
        members: SHA-256 (hex) per archive member.
        resources: number of lines in ``resources.tsv``.
        method: how the data was taken (``sqlite-backup-api``, ``copy``).
    """

    dialect: str
    schema_version: int
    created_at: str
    source: str
    tables: dict[str, int]
    members: dict[str, str]
    resources: int
    method: str
    format: str = FORMAT

    def to_json(self) -> bytes:
        """The manifest as indented JSON."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse a manifest; BackupError when it is not one this cmio can read."""
        try:
            raw: dict[str, Any] = json.loads(data)
            if raw.get("format") != FORMAT:
                raise BackupError(f"not a {FORMAT} archive (format {raw.get('format')!r})")
            return cls(**raw)
        except (ValueError, TypeError) as exc:
            raise BackupError(f"unreadable manifest.json: {exc}") from exc


def now_utc() -> str:
    """The current UTC instant, ISO 8601 with seconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def checksum_lines(rows: Iterable[Sequence[Any]]) -> Iterable[bytes]:
    """``resources.tsv`` lines from ``(type, id, version, deleted, data)`` rows."""
    for rtype, rid, version, deleted, data in rows:
        raw = b"" if data is None else data.encode() if isinstance(data, str) else bytes(data)
        digest = hashlib.sha256(raw).hexdigest()
        yield f"{rtype}\t{rid}\t{int(version)}\t{int(bool(deleted))}\t{digest}\n".encode()


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_archive(out: Path, manifest: Manifest, members: dict[str, Path]) -> None:
    """Write the tar: the manifest first, then ``members`` (name to file); atomic rename."""
    for name, path in members.items():
        manifest.members[name] = file_sha256(path)
    tmp = out.with_name(out.name + ".part")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tmp, "w") as tar:
        data = manifest.to_json()
        info = tarfile.TarInfo("manifest.json")
        info.size, info.mtime = len(data), int(datetime.now(UTC).timestamp())
        tar.addfile(info, io.BytesIO(data))
        for name, path in members.items():
            tar.add(path, arcname=name)
    durable_replace(tmp, out)


def durable_replace(src: Path, dest: Path) -> None:
    """Rename ``src`` to ``dest`` after flushing it to disk, then flush the directory, so
    that after a crash ``dest`` is the old file or the whole new one."""
    fd = os.open(src, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    src.replace(dest)
    dir_fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_manifest(tar: tarfile.TarFile) -> Manifest:
    """The archive's manifest; BackupError when missing."""
    try:
        member = tar.extractfile("manifest.json")
    except KeyError:
        member = None
    if member is None:
        raise BackupError("archive has no manifest.json: not a cmio backup")
    return Manifest.from_json(member.read())


def verify_member(tar: tarfile.TarFile, manifest: Manifest, name: str, dest: Path) -> Path:
    """Extract member ``name`` to ``dest`` and check its SHA-256 against the manifest."""
    want = manifest.members.get(name)
    if want is None:
        raise BackupError(f"manifest lists no member {name!r}")
    try:
        src = tar.extractfile(name)
    except KeyError:
        src = None
    if src is None:
        raise BackupError(f"archive member {name!r} is missing")
    h = hashlib.sha256()
    with dest.open("wb") as f:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            f.write(chunk)
    if h.hexdigest() != want:
        raise BackupError(f"archive member {name!r} is corrupt (SHA-256 mismatch)")
    return dest


def compare_checksums(expected: Path, actual: Iterable[bytes]) -> None:
    """Check the restored resources against ``resources.tsv``; BackupError at the first
    difference (naming the resource)."""
    with expected.open("rb") as f:
        pairs = itertools.zip_longest(iter(f), iter(actual))
        for line_no, (want, got) in enumerate(pairs, start=1):
            if want != got:
                where = (want or got or b"?").split(b"\t")[:2]
                raise BackupError(
                    f"restored resource {b'/'.join(where).decode()} differs from the backup"
                    f" (resources.tsv line {line_no})"
                )
