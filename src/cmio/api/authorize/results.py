"""What searches, includes, history and ``$everything`` may return: the grant's reach ANDed
into the query, and results filtered (see :mod:`cmio.api.authorize`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from cmio.api.authorize.checks import forbid, load, read, require
from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.security.policy import INTERACTIONS, Access, Policy, split_values
from cmio.store.base import HistoryPage, SearchClause, SearchPage, SearchQuery, StoredResource

__all__ = [
    "restrict_everything",
    "restrict_search",
    "visible",
    "visible_history",
    "visible_page",
]

_NOTHING = SearchClause("_compartment", ("Patient|!",))  # matches no resource


def _pinned(clauses: Iterable[SearchClause]) -> str | None:
    """The one patient a search is pinned to (``Patient/x/Observation``, ``patient=x``,
    ``subject=Patient/x``), if any."""
    for clause in clauses:
        if len(clause.values) != 1:
            continue
        value = clause.values[0]
        if clause.name == "_compartment" and value.startswith("Patient|"):
            return value[8:] or None
        if clause.name in ("patient", "subject") and value.startswith("Patient/"):
            return value[8:] or None
        if clause.name == "patient" and value and not set(value) & set("/|"):
            return value
    return None


def _patients(
    policy: Policy, access: Access, existing: tuple[SearchClause, ...]
) -> tuple[str, ...] | None:
    """The patients whose compartments a search must stay within (None: any)."""
    if access.patients is None and not access.related:
        return None
    allowed: set[str] | None = None if access.patients is None else set(access.patients)
    if access.related:
        pinned = _pinned(existing)
        if pinned is not None:  # one patient: one relationship check, not the whole panel
            related = {pinned} if policy.is_related([pinned]) else set()
        else:
            related = set(policy.related_patients())
        allowed = related if allowed is None else allowed & related
    return tuple(sorted(allowed or ()))


def _clauses(
    policy: Policy, access: Access, rtype: str | None, existing: tuple[SearchClause, ...] = ()
) -> tuple[SearchClause, ...]:
    clauses: list[SearchClause] = []
    patients = _patients(policy, access, existing)
    if patients is not None:
        if not patients:
            return (_NOTHING,)
        clauses.append(SearchClause("_compartment", tuple(f"Patient|{p}" for p in patients)))
    for group in access.narrowing:
        if len(group) == 1:
            clauses.extend(SearchClause(k, split_values(v)) for k, v in group[0])
            continue
        names = {name for alternative in group for name, _ in alternative}
        if len(names) != 1 or any(len(a) != 1 for a in group):
            raise forbid(
                f"The query-narrowed scopes on {rtype} cannot be combined into one search;"
                " search with one of them"
            )
        values = tuple(
            v for alternative in group for _, raw in alternative for v in split_values(raw)
        )
        clauses.append(SearchClause(names.pop(), tuple(dict.fromkeys(values))))
    return tuple(clauses)


def restrict_search(policy: Policy | None, query: SearchQuery) -> SearchQuery:
    """AND the grant's reach into a search: the compartment(s) and query narrowing.

    A system search (no type) may name several types with ``_type``; under a grant
    restricted differently per type it must search one type at a time.
    """
    if policy is None:
        return query
    if query.type is not None:
        access = require(policy, "search", query.type)
        assert access is not None
        extra = _clauses(policy, access, query.type, query.clauses)
    else:
        types = [t for c in query.clauses if c.name == "_type" for t in c.values] or ["*"]
        accesses = [require(policy, "search", t) for t in types]
        reach = {
            (a.patients, a.related, a.narrowing, a.aggregate_only)
            for a in accesses
            if a is not None
        }
        if len(reach) > 1 or any(
            a is not None and (a.narrowing or a.aggregate_only) for a in accesses
        ):
            raise forbid("Under this access token, search one resource type at a time")
        first = accesses[0]
        extra = _clauses(policy, first, None, query.clauses) if first is not None else ()
    if not extra:
        return query
    return replace(query, clauses=(*extra, *query.clauses))


def visible(
    policy: Policy | None, interaction: str, resources: Iterable[StoredResource]
) -> list[StoredResource]:
    """The resources the grant may see (included resources need read permission)."""
    out = list(resources)
    if policy is None:
        return out
    permission = INTERACTIONS[interaction]
    kept: list[StoredResource] = []
    for stored in out:
        access = policy.access(permission, stored.type)
        if access is None or stored.data is None:
            continue
        if access.unrestricted or policy.check_access(access, load(stored.data)).allowed:
            kept.append(stored)
    return kept


def visible_page(
    policy: Policy | None, page: SearchPage, interaction: str = "search"
) -> SearchPage:
    """A search page without what the grant may not see (a safety net behind the
    clauses :func:`restrict_search` added; the total stays when nothing was removed)."""
    if policy is None:
        return page
    kept = visible(policy, interaction, page.resources)
    if len(kept) == len(page.resources):
        return page
    return SearchPage(kept, None)


def visible_history(
    policy: Policy | None, interaction: str, page: HistoryPage, rtype: str | None, rid: str | None
) -> tuple[HistoryPage, bool]:
    """A history page without the versions the grant may not see.

    Returns the page and whether its ``total`` may be shown (False when anything
    could have been removed). An instance whose versions are all hidden answers as
    an unknown instance.
    """
    if policy is None:
        return page, True
    permission = INTERACTIONS[interaction]
    kept: list[StoredResource] = []
    restricted = False
    for stored in page.entries:
        access = policy.access(permission, stored.type)
        if access is None:
            restricted = True
            continue
        if access.unrestricted:
            kept.append(stored)
            continue
        restricted = True
        if stored.data is None:
            if rid is not None:
                kept.append(stored)  # a deletion of an instance shown below
            continue
        if policy.check_access(access, load(stored.data)).allowed:
            kept.append(stored)
    if rid is not None and restricted and not any(s.data is not None for s in kept):
        raise FhirError(404, "not-found", f"{rtype}/{rid} is not known")
    return HistoryPage(kept, page.total, page.extra), not restricted


def restrict_everything(
    env: Env, policy: Policy | None, rid: str, clauses: list[SearchClause]
) -> list[SearchClause]:
    """``Patient/[id]/$everything``: the patient must be visible; only the compartment
    types the grant may read are searched."""
    if policy is None:
        return clauses
    read(env, policy, "Patient", rid)
    types = sorted(t for t in policy.compartment_types() if policy.access("r", t) is not None)
    if len(types) == len(policy.compartment_types()):
        return clauses
    out = [c for c in clauses if c.name != "_type"]
    asked = next((c.values for c in clauses if c.name == "_type"), None)
    wanted = tuple(t for t in (asked or types) if t in types)
    out.append(SearchClause("_type", wanted or ("Patient",)))
    return out
