"""The EHR-use SQL (DuckDB dialect; rendered for PostgreSQL and Spark by sqlglot).

Session rules (Sinsky et al., JAMIA 2020;27(4):639-643,
https://doi.org/10.1093/jamia/ocz223, with vendor-style active-time rules):

1. An event covers ``[start, end]``: ``period`` of a BALP AuditEvent (``recorded``
   when absent), or the CSV timestamp plus its duration; events without a
   duration are instants. Events of failed actions (``outcome`` not ``0``) are
   dropped. Only events whose local start date is in the period count.
2. A user's events are ordered by start; an event opens a new session when its
   start is more than ``timeout`` seconds after the latest end seen so far in
   the user's previous events (a gap exactly equal to the timeout continues the
   session). A session runs from its first start to its latest end; its time is
   active EHR time, so gaps up to the timeout count as work.
3. Attribution: the session is cut at each event's start; the slice from an
   event's start to the next event's start (the session end for the last one)
   belongs to that event's activity class and object. Slices sum to the session.
4. Scheduled patient time: the union of the clinician's busy Slot intervals (via
   Schedule.actor) and Appointments (booked, arrived, checked-in, fulfilled,
   noshow) they take part in; overlapping or touching intervals are merged.
   Slice time overlapping it is in-hours; the rest is work outside work.
5. Months are the local calendar month of a slice's event start (of an
   interval's start for scheduled time).
"""

from __future__ import annotations

from cmio.measures.sqlengine import Period

__all__ = [
    "BASE_COLUMNS",
    "events_sql",
    "inside_sql",
    "intervals_sql",
    "islands_sql",
    "metrics_select",
    "monthly_sql",
    "monthly_tail",
    "schedule_sql",
    "slices_sql",
]

BASE_COLUMNS = (
    "sched_s", "ehr_s", "in_s", "out_s", "note_s", "rx_s", "inbox_s", "orders", "team_orders",
)  # fmt: skip
"""Additive per-clinician-month columns (seconds and counts) the metrics derive from."""


def _epoch(column: str) -> str:
    return f"CAST(FLOOR(EPOCH(CAST({column} AS TIMESTAMPTZ))) AS BIGINT)"


def _in_period(column: str, period: Period) -> str:
    return f"SUBSTRING({column}, 1, 10) BETWEEN '{period.first}' AND '{period.last}'"


def events_sql(period: Period) -> str:
    """``ehr_ev``: usable events with epoch bounds and the activity class.

    Without an activity class the class follows the object: DocumentReference or
    Composition -> notes; ServiceRequest/MedicationRequest created or updated ->
    orders; Communication, CommunicationRequest, Task -> inbox; DiagnosticReport,
    Observation -> results; anything else (Patient reads) -> chart-review.
    """
    obj = "SPLIT_PART(object_ref, '/', 1)"
    return f"""
SELECT user_id, start_ts, SUBSTRING(start_ts, 1, 7) AS month, t0,
       GREATEST(COALESCE(te, t0 + duration_s, t0), t0) AS t1, activity_code, object_type,
       objects_known
FROM (
  SELECT user_id, start_ts, {_epoch("start_ts")} AS t0, {_epoch("end_ts")} AS te, duration_s,
    CASE WHEN activity IS NOT NULL THEN activity
         WHEN {obj} IN ('DocumentReference', 'Composition') THEN 'notes'
         WHEN {obj} IN ('ServiceRequest', 'MedicationRequest') AND action IN ('C', 'U')
           THEN 'orders'
         WHEN {obj} IN ('Communication', 'CommunicationRequest', 'Task') THEN 'inbox'
         WHEN {obj} IN ('DiagnosticReport', 'Observation') THEN 'results'
         ELSE 'chart-review' END AS activity_code,
    {obj} AS object_type,
    CASE WHEN objects_known THEN 1 ELSE 0 END AS objects_known
  FROM audit_events
  WHERE user_id IS NOT NULL AND start_ts IS NOT NULL
    AND (outcome IS NULL OR outcome = '0') AND {_in_period("start_ts", period)}
) AS e
"""


