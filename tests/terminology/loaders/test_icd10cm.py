"""ICD-10-CM 2026 from simple-icd-10-cm: the whole release, loaded once for this module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cmio.terminology.concepts import ConceptStore
from cmio.terminology.loaders.icd10cm import ICD10CM_URL, icd10cm_module, load_icd10cm


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConceptStore]:
    path: Path = tmp_path_factory.mktemp("icd") / "t.db"
    with ConceptStore(path) as concept_store:
        result = load_icd10cm(concept_store)
        assert not result.skipped
        yield concept_store


@pytest.mark.slow
def test_every_packaged_code_is_loaded(store: ConceptStore) -> None:
    cm = icd10cm_module()
    expected = set(cm.get_all_codes(True))  # a one-category block shares its code
    assert store.count(ICD10CM_URL) == len(expected) > 90_000
    b10 = store.lookup(ICD10CM_URL, "B10")
    assert b10 is not None and b10.parents == ("1",) and dict(b10.properties)["kind"] == "category"
    info = store.system(ICD10CM_URL)
    assert info is not None and info.version == "2026"
    assert load_icd10cm(store).skipped  # the same release again changes nothing


def test_hierarchy_and_billable(store: ConceptStore) -> None:
    e11 = store.lookup(ICD10CM_URL, "E11")
    assert e11 is not None and e11.display == "Type 2 diabetes mellitus"
    assert e11.parents == ("E08-E13",)
    props = dict(e11.properties)
    assert props["kind"] == "category" and props["billable"] is False
    assert any(name == "useAdditionalCode" for name, _ in e11.properties)
    assert any(name == "excludes1" for name, _ in e11.properties)
    e119 = store.lookup(ICD10CM_URL, "E11.9")
    assert e119 is not None and dict(e119.properties)["billable"] is True
    below = set(store.descendants(ICD10CM_URL, "E11"))
    assert "E11.9" in below and "E11.65" in below and "E10.9" not in below
    assert store.subsumes(ICD10CM_URL, "4", "E11.9")  # chapter 4 contains it
    chapter = store.lookup(ICD10CM_URL, "4")
    assert chapter is not None and ("notSelectable", True) in chapter.properties
    block = store.lookup(ICD10CM_URL, "E08-E13")
    assert block is not None and dict(block.properties)["kind"] == "block"


def test_seventh_character_codes_and_notes(store: ConceptStore) -> None:
    s72 = store.lookup(ICD10CM_URL, "S72")
    assert s72 is not None
    definitions = [v for k, v in s72.properties if k == "sevenCharacterDefinition"]
    assert "A: initial encounter for closed fracture" in definitions
    assert any(k == "sevenCharacterNote" for k, _ in s72.properties)
    extended = store.lookup(ICD10CM_URL, "S72.001A")
    assert extended is not None and extended.parents == ("S72.001",)
    assert dict(extended.properties) == dict(extended.properties) | {
        "kind": "extended",
        "billable": True,
    }
    assert store.subsumes(ICD10CM_URL, "S72", "S72.001A")
    assert list(store.with_property(ICD10CM_URL, "billable", "true", "2026"))[:1]
