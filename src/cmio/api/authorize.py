"""Enforcing the authorization policy on the FHIR RESTful API.

The router builds one :class:`~cmio.security.policy.Policy` per request
(:func:`policy_for`; None when the request carries no grant: an in-process caller,
never restricted) and calls the checks here before each interaction; searches,
includes, history and ``$everything`` filter their results through it.

* A permission the grant lacks on a type: 403 with an OperationOutcome ``forbidden``.
* A resource outside what the grant reaches (another patient's compartment, not matching
  a query-narrowed scope, patient-level data for an aggregate role): exactly the answer
  for a resource that does not exist, so existence does not leak.
* ``X-Break-Glass: <reason>`` (clinician, administrator): access beyond the treatment
  relationship, recorded on ``grant.break_glass`` for audit.

See https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import orjson

from cmio.api.env import Env
from cmio.api.errors import FhirError, OutcomeIssue
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.render import json_response
from cmio.security.policy import INTERACTIONS, Access, Decision, Policy, split_values
from cmio.store.base import (
    GoneError,
    HistoryPage,
    NotFoundError,
    SearchClause,
    SearchPage,
    SearchQuery,
    StoredResource,
)

__all__ = [
    "BREAK_GLASS_HEADER",
    "check_create",
    "check_delete",
    "check_export",
    "check_patch",
    "check_transaction",
    "check_update",
    "forbid",
    "policy_for",
    "read",
    "require",
    "require_conditional",
    "require_operation",
    "restrict_everything",
    "restrict_search",
    "visible",
    "visible_history",
    "visible_page",
    "vread",
]

BREAK_GLASS_HEADER = "x-break-glass"
_MAX_REASON = 500
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_NOTHING = SearchClause("_compartment", ("Patient|!",))  # matches no resource


def policy_for(env: Env, request: FhirRequest) -> Policy | None:
    """The request's policy (None: no grant, nothing restricted).

    Accepts ``X-Break-Glass: <reason>`` from a role allowed to break the glass, and
    records it on the request's grant (``grant.break_glass``) for audit.
    """
    grant = request.context.grant
    if grant is None:
        return None
    reason = request.header(BREAK_GLASS_HEADER)
    policy = Policy(grant, env.repository, _model(env))
    if reason is None:
        return policy
    reason = reason.strip()
    if not reason or len(reason) > _MAX_REASON:
        raise FhirError(
            400,
            "invalid",
            f"X-Break-Glass needs a reason of 1 to {_MAX_REASON} characters",
            expression="X-Break-Glass",
        )
    if not policy.can_break_glass():
        raise forbid("Break-the-glass access is reserved to clinicians and administrators")
    grant = replace(grant, break_glass=reason)
    request.context = replace(request.context, grant=grant)
    return Policy(grant, env.repository, _model(env))


def _model(env: Env) -> Any:
    """The model searches resolve against (custom SearchParameters included)."""
    from cmio.model import Model

    model = getattr(env.repository.indexer, "model", None)
    return model if isinstance(model, Model) else env.model


def forbid(reason: str) -> FhirError:
    """The 403 for a denied request (https://hl7.org/fhir/R4/valueset-issue-type.html#forbidden)."""
    return FhirError(403, "forbidden", reason)


def _raise(decision: Decision, rtype: str, rid: str | None) -> None:
    if decision.effect == "deny":
        raise forbid(decision.reason)
    if decision.effect == "hide":
        raise NotFoundError(f"{rtype}/{rid} not found")  # the store's own not-found


def require(policy: Policy | None, interaction: str, rtype: str) -> Access | None:
    """403 unless the grant allows ``interaction`` on ``rtype`` at all; returns its reach."""
    if policy is None:
        return None
    permission = INTERACTIONS[interaction]
    access = policy.access(permission, rtype)
    if access is None:
        raise forbid(policy.denied(permission, rtype).reason)
    return access


def require_operation(policy: Policy | None, name: str, rtype: str | None) -> None:
    """403 unless the grant may invoke ``$name`` (see :meth:`Policy.operation`)."""
    if policy is not None:
        _raise(policy.operation(name, rtype), rtype or "", None)


def require_conditional(policy: Policy | None, interaction: str, rtype: str) -> None:
    """Conditional update/delete/patch need the permission over every resource of the type
    (a search by a restricted grant must not reach resources it cannot see)."""
    access = require(policy, interaction, rtype)
    if access is not None and not access.unrestricted:
        raise forbid(f"A conditional {interaction} of {rtype} needs access to all of them")


def _load(data: bytes | None) -> dict[str, Any]:
    assert data is not None
    loaded: dict[str, Any] = orjson.loads(data)
    return loaded


def read(env: Env, policy: Policy | None, rtype: str, rid: str) -> StoredResource:
    """Read a resource the grant may see; otherwise exactly the store's not-found."""
    access = require(policy, "read", rtype)
    if policy is None or access is None or access.unrestricted:
        return env.repository.read(rtype, rid)
    try:
        stored = env.repository.read(rtype, rid)
    except GoneError:  # a tombstone's compartment is unknown: do not reveal it
        raise NotFoundError(f"{rtype}/{rid} not found") from None
    _raise(policy.check_access(access, _load(stored.data)), rtype, rid)
    return stored


def vread(env: Env, policy: Policy | None, rtype: str, rid: str, vid: int) -> StoredResource:
    """Read one version the grant may see; otherwise exactly the store's not-found."""
    access = require(policy, "vread", rtype)
    stored = env.repository.vread(rtype, rid, vid)
    if policy is None or access is None or access.unrestricted:
        return stored
    if stored.data is None or not policy.check_access(access, _load(stored.data)).allowed:
        raise NotFoundError(f"{rtype}/{rid}/_history/{vid} not found")
    return stored


def _body(request: FhirRequest) -> Any:
    prepared = getattr(request, "prepared", None)  # cmio.api.ops.write.PreparedRequest
    if prepared is not None:
        return prepared.resource
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return None


def check_create(env: Env, policy: Policy | None, request: FhirRequest, rtype: str) -> None:
    """``POST [type]``: the grant may create this resource (in its reach)."""
    access = require(policy, "create", rtype)
    if policy is None or access is None or access.unrestricted:
        return
    if request.header("if-none-exist"):
        raise forbid(f"A conditional create of {rtype} needs access to all of them")
    body = _body(request)
    if isinstance(body, dict) and body.get("resourceType") == rtype:
        _raise(policy.check_access(access, body, exists=False), rtype, None)


def _existing(env: Env, rtype: str, rid: str) -> dict[str, Any] | None:
    try:
        return _load(env.repository.read(rtype, rid).data)
    except (NotFoundError, GoneError):
        return None


def check_update(
    env: Env, policy: Policy | None, request: FhirRequest, rtype: str, rid: str | None
) -> None:
    """``PUT``: the current version is visible and the new content stays in reach."""
    if rid is None:
        require_conditional(policy, "update", rtype)
        return
    access = require(policy, "update", rtype)
    if policy is None or access is None or access.unrestricted:
        return
    current = _existing(env, rtype, rid)
    if current is not None:
        _raise(policy.check_access(access, current), rtype, rid)
    body = _body(request)
    if isinstance(body, dict) and body.get("resourceType") == rtype:
        _raise(policy.check_access(access, body, exists=False), rtype, rid)


def check_patch(
    env: Env, policy: Policy | None, request: FhirRequest, rtype: str, rid: str | None
) -> None:
    """``PATCH``: the current version is visible and the patched content stays in reach."""
    if rid is None:
        require_conditional(policy, "patch", rtype)
        return
    access = require(policy, "patch", rtype)
    if policy is None or access is None or access.unrestricted:
        return
    current = _existing(env, rtype, rid)
    if current is None:
        return  # the patch answers its own not-found
    _raise(policy.check_access(access, current), rtype, rid)
    _check_patched(policy, access, current, _body(request), rtype, rid)


def _check_patched(
    policy: Policy, access: Access, current: dict[str, Any], operations: Any, rtype: str, rid: str
) -> None:
    from cmio.api.jsonpatch import JsonPatchError, apply_patch

    try:
        patched = apply_patch(current, operations)
    except JsonPatchError:
        return  # the patch reports it
    if isinstance(patched, dict):
        _raise(policy.check_access(access, patched, exists=False), rtype, rid)


def check_delete(
    env: Env, policy: Policy | None, request: FhirRequest, rtype: str, rid: str | None
) -> FhirResponse | None:
    """``DELETE``: a hidden resource answers exactly as one that does not exist."""
    if rid is None:
        require_conditional(policy, "delete", rtype)
        return None
    access = require(policy, "delete", rtype)
    if policy is None or access is None or access.unrestricted:
        return None
    current = _existing(env, rtype, rid)
    if current is None or policy.check_access(access, current).allowed:
        return None
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [OutcomeIssue("information", "informational", "Nothing to delete").to_json()],
    }
    return json_response(request, 200, outcome)


