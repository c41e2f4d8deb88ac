"""``$governance-transition`` and ``$diff`` through the FHIR router."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.api.app import build_env
from cmio.api.context import RequestContext
from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.router import FhirRouter
from cmio.model import Model
from cmio.security.grant import AccessGrant
from tests.governance.conftest import user, valueset

JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}


@pytest.fixture
def router(tmp_path: Path, model: Model) -> Iterator[FhirRouter]:
    settings = Settings(validation="off", terminology_db=None)
    env: Env = build_env(f"sqlite:///{tmp_path / 'api.db'}", settings, model)
    yield FhirRouter(env)
    env.repository.close()


def _call(
    router: FhirRouter,
    method: str,
    path: str,
    grant: AccessGrant | None = None,
    body: Any = None,
    query: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    request = FhirRequest(
        method,
        path,
        query=query or [],
        headers=headers or JSON,
        body=orjson.dumps(body) if body is not None else b"",
        context=RequestContext(grant=grant),
    )
    response: FhirResponse = router.handle(request)
    return response.status, orjson.loads(response.body) if response.body else {}


def _transition(
    router: FhirRouter, rid: str, action: str, grant: AccessGrant, comment: str | None = None
) -> tuple[int, dict[str, Any]]:
    params = [{"name": "action", "valueCode": action}]
    if comment:
        params.append({"name": "comment", "valueString": comment})
    body = {"resourceType": "Parameters", "parameter": params}
    return _call(router, "POST", f"ValueSet/{rid}/$governance-transition", grant, body)


def test_transition_and_diff_operations(router: FhirRouter) -> None:
    clin, tech = user("dr-house", "clinician"), user("ada", "informaticist")
    codesystem = {
        "resourceType": "CodeSystem",
        "id": "loinc-part",
        "url": "http://loinc.org",
        "version": "2.77",
        "status": "active",
        "content": "fragment",
        "concept": [{"code": c} for c in ("4548-4", "17856-6", "59261-8")],
    }
    assert _call(router, "PUT", "CodeSystem/loinc-part", body=codesystem)[0] in (200, 201)
    assert _call(router, "PUT", "ValueSet/vs-a1c", body=valueset(["4548-4", "17856-6"]))[0] == 201
    status, body = _transition(router, "vs-a1c", "submit", clin, "for the March committee")
    assert status == 200
    [state, artifact, provenance] = body["parameter"]
    assert state["valueCode"] == "in-review"
    assert artifact["resource"]["status"] == "draft"
    assert provenance["resource"]["reason"][0]["text"] == "for the March committee"
    status, outcome = _transition(router, "vs-a1c", "activate", tech)
    assert status == 409 and outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["status"]
    status, outcome = _transition(router, "vs-a1c", "approve", user("bob", "analyst"))
    assert status == 403
    status, outcome = _transition(router, "vs-a1c", "reject", tech)
    assert status == 400 and outcome["issue"][0]["expression"] == ["comment"]
    status, outcome = _transition(router, "vs-a1c", "publish", tech)
    assert status == 400 and outcome["issue"][0]["expression"] == ["action"]

    newer = valueset(["4548-4", "59261-8"], version="1.1.0", rid="vs-a1c-2")
    assert _call(router, "PUT", "ValueSet/vs-a1c-2", body=newer)[0] == 201
    status, diff = _call(
        router,
        "GET",
        "ValueSet/vs-a1c-2/$diff",
        tech,
        query=[("other", "https://example.org/fhir/ValueSet/a1c|1.0.0")],
    )
    assert status == 200, diff
    by_name: dict[str, list[Any]] = {}
    for parameter in diff["parameter"]:
        by_name.setdefault(parameter["name"], []).append(parameter)
    assert [p["valueCoding"]["code"] for p in by_name["code-added"]] == ["59261-8"]
    assert [p["valueCoding"]["code"] for p in by_name["code-removed"]] == ["17856-6"]
    status, same = _call(
        router, "GET", "ValueSet/vs-a1c-2/$diff", tech, query=[("other", "ValueSet/vs-a1c")]
    )
    assert status == 200 and same == diff
    status, outcome = _call(
        router, "GET", "ValueSet/vs-a1c-2/$diff", tech, query=[("other", "https://x|9")]
    )
    assert status == 404 and outcome["issue"][0]["expression"] == ["other"]
    status, outcome = _call(router, "GET", "ValueSet/vs-a1c-2/$diff", tech)
    assert status == 400


def test_rest_writes_cannot_edit_governed_artifacts(router: FhirRouter) -> None:
    clin, tech = user("dr-house", "clinician"), user("ada", "informaticist")
    from cmio.governance.lifecycle import set_state

    forged = valueset(["4548-4"], rid="forged")
    set_state(forged, "approved")
    status, outcome = _call(router, "PUT", "ValueSet/forged", body=forged)
    assert status == 400 and outcome["issue"][0]["expression"] == ["ValueSet.meta.tag"]

    draft = valueset(["4548-4"])
    set_state(draft, "draft")
    assert _call(router, "PUT", "ValueSet/vs-a1c", body=draft)[0] == 201
    status, stored = _call(router, "GET", "ValueSet/vs-a1c")
    stored["compose"]["include"][0]["concept"].append({"code": "17856-6"})
    stored["version"] = "1.0.1"  # terminology: same url|version keeps its content
    assert _call(router, "PUT", "ValueSet/vs-a1c", body=stored)[0] == 200  # drafts may change
    for action, grant in (("submit", clin), ("approve", clin), ("approve", tech)):
        assert _transition(router, "vs-a1c", action, grant)[0] == 200
    status, approved = _call(router, "GET", "ValueSet/vs-a1c")
    approved["compose"]["include"][0]["concept"].append({"code": "59261-8"})
    approved["version"] = "1.0.2"
    status, outcome = _call(router, "PUT", "ValueSet/vs-a1c", body=approved)
    assert status == 400
    assert outcome["issue"][0]["expression"] == ["ValueSet.status"]
    assert "cannot be edited; create a new version" in outcome["issue"][0]["diagnostics"]
    status, current = _call(router, "GET", "ValueSet/vs-a1c")
    assert len(current["compose"]["include"][0]["concept"]) == 2
    patch = [{"op": "replace", "path": "/status", "value": "active"}]
    patch_headers = {**JSON, "content-type": "application/json-patch+json"}
    status, outcome = _call(router, "PATCH", "ValueSet/vs-a1c", body=patch, headers=patch_headers)
    assert status == 400, outcome
    assert _call(router, "GET", "ValueSet/vs-a1c")[1]["status"] == "draft"


def test_policy_from_settings(tmp_path: Path, model: Model) -> None:
    settings = Settings(
        validation="off", terminology_db=None, governance_approvers="pharmacy-lead=clinician"
    )
    env = build_env(f"sqlite:///{tmp_path / 'policy.db'}", settings, model)
    router = FhirRouter(env)
    try:
        assert _call(router, "PUT", "ValueSet/vs-a1c", body=valueset(["4548-4"]))[0] == 201
        clin = user("dr-house", "clinician")
        assert _transition(router, "vs-a1c", "submit", clin)[0] == 200
        status, body = _transition(router, "vs-a1c", "approve", clin)
        assert status == 200 and body["parameter"][0]["valueCode"] == "approved"
        env.settings = Settings(governance_approvers="broken")
        status, outcome = _transition(router, "vs-a1c", "activate", user("ada", "informaticist"))
        assert status == 500 and "CMIO_GOVERNANCE_APPROVERS" in outcome["issue"][0]["diagnostics"]
    finally:
        env.repository.close()


def test_parse_policy() -> None:
    from cmio.governance import ApprovalPolicy

    policy = ApprovalPolicy.parse(" clinical-lead = clinician, administrator ; tech=informaticist")
    assert dict(policy.approvers) == {
        "clinical-lead": frozenset({"clinician", "administrator"}),
        "tech": frozenset({"informaticist"}),
    }
    for bad in ("", "clinical-lead", "x=", "=clinician"):
        with pytest.raises(ValueError, match="approval policy"):
            ApprovalPolicy.parse(bad)
