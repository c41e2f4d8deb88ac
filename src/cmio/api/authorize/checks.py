"""Building a request's policy and the checks before an interaction: type-level permission,
operations, reads, Bulk Data (see :mod:`cmio.api.authorize`)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import orjson

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest
from cmio.security.policy import INTERACTIONS, Access, Decision, Policy
from cmio.store.base import GoneError, NotFoundError, StoredResource

__all__ = [
    "BREAK_GLASS_HEADER",
    "check_export",
    "forbid",
    "load",
    "policy_for",
    "raise_for",
    "read",
    "require",
    "require_conditional",
    "require_operation",
    "vread",
]

BREAK_GLASS_HEADER = "x-break-glass"
_MAX_REASON = 500
_JOB_ID = re.compile(r"[0-9a-f]{32}")


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


def raise_for(decision: Decision, rtype: str, rid: str | None) -> None:
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


def require_operation(
    policy: Policy | None, name: str, rtype: str | None, request: FhirRequest | None = None
) -> None:
    """403 unless the grant may invoke ``$name`` (see :meth:`Policy.operation`)."""
    if policy is None:
        return
    subject_level = False
    if name == "evaluate-measure" and request is not None:
        from cmio.api.ops.evaluate_measure import operation_params

        values = operation_params(request)
        kinds = set(values.get("reportType", ()))
        subject_level = bool(values.get("subject")) or bool(kinds & {"subject", "subject-list"})
    raise_for(policy.operation(name, rtype, subject_level=subject_level), rtype or "", None)


def require_conditional(policy: Policy | None, interaction: str, rtype: str) -> None:
    """Conditional update/delete/patch need the permission over every resource of the type
    (a search by a restricted grant must not reach resources it cannot see)."""
    access = require(policy, interaction, rtype)
    if access is not None and not access.unrestricted:
        raise forbid(f"A conditional {interaction} of {rtype} needs access to all of them")


def load(data: bytes | None) -> dict[str, Any]:
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
    except GoneError:  # 410 only when the last version before the deletion was visible
        if not _was_visible(env, policy, access, rtype, rid):
            raise NotFoundError(f"{rtype}/{rid} not found") from None
        raise
    raise_for(policy.check_access(access, load(stored.data)), rtype, rid)
    return stored


def _was_visible(env: Env, policy: Policy, access: Access, rtype: str, rid: str) -> bool:
    """Whether the last version of a deleted resource was within the grant's reach."""
    with env.repository.read_transaction() as tx:
        tombstone = tx.current(rtype, rid)
        version = tombstone.version - 1 if tombstone is not None else 0
        while version > 0:
            try:
                stored = tx.vread(rtype, rid, version)
            except (NotFoundError, GoneError):
                stored = None
            if stored is not None and stored.data is not None and not stored.deleted:
                return policy.check_access(access, load(stored.data)).allowed
            version -= 1
    return False


def vread(env: Env, policy: Policy | None, rtype: str, rid: str, vid: int) -> StoredResource:
    """Read one version the grant may see; otherwise exactly the store's not-found."""
    access = require(policy, "vread", rtype)
    stored = env.repository.vread(rtype, rid, vid)
    if policy is None or access is None or access.unrestricted:
        return stored
    if stored.data is None or not policy.check_access(access, load(stored.data)).allowed:
        raise NotFoundError(f"{rtype}/{rid}/_history/{vid} not found")
    return stored


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
