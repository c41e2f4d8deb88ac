"""SNOMED CT RF2 Snapshot loader on fixture files in the release format (real codes)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cmio.terminology.concepts import ConceptStore
from cmio.terminology.loaders import rf2
from cmio.terminology.loaders.snomed import SNOMED_URL, find_release, load_snomed
from cmio.terminology.loaders.synthetic import write_synthetic_release

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "snomed"
INT_VERSION = f"{SNOMED_URL}/{rf2.INTERNATIONAL_MODULE}/version/20250101"


@pytest.fixture
def store(tmp_path: Path) -> ConceptStore:
    return ConceptStore(tmp_path / "t.db")


def test_international_snapshot(store: ConceptStore) -> None:
    seen: list[int] = []
    result, info = load_snomed(store, FIXTURES, progress=seen.append)
    assert not result.skipped and result.version == INT_VERSION
    assert result.count == info.count == 15 and seen[-1] == 15
    dm = store.lookup(SNOMED_URL, "73211009")
    assert dm is not None and dm.display == "Diabetes mellitus"
    assert set(dm.parents) == {"126877002", "362969004"}
    fsn = [d.value for d in dm.designations if d.use_code == rf2.FSN]
    assert fsn == ["Diabetes mellitus (disorder)"]
    assert all(d.value != "DM - Diabetes mellitus" for d in dm.designations)  # inactive row
    t2 = store.lookup(SNOMED_URL, "44054006")
    assert t2 is not None and t2.parents == ("73211009",)  # inactive is-a row ignored
    assert t2.display == "Type 2 diabetes mellitus"
    assert store.subsumes(SNOMED_URL, "404684003", "44054006")
    assert store.subsumes(SNOMED_URL, "138875005", "44054006")
    assert not store.subsumes(SNOMED_URL, "71388002", "44054006")
    # the finding-site attribute relationship is not is-a
    assert not store.subsumes(SNOMED_URL, "113331007", "73211009")
    assert set(store.descendants(SNOMED_URL, "73211009")) == {"44054006", "46635009"}
    brittle = store.lookup(SNOMED_URL, "11530004")
    assert brittle is not None and not brittle.active and brittle.parents == ()
    assert ("inactive", True) in brittle.properties
    assert list(store.with_property(SNOMED_URL, "sufficientlyDefined", "true")) == [
        "116680003",
        "126877002",
        "362969004",
    ]
    assert [c.code for c in store.iter_concepts(SNOMED_URL, text="type ii")] == ["44054006"]
    # moduleId/effectiveTime/inactive are kept but not indexed: found by a scan
    assert len(list(store.with_property(SNOMED_URL, "moduleId", rf2.INTERNATIONAL_MODULE))) == 15
    assert list(store.with_property(SNOMED_URL, "inactive", "true")) == ["11530004"]


def test_rerun_is_skipped_and_us_edition_sits_beside(store: ConceptStore, tmp_path: Path) -> None:
    load_snomed(store, FIXTURES)
    again, _ = load_snomed(store, FIXTURES)
    assert again.skipped
    us = tmp_path / "us"
    for path in FIXTURES.rglob("*.txt"):
        target = us / path.relative_to(FIXTURES)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target.with_name(path.name.replace("INT_20250101", "US1000124_20250301")))
    result, _ = load_snomed(store, us)
    assert result.version == f"{SNOMED_URL}/{rf2.US_MODULE}/version/20250301"
    assert [s.version for s in store.systems()] == [INT_VERSION, result.version]
    assert store.lookup(SNOMED_URL, "44054006", INT_VERSION) is not None


def test_bad_release_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sct2_Concept_Snapshot"):
        find_release(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(FIXTURES, bad)
    concept_file = next(bad.rglob("sct2_Concept_Snapshot_*"))
    concept_file.write_text("id\teffectiveTime\n1\t2\n")
    with pytest.raises(ValueError, match=concept_file.name):
        load_snomed(ConceptStore(tmp_path / "x.db"), bad)


def test_synthetic_release_round_trip(store: ConceptStore, tmp_path: Path) -> None:
    stats = write_synthetic_release(tmp_path / "syn", concepts=3000, relationships=8000, seed=3)
    assert stats.concepts == 3000 and stats.relationships == 8000
    result, _ = load_snomed(store, tmp_path / "syn")
    assert result.count == 3000
    root_below = store.count(SNOMED_URL, under="138875005")
    assert root_below == 3000
    finding = store.count(SNOMED_URL, under="404684003")
    assert 0 < finding < 3000
