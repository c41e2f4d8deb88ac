"""``cmio doctor``: check the store's invariants and repair the search index.

Checks (each yields :class:`Finding` rows):

* ``schema``: the store schema version is one this cmio knows;
* ``integrity``: SQLite ``PRAGMA integrity_check`` and the FTS5 index's own check
  (https://www.sqlite.org/fts5.html#the_integrity_check_command); PostgreSQL: every
  store table exists and no index is invalid (``pg_index.indisvalid``);
* ``history``: every resource's versions run 1..n without gaps, and history rows
  belong to a current row;
* ``current``: the current row is the latest version (same version, same deleted flag);
* ``index``: every current resource's index rows equal a fresh extraction (a random
  sample, or all with ``full``), and no index rows belong to missing or deleted ones;
* ``audit``: the audit hash chain holds (:func:`cmio.security.audit.verify_rows`);
* ``journal`` (when given one): the HL7 v2 engine's journal is sound and every message
  it processed is in the store (:mod:`cmio.admin.doctor_journal`).

``fix`` rewrites the index rows of the resources found wrong (the same rows
``$reindex`` would write). See https://hl7.org/fhir/R4/search.html.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import orjson

from cmio.admin.archive import STORE_TABLES
from cmio.admin.schema import check_schema, stored_schema_version
from cmio.indexing import SearchIndexer
from cmio.indexing.tables import INDEX_TABLES
from cmio.store import Repository

__all__ = [
    "DoctorReport",
    "Finding",
    "check_schema",
    "diagnose",
    "examine",
    "stored_schema_version",
]

_CHUNK = 200
_SHOW = 20  # findings listed per check before they are only counted


class _Sql(Protocol):
    def _fetchall(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]: ...


@dataclasses.dataclass(frozen=True)
class Finding:
    """One broken invariant.

    Attributes:
        check: ``schema``, ``integrity``, ``history``, ``current``, ``index``, ``audit``.
        subject: what is wrong (``Patient/p1``, a table, an audit ``seq``).
        message: what was found.
        fixed: ``fix`` repaired it.
    """

    check: str
    subject: str
    message: str
    fixed: bool = False


@dataclasses.dataclass
class DoctorReport:
    """All findings and how much was examined."""

    findings: list[Finding] = dataclasses.field(default_factory=list)
    checked: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (or everything wrong was fixed)."""
        return all(f.fixed for f in self.findings)

    def add(self, check: str, subject: str, message: str) -> None:
        """Record a finding (only the first few per check are kept; the rest are counted)."""
        shown = sum(1 for f in self.findings if f.check == check)
        if shown < _SHOW:
            self.findings.append(Finding(check, subject, message))
        elif shown == _SHOW:
            self.findings.append(Finding(check, "...", "more findings of this kind"))


def diagnose(
    url: str,
    indexer: SearchIndexer,
    *,
    full: bool = False,
    sample: int = 1000,
    fix: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    journal: str | Path | None = None,
) -> DoctorReport:
    """Check the store at ``url``: its schema version first, then :func:`examine` with the
    stored custom SearchParameters in effect (as the server and ``$reindex`` use them),
    then the HL7 v2 ``journal`` against the store when one is given."""
    from cmio.bulk.reindex import apply_custom_parameters
    from cmio.store import open_repository

    version, supported = stored_schema_version(url)
    problem = check_schema(version, supported)
    if problem is not None:
        report = DoctorReport()
        report.add("schema", "schema_version", problem)
        return report
    repo = open_repository(url, indexer=indexer)
    try:
        apply_custom_parameters(repo, indexer)
        report = examine(repo, indexer, full=full, sample=sample, fix=fix, progress=progress)
        report.checked["schema"] = version or 0
        if journal is not None:
            from cmio.admin.doctor_journal import check_journal

            if progress is not None:
                progress("journal", 0, 0)
            check_journal(journal, repo, report)
        return report
    finally:
        repo.close()


