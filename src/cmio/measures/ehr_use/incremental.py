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
rows plus the day's (``tests/measures/test_incremental_oversight.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from cmio.measures.ehr_use import sql
from cmio.measures.ehr_use.engine import Period
from cmio.measures.ehr_use.metrics import (
    INPUT_SCHEMAS,
    SessionRules,
    _conform,
    ehr_outputs,
)
from cmio.measures.state import StateDb

__all__ = ["EhrUseState", "ehr_use_state"]

_ORDER = "t0, t1, activity_code, object_type, objects_known, start_ts"
_COLUMNS = "user_id, month, activity_code, object_type, objects_known, start_ts, t0, t1"
_STORED = ("schedules", "slots", "orders", "provenance", "roles", "departments")


def _slices(events: str, timeout: int, seed: str | None = None) -> str:
    """Slices of ``events`` (the columns of ``ehr_ev``) by the rule of
    :func:`cmio.measures.ehr_use.sql.slices_sql`; ``seed`` (``user_id, pre``) gives the
    latest end of each user's earlier events."""
    reach = f"MAX(t1) OVER (PARTITION BY user_id ORDER BY {_ORDER} ROWS UNBOUNDED PRECEDING)"
    join = ""
    if seed is not None:
        reach = f"GREATEST({reach}, COALESCE(sd.pre, t1))"
        join = f" LEFT JOIN {seed} AS sd USING (user_id)"
    return f"""
WITH w AS (
  SELECT {_COLUMNS}, {reach} AS reach,
    LEAD(t0) OVER (PARTITION BY user_id ORDER BY {_ORDER}) AS next_t0
  FROM ({events}) AS ev{join}
)
SELECT {_COLUMNS},
  CASE WHEN next_t0 IS NULL OR next_t0 - reach > {int(timeout)} THEN reach ELSE next_t0 END
    AS b, CAST(0 AS BIGINT) AS ins, reach
FROM w
"""


def _with_cum(islands: str, base: str | None = None) -> str:
    """Islands with ``cum``: the scheduled seconds of the user's islands before each
    (plus ``base``'s ``before`` seconds)."""
    prior = "0" if base is None else "COALESCE(bs.before, 0)"
    join = "" if base is None else f" LEFT JOIN {base} AS bs USING (user_id)"
    return f"""
SELECT i.user_id, i.month, i.s, i.e,
  CAST({prior} + COALESCE(SUM(i.e - i.s) OVER (PARTITION BY i.user_id ORDER BY i.s
    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS BIGINT) AS cum
FROM ({islands}) AS i{join}
"""


_INSIDE = """
WITH pts AS (
  SELECT rid, user_id, a AS t, -1 AS sign FROM _ehr_x
  UNION ALL
  SELECT rid, user_id, b AS t, 1 AS sign FROM _ehr_x
)
SELECT p.rid,
  CAST(SUM(p.sign * CASE WHEN iv.s IS NULL THEN 0 ELSE iv.cum + LEAST(p.t, iv.e) - iv.s END)
    AS BIGINT) AS ins
FROM pts AS p ASOF LEFT JOIN {islands} AS iv ON iv.user_id = p.user_id AND p.t >= iv.s
GROUP BY p.rid
"""
"""In-hours seconds ``C(b) - C(a)`` of the slices in ``_ehr_x`` (``rid, user_id, a, b``)."""


def _month_start(month: Any) -> int | None:
    """Epoch seconds two days before the month ``YYYY-MM`` began (None: not a month):
    no event of a local month starts earlier, whatever its UTC offset."""
    try:
        first = date(int(str(month)[:4]), int(str(month)[5:7]), 1)
    except (TypeError, ValueError):
        return None
    return (first.toordinal() - date(1970, 1, 1).toordinal() - 2) * 86400


