"""Peer SQL on FHIR implementations, run from ``bench/.venv-peers`` by ``bench/views.py``.

``fhir4ds`` (DuckDB-based; its connection's ``INSTALL json`` needs the network, so
that one statement is skipped: the json extension is built into DuckDB) and
``sqlonfhir`` (a pure-Python evaluator), each on the first SUBSET resources of the
view's type. Prints ``PEER name rows seconds`` (median of 3) or ``PEERFAIL name reason``.

Usage (from bench/views.py)::

    bench/.venv-peers/bin/python bench/views_peers.py NDJSON_DIR VIEW_JSON SUBSET
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def _load(folder: Path, rtype: str, count: int) -> list[dict[str, Any]]:
    out = []
    with (folder / f"{rtype}.ndjson").open("rb") as src:
        for line in src:
            out.append(json.loads(line))
            if len(out) >= count:
                break
    return out


def _time(fn: Any) -> tuple[int, float]:
    rows = fn()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        rows = fn()
        times.append(time.perf_counter() - start)
    return rows, statistics.median(times)


def _fhir4ds(resources: list[dict[str, Any]], view: dict[str, Any]) -> tuple[int, float]:
    import duckdb

    real_execute = duckdb.DuckDBPyConnection.execute
    original_connect = duckdb.connect

    class Conn:
        def __init__(self, con: Any) -> None:
            self._con = con

        def execute(self, sql: str, *args: Any) -> Any:
            if sql.strip().upper().startswith("INSTALL JSON"):
                return self._con
            return real_execute(self._con, sql, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._con, name)

    duckdb.connect = lambda *a, **k: Conn(original_connect(*a, **k))  # type: ignore[assignment]
    from fhir4ds.datastore import QuickConnect

    db = QuickConnect.duckdb(":memory:")
    db.load_resources(resources)
    return _time(lambda: len(db.execute_to_dataframe(view)))


def _sqlonfhir(resources: list[dict[str, Any]], view: dict[str, Any]) -> tuple[int, float]:
    import sqlonfhir

    return _time(lambda: len(list(sqlonfhir.evaluate(resources, view))))


def main() -> None:
    folder, view, subset = Path(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
    resources = _load(folder, view["resource"], subset)
    for name, fn in (("sqlonfhir", _sqlonfhir), ("fhir4ds", _fhir4ds)):
        try:
            rows, seconds = fn(resources, view)
            print(f"PEER {name} {rows} {seconds}", flush=True)
        except Exception as exc:  # report and go on: a peer failing is a result too
            reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
            print(f"PEERFAIL {name} {reason}", flush=True)


if __name__ == "__main__":
    main()