def check_transaction(
    env: Env,
    policy: Policy | None,
    entries: Sequence[tuple[int, str, str, str | None, str, Any, str | None]],
) -> None:
    """Check every entry of a transaction before it runs; one denial refuses it all.

    ``entries``: ``(index, method, type, id, query, resource, ifNoneExist)`` each.
    """
    if policy is None:
        return
    for index, method, rtype, rid, query, resource, if_none_exist in entries:
        try:
            _check_entry(env, policy, method, rtype, rid, query, resource, if_none_exist)
        except FhirError as exc:
            exc.issues[0] = replace(exc.issues[0], expression=f"Bundle.entry[{index}]")
            raise
        except NotFoundError as exc:
            raise FhirError(
                404, "not-found", str(exc), expression=f"Bundle.entry[{index}].request.url"
            ) from None


def _check_entry(
    env: Env,
    policy: Policy,
    method: str,
    rtype: str,
    rid: str | None,
    query: str,
    resource: Any,
    if_none_exist: str | None,
) -> None:
    if not env.model.is_resource_type(rtype):
        return  # the transaction reports it
    if method in ("GET", "HEAD"):
        require(policy, "read" if rid else "search", rtype)
        return
    interaction = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    name = interaction[method]
    if method != "POST" and rid is None:
        require_conditional(policy, name, rtype)
        return
    access = require(policy, name, rtype)
    if access is None or access.unrestricted:
        return
    if method == "POST" and if_none_exist:
        raise forbid(f"A conditional create of {rtype} needs access to all of them")
    current = _existing(env, rtype, rid) if rid is not None else None
    if current is not None:
        _raise(policy.check_access(access, current), rtype, rid)
    if method in ("POST", "PUT") and isinstance(resource, dict):
        _raise(policy.check_access(access, resource, exists=False), rtype, rid)
    if method == "PATCH" and current is not None and isinstance(resource, dict):
        import base64

        try:
            operations = orjson.loads(base64.b64decode(str(resource.get("data", ""))))
        except (ValueError, orjson.JSONDecodeError):
            return  # the transaction reports it
        assert rid is not None
        _check_patched(policy, access, current, operations, rtype, rid)


