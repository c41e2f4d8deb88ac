"""``$governance-transition``: move a governed artifact along its lifecycle.

``POST [base]/[type]/[id]/$governance-transition`` with a ``Parameters`` body (or query
parameters) ``action`` (``submit``, ``approve``, ``reject``, ``activate``, ``retire``) and
``comment``; the caller's roles decide (see docs/governance.md, "Lifecycle and change
requests", after https://hl7.org/fhir/uv/crmi/artifact-lifecycle.html). The answer is a
``Parameters`` with ``state``, the artifact (``artifact``) and the ``Provenance`` written.
"""

from __future__ import annotations

from cmio.api.env import Env
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.evaluate_measure import operation_params
from cmio.api.render import json_response
from cmio.governance import ACTIONS, ApprovalPolicy, Governance, GovernanceError
from cmio.security.grant import AccessGrant

__all__ = ["env_governance", "governance_error", "governance_transition", "request_grant"]


def request_grant(request: FhirRequest) -> AccessGrant:
    """The caller's grant (an in-process caller without one has no roles)."""
    grant = request.context.grant
    return grant if grant is not None else AccessGrant.unrestricted()


def env_governance(env: Env) -> Governance:
    """The governance service of a server, with the policy of ``Settings.governance_approvers``."""
    text = env.settings.governance_approvers
    try:
        policy = ApprovalPolicy.parse(text) if text else None
    except ValueError as error:
        raise FhirError(500, "exception", f"CMIO_GOVERNANCE_APPROVERS: {error}") from None
    from cmio.api.ops.governance_impact import env_analyzer

    def impact(rtype: str, rid: str) -> str | None:  # recorded at submit and approval
        summary: str | None = env_analyzer(env).summary_for(rtype, rid)
        return summary

    return Governance(env.repository, policy, impact=impact)


def governance_error(error: GovernanceError) -> FhirError:
    """The OperationOutcome error for a refused governance action."""
    return FhirError(error.status, error.code, str(error), expression=error.expression)


def governance_transition(
    env: Env, request: FhirRequest, rtype: str | None, rid: str | None
) -> FhirResponse:
    """Handle ``$governance-transition`` (see the module docstring)."""
    if rtype is None or rid is None:
        raise FhirError(404, "not-supported", "$governance-transition is an instance operation")
    values = operation_params(request)
    actions = values.get("action") or []
    if len(actions) != 1 or actions[0] not in ACTIONS:
        raise FhirError(
            400,
            "invalid",
            f"action (once) must be one of {', '.join(ACTIONS)}",
            expression="action",
        )
    comments = values.get("comment") or []
    comment = "\n".join(comments) if comments else None
    governance = env_governance(env)
    try:
        decision = governance.transition(
            rtype,
            rid,
            actions[0],  # type: ignore[arg-type]
            request_grant(request),
            comment,
        )
    except GovernanceError as error:
        raise governance_error(error) from None
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "state", "valueCode": decision.state},
            {"name": "artifact", "resource": decision.artifact},
            {"name": "provenance", "resource": decision.provenance},
        ],
    }
    return json_response(request, 200, body)
