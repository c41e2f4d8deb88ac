"""SQL of the incremental EHR-use refresh (:mod:`cmio.measures.ehr_use.incremental`).

The queries over the tables an :class:`cmio.measures.ehr_use.incremental.EhrUseState`
keeps in its :class:`cmio.measures.state.StateDb`: the attributed slices of a user's
events (:func:`slices_sql`, the session rule of :func:`cmio.measures.ehr_use.sql.slices_sql`
seeded by the events before), the scheduled time before each island
(:func:`with_cum_sql`), the in-hours seconds of slices (:data:`INSIDE_SQL`, the ASOF
lookup of :func:`cmio.measures.ehr_use.sql.inside_sql`), where a user's re-slicing starts
(:func:`cut_sql`) and the ``ehr_monthly`` rows of the clinician-months touched
(:func:`monthly_rows_sql`, as :func:`cmio.measures.ehr_use.sql.monthly_sql`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from cmio.measures.ehr_use.sql import monthly_tail
from cmio.measures.sqlengine import Period

__all__ = [
    "COLUMNS",
    "INSIDE_SQL",
    "cut_sql",
    "month_start",
    "monthly_rows_sql",
    "slices_sql",
    "with_cum_sql",
]

_ORDER = "t0, t1, activity_code, object_type, objects_known, start_ts"
COLUMNS = "user_id, month, activity_code, object_type, objects_known, start_ts, t0, t1"
"""The columns of an event (``ehr_ev``), in the order the slices keep them."""


def slices_sql(events: str, timeout: int, seed: str | None = None) -> str:
    """Slices of ``events`` by the rule of :func:`cmio.measures.ehr_use.sql.slices_sql`.

    Args:
        events: a query giving the :data:`COLUMNS` of ``ehr_ev``.
        timeout: the session timeout in seconds.
        seed: a relation (``user_id, pre``) giving the latest end of each user's earlier
            events (None: the events have none before them).

    Returns:
        A query giving :data:`COLUMNS`, the slice end ``b``, ``ins`` (0) and ``reach``.
    """
    reach = f"MAX(t1) OVER (PARTITION BY user_id ORDER BY {_ORDER} ROWS UNBOUNDED PRECEDING)"
    join = ""
    if seed is not None:
        reach = f"GREATEST({reach}, COALESCE(sd.pre, t1))"
        join = f" LEFT JOIN {seed} AS sd USING (user_id)"
    return f"""
WITH w AS (
  SELECT {COLUMNS}, {reach} AS reach,
    LEAD(t0) OVER (PARTITION BY user_id ORDER BY {_ORDER}) AS next_t0
  FROM ({events}) AS ev{join}
)
SELECT {COLUMNS},
  CASE WHEN next_t0 IS NULL OR next_t0 - reach > {int(timeout)} THEN reach ELSE next_t0 END
    AS b, CAST(0 AS BIGINT) AS ins, reach
FROM w
"""


def with_cum_sql(islands: str, base: str | None = None) -> str:
    """Islands with ``cum``: the scheduled seconds of the user's islands before each.

    Args:
        islands: a query giving ``user_id, month, s, e`` (merged islands).
        base: a relation (``user_id, before``) of the scheduled seconds before the first
            of ``islands`` (None: none).

    Returns:
        A query giving ``user_id, month, s, e, cum``.
    """
    prior = "0" if base is None else "COALESCE(bs.before, 0)"
    join = "" if base is None else f" LEFT JOIN {base} AS bs USING (user_id)"
    return f"""
SELECT i.user_id, i.month, i.s, i.e,
  CAST({prior} + COALESCE(SUM(i.e - i.s) OVER (PARTITION BY i.user_id ORDER BY i.s
    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS BIGINT) AS cum
FROM ({islands}) AS i{join}
"""


INSIDE_SQL = """
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


def month_start(month: Any) -> int | None:
    """Epoch seconds two days before the month ``YYYY-MM`` began.

    No event of a local month starts earlier, whatever its UTC offset.

    Args:
        month: a ``YYYY-MM`` string.

    Returns:
        The epoch seconds, or None when ``month`` is not a month.
    """
    try:
        first = date(int(str(month)[:4]), int(str(month)[5:7]), 1)
    except (TypeError, ValueError):
        return None
    return (first.toordinal() - date(1970, 1, 1).toordinal() - 2) * 86400


def monthly_rows_sql(period: Period, start: int | None = None) -> str:
    """``ehr_monthly`` rows of the clinician-months in ``_ehr_k``.

    The columns and rules are those of :func:`cmio.measures.ehr_use.sql.monthly_sql`.

    Args:
        period: the measurement period (bounds the orders counted).
        start: epoch seconds no slice of those months starts before (bounds the slices
            scanned; None: all).

    Returns:
        A query giving the ``ehr_monthly`` columns.
    """
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
{monthly_tail("u.inside_s")}"""


def cut_sql(window: str) -> str:
    """Per user of ``_ehr_t``: ``m`` (M) and ``pre``, from the stored slices in ``window``.

    Args:
        window: a condition on the stored slices ``s`` (``ehr_sl``) to scan.

    Returns:
        A query giving ``user_id, m, pre``: M, the last stored start before the user's
        earliest new start (else that start), and the latest end of the slices before M.
    """
    return f"""
WITH w AS (SELECT s.user_id, s.t0, s.reach FROM ehr_sl AS s WHERE {window}),
m AS (
  SELECT t.user_id, COALESCE(MAX(w.t0), MIN(t.t)) AS m FROM _ehr_t AS t
  LEFT JOIN w ON w.user_id = t.user_id AND w.t0 < t.t GROUP BY t.user_id
)
SELECT m.user_id, m.m, MAX(w.reach) AS pre
FROM m LEFT JOIN w ON w.user_id = m.user_id AND w.t0 < m.m GROUP BY m.user_id, m.m
"""
