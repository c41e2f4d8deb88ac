"""Change requests as FHIR ``Task`` resources and their status board.

A change request (https://hl7.org/fhir/R4/task.html) has ``code`` ``change-request``, the
``requester``, the clinical rationale as ``reasonCode.text``, a ``priority``, a status on
the board (``requested`` -> ``accepted`` -> ``in-progress`` -> ``completed``, or
``rejected``), ``input`` references to the artifacts it is about, ``output`` references
to the artifact versions it produced, and ``note``\\ s. Every status change is recorded
as a Provenance, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

from cmio.governance.lifecycle import GovernanceError
from cmio.governance.service import Governance
from cmio.security.grant import AccessGrant

__all__ = [
    "BOARD_STATUSES",
    "CHANGE_REQUEST_SYSTEM",
    "PRIORITIES",
    "ChangeRequests",
    "is_change_request",
]

CHANGE_REQUEST_SYSTEM = "https://cmio.dev/fhir/CodeSystem/task-code"
"""``Task.code`` system; the code is ``change-request``."""
BOARD_STATUSES = ("requested", "accepted", "in-progress", "completed", "rejected")
PRIORITIES = ("routine", "urgent", "asap", "stat")
_NEXT: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "requested": ("accepted", "rejected"),
        "accepted": ("in-progress", "rejected"),
        "in-progress": ("completed", "rejected"),
        "completed": (),
        "rejected": (),
    }
)


def is_change_request(task: Mapping[str, Any]) -> bool:
    """Whether a Task is a change request."""
    return any(
        c.get("system") == CHANGE_REQUEST_SYSTEM and c.get("code") == "change-request"
        for c in (task.get("code") or {}).get("coding") or []
    )


def _reference(ref: str, field: str) -> dict[str, Any]:
    parts = ref.split("/")
    if len(parts) not in (2, 4) or not all(parts) or (len(parts) == 4 and parts[2] != "_history"):
        raise GovernanceError(
            400, "invalid", f"'{ref}' is not a reference Type/id[/_history/n]", field
        )
    return {"reference": ref}


class ChangeRequests:
    """Create change requests and move them on the board.

    Args:
        governance: the governance service (store, policy, clock, Provenance).
    """

    def __init__(self, governance: Governance) -> None:
        self.governance = governance

    def create(
        self,
        grant: AccessGrant,
        description: str,
        rationale: str,
        priority: str = "routine",
        artifacts: list[str] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Store a new change request (status ``requested``) asked for by ``grant``.

        Raises:
            GovernanceError: 400 for an empty description or rationale, an unknown
                priority or a malformed artifact reference.
        """
        if not description.strip():
            raise GovernanceError(
                400, "required", "A change request needs a description", "Task.description"
            )
        if not rationale.strip():
            raise GovernanceError(
                400, "required", "A change request needs a clinical rationale", "Task.reasonCode"
            )
        if priority not in PRIORITIES:
            raise GovernanceError(
                400, "invalid", f"priority must be one of {', '.join(PRIORITIES)}", "Task.priority"
            )
        now = self.governance.clock()
        requester: dict[str, Any] = {"display": grant.subject}
        if grant.fhir_user:
            requester["reference"] = grant.fhir_user
        task: dict[str, Any] = {
            "resourceType": "Task",
            "status": "requested",
            "intent": "proposal",
            "priority": priority,
            "code": {
                "coding": [{"system": CHANGE_REQUEST_SYSTEM, "code": "change-request"}],
                "text": "Change request",
            },
            "description": description,
            "requester": requester,
            "reasonCode": {"text": rationale},
            "authoredOn": now,
            "lastModified": now,
        }
        inputs = [
            {"type": {"text": "artifact"}, "valueReference": _reference(a, "Task.input")}
            for a in artifacts or []
        ]
        if inputs:
            task["input"] = inputs
        if note:
            task["note"] = [{"authorString": grant.subject, "time": now, "text": note}]
        with self.governance.repository.transaction() as tx:
            stored = tx.create(task)
            self.governance.record(
                tx,
                self.governance.provenance(task, stored.version, "requested", grant, note),
                "change-request",
                grant,
            )
        return task

    def get(self, task_id: str) -> dict[str, Any]:
        """A change request by id.

        Raises:
            GovernanceError: 404 when there is no such change request.
        """
        from cmio.store.base import GoneError, NotFoundError

        try:
            stored = self.governance.repository.read("Task", task_id)
        except (NotFoundError, GoneError):
            stored = None
        task: dict[str, Any] | None = (
            orjson.loads(stored.data) if stored is not None and stored.data else None
        )
        if task is None or not is_change_request(task):
            raise GovernanceError(404, "not-found", f"No change request Task/{task_id}")
        return task

    def move(
        self, task_id: str, status: str, grant: AccessGrant, note: str | None = None
    ) -> dict[str, Any]:
        """Move a change request to ``status``; accepting or rejecting needs an approver
        role of the policy, progress and completion an author role.

        Raises:
            GovernanceError: 409 for a move the board does not allow, 403 for a role.
        """
        self.get(task_id)
        with self.governance.repository.transaction() as tx:
            stored = tx.read("Task", task_id)
            task: dict[str, Any] = orjson.loads(stored.data or b"{}")
            current = str(task.get("status"))
            if status not in _NEXT.get(current, ()):
                raise GovernanceError(
                    409,
                    "business-rule",
                    f"A change request '{current}' cannot become '{status}'",
                    "Task.status",
                )
            policy = self.governance.policy
            needed = (
                policy.roles_for("approve")
                if status in ("accepted", "rejected")
                else policy.submitters
            )
            if not grant.roles & needed:
                raise GovernanceError(
                    403,
                    "forbidden",
                    f"'{grant.subject}' may not mark a change request '{status}': needs "
                    f"one of the roles {', '.join(sorted(needed))}",
                )
            if status == "rejected" and not (note or "").strip():
                raise GovernanceError(400, "required", "A rejection needs a note", "Task.note")
            now = self.governance.clock()
            task["status"] = status
            task["lastModified"] = now
            if note:
                task.setdefault("note", []).append(
                    {"authorString": grant.subject, "time": now, "text": note}
                )
            stored, _ = tx.update(task, if_match=stored.version)
            self.governance.record(
                tx,
                self.governance.provenance(task, stored.version, status, grant, note),
                "change-request",
                grant,
            )
        return task

    def link_output(self, task_id: str, artifact: str, grant: AccessGrant) -> dict[str, Any]:
        """Record on the change request an artifact version it produced
        (``Type/id/_history/n``, added to ``Task.output``)."""
        ref = _reference(artifact, "Task.output")
        if "/_history/" not in artifact:
            raise GovernanceError(
                400,
                "invalid",
                "An output must name the artifact version (…/_history/n)",
                "Task.output",
            )
        if not grant.roles & self.governance.policy.submitters:
            raise GovernanceError(403, "forbidden", f"'{grant.subject}' may not link outputs")
        self.get(task_id)
        with self.governance.repository.transaction() as tx:
            stored = tx.read("Task", task_id)
            task: dict[str, Any] = orjson.loads(stored.data or b"{}")
            rtype, rid, _, version = artifact.split("/")
            if not version.isdigit():
                raise GovernanceError(400, "invalid", f"'{artifact}': bad version", "Task.output")
            tx.vread(rtype, rid, int(version))  # the version must exist (NotFoundError)
            task.setdefault("output", []).append(
                {"type": {"text": "artifact-version"}, "valueReference": ref}
            )
            task["lastModified"] = self.governance.clock()
            tx.update(task, if_match=stored.version)
        return task

    def board(self) -> dict[str, list[dict[str, Any]]]:
        """The change requests by board column (status), each column by priority then date."""
        rank = {p: i for i, p in enumerate(reversed(PRIORITIES))}
        columns: dict[str, list[dict[str, Any]]] = {s: [] for s in BOARD_STATUSES}
        for task in self.governance.search(
            "Task", "code", f"{CHANGE_REQUEST_SYSTEM}|change-request", None
        ):
            if is_change_request(task) and task.get("status") in columns:
                columns[str(task["status"])].append(task)
        for tasks in columns.values():
            tasks.sort(
                key=lambda t: (rank.get(str(t.get("priority")), 9), str(t.get("authoredOn")))
            )
        return columns
