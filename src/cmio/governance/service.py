"""The :class:`Governance` service: lifecycle transitions with Provenance, new versions.

Every decision (submit, approve, reject, activate, retire, revise) is written as a FHIR
``Provenance`` (https://hl7.org/fhir/R4/provenance.html) whose ``target`` is the artifact
version it is about, in the same store transaction as the artifact's new state, so a
decision is never stored without its record and vice versa.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

from cmio.governance.lifecycle import (
    GOVERNED_TYPES,
    Action,
    ApprovalPolicy,
    GovernanceError,
    State,
    canonical_of,
    set_state,
    state_of,
)
from cmio.security.grant import AccessGrant
from cmio.store.base import (
    GoneError,
    NotFoundError,
    Repository,
    SearchClause,
    SearchQuery,
    Transaction,
)

__all__ = ["ACTION_SYSTEM", "IMPACT_EXTENSION", "Decision", "Governance", "check_edit"]

ACTION_SYSTEM = "https://cmio.dev/fhir/CodeSystem/governance-action"
"""``Provenance.activity`` system: submit, approve, reject, activate, retire, revise."""
IMPACT_EXTENSION = "https://cmio.dev/fhir/StructureDefinition/impact-summary"
"""``Provenance.extension`` (``valueString``): the impact analysis summary at submit/approval."""
_CAPACITY_SYSTEM = "https://cmio.dev/fhir/CodeSystem/approval-capacity"
_AFTER: Mapping[str, State] = MappingProxyType(
    {"submit": "in-review", "reject": "draft", "activate": "active", "retire": "retired"}
)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a transition: the artifact's new version and its Provenance."""

    artifact: dict[str, Any]
    provenance: dict[str, Any]
    state: State


