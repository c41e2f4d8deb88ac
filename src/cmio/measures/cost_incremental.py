"""Cost of care refreshed incrementally after a day's new rows.

:class:`CostState` keeps the cost inputs (the tables of :func:`cmio.measures.cost.read_cost`)
and the intermediate tables of :func:`cmio.measures.cost.cost_of_care` (``cost_facts``,
one row per adjudicated EOB; ``cost_member_months``; ``cost_populations``) in a
:class:`cmio.measures.state.StateDb`. :meth:`CostState.refresh` appends the day's input
rows and recomputes only the affected keys:

* facts of the EOBs that are new, or whose Claim, Encounter or Organization rows
  arrived (Claim -> Encounter -> EOB by reference);
* member months of the patients with new Coverage rows;
* populations (the rule of :func:`cmio.measures.cost.diabetes_populations_sql`) of the
  patients with new Condition or HbA1c rows (a given population table is replaced
  when the refresh brings one);

then re-aggregates the outputs from the facts (one row per EOB, so the distinct
patient and encounter counts stay exact). The results equal :func:`cost_of_care` over
the base rows plus the day's rows (``tests/measures/test_incremental_oversight.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

from cmio.measures.cost import (
    _FACTS,
    _MEMBER_MONTHS,
    _QUERIES,
    COST_OUTPUTS,
    _month_table,
    cost_views,
    diabetes_populations_sql,
)
from cmio.measures.sqlengine import Period
from cmio.measures.state import StateDb

__all__ = ["CostState", "cost_state"]

_NULL_KEY = "\x00"
"""Stands for a NULL id in key tables (ids are never NUL characters)."""


class CostState:
    """Cost inputs and intermediate tables of one measurement period.

    Args:
        db: where the tables are kept.
        period: the measurement period.
    """

    def __init__(self, db: StateDb, period: Period) -> None:
        self.db = db
        self.period = period
        self._facts = _FACTS.format(first=period.first, last=period.last)
        self._given_populations = False

    def build(
        self, inputs: Mapping[str, pa.Table], *, populations: pa.Table | None = None
    ) -> dict[str, pa.Table]:
        """Store the inputs, compute every table and return the outputs
        (:data:`cmio.measures.cost.COST_OUTPUTS`, as :func:`cost_of_care`)."""
        db = self.db
        for name in cost_views():
            if name not in inputs:
                raise ValueError(f"cost input {name} is missing")
            db.store(name, inputs[name])
        db.store("cost_calendar", _month_table(self.period))
        self._given_populations = populations is not None
        if populations is not None:
            db.store("cost_populations", populations.select(["patient_id", "population"]))
        else:
            db.create("cost_populations", diabetes_populations_sql(self.period))
        db.create("cost_facts", self._facts)
        db.create("cost_member_months", _MEMBER_MONTHS)
        db.write_meta("cost", {"period": _period_text(self.period),
                               "populations": "given" if populations is not None else "rule"})  # fmt: skip
        return self.outputs()

    @classmethod
    def open(cls, db: StateDb) -> CostState:
        """The cost state stored in ``db`` (built before).

        Raises:
            ValueError: ``db`` holds no cost state.
        """
        meta = db.read_meta("cost")
        if meta is None:
            raise ValueError("the database holds no cost state (build it first)")
        state = cls(db, Period.parse(meta["period"]))
        state._given_populations = meta["populations"] == "given"
        return state

    def outputs(self) -> dict[str, pa.Table]:
        """The output tables over the current state."""
        return {name: self.db.query(_QUERIES[name]) for name in COST_OUTPUTS}

    def refresh(
        self, day: Mapping[str, pa.Table], *, populations: pa.Table | None = None
    ) -> dict[str, pa.Table]:
        """Append the day's input rows (tables named as :func:`cost_views`; absent ones
        bring nothing), recompute the affected facts, member months and populations, and
        return the outputs.

        Args:
            day: the day's rows by input table.
            populations: a new ``(patient_id, population)`` table replacing the given one
                (only when the state was built with one).
        """
        db = self.db
        unknown = sorted(set(day) - set(cost_views()))
        if unknown:
            raise ValueError(f"unknown cost input(s) {', '.join(unknown)}")
        with db.transaction():
            for name, table in day.items():
                db.append(name, table)
            self._refresh_facts(day)
            patients = _ids(day.get("coverage"), "patient_id")
            self._replace(
                "cost_member_months",
                _MEMBER_MONTHS,
                "patient_id",
                patients,
                {"FROM coverage AS cv": "coverage"},
            )
            if populations is not None:
                if not self._given_populations:
                    raise ValueError("populations given to a state built without them")
                db.store("cost_populations", populations.select(["patient_id", "population"]))
            elif not self._given_populations:
                touched = _ids(day.get("conditions"), "patient_id") | _ids(
                    day.get("a1c"), "patient_id"
                )
                rule = diabetes_populations_sql(self.period)
                self._replace(
                    "cost_populations",
                    rule,
                    "patient_id",
                    touched,
                    {"FROM conditions": "conditions", "FROM a1c": "a1c"},
                )
        return self.outputs()

    def _refresh_facts(self, day: Mapping[str, pa.Table]) -> None:
        db = self.db
        eobs = _ids(day.get("eobs"), "eob_id")
        claims = _ids(day.get("claims"), "claim_id")
        encounters = _ids(day.get("encounters"), "encounter_id")
        orgs = _ids(day.get("organizations"), "org_id")
        if encounters:
            claims |= _lookup(
                db,
                encounters,
                "SELECT DISTINCT claim_id FROM claims WHERE encounter_id IN",
                "claim_id",
            )
        if claims:
            eobs |= _lookup(
                db, claims, "SELECT DISTINCT eob_id FROM eobs WHERE claim_id IN", "eob_id"
            )
        if orgs:
            eobs |= _lookup(
                db, orgs, "SELECT DISTINCT eob_id FROM cost_facts WHERE department_id IN", "eob_id"
            )
        self._replace("cost_facts", self._facts, "eob_id", eobs, {"FROM eobs AS e": "eobs"})

    def _replace(
        self, table: str, sql: str, column: str, keys: set[str], scans: Mapping[str, str]
    ) -> None:
        """Rows of ``table`` with ``column`` in ``keys`` recomputed by ``sql`` with its
        scans (``FROM <table>`` clauses, by the table they read) narrowed to the keys."""
        if not keys:
            return
        where = f"({column} IN (SELECT k FROM _cmio_k)"
        where += f" OR {column} IS NULL)" if _NULL_KEY in keys else ")"
        for clause, source in scans.items():
            alias = clause.partition(" AS ")[2]
            if clause not in sql:
                raise RuntimeError(f"{clause!r} not in the query")
            narrowed = f"FROM (SELECT * FROM {source} WHERE {where})"
            sql = sql.replace(clause, f"{narrowed} AS {alias or source}")
        with self.db.registered(_cmio_k=_keys(keys)):
            self.db.execute(f"DELETE FROM {table} WHERE {where}")
            self.db.insert(table, sql)


def cost_state(
    path: Path | str, inputs: Mapping[str, pa.Table], period: Period,
    populations: pa.Table | None = None,
) -> tuple[dict[str, pa.Table], bool]:  # fmt: skip
    """Cost outputs kept in the DuckDB file ``path``: built from ``inputs`` the first time,
    later refreshed with ``inputs`` as the new rows (``populations`` replace the given
    ones).

    Returns:
        The outputs, and whether they were refreshed (False: built).

    Raises:
        ValueError: the file's state has another period.
    """
    with StateDb(path) as db:
        if db.read_meta("cost") is None:
            return CostState(db, period).build(inputs, populations=populations), False
        state = CostState.open(db)
        if state.period != period:
            raise ValueError(
                f"{path}: built for {_period_text(state.period)} (asked: {_period_text(period)})"
            )
        return state.refresh(inputs, populations=populations), True


def _period_text(period: Period) -> str:
    return f"{period.first}/{period.last}"


def _ids(table: pa.Table | None, column: str) -> set[str]:
    if table is None or not table.num_rows or column not in table.column_names:
        return set()
    return {_NULL_KEY if v is None else str(v) for v in table[column].to_pylist()}


def _lookup(db: StateDb, keys: set[str], sql: str, column: str) -> set[str]:
    """The ``column`` values of ``sql`` (a query ending in ``... IN``) over the key table
    of ``keys`` (registered as ``_cmio_k``), NULL as :data:`_NULL_KEY`."""
    with db.registered(_cmio_k=_keys(keys)):
        found = db.query(f"{sql} (SELECT k FROM _cmio_k)")
    return _ids(found, column)


def _keys(keys: set[str]) -> pa.Table:
    return pa.table({"k": pa.array(sorted(keys), pa.string())})
