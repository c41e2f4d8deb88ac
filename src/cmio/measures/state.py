"""A DuckDB database holding an oversight family's inputs and intermediate tables, so a
day's new rows refresh its results without recomputing them in full.

The incremental families (:class:`cmio.measures.ehr_use.incremental.EhrUseState`,
:class:`cmio.measures.cost_incremental.CostState`,
:class:`cmio.measures.adherence_incremental.DataQualityState`) keep their tables in one
:class:`StateDb`: a DuckDB file (https://duckdb.org/docs/connect/overview) or an
in-memory database. Each refresh runs in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

__all__ = ["StateDb"]

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}$")


def _check(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"bad table name {name!r}")
    return name


class StateDb:
    """One DuckDB database of refreshable state.

    Args:
        path: the database file (``:memory:``: transient).
        threads: DuckDB worker threads (None: all cores).
    """

    def __init__(self, path: Path | str = ":memory:", *, threads: int | None = None) -> None:
        self.con = duckdb.connect(str(path))
        self.con.execute("SET enable_progress_bar = false")
        # A refresh commits a few rows to the write-ahead log; checkpointing (rewriting
        # the changed row groups of large tables) waits for the log to grow or the close.
        self.con.execute("SET checkpoint_threshold = '1GB'")
        if threads is not None:
            self.con.execute(f"SET threads = {int(threads)}")

    def close(self) -> None:
        """Close the database."""
        self.con.close()

    def __enter__(self) -> StateDb:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def has(self, name: str) -> bool:
        """Whether table ``name`` exists."""
        rows = self.con.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()
        return bool(rows)

    def store(self, name: str, table: pa.Table) -> None:
        """Table ``name`` (replaced) holding the rows of ``table``."""
        self.con.register("_cmio_in", table)
        try:
            self.con.execute(f"CREATE OR REPLACE TABLE {_check(name)} AS SELECT * FROM _cmio_in")
        finally:
            self.con.unregister("_cmio_in")

    def create(self, name: str, sql: str) -> None:
        """Table ``name`` (replaced) holding the rows of the query ``sql``."""
        self.con.execute(f"CREATE OR REPLACE TABLE {_check(name)} AS {sql}")

    def append(self, name: str, table: pa.Table) -> int:
        """Append ``table``'s rows to table ``name`` (columns by name); the row count."""
        if not table.num_rows:
            return 0
        columns = [r[0] for r in self.con.execute(f"DESCRIBE {_check(name)}").fetchall()]
        self.con.register("_cmio_in", table)
        try:
            names = ", ".join(f'"{c}"' for c in columns)
            self.con.execute(f"INSERT INTO {name} ({names}) SELECT {names} FROM _cmio_in")
        finally:
            self.con.unregister("_cmio_in")
        return int(table.num_rows)

    def insert(self, name: str, sql: str) -> None:
        """Append the rows of the query ``sql`` to table ``name``."""
        self.con.execute(f"INSERT INTO {_check(name)} {sql}")

    def write_meta(self, family: str, values: Mapping[str, str]) -> None:
        """Record what ``family``'s state was built with (its period, options)."""
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS cmio_state (family VARCHAR, key VARCHAR, value VARCHAR)"
        )
        self.con.execute("DELETE FROM cmio_state WHERE family = ?", [family])
        for key, value in values.items():
            self.con.execute("INSERT INTO cmio_state VALUES (?, ?, ?)", [family, key, value])

    def read_meta(self, family: str) -> dict[str, str] | None:
        """What ``family``'s state was built with; None when it holds no such state."""
        if not self.has("cmio_state"):
            return None
        rows = self.con.execute(
            "SELECT key, value FROM cmio_state WHERE family = ?", [family]
        ).fetchall()
        return {str(k): str(v) for k, v in rows} if rows else None

    def query(self, sql: str) -> pa.Table:
        """Rows of ``sql`` as Arrow."""
        return self.con.sql(sql).to_arrow_table()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement."""
        self.con.execute(sql, params)

    @contextmanager
    def registered(self, **tables: pa.Table) -> Iterator[None]:
        """Arrow tables visible to queries under the given names for the block."""
        for name, table in tables.items():
            self.con.register(_check(name), table)
        try:
            yield
        finally:
            for name in tables:
                self.con.unregister(name)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: committed at the end of the block, rolled back on error."""
        self.con.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")
