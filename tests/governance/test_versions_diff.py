"""New versions, refused edits of non-draft artifacts, diffs of two versions."""

from __future__ import annotations

import orjson
import pytest

from cmio.governance import Governance, GovernanceError, diff_artifacts, json_diff, state_of
from cmio.governance.lifecycle import set_state
from cmio.store.base import Repository
from cmio.terminology.factory import open_terminology
from tests.governance.conftest import user, valueset

CLIN = user("dr-house", "clinician")
TECH = user("ada", "informaticist")


def _approve(governance: Governance, rid: str) -> None:
    governance.transition("ValueSet", rid, "submit", CLIN)
    governance.transition("ValueSet", rid, "approve", CLIN)
    governance.transition("ValueSet", rid, "approve", TECH)


def test_edit_of_approved_artifact_refused(repository: Repository, governance: Governance) -> None:
    draft = valueset(["4548-4"])
    governance.edit(draft, TECH)
    draft["compose"]["include"][0]["concept"].append({"code": "17856-6"})
    governance.edit(draft, TECH)  # a draft may change
    _approve(governance, "vs-a1c")
    stored = repository.read("ValueSet", "vs-a1c")
    changed = orjson.loads(stored.data or b"{}")
    changed["compose"]["include"][0]["concept"].append({"code": "59261-8"})
    with pytest.raises(GovernanceError, match="'approved': it cannot be edited") as caught:
        governance.edit(changed, TECH)
    assert caught.value.status == 409
    assert caught.value.expression == "ValueSet.status"
    sneaky = orjson.loads(stored.data or b"{}")
    set_state(sneaky, "active")
    with pytest.raises(GovernanceError):
        governance.edit(sneaky, TECH)  # the state moves only by transitions
    assert repository.read("ValueSet", "vs-a1c").version == stored.version


def test_new_version_keeps_history(repository: Repository, governance: Governance) -> None:
    governance.edit(valueset(["4548-4"]), TECH)
    _approve(governance, "vs-a1c")
    governance.transition("ValueSet", "vs-a1c", "activate", TECH)
    old_version = repository.read("ValueSet", "vs-a1c").version
    decision = governance.new_version("ValueSet", "vs-a1c", "1.1.0", TECH, new_id="vs-a1c-2")
    assert decision.artifact["version"] == "1.1.0"
    assert state_of(decision.artifact) == "draft"
    assert decision.provenance["entity"][0]["what"]["reference"] == (
        f"ValueSet/vs-a1c/_history/{old_version}"
    )
    old = orjson.loads(repository.read("ValueSet", "vs-a1c").data or b"{}")
    assert old["version"] == "1.0.0" and state_of(old) == "active"
    assert repository.read("ValueSet", "vs-a1c").version == old_version
    with pytest.raises(GovernanceError, match="already exists"):
        governance.new_version("ValueSet", "vs-a1c", "1.1.0", TECH)
    found = governance.find("ValueSet", "https://example.org/fhir/ValueSet/a1c", None)
    assert found is not None and found["id"] == "vs-a1c-2"
    with pytest.raises(GovernanceError, match="may not author"):
        governance.new_version("ValueSet", "vs-a1c", "2.0.0", user("bob", "analyst"))


def test_valueset_diff_codes_added_and_removed(repository: Repository) -> None:
    old = valueset(["4548-4", "17856-6"])
    new = valueset(["4548-4", "59261-8", "41995-2"], version="1.1.0", rid="vs-a1c-2")
    with repository.transaction() as tx:  # the expansion needs the code system
        tx.update(
            {
                "resourceType": "CodeSystem",
                "id": "loinc-part",
                "url": "http://loinc.org",
                "version": "2.77",
                "status": "active",
                "content": "fragment",
                "concept": [
                    {"code": c} for c in ("4548-4", "17856-6", "59261-8", "41995-2", "2345-7")
                ],
            }
        )
    terminology = open_terminology(repository, core=False)
    try:
        diff = diff_artifacts(old, new, terminology)
    finally:
        terminology.close()
    loinc = "http://loinc.org"
    assert diff.codes_added == [(loinc, "41995-2"), (loinc, "59261-8")]
    assert diff.codes_removed == [(loinc, "17856-6")]
    assert diff.left.endswith("|1.0.0") and diff.right.endswith("|1.1.0")
    paths = {c.path for c in diff.changes}
    assert "compose.include[0].concept[1].code" in paths
    assert "compose.include[0].concept[2]" in paths
    params = diff.to_parameters()
    added = [p["valueCoding"]["code"] for p in params["parameter"] if p["name"] == "code-added"]
    assert added == ["41995-2", "59261-8"]
    # without a terminology service the compose's codes are compared
    assert diff_artifacts(old, new).codes_removed == [(loinc, "17856-6")]


def test_rule_library_diff_is_on_decoded_logic() -> None:
    from cmio.rules.definition import rule_as_library, rule_from_json

    def library(expression: str, version: str) -> dict[str, object]:
        rule = rule_from_json(
            {"id": "r", "severity": "warning", "message": "m", "expression": expression},
            version=version,
            status="draft",
            url=None,
        )
        return rule_as_library(rule)

    diff = diff_artifacts(library("code.exists()", "1"), library("code.coding.exists()", "2"))
    [change] = [c for c in diff.changes if c.path == "expression"]
    assert (change.old, change.new) == ("code.exists()", "code.coding.exists()")


def test_json_diff() -> None:
    changes = json_diff({"a": 1, "b": [1, 2], "c": {"d": "x"}}, {"a": 2, "b": [1], "e": True})
    assert [c.to_json() for c in changes] == [
        {"op": "changed", "path": "a", "old": 1, "new": 2},
        {"op": "removed", "path": "b[1]", "old": 2},
        {"op": "removed", "path": "c", "old": {"d": "x"}},
        {"op": "added", "path": "e", "new": True},
    ]


def test_viewdefinition_diff_is_on_the_view() -> None:
    from cmio.views.materialize import view_as_basic

    def view(columns: list[str], version: str) -> dict[str, object]:
        return view_as_basic(
            {
                "resourceType": "ViewDefinition",
                "url": "https://example.org/views/patients",
                "version": version,
                "resource": "Patient",
                "select": [{"column": [{"name": c, "path": c} for c in columns]}],
            },
            id=f"view-{version}",
        )

    diff = diff_artifacts(view(["id", "gender"], "1"), view(["id", "birthDate"], "2"))
    assert diff.left == "https://example.org/views/patients|1"
    assert [c.to_json() for c in diff.changes] == [
        {"op": "changed", "path": "select[0].column[1].name", "old": "gender", "new": "birthDate"},
        {"op": "changed", "path": "select[0].column[1].path", "old": "gender", "new": "birthDate"},
        {"op": "changed", "path": "version", "old": "1", "new": "2"},
    ]