def slices_sql(timeout: int) -> str:
    """``ehr_slices``: sessionized events, each with its attributed slice ``[a, b)``.

    One ordered pass per user: ``reach`` is the latest end of the events so far (this
    one included); the next event opens a new session when it starts more than the
    timeout after it. The slice ends at the next event's start, or at ``reach`` (the
    session's latest end: earlier sessions all ended before this one began) when the
    next event opens a new session or there is none.
    """
    order = (
        "PARTITION BY user_id ORDER BY t0, t1, activity_code, object_type, objects_known, start_ts"
    )
    return f"""
WITH w AS (
  SELECT user_id, month, activity_code, object_type, objects_known, t0,
    ROW_NUMBER() OVER ({order}) AS rn,
    MAX(t1) OVER ({order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS reach,
    LEAD(t0) OVER ({order}) AS next_t0
  FROM ehr_ev
)
SELECT user_id, rn AS slice_no, month, activity_code, object_type, objects_known, t0 AS a,
  CASE WHEN next_t0 IS NULL OR next_t0 - reach > {int(timeout)} THEN reach ELSE next_t0 END
    AS b
FROM w
"""


def intervals_sql(
    period: Period,
    *,
    slots: str = "slots",
    appointments: str | None = "appointments",
    schedules: str = "schedules",
) -> str:
    """Each clinician's scheduled intervals ``[s, e)`` (``e > s``) starting in the period,
    with the month of their start: busy Slots (via ``schedules``) and Appointments (None:
    none)."""
    booked = f"""
  UNION ALL
  SELECT user_id, start_ts, end_ts FROM {appointments}
  WHERE user_id IS NOT NULL
    AND status IN ('booked', 'arrived', 'checked-in', 'fulfilled', 'noshow')
    AND (participant_status IS NULL OR participant_status <> 'declined')"""
    return f"""
WITH raw AS (
  SELECT sc.user_id, sl.start_ts, sl.end_ts
  FROM {slots} AS sl JOIN {schedules} AS sc ON sc.schedule_id = sl.schedule_id
  WHERE sc.user_id IS NOT NULL AND sl.status IN ('busy', 'busy-tentative')
    AND (sc.active IS NULL OR sc.active){booked if appointments else ""}
), iv AS (
  SELECT user_id, SUBSTRING(start_ts, 1, 7) AS month, {_epoch("start_ts")} AS s,
         {_epoch("end_ts")} AS e
  FROM raw
  WHERE start_ts IS NOT NULL AND end_ts IS NOT NULL AND {_in_period("start_ts", period)}
)
SELECT * FROM iv WHERE e > s
"""


def islands_sql(intervals: str) -> str:
    """Merged intervals (islands) of the query ``intervals`` (``user_id, month, s, e``):
    overlapping or touching intervals merge; an island's month is its first interval's."""
    return f"""
WITH numbered AS (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY s, e) AS rn FROM ({intervals}) AS i
), ordered AS (
  SELECT *, MAX(e) OVER (PARTITION BY user_id ORDER BY rn
    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_e
  FROM numbered
), grouped AS (
  SELECT *, SUM(CASE WHEN prev_e IS NULL OR s > prev_e THEN 1 ELSE 0 END)
    OVER (PARTITION BY user_id ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    AS island
  FROM ordered
)
SELECT user_id, island, MIN(month) AS month, MIN(s) AS s, MAX(e) AS e
FROM grouped GROUP BY user_id, island
"""


def schedule_sql(period: Period) -> str:
    """``ehr_sched``: each clinician's merged scheduled patient intervals ``[s, e)``."""
    return islands_sql(intervals_sql(period))


