"""Physician EHR use refreshed incrementally after a day's new rows (DuckDB).

:class:`EhrUseState` keeps, in a :class:`cmio.measures.state.StateDb`, every usable
event as its attributed slice (``ehr_sl``: the event, its slice end ``b`` and the
slice's seconds inside scheduled time ``ins``), the scheduled intervals (``ehr_iv``)
and their merged islands with the scheduled time before each (``ehr_isl``), the orders
and provenance, and the additive per-clinician-month columns (``ehr_monthly``).
:meth:`EhrUseState.refresh` appends the day's rows and recomputes only what they can
change, by the session rules of :mod:`cmio.measures.ehr_use.sql`:

* **Sessions.** A clinician's events are ordered by start; an event's slice depends
  on the events before it only through the latest end so far (``reach``), and on the
  next event's start. With the day's earliest new event at ``T``, the slices of the
  stored events starting before ``M`` (the last stored start before ``T``) are
  unchanged; the events from ``M`` on and the day's are re-sliced with ``reach``
  seeded by the latest end of the events before ``M``.
* **Scheduled time.** With the day's earliest new interval at ``S``, the islands ending
  before ``S`` are unchanged; the intervals from ``K`` (the first island ending at or
  after ``S``, or ``S``) are merged again. The scheduled time before an instant
  changes only after ``K``, so the in-hours seconds of the slices ending after ``K``
  are recomputed (the ASOF lookup of :func:`cmio.measures.ehr_use.sql.inside_sql`).
* **Orders.** The clinician-months of the day's orders and of the orders the day's
  Provenance marks as entered by someone else.

The clinician-months any of these touch are summed again from the stored slices,
islands and orders, and the outputs follow from ``ehr_monthly``
(:func:`cmio.measures.ehr_use.metrics.ehr_outputs`). Input rows are appended (audit
events and provenance are records; a changed schedule row adds its slots' intervals,
which merge). The results equal :func:`cmio.measures.ehr_use.ehr_use` over the base
rows plus the day's (``tests/measures/test_incremental_oversight.py``). The queries
are in :mod:`cmio.measures.ehr_use.refresh_sql`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from cmio.measures.ehr_use import sql
from cmio.measures.ehr_use.metrics import (
    INPUT_SCHEMAS,
    SessionRules,
    _conform,
    ehr_outputs,
)
from cmio.measures.ehr_use.refresh_sql import (
    COLUMNS,
    INSIDE_SQL,
    cut_sql,
    month_start,
    monthly_rows_sql,
    slices_sql,
    with_cum_sql,
)
from cmio.measures.sqlengine import Period
from cmio.measures.state import StateDb

__all__ = ["EhrUseState", "ehr_use_state"]

_STORED = ("schedules", "slots", "orders", "provenance", "roles", "departments")


class EhrUseState:
    """EHR-use slices, schedules, orders and clinician-months of one period.

    Args:
        db: where the tables are kept.
        period: the measurement period.
        rules: session rules.
    """

    def __init__(self, db: StateDb, period: Period, rules: SessionRules | None = None) -> None:
        self.db = db
        self.period = period
        self.timeout = (rules or SessionRules()).timeout_s
        self._low: int | None = None

    def build(self, inputs: Mapping[str, pa.Table | None]) -> dict[str, pa.Table]:
        """Store and compute everything from ``inputs`` (as :func:`ehr_use`'s) and
        return the outputs (:data:`cmio.measures.ehr_use.OUTPUTS`)."""
        db = self.db
        for name in _STORED:
            db.store(name, _conform(name, inputs.get(name)))
        with db.registered(
            audit_events=_conform("audit_events", inputs.get("audit_events")),
            appointments=_conform("appointments", inputs.get("appointments")),
        ):
            db.create("ehr_iv", sql.intervals_sql(self.period))
            db.create("ehr_ev", sql.events_sql(self.period))
        db.create("ehr_isl", with_cum_sql(sql.islands_sql("SELECT * FROM ehr_iv")))
        db.create(
            "_ehr_s0",
            "SELECT *, ROW_NUMBER() OVER () AS rid FROM"
            f" ({slices_sql('SELECT * FROM ehr_ev', self.timeout)}) AS s",
        )
        db.execute("DROP TABLE ehr_ev")
        db.create("_ehr_x", "SELECT rid, user_id, t0 AS a, b FROM _ehr_s0")
        db.create("_ehr_ins", INSIDE_SQL.format(islands="ehr_isl"))
        columns = ", ".join(f"s.{c.strip()}" for c in COLUMNS.split(","))
        db.create(
            "ehr_sl",
            f"SELECT {columns}, s.b, COALESCE(n.ins, 0) AS ins, s.reach, s.rid FROM _ehr_s0"
            " AS s LEFT JOIN _ehr_ins AS n ON n.rid = s.rid ORDER BY s.t0",
        )
        db.execute("DROP TABLE _ehr_s0")
        db.create("_ehr_k", "SELECT DISTINCT user_id, month FROM ehr_sl UNION"
                            " SELECT DISTINCT user_id, month FROM ehr_isl UNION"
                            " SELECT DISTINCT requester_id, SUBSTRING(authored_ts, 1, 7)"
                            " FROM orders")  # fmt: skip
        db.create("ehr_monthly", monthly_rows_sql(self.period))
        db.write_meta("ehr_use", {"period": f"{self.period.first}/{self.period.last}",
                                  "timeout_s": str(self.timeout)})  # fmt: skip
        return ehr_outputs(db)

    @classmethod
    def open(cls, db: StateDb) -> EhrUseState:
        """The EHR-use state stored in ``db`` (built before).

        Raises:
            ValueError: ``db`` holds no EHR-use state.
        """
        meta = db.read_meta("ehr_use")
        if meta is None:
            raise ValueError("the database holds no EHR-use state (build it first)")
        rules = SessionRules(int(meta["timeout_s"]))
        return cls(db, Period.parse(meta["period"]), rules)

    def refresh(self, day: Mapping[str, pa.Table | None]) -> dict[str, pa.Table]:
        """Append the day's input rows (tables named as :data:`INPUT_SCHEMAS`), recompute
        what they change and return the outputs."""
        db = self.db
        unknown = sorted(set(day) - set(INPUT_SCHEMAS))
        if unknown:
            raise ValueError(f"unknown EHR-use input(s) {', '.join(unknown)}")
        new = {name: _conform(name, day.get(name)) for name in INPUT_SCHEMAS}
        registered = {f"_ehr_day_{n}": t for n, t in new.items()}
        with db.registered(**registered), db.transaction():
            for name in _STORED:
                db.append(name, new[name])
            db.create("_ehr_keys", "SELECT '' AS user_id, '' AS month WHERE false")
            self._refresh_sessions()
            self._refresh_schedule()
            self._refresh_orders()
            db.create("_ehr_k", "SELECT DISTINCT user_id, month FROM _ehr_keys")
            db.execute(
                "DELETE FROM ehr_monthly AS m WHERE EXISTS (SELECT 1 FROM _ehr_k AS k"
                " WHERE k.user_id = m.user_id AND k.month = m.month)"
            )
            first = _scalar(db, "SELECT MIN(month) FROM _ehr_k")
            db.insert("ehr_monthly", monthly_rows_sql(self.period, month_start(first)))
        return ehr_outputs(db)

    def _refresh_sessions(self) -> None:
        db = self.db
        events = sql.events_sql(self.period).replace(
            "FROM audit_events", "FROM _ehr_day_audit_events"
        )
        db.create("_ehr_new", events)
        # T: the user's earliest new start; M: the last stored start before T (else T);
        # pre: the latest end of the stored events before M (the running ``reach`` of the
        # last of them). ``ehr_sl`` is ordered by start, so a scan from a constant bound
        # skips the older row groups: first the two days before the earliest T, then,
        # for the users without a stored start in [bound, M), everything.
        db.create("_ehr_t", "SELECT user_id, MIN(t0) AS t FROM _ehr_new GROUP BY user_id")
        lo = _scalar(db, "SELECT MIN(t) - 172800 FROM _ehr_t")
        db.create("_ehr_cut", cut_sql(f"s.t0 >= {lo if lo is not None else 0}"))
        db.execute("DELETE FROM _ehr_cut WHERE pre IS NULL")
        db.insert(
            "_ehr_cut",
            "SELECT * FROM (" + cut_sql("true") + ") AS c"
            " WHERE c.user_id NOT IN (SELECT user_id FROM _ehr_cut)",
        )
        low = _scalar(db, "SELECT MIN(m) FROM _ehr_cut")
        self._low = int(low) if low is not None else None
        bound = f"s.t0 >= {self._low}" if self._low is not None else "true"
        redo = f"s.user_id = c.user_id AND s.t0 >= c.m AND {bound}"
        db.insert(
            "_ehr_keys", f"SELECT s.user_id, s.month FROM ehr_sl AS s JOIN _ehr_cut AS c ON {redo}"
        )
        db.insert("_ehr_keys", "SELECT user_id, month FROM _ehr_new")
        db.create(
            "_ehr_resliced",
            slices_sql(
                f"SELECT {COLUMNS} FROM _ehr_new UNION ALL SELECT s.user_id, s.month,"
                " s.activity_code, s.object_type, s.objects_known, s.start_ts, s.t0, s.t1"
                f" FROM ehr_sl AS s JOIN _ehr_cut AS c ON {redo}",
                self.timeout,
                seed="(SELECT user_id, pre FROM _ehr_cut)",
            ),
        )
        db.execute(
            f"DELETE FROM ehr_sl AS s WHERE {bound} AND EXISTS (SELECT 1 FROM _ehr_cut AS c"
            " WHERE s.user_id = c.user_id AND s.t0 >= c.m)"
        )
        first = int(db.query("SELECT COALESCE(MAX(rid), -1) + 1 AS n FROM ehr_sl")["n"][0].as_py())
        db.insert(
            "ehr_sl",
            f"SELECT *, {first} + ROW_NUMBER() OVER () AS rid FROM _ehr_resliced",
        )
        db.create("_ehr_redo", f"SELECT rid FROM ehr_sl WHERE rid >= {first}")

    def _refresh_schedule(self) -> None:
        db = self.db
        period = self.period
        day_slots = sql.intervals_sql(
            period, slots="_ehr_day_slots", appointments="_ehr_day_appointments"
        )
        day_schedules = sql.intervals_sql(period, schedules="_ehr_day_schedules", appointments=None)
        db.create(
            "_ehr_niv",
            f"SELECT * FROM ({day_slots}) UNION ALL SELECT * FROM ({day_schedules})",
        )
        # S: the earliest new interval; K: the first stored island ending at or after S
        # (else S). Islands from K on are merged again.
        db.create(
            "_ehr_scut",
            "WITH n AS (SELECT user_id, MIN(s) AS s FROM _ehr_niv GROUP BY user_id)"
            " SELECT n.user_id, LEAST(n.s, COALESCE(MIN(i.s), n.s)) AS k FROM n"
            " LEFT JOIN ehr_isl AS i ON i.user_id = n.user_id AND i.e >= n.s GROUP BY n.user_id, n.s",
        )
        if not _count(db, "_ehr_scut"):
            db.create("_ehr_scut", "SELECT '' AS user_id, CAST(0 AS BIGINT) AS k WHERE false")
        after = "i.user_id = c.user_id AND i.s >= c.k"
        db.insert(
            "_ehr_keys",
            f"SELECT i.user_id, i.month FROM ehr_isl AS i JOIN _ehr_scut AS c ON {after}",
        )
        db.insert("ehr_iv", "SELECT * FROM _ehr_niv")
        db.execute(
            f"DELETE FROM ehr_isl AS i WHERE EXISTS (SELECT 1 FROM _ehr_scut AS c WHERE {after})"
        )
        db.create(
            "_ehr_base",
            "SELECT i.user_id, SUM(i.e - i.s) AS before FROM ehr_isl AS i"
            " WHERE i.user_id IN (SELECT user_id FROM _ehr_scut) GROUP BY i.user_id",
        )
        redone = sql.islands_sql(f"SELECT i.* FROM ehr_iv AS i JOIN _ehr_scut AS c ON {after}")
        db.create("_ehr_nisl", with_cum_sql(redone, "_ehr_base"))
        db.insert("ehr_isl", "SELECT * FROM _ehr_nisl")
        db.insert("_ehr_keys", "SELECT user_id, month FROM _ehr_nisl")
        # In-hours seconds: the re-sliced slices (from M on), and those ending after K
        # (starting at most the longest slice before K: the scan starts there).
        k = _scalar(db, "SELECT MIN(k) - (SELECT MAX(b - t0) FROM ehr_sl) FROM _ehr_scut")
        starts = [int(v) for v in (k, self._low) if v is not None]
        bound = f"s.t0 >= {min(starts)}" if starts else "false"
        db.create(
            "_ehr_x",
            "SELECT s.rid, s.user_id, s.t0 AS a, s.b, s.month FROM ehr_sl AS s"
            f" WHERE {bound} AND (s.rid IN (SELECT rid FROM _ehr_redo) OR EXISTS"
            " (SELECT 1 FROM _ehr_scut AS c WHERE c.user_id = s.user_id AND s.b > c.k))",
        )
        db.insert("_ehr_keys", "SELECT user_id, month FROM _ehr_x")
        # The islands an ASOF lookup from the earliest slice start on can find.
        db.create(
            "_ehr_from",
            "WITH lo AS (SELECT user_id, MIN(a) AS lo FROM _ehr_x GROUP BY user_id)"
            " SELECT lo.user_id, MAX(i.s) AS f FROM lo LEFT JOIN ehr_isl AS i"
            " ON i.user_id = lo.user_id AND i.s <= lo.lo GROUP BY lo.user_id",
        )
        islands = (
            "(SELECT i.* FROM ehr_isl AS i JOIN _ehr_from AS f ON f.user_id = i.user_id"
            " AND (f.f IS NULL OR i.s >= f.f))"
        )
        db.create("_ehr_ins", INSIDE_SQL.format(islands=islands))
        db.execute("UPDATE ehr_sl SET ins = n.ins FROM _ehr_ins AS n WHERE ehr_sl.rid = n.rid")

    def _refresh_orders(self) -> None:
        db = self.db
        db.insert(
            "_ehr_keys",
            "SELECT requester_id, SUBSTRING(authored_ts, 1, 7) FROM _ehr_day_orders"
            " WHERE requester_id IS NOT NULL AND authored_ts IS NOT NULL",
        )
        db.insert(
            "_ehr_keys",
            "SELECT o.requester_id, SUBSTRING(o.authored_ts, 1, 7) FROM orders AS o"
            " WHERE o.requester_id IS NOT NULL AND o.authored_ts IS NOT NULL"
            " AND o.order_type || '/' || o.order_id IN"
            " (SELECT target_ref FROM _ehr_day_provenance)",
        )


def _scalar(db: StateDb, query: str) -> Any:
    return db.query(query).column(0)[0].as_py()


def _count(db: StateDb, table: str) -> int:
    return int(db.query(f"SELECT COUNT(*) AS n FROM {table}")["n"][0].as_py())


def ehr_use_state(
    path: Path | str, inputs: Mapping[str, pa.Table | None], period: Period,
    rules: SessionRules | None = None,
) -> tuple[dict[str, pa.Table], bool]:  # fmt: skip
    """EHR-use outputs kept in the DuckDB file ``path``: built from ``inputs`` the first
    time, later refreshed with ``inputs`` as the new rows.

    Returns:
        The outputs, and whether they were refreshed (False: built).

    Raises:
        ValueError: the file's state has another period or session timeout.
    """
    timeout = (rules or SessionRules()).timeout_s
    with StateDb(path) as db:
        if db.read_meta("ehr_use") is None:
            return EhrUseState(db, period, rules).build(inputs), False
        state = EhrUseState.open(db)
        if state.period != period or state.timeout != timeout:
            raise ValueError(
                f"{path}: built for {state.period.first}/{state.period.last} with a"
                f" {state.timeout} s timeout (asked: {period.first}/{period.last}, {timeout} s)"
            )
        return state.refresh(inputs), True
