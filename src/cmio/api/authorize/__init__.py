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

from cmio.api.authorize.checks import (
    BREAK_GLASS_HEADER,
    check_export,
    forbid,
    policy_for,
    read,
    require,
    require_conditional,
    require_operation,
    vread,
)
from cmio.api.authorize.results import (
    restrict_everything,
    restrict_search,
    visible,
    visible_history,
    visible_page,
)
from cmio.api.authorize.writes import (
    check_create,
    check_delete,
    check_patch,
    check_transaction,
    check_update,
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