def _clauses(policy: Policy, access: Access, rtype: str | None) -> tuple[SearchClause, ...]:
    clauses: list[SearchClause] = []
    if access.patients is not None:
        patients = sorted(access.patients)
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
        extra = _clauses(policy, access, query.type)
    else:
        types = [t for c in query.clauses if c.name == "_type" for t in c.values] or ["*"]
        accesses = [require(policy, "search", t) for t in types]
        reach = {(a.patients, a.narrowing, a.aggregate_only) for a in accesses if a is not None}
        if len(reach) > 1 or any(
            a is not None and (a.narrowing or a.aggregate_only) for a in accesses
        ):
            raise forbid("Under this access token, search one resource type at a time")
        first = accesses[0]
        extra = _clauses(policy, first, None) if first is not None else ()
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
        if access.unrestricted or policy.check_access(access, _load(stored.data)).allowed:
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
        if policy.check_access(access, _load(stored.data)).allowed:
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


def check_export(env: Env, policy: Policy | None, request: FhirRequest) -> None:
    """Bulk Data kick-off, status, file and cancel: the grant must reach every resource
    of the exported types with ``user/`` or ``system/`` read scopes."""
    if policy is None:
        return
    parts = [p for p in request.path.split("/") if p]
    types: tuple[str, ...] | None = None
    if parts and parts[-1] == "$export":
        names = [t.strip() for k, v in request.query if k == "_type" for t in v.split(",")]
        types = tuple(t for t in names if t) or None
    elif parts and parts[0] in ("$export-poll-status", "$export-file") and len(parts) >= 2:
        known = env.exports is not None and _JOB_ID.fullmatch(parts[1]) is not None
        job = env.exports.get(parts[1]) if known and env.exports is not None else None
        if job is None:
            return  # answered as an unknown job
        types = job.request.types
    else:
        return
    decision = policy.export(types)
    if not decision.allowed:
        raise forbid(decision.reason)
