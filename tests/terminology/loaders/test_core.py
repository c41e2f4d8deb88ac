"""R4 core CodeSystems, ValueSets and ConceptMaps into the concept store and the repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cmio.store import open_repository
from cmio.store.base import Repository
from cmio.terminology.concepts import ConceptStore
from cmio.terminology.loaders.core import core_resources, load_core


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ConceptStore, Repository, int]]:
    folder: Path = tmp_path_factory.mktemp("core")
    store = ConceptStore(folder / "t.db")
    repository = open_repository(f"sqlite:///{folder / 'fhir.db'}")
    seen: list[int] = []
    results, written = load_core(store, repository, seen.append)
    assert results and all(not r.skipped for r in results)
    assert seen[-1] == 2 * written
    yield store, repository, written
    repository.close()
    store.close()


def test_every_core_resource_is_stored(loaded: tuple[ConceptStore, Repository, int]) -> None:
    store, repository, written = loaded
    resources = list(core_resources())
    assert written == len(resources) > 2000
    kinds = {r["resourceType"] for r in resources}
    assert kinds == {"CodeSystem", "ValueSet", "ConceptMap"}
    gender = repository.read("ValueSet", "administrative-gender")
    assert gender.data is not None and b"http://hl7.org/fhir/administrative-gender" in gender.data
    with_concepts = [
        r
        for r in resources
        if r["resourceType"] == "CodeSystem"
        and r.get("content") in ("complete", "fragment", "example")
        and r.get("concept")
    ]
    assert len(store.systems()) == len(with_concepts)


def test_core_concepts_and_hierarchy(loaded: tuple[ConceptStore, Repository, int]) -> None:
    store, _, _ = loaded
    gender = store.system("http://hl7.org/fhir/administrative-gender")
    assert gender is not None and gender.version == "4.0.1" and gender.count == 4
    female = store.lookup("http://hl7.org/fhir/administrative-gender", "female")
    assert female is not None and female.display == "Female"
    act = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    assert store.subsumes(act, "_ActEncounterCode", "AMB")
    assert not store.subsumes(act, "AMB", "_ActEncounterCode")
    status = "http://hl7.org/fhir/observation-status"
    assert {c.code for c in store.iter_concepts(status)} >= {"final", "amended", "corrected"}
    assert "corrected" in set(store.descendants(status, "amended"))


def test_rerun_changes_nothing(loaded: tuple[ConceptStore, Repository, int]) -> None:
    store, repository, _ = loaded
    before = repository.read("CodeSystem", "observation-status")
    results, _ = load_core(store, repository)
    assert all(r.skipped for r in results)
    after = repository.read("CodeSystem", "observation-status")
    assert after.version == before.version
