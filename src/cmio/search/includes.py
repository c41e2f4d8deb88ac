"""``_include`` and ``_revinclude`` (https://hl7.org/fhir/R4/search.html#include).

Included resources are found with ordinary searches through the store:
forward includes as ``Target?_has:Source:param:_id=<page ids>``, reverse
includes as ``Source?param=Type/id,...``; ``:iterate`` repeats on what was
added, up to :data:`MAX_ROUNDS` times.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cmio.model import Model
from cmio.search.request import UnknownParameterError
from cmio.store.base import SearchClause, SearchQuery, StoredResource, Transaction

__all__ = ["MAX_INCLUDED", "MAX_ROUNDS", "Include", "included", "parse_include"]

MAX_ROUNDS = 3
MAX_INCLUDED = 1000
_CHUNK = 200


@dataclass(frozen=True, slots=True)
class Include:
    """One ``_include``/``_revinclude`` value: ``source:param[:target]`` (param ``*``: all)."""

    reverse: bool
    source: str
    params: tuple[str, ...]
    target: str | None
    iterate: bool


def parse_include(model: Model, rtype: str | None, key: str, value: str) -> Include:
    """Parse ``_include[:iterate]=Source:param[:Target]``.

    Raises:
        UnknownParameterError: unknown type or parameter.
    """
    name, _, modifier = key.partition(":")
    if modifier not in ("", "iterate", "recurse"):
        raise UnknownParameterError(f"Unknown modifier {key!r}", key)
    parts = value.split(":")
    if len(parts) not in (2, 3) or not model.is_resource_type(parts[0]):
        raise UnknownParameterError(f"Malformed {name} value {value!r}", key)
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if target is not None and not model.is_resource_type(target):
        raise UnknownParameterError(f"Unknown target type {target!r} in {name}", key)
    known = model.search_params_for(source)
    if code == "*":
        params = tuple(sorted(c for c, p in known.items() if p.type == "reference"))
    elif code in known and known[code].type == "reference":
        params = (code,)
    else:
        raise UnknownParameterError(f"{source} has no reference parameter {code!r}", key)
    return Include(name == "_revinclude", source, params, target, bool(modifier))


def included(
    tx: Transaction, model: Model, matches: list[StoredResource], includes: Iterable[Include]
) -> list[StoredResource]:
    """The resources the includes add to a page (without the page's own matches)."""
    wanted = list(includes)
    seen = {(s.type, s.id) for s in matches}
    out: list[StoredResource] = []
    frontier = matches
    for round_ in range(MAX_ROUNDS):
        added: list[StoredResource] = []
        for inc in wanted:
            if round_ > 0 and not inc.iterate:
                continue
            for found in _one(tx, model, frontier, inc):
                if (found.type, found.id) not in seen and len(out) + len(added) < MAX_INCLUDED:
                    seen.add((found.type, found.id))
                    added.append(found)
        out.extend(added)
        if not added or not any(inc.iterate for inc in wanted):
            break
        frontier = added
    return out


def _one(
    tx: Transaction, model: Model, frontier: list[StoredResource], inc: Include
) -> list[StoredResource]:
    found: list[StoredResource] = []
    for code in inc.params:
        spd = model.search_params_for(inc.source)[code]
        if inc.reverse:
            refs = [
                f"{s.type}/{s.id}"
                for s in frontier
                if (not spd.target or s.type in spd.target)
                and (inc.target is None or s.type == inc.target)
            ]
            for chunk in _chunks(refs):
                query = SearchQuery(
                    inc.source, (SearchClause(code, chunk),), MAX_INCLUDED, 0, (), False
                )
                found.extend(tx.search(query).resources)
            continue
        ids = [s.id for s in frontier if s.type == inc.source]
        targets = (inc.target,) if inc.target else spd.target
        for target in targets:
            for chunk in _chunks(ids):
                clause = SearchClause(f"_has:{inc.source}:{code}:_id", chunk)
                query = SearchQuery(target, (clause,), MAX_INCLUDED, 0, (), False)
                found.extend(tx.search(query).resources)
    return found


def _chunks(values: list[str]) -> list[tuple[str, ...]]:
    return [tuple(values[i : i + _CHUNK]) for i in range(0, len(values), _CHUNK)]
