"""Build a million-resource SQLite store for the search benchmarks from a smaller one.

Usage::

    python bench/search_scale.py --source /tmp/q/store3k.db --out /tmp/s7/store1m.db
    python bench/search_scale.py --out /tmp/s7/store1m.db --check-only

Importing a million generated resources through the write path takes hours on this
machine, so the store is grown from an imported one (``cmio synth --patients 3000`` +
``cmio import``: 334,836 resources) by copying its rows under fresh ids:

* the source file is copied as is (copy 0);
* copies 1 .. ``--copies`` repeat every resource except the shared ones (practitioners,
  organizations, locations, schedules, devices: types with fewer than ``--shared-below``
  resources), each id ``X`` becoming ``X-cK``;
* one partial copy repeats the compartments of ``--partial`` patients, so that the store
  reaches 10,000 patients; into it the largest patients are merged (their references
  point at one of them) until one patient has at least ``--big`` resources in its
  compartment, for ``Patient/$everything``.

Every id of a copied resource is rewritten wherever it occurs: the resource's JSON (its
``id`` and every reference), the history row, ``resource_id`` of every index table,
reference targets and URLs, token values (``_compartment``) and URIs. Full-text rows are
recomputed from the rewritten JSON (:func:`cmio.indexing.text.text_rows`, the ids are
among the words). References to resources that were not copied (shared resources, the
source's) keep pointing at the originals. ``--check-only`` (also run after a build)
compares counts, re-extracts a sample of copied resources with the search indexer and
compares their rows, and runs patient-scoped searches against the in-memory matcher
(:mod:`cmio.search.memory`) on a sample. https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.progress import Progress

from cmio.indexing.text import text_rows

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: index tables whose rows are copied with SQL (text_index is recomputed)
TABLES = {
    "token_index": "param, system, remap(value)",
    "string_index": "param, norm, exact",
    "reference_index": "param, target_type, remap(target_id), remap(url)",
    "date_index": "param, low, high",
    "number_index": "param, low, high",
    "quantity_index": "param, low, high, system, code, canon_low, canon_high, canon_code",
    "uri_index": "param, remap(value)",
}


class Remap:
    """Rewrites the ids of one copy wherever they occur (SQL functions ``remap`` and
    ``remap_blob``)."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.blob_ids: dict[bytes, bytes] = {}
        self._text = re.compile(UUID)
        self._blob = re.compile(UUID.encode())

    def set(self, ids: dict[str, str]) -> None:
        """Use ``ids`` (old id -> new id) from now on."""
        self.ids = ids
        self.blob_ids = {k.encode(): v.encode() for k, v in ids.items()}

    def text(self, value: str | None) -> str | None:
        """``value`` with every copied id replaced."""
        if value is None or "-" not in value:
            return value
        ids = self.ids
        return self._text.sub(lambda m: ids.get(m.group(0), m.group(0)), value)

    def blob(self, value: bytes | None) -> bytes | None:
        """The JSON bytes ``value`` with every copied id replaced."""
        if value is None:
            return None
        ids = self.blob_ids
        return self._blob.sub(lambda m: ids.get(m.group(0), m.group(0)), value)


def _secondary_indexes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('resource', 'resource_history', 'text_index', "
        + ", ".join(f"'{t}'" for t in TABLES)
        + ")"
    ).fetchall()


def _compartments(conn: sqlite3.Connection) -> dict[str, int]:
    """Patient id -> number of resources in its compartment."""
    rows = conn.execute(
        "SELECT value, COUNT(*) FROM src.token_index WHERE param = '_compartment'"
        " AND system = 'Patient' GROUP BY value"
    )
    return dict(rows)


def _plan(
    conn: sqlite3.Connection, copies: int, partial: int, big: int, shared_below: int
) -> list[tuple[str, list[tuple[str, str]], dict[str, str]]]:
    """Per copy: its name, the (type, id) copied and the id map."""
    types = conn.execute("SELECT type, COUNT(*) FROM src.resource GROUP BY type").fetchall()
    shared = {t for t, n in types if n < shared_below}
    every = conn.execute("SELECT type, id FROM src.resource ORDER BY type, id").fetchall()
    copied = [(t, i) for t, i in every if t not in shared]
    plans = []
    for k in range(1, copies + 1):
        plans.append((f"c{k}", copied, {i: f"{i}-c{k}" for _, i in copied}))
    if partial:
        name = f"c{copies + 1}"
        sizes = _compartments(conn)
        ranked = sorted(sizes, key=lambda p: (-sizes[p], p))
        merged: list[str] = []
        for pid in ranked:
            if sum(sizes[p] for p in merged) >= big:
                break
            merged.append(pid)
        head, rest = merged[0], merged[1:]
        others = [p for p in sorted(sizes) if p not in merged]
        subset = set(merged) | set(others[: partial - 1])
        members = conn.execute(
            "SELECT DISTINCT resource_type, resource_id, value FROM src.token_index"
            " WHERE param = '_compartment' AND system = 'Patient'"
        ).fetchall()
        keys = sorted(
            {(t, i) for t, i, p in members if p in subset} - {("Patient", p) for p in rest}
        )
        ids = {i: f"{i}-{name}" for _, i in keys}
        for pid in rest:
            ids[pid] = f"{head}-{name}"
        plans.append((name, keys, ids))
    return plans


