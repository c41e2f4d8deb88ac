"""Write cost of a create's rows in the SQLite store, per index table (thread CPU).

Creates ``--count`` generated resources (``bench/gen_ndjson.py``, shuffled with a fixed
seed, index rows extracted before the timing as the HTTP writer and the HL7 worker do)
through ``SqliteTransaction.create`` in transactions of ``--batch`` (``--savepoint``: each
create in its own savepoint, as the HL7 engine applies messages), on a fresh store or on
a copy of ``--db``. Prints this thread's CPU per resource (commits included) and, per
statement, the CPU per resource and per row. Run it against another checkout with
``PYTHONPATH=<checkout>/src`` to compare.

    python bench/index_rows.py [--count 3000] [--batch 16] [--savepoint] [--db STORE]
"""

from __future__ import annotations

import argparse
import collections
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from cmio.indexing.extract import SearchIndexer
from cmio.model import load_model
from cmio.store.sqlite import SqliteRepository, SqliteTransaction

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_ndjson import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--savepoint", action="store_true")
    parser.add_argument("--db", type=Path, default=None, help="a store to copy first")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cmio-index-rows-"))
    try:
        generate(tmp / "data", max(args.count, 1000), seed=7)
        resources: list[dict[str, Any]] = []
        for path in sorted((tmp / "data").glob("*.ndjson")):
            resources += [orjson.loads(line) for line in path.read_bytes().splitlines()]
        random.Random(1).shuffle(resources)
        resources = resources[: args.count]
        db = tmp / "store.db"
        if args.db is not None:
            shutil.copy(args.db, db)
        indexer = SearchIndexer(load_model())
        repo = SqliteRepository(db, indexer=indexer)
        ahead = [indexer.table_rows(r) for r in resources]
        spent: collections.Counter[str] = collections.Counter()
        rows: collections.Counter[str] = collections.Counter()
        inner = SqliteTransaction._executemany

        def timed(self: SqliteTransaction, sql: str, params: Iterable[Sequence[Any]]) -> None:
            params = list(params)
            started = time.thread_time()
            inner(self, sql, params)
            key = " ".join(sql.split()[:3])
            spent[key] += time.thread_time() - started
            rows[key] += len(params)

        SqliteTransaction._executemany = timed  # type: ignore[method-assign]
        started = time.thread_time()
        for start in range(0, len(resources), args.batch):
            with repo.transaction() as tx:
                for i in range(start, min(start + args.batch, len(resources))):
                    resource = resources[i]
                    if args.savepoint:
                        with repo.transaction() as nested:
                            nested.create(resource, id=resource["id"], ahead=ahead[i])
                    else:
                        tx.create(resource, id=resource["id"], ahead=ahead[i])
        total = time.thread_time() - started
        repo.close()
        n = len(resources)
        print(f"{n} creates, transactions of {args.batch}{', savepoints' if args.savepoint else ''}:"
              f" {total / n * 1e6:.0f} µs CPU per resource (this thread, commits included)")  # fmt: skip
        for key, seconds in spent.most_common():
            print(f"  {key:32s} {seconds / n * 1e6:7.1f} µs/resource {rows[key] / n:5.2f} rows"
                  f" {seconds / max(1, rows[key]) * 1e6:6.1f} µs/row")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
