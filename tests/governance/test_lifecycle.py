"""Lifecycle transitions by role, approvals by two users, Provenance in the transaction."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cmio.governance import (
    ACTION_SYSTEM,
    ApprovalPolicy,
    Governance,
    GovernanceError,
    State,
    state_of,
)
from cmio.security.grant import AccessGrant
from cmio.store.base import Repository, SearchQuery
from tests.governance.conftest import user, valueset

CLIN = user("dr-house", "clinician")
TECH = user("ada", "informaticist")
ENG = user("linus", "integration-engineer")
ANALYST = user("bob", "analyst")
EXEC = user("eve", "executive")


def _store(repository: Repository, state: State, resource: dict[str, Any] | None = None) -> str:
    from cmio.governance.lifecycle import set_state

    body = resource or valueset(["4548-4"])
    set_state(body, state)
    with repository.transaction() as tx:
        tx.update(body)
    return str(body["id"])


def _provenances(repository: Repository) -> list[dict[str, Any]]:
    page = repository.search(SearchQuery("Provenance", (), 1000))
    return [orjson.loads(s.data) for s in page.resources if s.data]


ALLOWED: list[tuple[State, str, AccessGrant, State]] = [
    ("draft", "submit", CLIN, "in-review"),
    ("draft", "submit", TECH, "in-review"),
    ("in-review", "approve", CLIN, "in-review"),
    ("in-review", "approve", TECH, "in-review"),
    ("in-review", "reject", CLIN, "draft"),
    ("in-review", "reject", ENG, "draft"),
    ("approved", "activate", TECH, "active"),
    ("approved", "activate", ENG, "active"),
    ("active", "retire", CLIN, "retired"),
    ("active", "retire", TECH, "retired"),
]


@pytest.mark.parametrize(("state", "action", "grant", "after"), ALLOWED)
def test_allowed_transition(
    repository: Repository,
    governance: Governance,
    state: State,
    action: Any,
    grant: AccessGrant,
    after: State,
) -> None:
    rid = _store(repository, state)
    decision = governance.transition("ValueSet", rid, action, grant, comment="looks right")
    assert decision.state == after
    stored = orjson.loads(repository.read("ValueSet", rid).data or b"{}")
    assert state_of(stored) == after
    assert stored["status"] == {"active": "active", "retired": "retired"}.get(after, "draft")
    [prov] = _provenances(repository)
    assert prov["activity"]["coding"][0] == {"system": ACTION_SYSTEM, "code": action}
    assert prov["agent"][0]["who"]["display"] == grant.subject
    version = repository.read("ValueSet", rid).version
    assert prov["target"][0]["reference"] == f"ValueSet/{rid}/_history/{version}"
    assert prov["reason"][0]["text"] == "looks right"


DENIED_ROLE: list[tuple[State, str, AccessGrant]] = [
    ("draft", "submit", ANALYST),
    ("draft", "submit", EXEC),
    ("in-review", "approve", ANALYST),
    ("in-review", "approve", EXEC),
    ("in-review", "reject", ANALYST),
    ("approved", "activate", CLIN),
    ("approved", "activate", ANALYST),
    ("active", "retire", EXEC),
]


@pytest.mark.parametrize(("state", "action", "grant"), DENIED_ROLE)
def test_role_denied(
    repository: Repository, governance: Governance, state: State, action: Any, grant: AccessGrant
) -> None:
    rid = _store(repository, state)
    with pytest.raises(GovernanceError, match="needs one of the roles") as caught:
        governance.transition("ValueSet", rid, action, grant, comment="x")
    assert caught.value.status == 403
    assert state_of(orjson.loads(repository.read("ValueSet", rid).data or b"{}")) == state
    assert _provenances(repository) == []


DENIED_STATE: list[tuple[State, str]] = [
    ("draft", "approve"),
    ("draft", "activate"),
    ("draft", "retire"),
    ("in-review", "submit"),
    ("in-review", "activate"),
    ("approved", "approve"),
    ("active", "submit"),
    ("active", "activate"),
    ("retired", "activate"),
    ("retired", "retire"),
]


@pytest.mark.parametrize(("state", "action"), DENIED_STATE)
def test_state_denied(
    repository: Repository, governance: Governance, state: State, action: Any
) -> None:
    admin = user("root", "administrator", "informaticist")
    rid = _store(repository, state)
    with pytest.raises(GovernanceError, match=f"Cannot {action}") as caught:
        governance.transition("ValueSet", rid, action, admin, comment="x")
    assert caught.value.status == 409
    assert _provenances(repository) == []


def test_two_distinct_approvers(repository: Repository, governance: Governance) -> None:
    rid = _store(repository, "in-review")
    both = user("dual", "clinician", "informaticist")
    assert governance.transition("ValueSet", rid, "approve", both).state == "in-review"
    with pytest.raises(GovernanceError, match="already approved"):
        governance.transition("ValueSet", rid, "approve", both)
    other_clin = user("dr-grey", "clinician")
    with pytest.raises(GovernanceError, match="already given"):
        governance.transition("ValueSet", rid, "approve", other_clin)
    assert governance.transition("ValueSet", rid, "approve", ENG).state == "approved"
    assert governance.approvals("ValueSet", rid) == {
        "clinical-lead": "dual",
        "technical-lead": "linus",
    }


def test_rejection_resets_approvals_and_needs_comment(
    repository: Repository, governance: Governance
) -> None:
    rid = _store(repository, "in-review")
    governance.transition("ValueSet", rid, "approve", CLIN)
    with pytest.raises(GovernanceError, match="needs a comment") as caught:
        governance.transition("ValueSet", rid, "reject", TECH)
    assert caught.value.expression == "comment"
    governance.transition("ValueSet", rid, "reject", TECH, comment="add HbA1c IFCC code")
    governance.transition("ValueSet", rid, "submit", CLIN)
    assert governance.approvals("ValueSet", rid) == {}
    governance.transition("ValueSet", rid, "approve", CLIN)
    assert governance.transition("ValueSet", rid, "approve", TECH).state == "approved"


def test_configured_policy(repository: Repository) -> None:
    policy = ApprovalPolicy(approvers={"pharmacy-lead": frozenset({"clinician"})})
    governance = Governance(repository, policy)
    rid = _store(repository, "in-review")
    assert governance.transition("ValueSet", rid, "approve", CLIN).state == "approved"


def test_provenance_in_same_transaction(repository: Repository, governance: Governance) -> None:
    rid = _store(repository, "draft")
    before = repository.read("ValueSet", rid).version

    def boom(tx: Any) -> None:
        if any(s.type == "Provenance" for s in tx.written or []):
            raise RuntimeError("commit refused")

    repository.before_commit = boom
    with pytest.raises(RuntimeError):
        governance.transition("ValueSet", rid, "submit", CLIN)
    repository.before_commit = None
    assert repository.read("ValueSet", rid).version == before
    assert _provenances(repository) == []
    governance.transition("ValueSet", rid, "submit", CLIN)
    assert len(_provenances(repository)) == 1


def test_full_lifecycle_of_rule_library_and_view(
    repository: Repository, governance: Governance
) -> None:
    from cmio.rules.definition import rule_as_library, rule_from_json
    from cmio.views.materialize import view_as_basic

    rule = rule_from_json(
        {"id": "lab-loinc", "severity": "warning", "message": "LOINC", "expression": "true"},
        version="1.0.0",
        status="draft",
        url=None,
    )
    library = rule_as_library(rule)
    library["id"] = "rule-1"
    view = view_as_basic(
        {
            "resourceType": "ViewDefinition",
            "url": "https://x/v",
            "version": "1",
            "resource": "Patient",
            "select": [{"column": [{"name": "id", "path": "id"}]}],
        },
        id="view-1",
    )
    for rtype, body in (("Library", library), ("Basic", view)):
        rid = _store(repository, "draft", body)
        for action, grant in (
            ("submit", CLIN),
            ("approve", CLIN),
            ("approve", TECH),
            ("activate", TECH),
            ("retire", TECH),
        ):
            governance.transition(rtype, rid, action, grant)  # type: ignore[arg-type]
        stored = orjson.loads(repository.read(rtype, rid).data or b"{}")
        assert state_of(stored) == "retired"
    assert len(_provenances(repository)) == 10


def test_unknown_type_and_action(repository: Repository, governance: Governance) -> None:
    with pytest.raises(GovernanceError, match="not a governed"):
        governance.transition("Patient", "p", "submit", CLIN)
    rid = _store(repository, "draft")
    with pytest.raises(GovernanceError, match="Unknown action"):
        governance.transition("ValueSet", rid, "publish", CLIN)  # type: ignore[arg-type]


def test_audit_event_with_decision(repository: Repository) -> None:
    from cmio.security.audit.log import AuditLog

    governance = Governance(repository, audit=True)
    rid = _store(repository, "draft")
    governance.transition("ValueSet", rid, "submit", CLIN)
    [row] = list(AuditLog(repository).rows())
    event = orjson.loads(row.data)
    assert event["resourceType"] == "AuditEvent" and event["action"] == "E"
    version = repository.read("ValueSet", rid).version
    references = [e.get("what", {}).get("reference") for e in event.get("entity", [])]
    assert f"ValueSet/{rid}/_history/{version}" in references
    with pytest.raises(GovernanceError):
        governance.transition("ValueSet", rid, "submit", CLIN)
    assert len(list(AuditLog(repository).rows())) == 1  # refused: nothing recorded
    assert AuditLog(repository).verify().ok
