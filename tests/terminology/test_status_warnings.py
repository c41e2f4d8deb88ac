"""``warning-*`` expansion parameters for draft, experimental, deprecated and withdrawn
content an expansion used."""

from __future__ import annotations

from typing import Any

from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import ExpandRequest, TerminologyService
from tests.terminology.test_service import CS, codesystem

STATUS = "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status"


def _vs(url: str, include: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"resourceType": "ValueSet", "url": url, "version": "1", "status": "active"} | {
        "id": url.rsplit("/", 1)[1],
        "compose": {"include": [include]},
        **extra,
    }


def _warnings(cs: dict[str, Any], *valuesets: dict[str, Any]) -> list[dict[str, Any]]:
    service = TerminologyService(TerminologyResources(core=lambda: [cs, *valuesets]))
    expansion = service.expand(ExpandRequest(url=valuesets[-1]["url"]))["expansion"]
    return [p for p in expansion["parameter"] if p["name"].startswith("warning-")]


def test_status_warnings() -> None:
    plain = _vs("http://example.org/vs/plain", {"system": CS})
    assert _warnings(codesystem(), plain) == []
    draft = {**codesystem(), "status": "draft", "experimental": True}
    assert _warnings(draft, plain) == [
        {"name": "warning-draft", "valueUri": f"{CS}|1.0.0"},
        {"name": "warning-experimental", "valueUri": f"{CS}|1.0.0"},
    ]
    gone = _vs(
        "http://example.org/vs/gone",
        {"system": CS},
        extension=[{"url": STATUS, "valueCode": "withdrawn"}],
        status="draft",  # the value set asked for: only its standards status
    )
    outer = _vs("http://example.org/vs/outer", {"valueSet": [gone["url"]]})
    assert _warnings(codesystem(), gone, outer) == [  # imported: its status counts too
        {"name": "warning-draft", "valueUri": "http://example.org/vs/gone|1"},
        {"name": "warning-withdrawn", "valueUri": "http://example.org/vs/gone|1"},
    ]
    assert _warnings(codesystem(), gone) == [
        {"name": "warning-withdrawn", "valueUri": "http://example.org/vs/gone|1"}
    ]


def test_deprecated_in_valueset_marks_the_expansion_row() -> None:
    """A compose concept marked ``valueset-deprecated`` (or with a deprecated standards
    status) carries the mark onto its expansion row; the others have none."""
    marked = "http://hl7.org/fhir/StructureDefinition/valueset-deprecated"
    include = {
        "system": CS,
        "concept": [
            {"code": "head"},
            {"code": "tail", "extension": [{"url": marked, "valueCode": "true"}]},
            {
                "code": "arm",
                "extension": [
                    {"url": STATUS, "valueCode": "deprecated"},
                    {"url": "http://example.org/other", "valueString": "not a mark"},
                ],
            },
        ],
    }
    vs = _vs("http://example.org/vs/marks", include)
    service = TerminologyService(TerminologyResources(core=lambda: [codesystem(), vs]))
    rows = service.expand(ExpandRequest(url=vs["url"]))["expansion"]["contains"]
    assert {r["code"]: r.get("extension") for r in rows} == {
        "head": None,
        "tail": [{"url": marked, "valueCode": "true"}],
        "arm": [{"url": STATUS, "valueCode": "deprecated"}],
    }
    paged = service.expand(ExpandRequest(url=vs["url"], offset=1, count=1))["expansion"]
    assert paged["contains"][0]["extension"] == [{"url": marked, "valueCode": "true"}]
