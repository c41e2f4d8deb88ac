"""SQLite updates by difference: an update changes only the index rows whose values changed.

A new version of a resource usually keeps most of its search values (an Observation whose
status changes keeps its code, subject and dates), so instead of deleting every index row
of the resource and inserting the new version's rows (each row touches three or four
B-trees, and a deleted ``text_index`` row flushes FTS5 through its trigger), the rows the
store holds are read back (one statement over every table, by the owner indexes) and
compared with the new version's rows, per table, as multisets: equal rows stay, the others
are deleted (by their values) or inserted. A ``_text``/``_content`` row whose body changed
is rewritten in place (:meth:`cmio.store._sqlitefts.Backlog.rewrite`). The rows the table
holds afterwards are the same as after a delete and insert of all of them (their rowids
and ``doc`` numbers differ). Should a delete by values not remove the rows it read, that
table's rows are replaced whole, as before. See https://hl7.org/fhir/R4/http.html#update
and https://hl7.org/fhir/R4/search.html (the rows are what searches match).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from cmio.indexing.tables import INDEX_TABLES, IndexTable
from cmio.store._sqlrows import DELETE_INDEX
from cmio.store.base import TableRows

__all__ = ["OWNED", "UpdateRows", "index_changes"]

_WIDTH = max(len(table.columns) for table in INDEX_TABLES)
_TEXT = "text_index"


def _owned_select(number: int, table: IndexTable) -> str:
    columns = [c[0] for c in table.columns]
    doc = "doc" if table.name == _TEXT else "NULL"
    padded = ["param", *columns, *(["NULL"] * (_WIDTH - len(columns)))]
    return (
        f"SELECT {number}, {doc}, {', '.join(padded)} FROM {table.name}"
        " WHERE resource_type = ? AND resource_id = ?"
    )


#: every index row of one resource, ``(table number, doc, param, *columns, NULL...)``:
#: bind ``(resource type, id)`` once per table
OWNED = " UNION ALL ".join(_owned_select(i, t) for i, t in enumerate(INDEX_TABLES))


def _delete_by_values(table: IndexTable) -> str:
    # ``+column``: the values do not choose the index (a lookup index by value would visit
    # every resource sharing it), the owner's prefix does
    # (https://www.sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_)
    where = " AND ".join(f"+{c[0]} IS ?" for c in table.columns)
    return (
        f"DELETE FROM {table.name} WHERE resource_type = ? AND resource_id = ? AND param = ?"
        f" AND {where}"
    )


_DELETE_ROW = {t.name: _delete_by_values(t) for t in INDEX_TABLES}
_DELETE_DOC = "DELETE FROM text_index WHERE doc = ?"

Key = tuple[Any, ...]
#: runs a write statement, returns its row count
Execute = Callable[[str, Sequence[Any]], int]
#: rewrites text row ``doc`` from its old body to a new one; False: not possible here
Rewrite = Callable[[int, str, str], bool]


class UpdateRows:
    """Bind the old rows of one resource (the :data:`OWNED` rows) to its new rows."""

    def __init__(self, rtype: str, id: str, owned: Sequence[Sequence[Any]]) -> None:
        self.rtype = rtype
        self.id = id
        self.old: dict[str, list[Key]] = {}
        self.docs: dict[Key, list[int]] = {}  # text rows: (param, body) -> docs
        for row in owned:
            table = INDEX_TABLES[row[0]]
            key = tuple(row[2 : 3 + len(table.columns)])
            self.old.setdefault(table.name, []).append(key)
            if table.name == _TEXT:
                self.docs.setdefault(key, []).append(int(row[1]))


def index_changes(
    rows: UpdateRows, new: TableRows, execute: Execute, rewrite: Rewrite
) -> TableRows:
    """Delete the old rows the new version does not have; return the rows still to insert.

    ``new``: the new version's rows per table, each ``(resource_type, resource_id, param,
    *columns)``. ``execute`` runs the deletes, ``rewrite`` changes a text row's body in place.
    """
    inserts: TableRows = {}
    owner = (rows.rtype, rows.id)
    for table in INDEX_TABLES:
        name = table.name
        old = Counter(rows.old.get(name, ()))
        wanted = new.get(name, [])
        if not old:
            if wanted:
                inserts[name] = wanted
            continue
        fresh = Counter(tuple(row[2:]) for row in wanted)
        if old == fresh:
            continue
        added: list[Key] | None
        if name == _TEXT:
            added = _text_changes(rows, old, fresh, execute, rewrite)
        else:
            added = _table_changes(name, old, fresh, owner, execute)
        if added is None:  # the rows read were not all deleted: replace them all
            execute(DELETE_INDEX[name], owner)
            added = [tuple(row[2:]) for row in wanted]
        if added:
            inserts[name] = [(*owner, *key) for key in added]
    return inserts


def _table_changes(
    name: str,
    old: Counter[Key],
    fresh: Counter[Key],
    owner: tuple[str, str],
    execute: Execute,
) -> list[Key] | None:
    """Delete (by values, every copy) the rows whose count falls; the rows to insert, or
    None when a delete removed another number of rows than were read."""
    added: list[Key] = []
    for key, count in old.items():
        keep = fresh.get(key, 0)
        if keep < count:
            if execute(_DELETE_ROW[name], (*owner, *key)) != count:
                return None
            added += [key] * keep
    for key, count in fresh.items():
        had = old.get(key, 0)
        if count > had:
            added += [key] * (count - had)
    return added


def _text_changes(
    rows: UpdateRows,
    old: Counter[Key],
    fresh: Counter[Key],
    execute: Execute,
    rewrite: Rewrite,
) -> list[Key]:
    """Text rows (one per parameter, identified by ``doc``): a parameter whose body
    changed is rewritten in place; other surplus rows deleted by ``doc``; the rest to
    insert."""
    gone: list[tuple[int, Key]] = []
    for key, count in old.items():
        surplus = count - fresh.get(key, 0)
        gone += [(doc, key) for doc in rows.docs[key][:surplus]] if surplus > 0 else []
    added = [key for key, count in fresh.items() for _ in range(count - old.get(key, 0))]
    by_param: dict[Any, list[int]] = {}
    for i, key in enumerate(added):
        by_param.setdefault(key[0], []).append(i)
    rewritten: set[int] = set()
    kept: list[tuple[int, Key]] = []
    for doc, key in gone:
        slots = by_param.get(key[0])
        if slots and rewrite(doc, key[1], added[slots[0]][1]):
            rewritten.add(slots.pop(0))
        else:
            kept.append((doc, key))
    for doc, _key in kept:
        execute(_DELETE_DOC, (doc,))
    return [key for i, key in enumerate(added) if i not in rewritten]