def _all(repo: Repository, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with repo.read_transaction() as tx:
        return cast(_Sql, tx)._fetchall(sql, params)


def examine(
    repo: Repository,
    indexer: SearchIndexer,
    *,
    full: bool = False,
    sample: int = 1000,
    fix: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> DoctorReport:
    """Run every check on ``repo`` (schema already checked by the caller)."""
    report = DoctorReport()
    steps: list[tuple[str, Callable[[Repository, DoctorReport], None]]] = [
        ("integrity", _integrity),
        ("history", _history),
        ("current", _current),
        ("audit", _audit),
    ]
    for name, step in steps:
        if progress is not None:
            progress(name, 0, 0)
        try:
            step(repo, report)
        except Exception as exc:  # a damaged store may fail the check itself
            report.add(name, "store", f"check failed: {exc}")
    try:
        broken = _index(repo, indexer, report, full=full, sample=sample, progress=progress)
    except Exception as exc:
        report.add("index", "store", f"check failed: {exc}")
        return report
    if fix and broken:
        _fix(repo, indexer, report, broken)
    return report


def _integrity(repo: Repository, report: DoctorReport) -> None:
    if repo.dialect == "sqlite":
        rows = _all(repo, "PRAGMA integrity_check")
        problems = [str(r[0]) for r in rows if str(r[0]) != "ok"]
        for problem in problems:
            report.add("integrity", "database", problem)
        with repo.transaction() as tx:  # FTS5 runs its check as a special INSERT
            try:
                cast(Any, tx)._execute(
                    "INSERT INTO text_fts (text_fts) VALUES ('integrity-check')", ()
                )
            except Exception as exc:
                report.add("integrity", "text_fts", f"full-text index: {exc}")
        report.checked["integrity"] = 1
        return
    tables = {
        str(r[0])
        for r in _all(
            repo,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
        )
    }
    for table in STORE_TABLES:
        if table not in tables:
            report.add("integrity", table, "store table is missing")
    invalid = _all(
        repo,
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND NOT (i.indisvalid AND i.indisready)",
    )
    for row in invalid:
        report.add("integrity", str(row[0]), "index is invalid (rebuild with REINDEX)")
    report.checked["integrity"] = len(tables)


def _history(repo: Repository, report: DoctorReport) -> None:
    rows = _all(
        repo,
        "SELECT type, id, count(*), min(version), max(version) FROM resource_history"
        " GROUP BY type, id HAVING count(*) <> max(version) OR min(version) <> 1",
    )
    for rtype, rid, n, low, high in rows:
        report.add(
            "history", f"{rtype}/{rid}", f"versions not contiguous: {n} rows for {low}..{high}"
        )
    orphans = _all(
        repo,
        "SELECT DISTINCT h.type, h.id FROM resource_history h WHERE NOT EXISTS"
        " (SELECT 1 FROM resource r WHERE r.type = h.type AND r.id = h.id)",
    )
    for rtype, rid in orphans:
        report.add("history", f"{rtype}/{rid}", "history without a current row")
    count = _all(repo, "SELECT count(*) FROM resource_history")
    report.checked["history"] = int(count[0][0])


def _current(repo: Repository, report: DoctorReport) -> None:
    rows = _all(
        repo,
        "SELECT r.type, r.id, r.version, r.deleted, h.version, h.deleted FROM resource r"
        " LEFT JOIN resource_history h ON h.type = r.type AND h.id = r.id AND h.version ="
        " (SELECT max(version) FROM resource_history m WHERE m.type = r.type AND m.id = r.id)"
        " WHERE h.version IS NULL OR h.version <> r.version OR h.deleted <> r.deleted"
        " OR (r.data IS NULL AND NOT r.deleted)",
    )
    for rtype, rid, version, deleted, latest, latest_deleted in rows:
        if latest is None:
            message = f"current version {version} has no history"
        elif latest != version:
            message = f"current row says version {version}, history's latest is {latest}"
        elif bool(deleted) != bool(latest_deleted):
            message = f"deleted flag {bool(deleted)} differs from history's {bool(latest_deleted)}"
        else:
            message = "current version has no content"
        report.add("current", f"{rtype}/{rid}", message)
    count = _all(repo, "SELECT count(*) FROM resource")
    report.checked["current"] = int(count[0][0])


def _audit(repo: Repository, report: DoctorReport) -> None:
    from cmio.security.audit import AuditLog, verify_rows

    result = verify_rows(AuditLog(repo).rows())
    if not result.ok:
        report.add("audit", f"seq {result.broken_at}", result.reason or "chain broken")
    report.checked["audit"] = result.count


def _columns(table: str) -> list[str]:
    spec = next(t for t in INDEX_TABLES if t.name == table)
    return ["resource_type", "resource_id", "param", *(c[0] for c in spec.columns)]


def _norm(table: str, row: Sequence[Any]) -> tuple[Any, ...]:
    """``(table, *row)`` comparable across extraction and storage: numbers as floats (REAL
    columns come back as float), ``text_index`` bodies as sorted word sets (their order
    follows the JSON's key order, which stamping the id and meta may change)."""
    out = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in row]
    if table == "text_index" and isinstance(out[-1], str):
        out[-1] = " ".join(sorted(set(out[-1].split())))
    return (table, *out)


def _keys(repo: Repository, full: bool, sample: int) -> Iterator[list[tuple[str, str]]]:
    """Chunks of current, non-deleted resource keys (all, or a random sample)."""
    if full:
        after: tuple[str, str] | None = None
        while True:
            with repo.read_transaction() as tx:
                batch = tx.scan(after, _CHUNK)
            if not batch:
                return
            yield [(s.type, s.id) for s in batch]
            after = (batch[-1].type, batch[-1].id)
    else:
        picked = _all(
            repo,
            "SELECT type, id FROM resource WHERE NOT deleted ORDER BY random() LIMIT ?",
            (sample,),
        )
        keys = sorted((str(t), str(i)) for t, i in picked)
        for start in range(0, len(keys), _CHUNK):
            yield keys[start : start + _CHUNK]


def _index(
    repo: Repository,
    indexer: SearchIndexer,
    report: DoctorReport,
    *,
    full: bool,
    sample: int,
    progress: Callable[[str, int, int], None] | None,
) -> list[tuple[str, str]]:
    """Compare index rows with a fresh extraction; returns the keys whose rows are wrong."""
    broken: list[tuple[str, str]] = []
    total = int(_all(repo, "SELECT count(*) FROM resource WHERE NOT deleted")[0][0])
    total = total if full else min(total, sample)
    done = 0
    for keys in _keys(repo, full, sample):
        stored: dict[tuple[str, str], Counter[tuple[Any, ...]]] = {k: Counter() for k in keys}
        wanted: dict[tuple[str, str], Counter[tuple[Any, ...]]] = {k: Counter() for k in keys}
        by_type: dict[str, list[str]] = {}
        for rtype, rid in keys:
            by_type.setdefault(rtype, []).append(rid)
        for rtype, ids in by_type.items():
            marks = ", ".join("?" * len(ids))
            for table in INDEX_TABLES:
                cols = _columns(table.name)
                sql = (
                    f"SELECT {', '.join(cols)} FROM {table.name}"
                    f" WHERE resource_type = ? AND resource_id IN ({marks})"
                )
                for row in _all(repo, sql, (rtype, *ids)):
                    stored[(row[0], row[1])][_norm(table.name, row)] += 1
            for row in _all(
                repo,
                f"SELECT id, data FROM resource WHERE type = ? AND id IN ({marks})",
                (rtype, *ids),
            ):
                data = row[1].encode() if isinstance(row[1], str) else bytes(row[1])
                for name, rows in indexer.keyed_rows(orjson.loads(data)).items():
                    for r in rows:
                        wanted[(rtype, str(row[0]))][_norm(name, r)] += 1
        for key in keys:
            if stored[key] != wanted[key]:
                missing = sum((wanted[key] - stored[key]).values())
                extra = sum((stored[key] - wanted[key]).values())
                report.add(
                    "index",
                    f"{key[0]}/{key[1]}",
                    f"index rows differ from a fresh extraction ({missing} missing, {extra} extra)",
                )
                broken.append(key)
        done += len(keys)
        if progress is not None:
            progress("index", done, total)
    for table in INDEX_TABLES:
        orphans = _all(
            repo,
            f"SELECT DISTINCT t.resource_type, t.resource_id FROM {table.name} t WHERE NOT EXISTS"
            " (SELECT 1 FROM resource r WHERE r.type = t.resource_type AND r.id = t.resource_id"
            " AND NOT r.deleted)",
        )
        for rtype, rid in orphans:
            report.add(
                "index", f"{rtype}/{rid}", f"{table.name} rows for a missing or deleted resource"
            )
            broken.append((str(rtype), str(rid)))
    report.checked["index"] = done
    return broken


def _fix(
    repo: Repository, indexer: SearchIndexer, report: DoctorReport, broken: list[tuple[str, str]]
) -> None:
    """Rewrite the index rows of ``broken`` (none for missing or deleted resources)."""
    keys = sorted(set(broken))
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        with repo.transaction() as tx:
            rows = []
            for rtype, rid in chunk:
                current = tx.current(rtype, rid)
                data = None if current is None or current.deleted else current.data
                rows.append({} if data is None else indexer.keyed_rows(orjson.loads(data)))
            tx.replace_index(chunk, rows)
    report.findings = [
        dataclasses.replace(f, fixed=True) if f.check == "index" else f for f in report.findings
    ]