def _monthly(period: Period, start: int | None = None) -> str:
    """``ehr_monthly`` rows of the clinician-months in ``_ehr_k`` (as
    :func:`cmio.measures.ehr_use.sql.monthly_sql`); ``start`` bounds the slices scanned
    (epoch seconds no slice of those months starts before)."""
    bound = "true" if start is None else f"s.t0 >= {start}"
    intents = "('order', 'original-order', 'reflex-order', 'filler-order', 'instance-order')"
    keyed = "EXISTS (SELECT 1 FROM _ehr_k AS k WHERE k.user_id = {0}.user_id AND k.month = {1})"
    return f"""
WITH used AS (
  SELECT s.user_id, s.month, SUM(s.b - s.t0) AS ehr_s,
    SUM(CASE WHEN s.activity_code = 'notes' THEN s.b - s.t0 ELSE 0 END) AS note_s,
    SUM(CASE WHEN s.object_type = 'MedicationRequest' THEN s.b - s.t0 ELSE 0 END) AS rx_s,
    SUM(CASE WHEN s.activity_code = 'inbox' THEN s.b - s.t0 ELSE 0 END) AS inbox_s,
    MIN(s.objects_known) AS rx_known, SUM(s.ins) AS inside_s
  FROM ehr_sl AS s WHERE {bound} AND {keyed.format("s", "s.month")}
  GROUP BY s.user_id, s.month
), sched AS (
  SELECT user_id, month, SUM(e - s) AS sched_s FROM ehr_isl AS i
  WHERE {keyed.format("i", "i.month")} GROUP BY user_id, month
), mine AS (
  SELECT o.requester_id AS user_id, SUBSTRING(o.authored_ts, 1, 7) AS month,
    o.order_type || '/' || o.order_id AS ref
  FROM orders AS o
  WHERE o.requester_id IS NOT NULL AND o.authored_ts IS NOT NULL
    AND o.intent IN {intents}
    AND SUBSTRING(o.authored_ts, 1, 10) BETWEEN '{period.first}' AND '{period.last}'
    AND EXISTS (SELECT 1 FROM _ehr_k AS k WHERE k.user_id = o.requester_id
                AND k.month = SUBSTRING(o.authored_ts, 1, 7))
), team AS (
  SELECT DISTINCT target_ref FROM provenance
  WHERE enterer_id IS NOT NULL AND (author_id IS NULL OR enterer_id <> author_id)
    AND target_ref IN (SELECT ref FROM mine)
), ord AS (
  SELECT m.user_id, m.month, COUNT(*) AS orders,
    SUM(CASE WHEN t.target_ref IS NULL THEN 0 ELSE 1 END) AS team_orders
  FROM mine AS m LEFT JOIN team AS t ON t.target_ref = m.ref
  GROUP BY m.user_id, m.month
), keys AS (
  SELECT user_id, month FROM used UNION SELECT user_id, month FROM sched
  UNION SELECT user_id, month FROM ord
)
SELECT k.user_id, k.month,
  CAST(COALESCE(sc.sched_s, 0) AS BIGINT) AS sched_s,
  CAST(COALESCE(u.ehr_s, 0) AS BIGINT) AS ehr_s,
  CAST(COALESCE(u.inside_s, 0) AS BIGINT) AS in_s,
  CAST(COALESCE(u.ehr_s, 0) - COALESCE(u.inside_s, 0) AS BIGINT) AS out_s,
  CAST(COALESCE(u.note_s, 0) AS BIGINT) AS note_s,
  CAST(CASE WHEN u.rx_known IS NULL OR u.rx_known = 1 THEN COALESCE(u.rx_s, 0) END AS BIGINT)
    AS rx_s,
  CAST(COALESCE(u.inbox_s, 0) AS BIGINT) AS inbox_s,
  CAST(COALESCE(o.orders, 0) AS BIGINT) AS orders,
  CAST(COALESCE(o.team_orders, 0) AS BIGINT) AS team_orders
FROM keys AS k
LEFT JOIN used AS u ON u.user_id = k.user_id AND u.month = k.month
LEFT JOIN sched AS sc ON sc.user_id = k.user_id AND sc.month = k.month
LEFT JOIN ord AS o ON o.user_id = k.user_id AND o.month = k.month
"""


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
        db.create("ehr_isl", _with_cum(sql.islands_sql("SELECT * FROM ehr_iv")))
        db.create(
            "_ehr_s0",
            "SELECT *, ROW_NUMBER() OVER () AS rid FROM"
            f" ({_slices('SELECT * FROM ehr_ev', self.timeout)}) AS s",
        )
        db.execute("DROP TABLE ehr_ev")
        db.create("_ehr_x", "SELECT rid, user_id, t0 AS a, b FROM _ehr_s0")
        db.create("_ehr_ins", _INSIDE.format(islands="ehr_isl"))
        columns = ", ".join(f"s.{c.strip()}" for c in _COLUMNS.split(","))
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
        db.create("ehr_monthly", _monthly(self.period))
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
            db.insert("ehr_monthly", _monthly(self.period, _month_start(first)))
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
        db.create("_ehr_cut", _cut(f"s.t0 >= {lo if lo is not None else 0}"))
        db.execute("DELETE FROM _ehr_cut WHERE pre IS NULL")
        db.insert(
            "_ehr_cut",
            "SELECT * FROM (" + _cut("true") + ") AS c"
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
            _slices(
                f"SELECT {_COLUMNS} FROM _ehr_new UNION ALL SELECT s.user_id, s.month,"
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
        db.create("_ehr_nisl", _with_cum(redone, "_ehr_base"))
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
        db.create("_ehr_ins", _INSIDE.format(islands=islands))
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


def _cut(window: str) -> str:
    """Per user of ``_ehr_t``: ``m`` (M) and ``pre``, from the stored slices in ``window``."""
    return f"""
WITH w AS (SELECT s.user_id, s.t0, s.reach FROM ehr_sl AS s WHERE {window}),
m AS (
  SELECT t.user_id, COALESCE(MAX(w.t0), MIN(t.t)) AS m FROM _ehr_t AS t
  LEFT JOIN w ON w.user_id = t.user_id AND w.t0 < t.t GROUP BY t.user_id
)
SELECT m.user_id, m.m, MAX(w.reach) AS pre
FROM m LEFT JOIN w ON w.user_id = m.user_id AND w.t0 < m.m GROUP BY m.user_id, m.m
"""


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
