"""``$diff``: a governed artifact compared with another version of it.

``GET [base]/[type]/[id]/$diff?other=url|version`` (or ``other=[type]/[id]``): the
changes from ``other`` (left) to this artifact (right), as a ``Parameters`` with
``code-added`` / ``code-removed`` codings for value sets (expansions compared through the
terminology service) and ``change`` parts (``op``, ``path``, ``old``, ``new``) for the
logic; see docs/governance.md ("Diff").
"""

from __future__ import annotations

import orjson

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.evaluate_measure import operation_params
from cmio.api.ops.governance_transition import env_governance
from cmio.api.render import json_response
from cmio.governance import GOVERNED_TYPES, diff_artifacts
from cmio.terminology.errors import TerminologyError

__all__ = ["governance_diff"]


def governance_diff(
    env: Env, request: FhirRequest, rtype: str | None, rid: str | None
) -> FhirResponse:
    """Handle ``$diff`` (see the module docstring)."""
    if rtype is None or rid is None or rtype not in GOVERNED_TYPES:
        raise FhirError(
            404, "not-supported", "$diff is an instance operation on governed artifacts"
        )
    others = operation_params(request).get("other") or []
    if len(others) != 1 or not others[0].strip():
        raise FhirError(
            400, "required", "other (url|version or Type/id) is required once", expression="other"
        )
    stored = env.repository.read(rtype, rid)
    right = orjson.loads(stored.data or b"{}")
    other = others[0]
    if other.startswith(f"{rtype}/") and "|" not in other:
        left = orjson.loads(env.repository.read(rtype, other.split("/", 1)[1]).data or b"{}")
    else:
        url, _, version = other.partition("|")
        found = env_governance(env).find(rtype, url, version or None)
        if found is None:
            raise FhirError(404, "not-found", f"No {rtype} {other}", expression="other")
        left = found
    try:
        diff = diff_artifacts(left, right, env.terminology)
    except TerminologyError as error:  # a value set that cannot be expanded
        raise FhirError(
            error.status, error.code, error.message, expression=error.expression
        ) from None
    return json_response(request, 200, diff.to_parameters())