def inside_sql(asof: bool = False) -> str:
    """``ehr_inside``: seconds of slices inside scheduled patient time, per clinician and
    month of the slice.

    With ``asof`` (DuckDB's ASOF join, https://duckdb.org/docs/sql/query_syntax/from#as-of-joins):
    a user's merged intervals are disjoint, so the scheduled time before an instant ``t``
    is ``C(t) = cum + min(t, e) - s`` for the last interval ``[s, e)`` starting at or
    before ``t`` (``cum``: the length of the intervals before it), and a slice's time
    inside is ``C(b) - C(a)``: each slice bound finds its interval in one sorted merge
    instead of every slice being joined to every interval of its user (the portable
    form, used by the other engines).
    """
    if not asof:
        return """
SELECT user_id, month, SUM(inside_s) AS inside_s
FROM (
  SELECT sl.user_id, sl.month, LEAST(sl.b, m.e) - GREATEST(sl.a, m.s) AS inside_s
  FROM ehr_slices AS sl JOIN ehr_sched AS m
    ON m.user_id = sl.user_id AND m.s < sl.b AND m.e > sl.a
) AS o
GROUP BY user_id, month
"""
    return """
WITH iv AS (
  SELECT user_id, s, e, COALESCE(SUM(e - s) OVER (PARTITION BY user_id ORDER BY s
    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS cum
  FROM ehr_sched
), pts AS (
  SELECT user_id, a AS t, month, -1 AS sign FROM ehr_slices
  UNION ALL
  SELECT user_id, b AS t, month, 1 AS sign FROM ehr_slices
)
SELECT p.user_id, p.month,
  SUM(p.sign * CASE WHEN iv.s IS NULL THEN 0 ELSE iv.cum + LEAST(p.t, iv.e) - iv.s END)
    AS inside_s
FROM pts AS p ASOF LEFT JOIN iv ON iv.user_id = p.user_id AND p.t >= iv.s
GROUP BY p.user_id, p.month
"""


_ORDER_INTENTS = "('order', 'original-order', 'reflex-order', 'filler-order', 'instance-order')"


def monthly_tail(inside: str, inside_join: str = "") -> str:
    """The ``keys`` CTE and the final SELECT of the clinician-month rows.

    Shared by the full computation (:func:`monthly_sql`) and the incremental refresh
    (:func:`cmio.measures.ehr_use.refresh_sql.monthly_rows_sql`): both end with the CTEs
    ``used``, ``sched`` and ``ord``, and differ only in where the in-hours seconds come
    from.

    Args:
        inside: the column giving a clinician-month's in-hours seconds.
        inside_join: a LEFT JOIN (ending in a newline) bringing that column, if needed.

    Returns:
        SQL text continuing a WITH clause after its last CTE's closing parenthesis.
    """
    return f"""), keys AS (
  SELECT user_id, month FROM used UNION SELECT user_id, month FROM sched
  UNION SELECT user_id, month FROM ord
)
SELECT k.user_id, k.month,
  CAST(COALESCE(sc.sched_s, 0) AS BIGINT) AS sched_s,
  CAST(COALESCE(u.ehr_s, 0) AS BIGINT) AS ehr_s,
  CAST(COALESCE({inside}, 0) AS BIGINT) AS in_s,
  CAST(COALESCE(u.ehr_s, 0) - COALESCE({inside}, 0) AS BIGINT) AS out_s,
  CAST(COALESCE(u.note_s, 0) AS BIGINT) AS note_s,
  CAST(CASE WHEN u.rx_known IS NULL OR u.rx_known = 1 THEN COALESCE(u.rx_s, 0) END AS BIGINT)
    AS rx_s,
  CAST(COALESCE(u.inbox_s, 0) AS BIGINT) AS inbox_s,
  CAST(COALESCE(o.orders, 0) AS BIGINT) AS orders,
  CAST(COALESCE(o.team_orders, 0) AS BIGINT) AS team_orders
FROM keys AS k
LEFT JOIN used AS u ON u.user_id = k.user_id AND u.month = k.month
{inside_join}LEFT JOIN sched AS sc ON sc.user_id = k.user_id AND sc.month = k.month
LEFT JOIN ord AS o ON o.user_id = k.user_id AND o.month = k.month
"""


