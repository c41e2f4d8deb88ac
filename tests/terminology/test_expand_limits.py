"""Limits of ``$expand`` (https://hl7.org/fhir/R4/valueset-operation-expand.html): an
import cycle makes the value set invalid (``vs-invalid``), an expansion over the limit
without ``count`` is refused as too costly, and a paged answer says its offset."""

from __future__ import annotations

from typing import Any

import pytest

from cmio.terminology.errors import TerminologyError
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import ExpandRequest, TerminologyService
from tests.terminology.test_service import CS, codesystem


def _vs(url: str, **compose: Any) -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "url": url,
        "version": "1",
        "status": "active",
        "compose": compose,
    }


def test_an_import_cycle_is_an_invalid_value_set() -> None:
    a = _vs("http://example.org/vs/a", include=[{"valueSet": ["http://example.org/vs/b"]}])
    b = _vs("http://example.org/vs/b", include=[{"valueSet": ["http://example.org/vs/a"]}])
    service = TerminologyService(TerminologyResources(core=lambda: [a, b]))
    with pytest.raises(TerminologyError) as caught:
        service.expand(ExpandRequest(url="http://example.org/vs/a"))
    assert (caught.value.code, caught.value.detail) == ("processing", "vs-invalid")


def test_too_costly_and_paging() -> None:
    source = codesystem("1.0.0")
    service = TerminologyService(TerminologyResources(core=lambda: [source]), max_expansion=3)
    vs = _vs("http://example.org/vs/all", include=[{"system": CS}])
    with pytest.raises(TerminologyError) as caught:
        service.expand(ExpandRequest(valueset=vs))
    assert caught.value.code == "too-costly" and caught.value.detail is None
    first = service.expand(
        ExpandRequest(valueset=vs, count=2, echo=[("offset", "valueInteger", 0)])
    )["expansion"]
    assert first["offset"] == 0 and len(first["contains"]) == 2
    assert "offset" not in service.expand(ExpandRequest(valueset=vs, count=0))["expansion"]
