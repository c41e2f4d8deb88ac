"""The in-memory matcher: the same parsed search evaluated over resources in Python.

Values are extracted with the same FHIRPath indexer as the stores
(:class:`~cmio.indexing.SearchIndexer`), then each node is matched by plain
Python predicates written from the spec (https://hl7.org/fhir/R4/search.html),
independently of the SQL compiler. For subscriptions, rules and tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from cmio.indexing import text
from cmio.indexing import values as iv
from cmio.indexing.extract import SearchIndexer
from cmio.search import values as sv
from cmio.search.request import Chain, Filter, Has, Node, clause_key, resolve
from cmio.search.terminology import TerminologyProvider, expand_token
from cmio.store.base import InvalidRequestError, SearchQuery

__all__ = ["MemoryIndex"]

Key = tuple[str, str]
_TABLE = {
    "string": "string_index",
    "token": "token_index",
    "reference": "reference_index",
    "date": "date_index",
    "number": "number_index",
    "quantity": "quantity_index",
    "uri": "uri_index",
}
Row = tuple[Any, ...]


class MemoryIndex:
    """Resources held in memory with their index rows; answers searches.

    Args:
        indexer: the extractor (its model resolves parameters).
        resources: resource JSON objects (with ``resourceType`` and ``id``).
        terminology: provider for terminology modifiers.
    """

    def __init__(
        self,
        indexer: SearchIndexer,
        resources: Iterable[dict[str, Any]] = (),
        terminology: TerminologyProvider | None = None,
    ) -> None:
        self.indexer = indexer
        self.model = indexer.model
        self.terminology = terminology
        self.resources: dict[Key, dict[str, Any]] = {}
        self.rows: dict[Key, iv.Rows] = {}
        for resource in resources:
            self.add(resource)

    def add(self, resource: dict[str, Any]) -> None:
        """Add or replace one resource."""
        key = (resource["resourceType"], resource["id"])
        self.resources[key] = resource
        self.rows[key] = self.indexer.table_rows(resource)

    def search(self, query: SearchQuery) -> set[Key]:
        """Keys of the resources matching all clauses (sorting and paging are not applied)."""
        keys = {k for k in self.resources if query.type is None or k[0] == query.type}
        for clause in query.clauses:
            node = resolve(self.model, query.type, clause_key(clause), clause.values)
            keys &= self._keys(node, query.type)
        return keys

    def _keys(self, node: Node, rtype: str | None) -> set[Key]:
        universe = {k for k in self.resources if rtype is None or k[0] == rtype}
        negate, found = self._match(node)
        return universe - found if negate else universe & found

    def _match(self, node: Node) -> tuple[bool, set[Key]]:
        if isinstance(node, Has):
            negate, inner = self._match(node.inner)
            out: set[Key] = set()
            for key, rows in self.rows.items():
                if key[0] != node.source or ((key in inner) == negate):
                    continue
                for row in rows.get("reference_index", ()):
                    if row[0] == node.code and row[1] == node.rtype and row[2] is not None:
                        out.add((node.rtype, row[2]))
            return False, out
        if isinstance(node, Chain):
            targets: set[Key] = set()
            for target, branch in node.inner:
                targets |= self._keys(branch, target)
            out = set()
            for key, rows in self.rows.items():
                if key[0] != node.rtype:
                    continue
                for row in rows.get("reference_index", ()):
                    if row[0] == node.code and (row[1], row[2]) in targets:
                        out.add(key)
            return False, out
        return self._filter(node)

    def _filter(self, f: Filter) -> tuple[bool, set[Key]]:
        mine = [k for k in self.resources if f.rtype is None or k[0] == f.rtype]
        if f.type == "composite":
            return False, {k for k in mine if self._composite_ok(f, k)}
        if f.code in ("_id", "_type", "_lastUpdated"):
            return False, {k for k in mine if self._resource_match(f, k)}
        if f.type == "compartment":  # references named by the CompartmentDefinition
            ctype, _, cid = f.values[0].partition("|")
            return False, {
                k
                for k in mine
                if ("{def}" in f.targets and k == (ctype, cid))
                or any(
                    row[0] in f.targets and row[1] == ctype and row[2] == cid
                    for row in self.rows[k].get("reference_index", ())
                )
            }
        if f.type == "list":  # the items of the named List resources
            items = {
                (row[1], row[2])
                for v in f.values
                for row in self.rows.get(("List", v), {}).get("reference_index", ())
                if row[0] == "item"
            }
            return False, {k for k in mine if k in items}
        if f.type == "text":  # every word of a value starts some word of the document
            return False, {
                k
                for k in mine
                for param, body in self.rows[k].get("text_index", ())
                if param == f.code and any(text.matches(body, v) for v in f.values)
            }
        table = _TABLE[f.type]
        param, modifier = f.code, f.modifier
        if modifier == "missing":
            flag = f.values[0].lower()
            if flag not in ("true", "false") or len({v.lower() for v in f.values}) != 1:
                raise InvalidRequestError(f"{f.code}:missing takes true or false")
            has = {k for k in mine if any(r[0] == param for r in self.rows[k].get(table, ()))}
            return flag == "true", has
        if f.type == "token" and modifier in ("text", "of-type", "identifier"):
            table = "string_index" if modifier == "text" else "token_index"
            param = f"{f.code}:{modifier}"
        elif f.type == "reference" and modifier == "identifier":
            table, param = "token_index", f"{f.code}:identifier"
        pairs = None
        if f.type == "token" and modifier in ("in", "not-in", "above", "below"):
            pairs = expand_token(self.terminology, f.code, modifier, f.values)
        out: set[Key] = set()
        for key in mine:
            for row in self.rows[key].get(table, ()):
                if row[0] != param:
                    continue
                if pairs is not None:
                    hit = any(_token_ok(row, s, c) for s, c in pairs)
                else:
                    hit = any(self._value_ok(f, table, row, value) for value in f.values)
                if hit:
                    out.add(key)
                    break
        return (f.modifier in ("not", "not-in")), out

    def _composite_ok(self, f: Filter, key: Key) -> bool:
        """Some item has every component matching (search.html#composite)."""
        rows = self.rows[key]
        prefix = f"{f.code}$0:"
        items = {
            r[0][len(prefix) :]
            for r in rows.get(_TABLE[f.components[0]], ())
            if r[0].startswith(prefix)
        }
        for value in f.values:
            parts = value.split("$")
            for item in items:
                if all(
                    any(
                        row[0] == f"{f.code}${k}:{item}"
                        and self._value_ok(
                            Filter(f.rtype, f.code, ptype, None, (part,)), _TABLE[ptype], row, part
                        )
                        for row in rows.get(_TABLE[ptype], ())
                    )
                    for k, (ptype, part) in enumerate(zip(f.components, parts, strict=True))
                ):
                    return True
        return False

    def _resource_match(self, f: Filter, key: Key) -> bool:
        if f.code == "_id":
            if f.modifier == "missing":
                return f.values[0] == "false"
            return key[1] in f.values
        if f.code == "_type":
            return key[0] in f.values
        meta = self.resources[key].get("meta") or {}
        lu = meta.get("lastUpdated")
        found = iv.date_range(lu) if isinstance(lu, str) else None
        if found is None:
            return False
        point = found[0]
        for value in f.values:
            prefix, low, high = sv.parse_date(value)
            if prefix == "ap":
                low, high = sv.approximate(low, high)
            checks = {
                "eq": low <= point < high,
                "ap": low <= point < high,
                "ne": not (low <= point < high),
                "ge": point >= low,
                "gt": point >= high,
                "sa": point >= high,
                "le": point < high,
                "lt": point < low,
                "eb": point < low,
            }
            if checks[prefix]:
                return True
        return False

    def _value_ok(self, f: Filter, table: str, row: Row, value: str) -> bool:
        modifier = f.modifier
        if table == "string_index":
            if modifier == "exact":
                return bool(row[2] == value)
            norm = iv.normalize(value)
            return norm in row[1] if modifier == "contains" else bool(row[1].startswith(norm))
        if table == "token_index":
            if modifier == "of-type":
                parts = value.split("|")
                if len(parts) != 3:
                    raise InvalidRequestError(f"{f.code}:of-type needs system|code|value")
                return _token_ok(row, parts[0] or None, f"{parts[1]}|{parts[2]}")
            return _token_ok(row, *sv.split_token(value))
        if table == "reference_index":
            return _reference_ok(row, value, f.targets)
        if table == "date_index":
            prefix, low, high = sv.parse_date(value)
            if prefix == "ap":
                low, high = sv.approximate(low, high)
            return _range_ok(prefix, low, high, row[1], row[2])
        if table == "number_index":
            prefix, text = sv.split_prefix(value)
            return _point_ok(prefix, sv.parse_number(text), row[1])
        if table == "quantity_index":
            q = sv.parse_quantity(value)
            if q.code is not None and q.system in (None, iv.UCUM):
                canon = iv.canonical_quantity(q.number, q.code)
                if canon is not None:
                    return row[7] == canon[1] and _point_ok(q.prefix, canon[0], row[5])
            return (
                _point_ok(q.prefix, q.number, row[1])
                and (q.system is None or row[3] == q.system)
                and (q.code is None or row[4] == q.code)
            )
        stored = row[1]  # uri
        if modifier == "below":
            return bool(stored.startswith(value))
        if modifier == "above":
            return value.startswith(stored)
        return bool(stored == value)


def _token_ok(row: Row, system: str | None, code: str | None) -> bool:
    if system == "" and row[1] is not None:
        return False
    if system and row[1] != system:
        return False
    return code is None or row[2] == code


def _reference_ok(row: Row, value: str, targets: tuple[str, ...]) -> bool:
    if "://" in value or value.startswith("urn:"):
        return bool(row[3] == iv.reference_parts(value)[2])
    if "/" in value:
        rtype, _, rid = value.partition("/")
        return bool(row[1] == rtype and row[2] == rid)
    if len(targets) == 1 and row[1] != targets[0]:
        return False
    return bool(row[2] == value)


def _range_ok(prefix: str, low: str, high: str, r_low: str, r_high: str) -> bool:
    inside = r_low >= low and r_high <= high
    return {
        "eq": inside,
        "ne": r_low < low or r_high > high,
        "gt": r_high > high,
        "lt": r_low < low,
        "ge": r_high > high or inside,
        "le": r_low < low or inside,
        "sa": r_low >= high,
        "eb": r_high <= low,
        "ap": r_low < high and r_high > low,
    }[prefix]


def _point_ok(prefix: str, number: Decimal, stored: float | None) -> bool:
    if stored is None:
        return False
    exponent = number.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    low, high = float(number - half), float(number + half)
    value = float(number)
    if prefix == "eq":
        return low <= stored < high
    if prefix == "ne":
        return not (low <= stored < high)
    if prefix == "ap":
        slack = float(abs(number) / 10) or (high - low)
        return value - slack <= stored <= value + slack
    return {
        "gt": stored > value,
        "sa": stored > value,
        "lt": stored < value,
        "eb": stored < value,
        "ge": stored >= value,
        "le": stored <= value,
    }[prefix]
