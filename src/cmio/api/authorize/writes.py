"""Checks before writes: create, update, patch, delete and transaction entries
(see :mod:`cmio.api.authorize`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson

from cmio.api.authorize.checks import forbid, load, raise_for, require, require_conditional
from cmio.api.env import Env
from cmio.api.errors import FhirError, OutcomeIssue
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.render import json_response
from cmio.security.policy import Access, Policy
from cmio.store.base import GoneError, NotFoundError

__all__ = ["check_create", "check_delete", "check_patch", "check_transaction", "check_update"]


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
        raise_for(policy.check_access(access, body, exists=False), rtype, None)


def _existing(env: Env, rtype: str, rid: str) -> dict[str, Any] | None:
    try:
        return load(env.repository.read(rtype, rid).data)
    except (NotFoundError, GoneError):
        return None


def _pin(request: FhirRequest, current: dict[str, Any]) -> None:
    """Make the write conditional on the version just checked (``If-Match``), so that a
    concurrent change between the check and the write is a 412, not an unchecked write."""
    version = (current.get("meta") or {}).get("versionId")
    if isinstance(version, str) and version.isdigit() and "if-match" not in request.headers:
        request.headers["if-match"] = f'W/"{version}"'


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
        raise_for(policy.check_access(access, current), rtype, rid)
        _pin(request, current)
    body = _body(request)
    if isinstance(body, dict) and body.get("resourceType") == rtype:
        raise_for(policy.check_access(access, body, exists=False), rtype, rid)


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
    raise_for(policy.check_access(access, current), rtype, rid)
    _pin(request, current)
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
        raise_for(policy.check_access(access, patched, exists=False), rtype, rid)


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
        raise_for(policy.check_access(access, current), rtype, rid)
    if method in ("POST", "PUT") and isinstance(resource, dict):
        raise_for(policy.check_access(access, resource, exists=False), rtype, rid)
    if method == "PATCH" and current is not None and isinstance(resource, dict):
        import base64

        try:
            operations = orjson.loads(base64.b64decode(str(resource.get("data", ""))))
        except (ValueError, orjson.JSONDecodeError):
            return  # the transaction reports it
        assert rid is not None
        _check_patched(policy, access, current, operations, rtype, rid)
