"""The lifecycle of governed artifacts and who may move them along it.

States: ``draft`` -> ``in-review`` -> ``approved`` -> ``active`` -> ``retired``. They are
kept as the FHIR ``status`` (https://hl7.org/fhir/R4/valueset-definitions.html#ValueSet.status,
``draft``/``active``/``retired``) plus a ``meta.tag`` carrying the finer state, after the
CRMI artifact lifecycle (https://hl7.org/fhir/uv/crmi/artifact-lifecycle.html). An artifact
version is identified by its canonical ``url`` and semantic ``version``
(https://hl7.org/fhir/uv/crmi/versioning.html); a change of content is a new version, a new
resource.

Who may act is configuration (:class:`ApprovalPolicy`): by default approval needs one
clinical lead and one technical lead, two different users.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import orjson

from cmio.security.grant import AccessGrant

__all__ = [
    "ACTIONS",
    "GOVERNED_TYPES",
    "LIFECYCLE_SYSTEM",
    "STATES",
    "Action",
    "ApprovalPolicy",
    "GovernanceError",
    "State",
    "canonical_of",
    "logic_of",
    "set_state",
    "state_of",
]

State = Literal["draft", "in-review", "approved", "active", "retired"]
Action = Literal["submit", "approve", "reject", "activate", "retire"]
STATES: tuple[State, ...] = ("draft", "in-review", "approved", "active", "retired")
ACTIONS: tuple[Action, ...] = ("submit", "approve", "reject", "activate", "retire")

LIFECYCLE_SYSTEM = "https://cmio.dev/fhir/CodeSystem/artifact-lifecycle"
"""``meta.tag`` system of the lifecycle state (codes: :data:`STATES`)."""

GOVERNED_TYPES = frozenset(
    {"ValueSet", "ConceptMap", "Library", "Measure", "PlanDefinition", "Basic"}
)
"""Resource types under governance (``Basic``: a stored ViewDefinition)."""

_FROM: Mapping[str, tuple[State, ...]] = MappingProxyType(
    {
        "submit": ("draft",),
        "approve": ("in-review",),
        "reject": ("in-review",),
        "activate": ("approved",),
        "retire": ("active", "approved"),
    }
)
_FHIR_STATUS: Mapping[str, str] = MappingProxyType(
    {"draft": "draft", "in-review": "draft", "approved": "draft", "active": "active"}
)
_VIEW_EXTENSION = "https://cmio.dev/fhir/StructureDefinition/view-definition"


class GovernanceError(Exception):
    """A forbidden transition, a missing role, or an edit of a non-draft artifact.

    Attributes:
        status: the HTTP status an API answers with (403 role, 409 state, 400 input).
        code: the OperationOutcome issue code.
        expression: the element the problem is about, when there is one.
    """

    def __init__(self, status: int, code: str, message: str, expression: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.expression = expression


def state_of(resource: Mapping[str, Any]) -> State:
    """The lifecycle state of an artifact: its lifecycle tag, else its FHIR ``status``."""
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if tag.get("system") == LIFECYCLE_SYSTEM and tag.get("code") in STATES:
            code: State = tag["code"]
            return code
    status = resource.get("status")
    if status == "active":
        return "active"
    if status == "retired":
        return "retired"
    return "draft"


def set_state(resource: dict[str, Any], state: State) -> None:
    """Write ``state`` on ``resource``: the lifecycle tag and (if the type has one) ``status``."""
    meta = resource.setdefault("meta", {})
    tags = [t for t in meta.get("tag") or [] if t.get("system") != LIFECYCLE_SYSTEM]
    tags.append({"system": LIFECYCLE_SYSTEM, "code": state})
    meta["tag"] = tags
    if resource.get("resourceType") != "Basic":
        resource["status"] = _FHIR_STATUS.get(state, "retired")


def _view_of(resource: Mapping[str, Any]) -> dict[str, Any] | None:
    for ext in resource.get("extension") or []:
        if ext.get("url") == _VIEW_EXTENSION and isinstance(ext.get("valueString"), str):
            view = orjson.loads(ext["valueString"])
            return view if isinstance(view, dict) else None
    return None


def canonical_of(resource: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(url, version)`` of an artifact (for a ``Basic`` ViewDefinition: the view's own)."""
    source = _view_of(resource) if resource.get("resourceType") == "Basic" else resource
    source = source or {}
    url, version = source.get("url"), source.get("version")
    return (url if isinstance(url, str) else None, version if isinstance(version, str) else None)