def _rows(conn: sqlite3.Connection, sql: str) -> Iterator[tuple[Any, ...]]:
    cur = conn.execute(sql)
    while batch := cur.fetchmany(2000):
        yield from batch


def build(source: Path, out: Path, copies: int, partial: int, big: int, shared_below: int) -> None:
    """Copy ``source`` to ``out`` and append the copies (see the module docstring)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".building")
    for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        stale.unlink(missing_ok=True)
    t0 = time.perf_counter()
    shutil.copyfile(source, tmp)
    print(f"copied {source} in {time.perf_counter() - t0:.0f} s", flush=True)
    conn = sqlite3.connect(f"file:{tmp}", uri=True, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    conn.execute("PRAGMA temp_store = FILE")
    conn.execute("ATTACH ? AS src", (f"file:{source}?mode=ro",))
    remap = Remap()
    conn.create_function("remap", 1, remap.text, deterministic=True)
    conn.create_function("remap_blob", 1, remap.blob, deterministic=True)
    plans = _plan(conn, copies, partial, big, shared_below)
    indexes = _secondary_indexes(conn)
    conn.execute("BEGIN")
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    steps = len(plans) * (3 + len(TABLES)) + 1
    with Progress() as progress:
        task = progress.add_task("building", total=steps)
        for name, keys, ids in plans:
            remap.set(ids)
            conn.execute("DROP TABLE IF EXISTS temp.copyset")
            conn.execute(
                "CREATE TEMP TABLE copyset (type TEXT, id TEXT, new_id TEXT, PRIMARY KEY (type, id))"
                " WITHOUT ROWID"
            )
            conn.executemany(
                "INSERT INTO temp.copyset VALUES (?, ?, ?)", [(t, i, ids[i]) for t, i in keys]
            )
            progress.update(task, description=f"{name}: resource")
            conn.execute(
                "INSERT INTO resource (type, id, version, last_updated, deleted, data)"
                " SELECT r.type, c.new_id, r.version, r.last_updated, r.deleted,"
                " remap_blob(r.data) FROM src.resource r JOIN temp.copyset c"
                " ON c.type = r.type AND c.id = r.id"
            )
            progress.advance(task)
            progress.update(task, description=f"{name}: history")
            conn.execute(
                "INSERT INTO resource_history"
                " (type, id, version, last_updated, deleted, method, data)"
                " SELECT h.type, c.new_id, h.version, h.last_updated, h.deleted, h.method,"
                " remap_blob(h.data) FROM src.resource_history h JOIN temp.copyset c"
                " ON c.type = h.type AND c.id = h.id ORDER BY h.seq"
            )
            progress.advance(task)
            for table, columns in TABLES.items():
                progress.update(task, description=f"{name}: {table}")
                conn.execute(
                    f"INSERT INTO {table} SELECT t.resource_type, c.new_id, {columns.replace('remap(', 'remap(t.')}"
                    f" FROM src.{table} t JOIN temp.copyset c"
                    " ON c.type = t.resource_type AND c.id = t.resource_id"
                )
                progress.advance(task)
            progress.update(task, description=f"{name}: full text")
            text = (
                (t, i, param, body)
                for t, i, data in _rows(
                    conn,
                    "SELECT c.type, c.new_id, r.data FROM resource r JOIN temp.copyset c"
                    " ON r.type = c.type AND r.id = c.new_id",
                )
                for param, body in text_rows(json.loads(data))
            )
            conn.executemany(
                "INSERT INTO text_index (resource_type, resource_id, param, body)"
                " VALUES (?, ?, ?, ?)",
                list(text),
            )
            progress.advance(task)
        progress.update(task, description="indexes")
        for _, sql in indexes:
            conn.execute(sql)
        progress.advance(task)
    conn.execute("COMMIT")
    conn.execute("DETACH src")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    tmp.replace(out)
    print(f"built {out} in {time.perf_counter() - t0:.0f} s", flush=True)


def check(out: Path, source: Path | None, sample: int) -> int:
    """Counts, re-extracted index rows of a sample, and searches against the in-memory
    matcher; the number of problems found."""
    from cmio.indexing import SearchIndexer
    from cmio.model import load_model
    from cmio.search.memory import MemoryIndex
    from cmio.store.base import SearchClause, SearchQuery
    from cmio.store.sqlite import SqliteRepository

    problems = 0
    conn = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
    total = conn.execute("SELECT COUNT(*) FROM resource").fetchone()[0]
    patients = conn.execute("SELECT COUNT(*) FROM resource WHERE type = 'Patient'").fetchone()[0]
    print(f"{out}: {total:,} resources, {patients:,} patients")
    for table in ("resource_history", "text_index", *TABLES):
        print(f"  {table}: {conn.execute(f'SELECT COUNT(*) FROM {table}').fetchone()[0]:,} rows")
    fts = conn.execute("SELECT COUNT(*) FROM text_fts_docsize").fetchone()[0]
    texts = conn.execute("SELECT COUNT(*) FROM text_index").fetchone()[0]
    if fts != texts:
        print(f"  PROBLEM: {fts} full-text documents for {texts} text rows")
        problems += 1
    model = load_model()
    indexer = SearchIndexer(model)
    rows = conn.execute(
        "SELECT type, id, data FROM resource WHERE id LIKE '%-c_' ORDER BY random() LIMIT ?",
        (sample,),
    ).fetchall()
    stale = 0
    for rtype, rid, data in rows:
        resource = json.loads(data)
        assert resource["id"] == rid, (rid, resource["id"])
        expected = indexer.table_rows(resource)
        for table in ("text_index", *TABLES):
            cols = "param, body" if table == "text_index" else TABLES[table].replace("remap(", "(")
            got = sorted(
                conn.execute(
                    f"SELECT {cols} FROM {table} WHERE resource_type = ? AND resource_id = ?",
                    (rtype, rid),
                ).fetchall(),
                key=repr,
            )
            if got != sorted(expected.get(table, []), key=repr):
                stale += 1
                print(f"  rows differ: {rtype}/{rid} {table}")
    print(f"  re-extracted {len(rows)} copied resources: {stale} table(s) differ")
    problems += stale
    repo = SqliteRepository(out, indexer=indexer)
    picks = (
        conn.execute(
            "SELECT value, COUNT(*) FROM token_index WHERE param = '_compartment'"
            " AND system = 'Patient' AND value LIKE '%-c_' GROUP BY value"
            " ORDER BY COUNT(*) DESC LIMIT 1"
        ).fetchall()
        + conn.execute(
            "SELECT id, 0 FROM resource WHERE type = 'Patient' AND id LIKE '%-c_'"
            " ORDER BY random() LIMIT 3"
        ).fetchall()
    )
    for pid, _ in picks:
        problems += _compare_patient(
            conn, repo, indexer, MemoryIndex, pid, SearchQuery, SearchClause
        )
    repo.close()
    return problems


def _compare_patient(
    conn: sqlite3.Connection,
    repo: Any,
    indexer: Any,
    memory_cls: Callable[..., Any],
    pid: str,
    query_cls: Callable[..., Any],
    clause_cls: Callable[..., Any],
) -> int:
    """Patient-scoped searches: SQL on the big store vs memory on the patient's data."""
    keys = conn.execute(
        "SELECT resource_type, resource_id FROM token_index WHERE param = '_compartment'"
        " AND system = 'Patient' AND value = ?",
        (pid,),
    ).fetchall()
    resources = [
        json.loads(
            conn.execute("SELECT data FROM resource WHERE type = ? AND id = ?", k).fetchone()[0]
        )
        for k in keys
    ]
    memory = memory_cls(indexer, resources)
    searches = [
        (
            "Observation",
            [("patient", pid), ("code", "http://loinc.org|4548-4"), ("date", "ge2024-01-01")],
        ),
        ("Observation", [("patient", pid)]),
        ("Observation", [("subject", f"Patient/{pid}"), ("category", "vital-signs")]),
        ("Condition", [("patient", pid), ("clinical-status", "active")]),
        ("Encounter", [("patient", pid), ("date", "ge2025-01-01")]),
        ("MedicationRequest", [("patient", pid)]),
        ("Patient", [("_id", pid), ("_has:Observation:patient:code", "http://loinc.org|4548-4")]),
        ("Claim", [("patient", pid)]),
        (None, [("_compartment", f"Patient|{pid}")]),
    ]
    problems = 0
    for rtype, params in searches:
        query = query_cls(
            rtype, tuple(clause_cls(k, (v,)) for k, v in params), count=5000, total=True
        )
        page = repo.search(query)
        got = {(s.type, s.id) for s in page.resources}
        want = memory.search(query)
        ok = got == want and page.total == len(got)
        problems += not ok
        print(f"  {'ok' if ok else 'DIFFERS'}: {rtype}?{params} SQL {len(got)} memory {len(want)}")
    return problems


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default="/tmp/q/store3k.db")
    parser.add_argument("--out", default="/tmp/s7/store1m.db")
    parser.add_argument("--copies", type=int, default=2, help="full copies added")
    parser.add_argument("--partial", type=int, default=1000, help="patients in the partial copy")
    parser.add_argument("--big", type=int, default=1000, help="resources of the merged patient")
    parser.add_argument("--shared-below", type=int, default=100)
    parser.add_argument("--sample", type=int, default=300, help="resources re-extracted")
    parser.add_argument("--check-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.check_only:
        build(Path(args.source), out, args.copies, args.partial, args.big, args.shared_below)
    sys.exit(1 if check(out, Path(args.source), args.sample) else 0)


if __name__ == "__main__":
    main()
