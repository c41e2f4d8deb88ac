"""Search plans on PostgreSQL: ``EXPLAIN (ANALYZE)`` of bench/search.py's queries.

Usage::

    python bench/search_pg_plans.py --data DIR

Starts a throwaway PostgreSQL (:func:`cmio.testing.pg.running_postgres`), imports the
NDJSON files of ``DIR`` (e.g. a ``cmio synth --patients 500`` output), runs ``ANALYZE``,
then prints for each query of ``bench/search.py`` (``queries`` and ``more_queries``) the
median of 7 runs of the compiled page statement and the plan's scans, joins and
execution time. See https://www.postgresql.org/docs/15/using-explain.html.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psycopg

from cmio.bulk.importer import import_paths
from cmio.indexing import SearchIndexer
from cmio.model import load_model
from cmio.store import open_repository
from cmio.store.base import SearchClause, SearchQuery
from cmio.testing.pg import running_postgres

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search import more_queries, queries

_SHOWN = ("Scan", "Join", "Execution", "SubPlan", "Filter", "Sort")


def _values(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, str]:
    """The same kind of values bench/search.py picks (a busy patient, a family name...)."""

    def one(sql: str) -> str:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return str(row[0])

    pid = one(
        "SELECT target_id FROM reference_index WHERE resource_type = 'Observation'"
        " AND param = 'patient' GROUP BY target_id ORDER BY COUNT(*) DESC LIMIT 1"
    )
    code = conn.execute(
        "SELECT system, value FROM token_index WHERE resource_type = 'Condition'"
        " AND param = 'code' GROUP BY system, value ORDER BY COUNT(*) ASC LIMIT 1 OFFSET 5"
    ).fetchone()
    assert code is not None
    family = one(
        "SELECT norm FROM string_index WHERE resource_type = 'Patient' AND param = 'family'"
        " ORDER BY norm LIMIT 1 OFFSET 17"
    )
    month = one(
        "SELECT substr(low, 1, 7) FROM date_index WHERE resource_type = 'Encounter'"
        " AND param = 'date' GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT 1"
    )
    return {
        "pid": pid,
        "cond": f"{code[0]}|{code[1]}",
        "fam": family[:3],
        "family": family,
        "week": f"{month}-08",
        "week_end": f"{month}-15",
    }


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="folder of NDJSON files to import")
    args = parser.parse_args()
    model = load_model()
    with running_postgres() as url:
        indexer = SearchIndexer(model)
        repo = open_repository(url, indexer=indexer)
        t0 = time.perf_counter()
        import_paths(repo, sorted(Path(args.data).glob("*.ndjson")), model=model)
        print(f"imported in {time.perf_counter() - t0:.0f} s", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
            compiler = indexer.search_compiler
            values = _values(conn)
            for label, rtype, params, _ in queries(values) + more_queries(values):
                sort = tuple(v.split(",")[0] for k, v in params if k == "_sort")
                clauses = tuple(SearchClause(k, (v,)) for k, v in params if k != "_sort")
                query = SearchQuery(rtype, clauses, count=50, sort=sort, total=False)
                sql, _ = compiler.compile(query, "postgres")
                text = sql.text.replace("?", "%s")
                times: list[float] = []
                for _ in range(7):
                    t0 = time.perf_counter()
                    conn.execute(text, sql.params).fetchall()  # type: ignore[arg-type]
                    times.append((time.perf_counter() - t0) * 1000)
                print(f"## {label}: median {statistics.median(times):.2f} ms")
                plan = conn.execute(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + text,  # type: ignore[arg-type]
                    sql.params,
                ).fetchall()
                for row in plan:
                    if any(word in str(row[0]) for word in _SHOWN):
                        print("   ", str(row[0])[:160])
        repo.close()


if __name__ == "__main__":
    main()
