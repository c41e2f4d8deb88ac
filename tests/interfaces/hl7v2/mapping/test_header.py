"""MSH -> MessageHeader and MSH/EVN -> Provenance (IG maps MSH[MessageHeader], EVN[Provenance])."""

from __future__ import annotations

import pytest

from cmio.interfaces.hl7v2.mapping import MappingOptions
from cmio.model import Model
from tests.interfaces.hl7v2.mapping.conftest import (
    RouterClient,
    assert_valid,
    mapped,
    one,
    resources,
)
from tests.interfaces.hl7v2.mapping.samples import ADT_A01_EPIC, ALL, ORU_R01_LAB_V231

ON = MappingOptions(provenance=True)
V2_0003 = "http://terminology.hl7.org/CodeSystem/v2-0003"


def test_off_by_default() -> None:
    result = mapped(ADT_A01_EPIC)
    assert resources(result, "MessageHeader") == resources(result, "Provenance") == []
    assert "EVN" in result.ignored_segments


def test_adt_message_header_field_by_field(model: Model) -> None:
    result = mapped(ADT_A01_EPIC, ON)
    assert_valid(model, result)
    assert "EVN" not in result.ignored_segments
    header = one(result, "MessageHeader")
    assert header["eventCoding"] == {"system": V2_0003, "code": "A01", "display": "ADT^A01"}
    assert header["source"] == {  # MSH-3, no MSH-24
        "name": "EPICADT",
        "endpoint": "urn:cmio:v2:application:EPICADT",
    }
    (dest,) = header["destination"]  # MSH-5, MSH-6
    assert dest["name"] == "CMIO" and dest["receiver"]["display"] == "CMIO"
    # MSH-4 UHOSP^1.2.840.114350.1.13^ISO
    assert header["sender"] == {
        "identifier": {"system": "urn:oid:1.2.840.114350.1.13", "value": "UHOSP"},
        "display": "UHOSP",
    }
    mapped_urls = {
        e["fullUrl"]
        for e in result.bundle["entry"]
        if e["resource"]["resourceType"] not in ("MessageHeader", "Provenance")
        and e["resource"].get("identifier", [{}])[0].get("value") != "U123"  # EVN-5 operator
    }
    assert {f["reference"] for f in header["focus"]} == mapped_urls


def test_adt_provenance_from_evn(model: Model) -> None:
    result = mapped(ADT_A01_EPIC, ON)  # EVN|A01|20250301083000-0500|||U123^ADMIT^CLERK|...
    prov = one(result, "Provenance")
    assert prov["recorded"] == "2025-03-01T08:30:00-05:00"  # EVN-2
    assert prov["occurredDateTime"] == "2025-03-01T08:25:00-05:00"  # EVN-6
    assert prov["activity"]["coding"][0]["code"] == "A01"
    enterer, author = prov["agent"]
    assert enterer["type"]["coding"][0]["code"] == "enterer"
    assert enterer["who"]["display"] == "CLERK ADMIT"  # EVN-5 operator (XCN)
    assert author["who"]["display"] == "EPICADT"
    assert len(prov["target"]) == len(one(result, "MessageHeader")["focus"])


def test_provenance_without_evn_uses_msh7(model: Model) -> None:
    result = mapped(ORU_R01_LAB_V231, ON)  # no EVN segment
    assert_valid(model, result)
    prov = one(result, "Provenance")
    assert prov["recorded"] == "2025-03-01T12:00:00Z"  # MSH-7, the channel's zone
    assert [a["type"]["coding"][0]["code"] for a in prov["agent"]] == ["author"]


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_sample_with_provenance_is_valid(name: str, model: Model) -> None:
    assert_valid(model, mapped(ALL[name], ON))


def test_resent_message_rewrites_not_duplicates(client: RouterClient) -> None:
    for _ in range(2):
        client.post(mapped(ADT_A01_EPIC, ON))
    (header,) = client.search("MessageHeader")
    assert header["focus"][0]["reference"].startswith("Patient/")
    assert len(client.search("Provenance")) == 1


def test_option_from_channel_yaml() -> None:
    assert MappingOptions.from_dict({"provenance": True}).provenance is True
    with pytest.raises(ValueError, match="provenance"):
        MappingOptions.from_dict({"provenance": "yes"})
