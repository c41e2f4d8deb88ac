"""SQL for search and history, shared by the backends (``?`` placeholders).

The SQL sticks to what SQLite and PostgreSQL both understand; the PostgreSQL
backend rewrites ``?`` to ``%s``. Tables: ``resource`` (current versions),
``resource_history`` (every version, global ``seq``) and ``token_index``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cmio.store._common import format_instant, parse_date_range
from cmio.store.base import InvalidRequestError, SearchClause, SearchQuery

__all__ = ["Sql", "compartment_sql", "history_sql", "known_total", "search_sql", "split_token"]

_PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})
_SORT_COLUMNS = {"_lastUpdated": "r.last_updated", "_id": "r.id"}


@dataclass(frozen=True, slots=True)
class Sql:
    """A statement and its positional parameters."""

    text: str
    params: tuple[Any, ...]


def known_total(count: int, offset: int, found: int, keyset: bool = False) -> int | None:
    """The exact total of a page of ``count`` at ``offset`` that holds ``found`` matches,
    when it is known without counting: a page that is not full holds the last matches, so
    unless a keyset cursor (``keyset``) skipped some before it, the total is the offset plus
    the page; None when it must be counted (https://hl7.org/fhir/R4/search.html#total).
    """
    if not keyset and found < count and (found or offset == 0):
        return offset + found
    return None


def search_sql(query: SearchQuery) -> tuple[Sql, Sql | None]:
    """Build the page query and (when ``query.total``) the count query for a search.

    See https://hl7.org/fhir/R4/search.html. Result columns:
    ``type, id, version, last_updated, data``.

    Raises:
        InvalidRequestError: unsupported modifier, prefix or sort key, or a bad value.
    """
    where = ["NOT r.deleted"]
    params: list[Any] = []
    if query.type is not None:
        where.append("r.type = ?")
        params.append(query.type)
    for clause in query.clauses:
        if not clause.values:
            raise InvalidRequestError(f"search parameter {clause.name!r} has no value")
        if clause.name == "_id":
            _no_modifier(clause)
            where.append(f"r.id IN ({', '.join('?' * len(clause.values))})")
            params.extend(clause.values)
        elif clause.name == "_type":
            _no_modifier(clause)
            where.append(f"r.type IN ({', '.join('?' * len(clause.values))})")
            params.extend(clause.values)
        elif clause.name == "_lastUpdated":
            _no_modifier(clause)
            conds = [_date_condition("r.last_updated", value, params) for value in clause.values]
            where.append("(" + " OR ".join(conds) + ")")
        else:
            where.append(_token_condition(query.type, clause, params))
    where_sql = " AND ".join(where)
    limit = max(0, query.count)
    offset = max(0, query.offset)
    page = Sql(
        "SELECT r.type, r.id, r.version, r.last_updated, r.data FROM resource r"
        f" WHERE {where_sql} ORDER BY {_order_by(query.sort)} LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    count = Sql(f"SELECT COUNT(*) FROM resource r WHERE {where_sql}", tuple(params))
    return page, count if query.total else None


_MEMBER_COLUMNS = "r.type, r.id, r.version, r.last_updated, r.data"
_MEMBER_DATA = "r.type, r.id, r.data"


def compartment_sql(
    dialect: str,
    param: str,
    ctype: str,
    cid: str,
    types: tuple[str, ...] | None,
    since: str | None,
    count: int,
    offset: int,
    data_only: bool = False,
) -> tuple[Sql, Sql]:
    """The page and count statements of a compartment's members (``Patient/[id]/$everything``).

    Members are the resources holding the write-time token ``param`` = ``ctype|cid``
    (https://hl7.org/fhir/R4/compartmentdefinition.html), in one statement for every
    type. The operation asks for no order
    (https://hl7.org/fhir/R4/patient-operation-everything.html); the page is in the
    store's member order, which needs no sort: the index's own order (row id within
    equal keys) on SQLite, ``(type, id)`` on PostgreSQL. Page columns:
    ``type, id, version, last_updated, data``, or ``type, id, data`` with ``data_only``.

    A deleted resource has no index rows (they go in the delete's transaction), so
    without ``since`` the count reads the index alone.

    Raises:
        InvalidRequestError: ``since`` is not a valid date, dateTime or instant.
    """
    where = ["x.param = ?", "x.system = ?", "x.value = ?"]
    params: list[Any] = [param, ctype, cid]
    if types is not None:
        where.append(f"x.resource_type IN ({', '.join('?' * len(types))})")
        params.extend(types)
    joined = list(where)
    joined_params = list(params)
    joined.append("NOT r.deleted")
    if since is not None:
        joined.append("r.last_updated >= ?")
        joined_params.append(parse_date_range(since)[0])
    order = "x.rowid" if dialect == "sqlite" else "x.resource_type, x.resource_id"
    source = (
        "FROM token_index x JOIN resource r ON r.type = x.resource_type"
        f" AND r.id = x.resource_id WHERE {' AND '.join(joined)}"
    )
    page = Sql(
        f"SELECT {_MEMBER_DATA if data_only else _MEMBER_COLUMNS} {source}"
        f" ORDER BY {order} LIMIT ? OFFSET ?",
        (*joined_params, max(0, count), max(0, offset)),
    )
    if since is None:
        total = Sql(
            f"SELECT COUNT(*) FROM token_index x WHERE {' AND '.join(where)}", tuple(params)
        )
    else:
        total = Sql(f"SELECT COUNT(*) {source}", tuple(joined_params))
    return page, total


def history_sql(
    type: str | None,
    id: str | None,
    since: str | None,
    at: str | None,
    count: int,
    offset: int,
) -> tuple[Sql, Sql]:
    """Build the page and count queries for history (https://hl7.org/fhir/R4/http.html#history).

    ``since`` keeps versions with lastUpdated at or after the start of the value;
    ``at`` keeps the versions that were current at some point during the value's
    range (one per resource for an instant). Result columns:
    ``type, id, version, last_updated, deleted, method, data``; newest first.
    """
    where: list[str] = []
    params: list[Any] = []
    if type is not None:
        where.append("h.type = ?")
        params.append(type)
    if id is not None:
        where.append("h.id = ?")
        params.append(id)
    if since is not None:
        where.append("h.last_updated >= ?")
        params.append(parse_date_range(since)[0])
    if at is not None:
        low, high = parse_date_range(at)
        where.append(
            "h.last_updated < ? AND NOT EXISTS (SELECT 1 FROM resource_history h2"
            " WHERE h2.type = h.type AND h2.id = h.id AND h2.version > h.version"
            " AND h2.last_updated <= ?)"
        )
        params.extend((high, low))
    where_sql = (" WHERE " + " AND ".join(where)) if where else ""
    order = "h.version DESC" if id is not None else "h.seq DESC"
    page = Sql(
        "SELECT h.type, h.id, h.version, h.last_updated, h.deleted, h.method,"
        " COALESCE(h.data, r.data) FROM resource_history h LEFT JOIN resource r"
        " ON r.type = h.type AND r.id = h.id AND r.version = h.version"
        f"{where_sql} ORDER BY {order} LIMIT ? OFFSET ?",
        (*params, max(0, count), max(0, offset)),
    )
    total = Sql(f"SELECT COUNT(*) FROM resource_history h{where_sql}", tuple(params))
    return page, total


def split_token(value: str) -> tuple[str | None, str | None]:
    """Split a token search value into ``(system, code)``.

    ``system|code`` -> both; ``|code`` -> ``("", code)`` (no system);
    ``system|`` -> ``(system, None)``; ``code`` -> ``(None, code)``. A ``\\|``
    is a literal bar (https://hl7.org/fhir/R4/search.html#escaping).
    """
    parts: list[str] = []
    buf: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch == "\\":
            buf.append(next(chars, "\\"))
        elif ch == "|" and not parts:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    rest = "".join(buf)
    if not parts:
        return None, rest
    return parts[0], (rest or None)


def _no_modifier(clause: SearchClause) -> None:
    if clause.modifier:
        raise InvalidRequestError(f"modifier :{clause.modifier} is not supported for {clause.name}")


def _date_condition(column: str, value: str, params: list[Any]) -> str:
    prefix = value[:2]
    if prefix in _PREFIXES:
        value = value[2:]
    else:
        prefix = "eq"
    low, high = parse_date_range(value)
    if prefix == "ap":
        low, high = _widen(low, high)
        prefix = "eq"
    if prefix == "eq":
        params.extend((low, high))
        return f"({column} >= ? AND {column} < ?)"
    if prefix == "ne":
        params.extend((low, high))
        return f"({column} < ? OR {column} >= ?)"
    if prefix in ("gt", "sa"):
        params.append(high)
        return f"{column} >= ?"
    if prefix == "ge":
        params.append(low)
        return f"{column} >= ?"
    if prefix in ("lt", "eb"):
        params.append(low)
        return f"{column} < ?"
    params.append(high)  # le
    return f"{column} < ?"


def _widen(low: str, high: str) -> tuple[str, str]:
    """``ap``: widen the range by 10% of its distance from now on each side."""

    def parse(s: str) -> datetime:
        return datetime.fromisoformat(s.rstrip("~").replace("Z", "+00:00"))

    lo, hi = parse(low), parse(high)
    slack = abs(datetime.now(UTC) - lo) / 10
    try:
        return format_instant(lo - slack), format_instant(hi + slack)
    except OverflowError:
        return low, high


def _token_condition(rtype: str | None, clause: SearchClause, params: list[Any]) -> str:
    """Token parameter as an ``IN`` sub-select on ``token_index`` (index friendly)."""
    sub_where = ["t.param = ?"]
    sub_params: list[Any] = [clause.name]
    if rtype is not None:
        sub_where.insert(0, "t.resource_type = ?")
        sub_params.insert(0, rtype)
        head, select = "r.id", "t.resource_id"
    else:
        head, select = "(r.type, r.id)", "t.resource_type, t.resource_id"
    negate = False
    if clause.modifier == "missing":
        flags = {v.lower() for v in clause.values}
        if not flags <= {"true", "false"}:
            raise InvalidRequestError(f"{clause.name}:missing takes true or false")
        if len(flags) > 1:
            return "1 = 1"
        negate = flags == {"true"}
    elif clause.modifier in (None, "not"):
        negate = clause.modifier == "not"
        ors: list[str] = []
        for value in clause.values:
            system, code = split_token(value)
            if system is None:
                ors.append("t.value = ?")
                sub_params.append(code)
            elif code is None:
                ors.append("t.system = ?")
                sub_params.append(system)
            elif system == "":
                ors.append("(t.system IS NULL AND t.value = ?)")
                sub_params.append(code)
            else:
                ors.append("(t.system = ? AND t.value = ?)")
                sub_params.extend((system, code))
        sub_where.append("(" + " OR ".join(ors) + ")")
    else:
        raise InvalidRequestError(f"modifier :{clause.modifier} is not supported for tokens")
    params.extend(sub_params)
    op = "NOT IN" if negate else "IN"
    return f"{head} {op} (SELECT {select} FROM token_index t WHERE {' AND '.join(sub_where)})"


def _order_by(sort: tuple[str, ...]) -> str:
    keys: list[str] = []
    seen: set[str] = set()
    for item in sort or ("_lastUpdated",):
        desc = item.startswith("-")
        name = item[1:] if desc else item
        column = _SORT_COLUMNS.get(name)
        if column is None:
            raise InvalidRequestError(f"sorting by {item!r} is not supported")
        if column not in seen:
            seen.add(column)
            keys.append(f"{column} DESC" if desc else column)
    for column in ("r.type", "r.id"):
        if column not in seen:
            keys.append(column)
    return ", ".join(keys)