_INSIDE_JOIN = "LEFT JOIN ehr_inside AS i ON i.user_id = k.user_id AND i.month = k.month\n"


def monthly_sql(period: Period) -> str:
    """``ehr_monthly``: the additive :data:`BASE_COLUMNS` per clinician and month."""
    return f"""
WITH used AS (
  SELECT s.user_id, s.month,
    SUM(s.b - s.a) AS ehr_s,
    SUM(CASE WHEN s.activity_code = 'notes' THEN s.b - s.a ELSE 0 END) AS note_s,
    SUM(CASE WHEN s.object_type = 'MedicationRequest' THEN s.b - s.a ELSE 0 END) AS rx_s,
    SUM(CASE WHEN s.activity_code = 'inbox' THEN s.b - s.a ELSE 0 END) AS inbox_s,
    MIN(s.objects_known) AS rx_known
  FROM ehr_slices AS s
  GROUP BY s.user_id, s.month
), sched AS (
  SELECT user_id, month, SUM(e - s) AS sched_s FROM ehr_sched GROUP BY user_id, month
), team AS (
  SELECT DISTINCT target_ref FROM provenance
  WHERE enterer_id IS NOT NULL AND (author_id IS NULL OR enterer_id <> author_id)
), ord AS (
  SELECT o.requester_id AS user_id, SUBSTRING(o.authored_ts, 1, 7) AS month,
    COUNT(*) AS orders, SUM(CASE WHEN t.target_ref IS NULL THEN 0 ELSE 1 END) AS team_orders
  FROM orders AS o LEFT JOIN team AS t ON t.target_ref = o.order_type || '/' || o.order_id
  WHERE o.requester_id IS NOT NULL AND o.authored_ts IS NOT NULL
    AND o.intent IN {_ORDER_INTENTS} AND {_in_period("o.authored_ts", period)}
  GROUP BY o.requester_id, SUBSTRING(o.authored_ts, 1, 7)
{monthly_tail("i.inside_s", _INSIDE_JOIN)}"""


def metrics_select(group: tuple[str, ...], table: str) -> str:
    """Sum :data:`BASE_COLUMNS` of ``table`` by ``group`` and derive the seven metrics.

    Per-8 metrics are hours per 8 hours of scheduled patient time (``8 * x / sched``;
    None without scheduled time); teamwork is team-entered orders / orders;
    undivided attention is the share of scheduled time without EHR activity.
    Prescription time is None when any event's object was unknown (CSV without
    an object column).
    """
    keys = ", ".join(group)
    sums = ", ".join(f"CAST(SUM({c}) AS BIGINT) AS {c}" for c in BASE_COLUMNS)
    rx_known = "MIN(CASE WHEN rx_s IS NULL THEN 0 ELSE 1 END)"

    def per8(column: str) -> str:
        return (
            f"CASE WHEN SUM(sched_s) > 0 THEN CAST(SUM({column}) AS DOUBLE) * 8 / SUM(sched_s) END"
        )

    return f"""
SELECT {keys}{", " if keys else ""}{sums},
  {per8("ehr_s")} AS ehr_time8,
  {per8("out_s")} AS wow8,
  {per8("note_s")} AS note_time8,
  CASE WHEN {rx_known} = 1 THEN {per8("rx_s")} END AS prescription_time8,
  {per8("inbox_s")} AS inbox_time8,
  CASE WHEN SUM(orders) > 0 THEN CAST(SUM(team_orders) AS DOUBLE) / SUM(orders) END
    AS teamwork_orders,
  CASE WHEN SUM(sched_s) > 0
    THEN CAST(GREATEST(SUM(sched_s) - SUM(in_s), 0) AS DOUBLE) / SUM(sched_s) END
    AS undivided_attention
FROM {table}
{"GROUP BY " + keys if keys else ""}
"""
