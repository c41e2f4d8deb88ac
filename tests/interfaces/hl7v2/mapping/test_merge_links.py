"""A later ADT for a merged patient keeps the links the A40 merge set (Patient.link)."""

from __future__ import annotations

from cmio.interfaces.hl7v2.mapping import MappingOptions, apply_merge, store_patient_links
from tests.interfaces.hl7v2.mapping.conftest import RouterClient, mapped, one
from tests.interfaces.hl7v2.mapping.samples import ADT_A11, ADT_A28, ADT_A31, ADT_A40

SURVIVOR = "urn:id:UHOSP|E4004"
PRIOR = "urn:id:UHOSP|E2002"


def _merged(client: RouterClient) -> tuple[str, str]:
    for text in (ADT_A28, ADT_A11):
        client.post(mapped(text))
    result = mapped(ADT_A40)
    client.post(result)
    assert result.merge is not None
    outcome = apply_merge(client, result.merge)
    assert outcome.prior_id is not None
    return outcome.surviving_id, outcome.prior_id


def test_later_adt_keeps_merge_links_with_the_lookup(client: RouterClient) -> None:
    survivor_id, prior_id = _merged(client)
    options = MappingOptions(patient_links=store_patient_links(client))
    update = mapped(ADT_A31, options)
    sent = one(update, "Patient")
    assert sent["link"] == [{"other": {"reference": f"Patient/{prior_id}"}, "type": "replaces"}]
    assert "active" not in sent
    client.post(update)
    (new,) = client.search("Patient", identifier=SURVIVOR)
    assert new["id"] == survivor_id
    assert new["address"][0]["line"] == ["7 Birch Ln"]  # the update applied
    assert new["link"] == [{"other": {"reference": f"Patient/{prior_id}"}, "type": "replaces"}]
    # an ADT for the replaced patient keeps it inactive and linked to the survivor
    prior_update = ADT_A11.replace("ADT^A11", "ADT^A08").replace("EP1000005", "EP1000099")
    client.post(mapped(prior_update, options))
    (old,) = client.search("Patient", identifier=PRIOR)
    assert old["active"] is False
    assert old["link"] == [
        {"other": {"reference": f"Patient/{survivor_id}"}, "type": "replaced-by"}
    ]
    # without the lookup the whole-resource update replaces the links (documented limit)
    plain = mapped(ADT_A31.replace("EP1000009", "EP1000098"))
    assert "link" not in one(plain, "Patient")


def test_lookup_of_an_unknown_patient_adds_nothing(client: RouterClient) -> None:
    lookup = store_patient_links(client)
    assert lookup("urn:id:UHOSP", "NOBODY") == []
    text = ADT_A28.replace("E4004", "E9999").replace("EP1000008", "EP1000097")
    patient = one(mapped(text, MappingOptions(patient_links=lookup)), "Patient")
    assert "link" not in patient and "active" not in patient