def check_edit(current: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Refuse an edit of a non-draft artifact (the lifecycle moves only by transitions).

    Raises:
        GovernanceError: 409 when ``current`` is not a draft and ``new`` changes it.
    """
    if current is None or state_of(current) == "draft":
        return
    strip = ("meta", "text", "id")
    if {k: v for k, v in current.items() if k not in strip} == {
        k: v for k, v in new.items() if k not in strip
    } and state_of(new) == state_of(current):
        return
    url, version = canonical_of(current)
    raise GovernanceError(
        409,
        "business-rule",
        f"{current.get('resourceType')}/{current.get('id')} ({url}|{version}) is "
        f"'{state_of(current)}': it cannot be edited; create a new version",
        f"{current.get('resourceType')}.status",
    )


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Governance:
    """Moves governed artifacts through their lifecycle.

    Args:
        repository: the FHIR store holding the artifacts and their Provenance.
        policy: who may do what (default: clinical lead + technical lead).
        clock: the current instant as FHIR ``instant`` text (tests pin it).
        audit: also append an AuditEvent (BALP, interaction ``operation``) to the audit
            trail in the same transaction as each decision; for callers outside the REST
            API (the CLI), whose requests the API's auditor does not record.
        impact: ``(type, id) -> summary`` of the artifact's impact analysis
            (:mod:`cmio.governance.impact`), computed on ``submit`` and ``approve`` and
            recorded in the Provenance of a move to ``in-review`` or ``approved``
            (extension :data:`IMPACT_EXTENSION`); None: not recorded.
    """

    def __init__(
        self,
        repository: Repository,
        policy: ApprovalPolicy | None = None,
        clock: Callable[[], str] = _utc_now,
        audit: bool = False,
        impact: Callable[[str, str], str | None] | None = None,
    ) -> None:
        self.repository = repository
        self.policy = policy or ApprovalPolicy()
        self.clock = clock
        self.audit = audit
        self.impact = impact

    def record(
        self, tx: Transaction, provenance: dict[str, Any], name: str, grant: AccessGrant
    ) -> None:
        """Store ``provenance`` in ``tx`` and, when :attr:`audit` is on, the decision's
        AuditEvent (https://profiles.ihe.net/ITI/BALP/) in the same transaction."""
        tx.create(provenance)
        if not self.audit:
            return
        from cmio.security.audit.events import AuditFacts, build_event
        from cmio.security.audit.log import AuditLog

        rtype, rid, _, version = str(provenance["target"][0]["reference"]).split("/")
        facts = AuditFacts(
            "operation",
            grant=grant,
            resource_type=rtype,
            resource_id=rid,
            version=int(version),
            operation=name,
            status=200,
        )
        AuditLog(self.repository).append(tx, [build_event(facts)])

    # -- reading -------------------------------------------------------------------

    def decisions(
        self, rtype: str, rid: str, tx: Transaction | None = None
    ) -> list[dict[str, Any]]:
        """The Provenance records of an artifact, oldest first."""
        target = f"{rtype}/{rid}"
        found = [
            p
            for p in self.search("Provenance", "target", target, tx)
            if any(
                str(t.get("reference", "")).split("/_history/")[0] == target
                for t in p.get("target") or []
            )
        ]
        return sorted(found, key=lambda p: (str(p.get("recorded")), str(p.get("id"))))

    def search(
        self, rtype: str, param: str | None, value: str | None, tx: Transaction | None
    ) -> list[dict[str, Any]]:
        """Resources of ``rtype`` matching ``param=value`` (callers re-check the match: a
        store without a search indexer answers every resource of the type)."""
        clauses: tuple[SearchClause, ...] = ()
        if param is not None and value is not None and self.repository.indexer is not None:
            clauses = (SearchClause(param, (value,)),)
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            query = SearchQuery(rtype, clauses, 500, offset, total=False)
            page = tx.search(query) if tx is not None else self.repository.search(query)
            out += [orjson.loads(s.data) for s in page.resources if s.data is not None]
            if len(page.resources) < 500:
                return out
            offset += 500

    def approvals(self, rtype: str, rid: str, tx: Transaction | None = None) -> dict[str, str]:
        """Approval capacity -> approving user, since the artifact was last submitted."""
        filled: dict[str, str] = {}
        for prov in self.decisions(rtype, rid, tx):
            action = _action_of(prov)
            if action in ("submit", "reject"):
                filled = {}
            elif action == "approve":
                agent = (prov.get("agent") or [{}])[0]
                capacity = next(
                    (
                        c.get("code")
                        for r in agent.get("role") or []
                        for c in r.get("coding") or []
                        if c.get("system") == _CAPACITY_SYSTEM
                    ),
                    None,
                )
                who = (agent.get("who") or {}).get("display")
                if isinstance(capacity, str) and isinstance(who, str):
                    filled[capacity] = who
        return filled

    # -- transitions ---------------------------------------------------------------

    def transition(
        self,
        rtype: str,
        rid: str,
        action: Action,
        grant: AccessGrant,
        comment: str | None = None,
    ) -> Decision:
        """Take ``action`` on the artifact ``rtype/rid`` as ``grant``.

        See https://hl7.org/fhir/uv/crmi/artifact-lifecycle.html. ``approve`` fills one
        approval capacity; the artifact becomes ``approved`` when every capacity of the
        policy is filled by different users. ``reject`` sends it back to ``draft`` and
        needs a comment.

        Raises:
            GovernanceError: unknown type, forbidden transition or role, missing comment.
            NotFoundError: no such artifact.
        """
        if rtype not in GOVERNED_TYPES:
            raise GovernanceError(400, "not-supported", f"{rtype} is not a governed artifact type")
        if action == "reject" and not (comment or "").strip():
            raise GovernanceError(400, "required", "A rejection needs a comment", "comment")
        impact = None
        if self.impact is not None and self._completes(action, rtype, rid, grant):
            impact = self.impact(rtype, rid)  # before the write transaction: it reads a lot
        with self.repository.transaction() as tx:
            stored = tx.read(rtype, rid)
            if stored.data is None:
                raise GoneError(f"{rtype}/{rid} is deleted")
            artifact = orjson.loads(stored.data)
            state = state_of(artifact)
            self.policy.check(action, state, grant)
            capacity: str | None = None
            new_state: State = state
            if action == "approve":
                filled = self.approvals(rtype, rid, tx)
                capacity = self.policy.capacity(grant, filled)
                filled[capacity] = grant.subject
                if all(name in filled for name in self.policy.approvers):
                    new_state = "approved"
            else:
                new_state = _AFTER[action]
            if new_state != state:
                set_state(artifact, new_state)
                if rtype != "Basic":
                    artifact["date"] = self.clock()
                stored, _ = tx.update(artifact, if_match=stored.version)
            provenance = self.provenance(artifact, stored.version, action, grant, comment, capacity)
            if impact and new_state != state and new_state in ("in-review", "approved"):
                provenance["extension"] = [{"url": IMPACT_EXTENSION, "valueString": impact}]
            self.record(tx, provenance, "governance-transition", grant)
        return Decision(artifact, provenance, new_state)

    def _completes(self, action: Action, rtype: str, rid: str, grant: AccessGrant) -> bool:
        """Whether ``action`` would move the artifact to ``in-review`` or ``approved`` (the
        moves that record an impact summary; checked again inside the transaction)."""
        if action not in ("submit", "approve"):
            return False
        try:
            stored = self.repository.read(rtype, rid)
            self.policy.check(action, state_of(orjson.loads(stored.data or b"{}")), grant)
            filled = dict(self.approvals(rtype, rid))
            if action == "approve":
                filled[self.policy.capacity(grant, filled)] = grant.subject
        except (GovernanceError, NotFoundError, GoneError):
            return False  # refused below, inside the transaction, without an analysis
        return action == "submit" or all(name in filled for name in self.policy.approvers)

    def new_version(
        self, rtype: str, rid: str, version: str, grant: AccessGrant, new_id: str | None = None
    ) -> Decision:
        """Start a new draft version of an artifact: a copy with ``version`` as a new
        resource (the old one is left untouched), recorded as a ``revise`` Provenance.

        Raises:
            GovernanceError: 409 when ``url|version`` already exists, 403 for a user who
                may not submit.
        """
        if not grant.roles & self.policy.submitters:
            raise GovernanceError(
                403, "forbidden", f"'{grant.subject}' may not author a new version"
            )
        with self.repository.transaction() as tx:
            source = tx.read(rtype, rid)
            if source.data is None:
                raise GoneError(f"{rtype}/{rid} is deleted")
            old = orjson.loads(source.data)
            url, _ = canonical_of(old)
            if url and self.find(rtype, url, version, tx) is not None:
                raise GovernanceError(
                    409, "duplicate", f"{url}|{version} already exists", f"{rtype}.version"
                )
            fresh = copy.deepcopy(old)
            fresh.pop("id", None)
            fresh["meta"] = {}
            if rtype == "Basic":
                _set_view_version(fresh, version)
            else:
                fresh["version"] = version
                fresh["date"] = self.clock()
            set_state(fresh, "draft")
            created = tx.create(fresh, id=new_id)
            provenance = self.provenance(fresh, created.version, "revise", grant, None, None)
            provenance["entity"] = [
                {
                    "role": "revision",
                    "what": {"reference": f"{rtype}/{rid}/_history/{source.version}"},
                }
            ]
            self.record(tx, provenance, "governance-revise", grant)
        return Decision(fresh, provenance, "draft")

    def edit(self, resource: dict[str, Any], grant: AccessGrant) -> dict[str, Any]:
        """Store an edit of a draft artifact (refused for any other state).

        Raises:
            GovernanceError: the artifact is not a draft (409) or the user may not author.
        """
        if not grant.roles & self.policy.submitters:
            raise GovernanceError(403, "forbidden", f"'{grant.subject}' may not edit artifacts")
        rtype, rid = str(resource.get("resourceType")), resource.get("id")
        with self.repository.transaction() as tx:
            current = None
            if isinstance(rid, str):
                try:
                    stored = tx.read(rtype, rid)
                    current = orjson.loads(stored.data) if stored.data else None
                except (NotFoundError, GoneError):
                    current = None
            check_edit(current, resource)
            if current is None:
                set_state(resource, state_of(resource))
            tx.update(resource) if isinstance(rid, str) else tx.create(resource)
        return resource

    def find(
        self, rtype: str, url: str, version: str | None, tx: Transaction | None = None
    ) -> dict[str, Any] | None:
        """The artifact ``url|version`` (highest version when ``version`` is None)."""
        if rtype == "Basic":
            candidates = self.search("Basic", None, None, tx)
        else:
            candidates = self.search(rtype, "url", url, tx)
        candidates = [c for c in candidates if canonical_of(c)[0] == url]
        if version is not None:
            return next((c for c in candidates if canonical_of(c)[1] == version), None)
        candidates.sort(key=lambda c: _version_key(canonical_of(c)[1] or "0"))
        return candidates[-1] if candidates else None

    def provenance(
        self,
        artifact: dict[str, Any],
        version: int,
        action: str,
        grant: AccessGrant,
        comment: str | None,
        capacity: str | None = None,
    ) -> dict[str, Any]:
        """The Provenance recording ``action`` by ``grant`` on version ``version`` of
        ``artifact`` (https://hl7.org/fhir/R4/provenance.html)."""
        rtype, rid = artifact["resourceType"], artifact["id"]
        roles: list[dict[str, Any]] = [
            {"coding": [{"system": "https://cmio.dev/fhir/CodeSystem/role", "code": r}]}
            for r in sorted(grant.roles)
        ]
        if capacity is not None:
            roles.insert(0, {"coding": [{"system": _CAPACITY_SYSTEM, "code": capacity}]})
        agent: dict[str, Any] = {"who": {"display": grant.subject}, "role": roles}
        if grant.fhir_user:
            agent["who"]["reference"] = grant.fhir_user
        url, semver = canonical_of(artifact)
        provenance: dict[str, Any] = {
            "resourceType": "Provenance",
            "target": [
                {
                    "reference": f"{rtype}/{rid}/_history/{version}",
                    "display": f"{url}|{semver}" if url else f"{rtype}/{rid}",
                }
            ],
            "recorded": self.clock(),
            "activity": {"coding": [{"system": ACTION_SYSTEM, "code": action}]},
            "agent": [agent],
        }
        if comment:
            provenance["reason"] = [{"text": comment}]
        return provenance


def _action_of(provenance: dict[str, Any]) -> str | None:
    for coding in (provenance.get("activity") or {}).get("coding") or []:
        if coding.get("system") == ACTION_SYSTEM:
            code = coding.get("code")
            return code if isinstance(code, str) else None
    return None


def _set_view_version(basic: dict[str, Any], version: str) -> None:
    for ext in basic.get("extension") or []:
        if isinstance(ext.get("valueString"), str):
            view = orjson.loads(ext["valueString"])
            if isinstance(view, dict):
                view["version"] = version
                ext["valueString"] = orjson.dumps(view).decode()


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Sort key of a semantic version (``1.10.0`` after ``1.9.2``; https://semver.org)."""
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in version.split("."))