def logic_of(resource: Mapping[str, Any]) -> Any:
    """The logic of an artifact for a diff: a ViewDefinition's JSON, a Library's decoded
    content, else the resource without bookkeeping (``meta``, ``text``, ``id``)."""
    if resource.get("resourceType") == "Basic":
        view = _view_of(resource)
        if view is not None:
            return view
    if resource.get("resourceType") == "Library":
        decoded = []
        for item in resource.get("content") or []:
            data = item.get("data")
            try:
                text = base64.b64decode(data, validate=True) if isinstance(data, str) else None
                decoded.append(orjson.loads(text) if text else item)
            except (ValueError, orjson.JSONDecodeError):
                decoded.append(item)
        if decoded:
            return decoded[0] if len(decoded) == 1 else decoded
    return {k: v for k, v in resource.items() if k not in ("meta", "text", "id")}


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    """Who may do what (the organization's configuration).

    Attributes:
        approvers: approval capacity -> the roles that may approve in it; approval needs
            one approval per capacity, each by a different user.
        submitters: roles that may submit a draft for review.
        activators: roles that may activate an approved artifact.
        retirers: roles that may retire an artifact.
    """

    approvers: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: MappingProxyType(
            {
                "clinical-lead": frozenset({"clinician", "administrator"}),
                "technical-lead": frozenset({"informaticist", "integration-engineer"}),
            }
        )
    )
    submitters: frozenset[str] = frozenset(
        {"clinician", "informaticist", "integration-engineer", "administrator"}
    )
    activators: frozenset[str] = frozenset(
        {"informaticist", "integration-engineer", "administrator"}
    )
    retirers: frozenset[str] = frozenset(
        {"clinician", "informaticist", "integration-engineer", "administrator"}
    )

    @classmethod
    def parse(cls, text: str) -> ApprovalPolicy:
        """The policy written ``capacity=role,role;capacity=role`` (e.g. the value of
        ``CMIO_GOVERNANCE_APPROVERS``: ``clinical-lead=clinician;pharmacy-lead=clinician``);
        the other settings keep their defaults.

        Raises:
            ValueError: an entry without ``=``, or a capacity without roles.
        """
        approvers: dict[str, frozenset[str]] = {}
        for entry in (e.strip() for e in text.split(";")):
            if not entry:
                continue
            name, sep, roles = entry.partition("=")
            found = frozenset(r.strip() for r in roles.split(",") if r.strip())
            if not sep or not name.strip() or not found:
                raise ValueError(
                    f"approval policy entry '{entry}' must be written capacity=role[,role...]"
                )
            approvers[name.strip()] = found
        if not approvers:
            raise ValueError("an approval policy needs at least one capacity=role entry")
        return cls(approvers=MappingProxyType(approvers))

    def roles_for(self, action: Action) -> frozenset[str]:
        """The roles that may take ``action`` (any one suffices)."""
        if action in ("approve", "reject"):
            return frozenset().union(*self.approvers.values())
        if action == "submit":
            return self.submitters
        if action == "activate":
            return self.activators
        return self.retirers

    def check(self, action: Action, state: State, grant: AccessGrant) -> None:
        """Raise :class:`GovernanceError` unless ``grant`` may take ``action`` from ``state``.

        Raises:
            GovernanceError: 409 for a transition the lifecycle does not allow from
                ``state``, 403 when the user has none of the roles the action needs.
        """
        if action not in _FROM:
            raise GovernanceError(
                400, "invalid", f"Unknown action '{action}' (one of {', '.join(ACTIONS)})"
            )
        if state not in _FROM[action]:
            raise GovernanceError(
                409,
                "business-rule",
                f"Cannot {action} an artifact in state '{state}' "
                f"(allowed from: {', '.join(_FROM[action])})",
                "status",
            )
        needed = self.roles_for(action)
        if not grant.roles & needed:
            raise GovernanceError(
                403,
                "forbidden",
                f"'{grant.subject}' may not {action}: needs one of the roles "
                f"{', '.join(sorted(needed))}",
            )

    def capacity(self, grant: AccessGrant, filled: Mapping[str, str]) -> str:
        """The approval capacity ``grant`` approves in, given the capacities ``filled``
        (capacity -> user). Raises :class:`GovernanceError` (409) when the user already
        approved or no capacity they hold is still open."""
        if grant.subject in filled.values():
            raise GovernanceError(
                409,
                "business-rule",
                f"'{grant.subject}' has already approved this version; approval needs "
                "different users",
            )
        for name, roles in self.approvers.items():
            if name not in filled and grant.roles & roles:
                return name
        raise GovernanceError(
            409,
            "business-rule",
            f"The approvals '{grant.subject}' could give ({', '.join(sorted(filled))}) "
            "are already given",
        )
