"""Value sets imported by a ``#id`` reference to a contained ValueSet."""

from __future__ import annotations

import pytest

from cmio.terminology.errors import TerminologyError
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import ExpandRequest, TerminologyService
from tests.terminology.test_service import CS, codesystem


def test_contained_import_is_resolved_inside_the_resource() -> None:
    service = TerminologyService(TerminologyResources(core=lambda: [codesystem()]))
    inner = {
        "resourceType": "ValueSet",
        "id": "vs1",
        "url": "http://example.org/vs/inner",
        "status": "active",
        "compose": {"include": [{"system": CS, "concept": [{"code": "arm"}, {"code": "leg"}]}]},
    }
    outer = {
        "resourceType": "ValueSet",
        "status": "active",
        "contained": [inner],
        "compose": {
            "include": [
                {"valueSet": ["#vs1"]},
                {"system": CS, "concept": [{"code": "head"}]},
            ],
            "exclude": [{"valueSet": ["#vs1"], "system": CS, "concept": [{"code": "leg"}]}],
        },
    }
    expansion = service.expand(ExpandRequest(valueset=outer))["expansion"]
    assert [c["code"] for c in expansion["contains"]] == ["arm", "head"]
    names = [p["name"] for p in expansion["parameter"]]
    assert "used-valueset" not in names  # contained: part of this value set
    outer["compose"]["include"][0]["valueSet"] = ["#nope"]
    with pytest.raises(TerminologyError) as error:
        service.expand(ExpandRequest(valueset=outer))
    assert error.value.status == 404 and "'#nope'" in error.value.message
