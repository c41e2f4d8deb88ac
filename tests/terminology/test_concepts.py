"""The concept store: load, replace, versions, hierarchy, paging, text search."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmio.terminology.closure import ClosureError
from cmio.terminology.concepts import (
    Concept,
    ConceptStore,
    Designation,
    SystemInfo,
    codesystem_to_concepts,
)

URL = "http://example.org/cs"


def _tree(version: str = "1") -> tuple[SystemInfo, list[Concept]]:
    info = SystemInfo(url=URL, version=version, name="Ex", properties=(("grp", "code", None),))
    concepts = [
        Concept("root", "Root"),
        Concept("a", "Alpha finding", parents=("root",), properties=(("grp", "x"),)),
        Concept("b", "Beta finding", parents=("root",), properties=(("grp", "y"), ("flag", True))),
        Concept(
            "ab",
            "Alpha-beta",
            parents=("a", "b"),
            designations=(
                Designation("Zeta synonym", "en", "http://snomed.info/sct", "900000000000013009"),
            ),
        ),
        Concept("old", "Retired thing", active=False, parents=("ab",)),
    ]
    return info, concepts


@pytest.fixture
def store(tmp_path: Path) -> ConceptStore:
    s = ConceptStore(tmp_path / "t.db")
    info, concepts = _tree()
    seen: list[int] = []
    assert s.load(info, concepts, progress=seen.append) == 5
    assert seen[-1] == 5
    return s


def test_lookup_round_trips(store: ConceptStore) -> None:
    found = store.lookup(URL, "ab")
    assert found is not None
    assert found.display == "Alpha-beta"
    assert found.parents == ("a", "b")
    assert found.designations[0].use_code == "900000000000013009"
    b = store.lookup(URL, "b")
    assert b is not None and ("flag", True) in b.properties
    assert store.lookup(URL, "nope") is None
    assert store.lookup("http://other", "a") is None
    assert set(store.lookup_many(URL, ["a", "b", "zz"])) == {"a", "b"}


def test_hierarchy(store: ConceptStore) -> None:
    assert set(store.descendants(URL, "root")) == {"a", "b", "ab", "old"}
    assert list(store.descendants(URL, "old", include_self=True)) == ["old"]
    assert set(store.ancestors(URL, "old")) == {"ab", "a", "b", "root"}
    assert store.children(URL, "root") == ["a", "b"]
    assert store.subsumes(URL, "root", "old")
    assert store.subsumes(URL, "a", "a")
    assert not store.subsumes(URL, "a", "b")
    assert not store.subsumes(URL, "old", "root")


def test_paging_filters_and_properties(store: ConceptStore) -> None:
    codes = [c.code for c in store.iter_concepts(URL)]
    assert codes == ["root", "a", "b", "ab", "old"]
    assert [c.code for c in store.iter_concepts(URL, offset=1, count=2)] == ["a", "b"]
    assert [c.code for c in store.iter_concepts(URL, text="FINDING")] == ["a", "b"]
    assert [c.code for c in store.iter_concepts(URL, text="zeta")] == ["ab"]
    assert store.count(URL, active_only=True) == 4
    assert store.count(URL) == 5
    assert store.count(URL, text="beta fin") == 1
    assert [c.code for c in store.iter_concepts(URL, under="a")] == ["a", "ab", "old"]
    assert store.count(URL, under="b", active_only=True) == 2
    assert list(store.with_property(URL, "grp", "y")) == ["b"]
    assert list(store.with_property(URL, "flag", "true")) == ["b"]
    assert list(store.with_property(URL, "grp")) == ["a", "b"]


def test_page_below_matches_the_filtered_scan(tmp_path: Path) -> None:
    # children loaded before their parent: the top concept sits inside its own page
    s = ConceptStore(tmp_path / "p.db")
    concepts = [Concept(f"k{i}", f"Kid {i}", parents=("mid",)) for i in range(4)]
    concepts += [Concept("mid", "Mid", parents=("top",)), Concept("top", "Top")]
    concepts += [Concept(f"l{i}", f"Late {i}", parents=("top",)) for i in range(3)]
    s.load(SystemInfo(url=URL, version="1"), concepts)
    for top in ("top", "mid", "k0"):
        every = [c.code for c in s.iter_concepts(URL, under=top)]
        for offset in range(len(every) + 2):
            for count in range(len(every) + 2):
                total, rows = s.page_below(URL, top, None, offset, count)
                assert total == len(every) == s.count(URL, under=top)
                assert [r[0] for r in rows] == every[offset : offset + count]
    assert s.page_below(URL, "nope", None, 0, 10) == (0, [])
    s.close()


def test_versions_side_by_side_and_replace(store: ConceptStore) -> None:
    info2 = SystemInfo(url=URL, version="10")
    store.load(info2, [Concept("only", "Only in 10")])
    assert store.system(URL) is not None and store.system(URL).version == "10"  # type: ignore[union-attr]
    assert store.lookup(URL, "a", version="1") is not None
    assert store.lookup(URL, "a") is None
    assert store.lookup(URL, "only") is not None
    # replacing version 1 keeps version 10 intact
    info, concepts = _tree("1")
    store.load(info, concepts[:2], fingerprint="f1")
    assert store.count(URL, "1") == 2
    assert store.fingerprint(URL, "1") == "f1"
    assert set(store.descendants(URL, "root", "1")) == {"a"}
    assert store.lookup(URL, "only", "10") is not None
    assert [s.version for s in store.systems()] == ["1", "10"]
    assert store.delete(URL, "10")
    assert store.system(URL, "10") is None


def test_unindexed_properties_are_scanned(tmp_path: Path) -> None:
    s = ConceptStore(tmp_path / "u.db")
    info, concepts = _tree()
    s.load(info, concepts, unindexed={"grp"})
    assert list(s.with_property(URL, "grp", "y")) == ["b"]
    assert list(s.with_property(URL, "grp")) == ["a", "b"]
    assert list(s.with_property(URL, "flag", "true")) == ["b"]
    s.close()


def test_cycle_and_duplicate_change_nothing(store: ConceptStore) -> None:
    info = SystemInfo(url=URL, version="1")
    with pytest.raises(ClosureError, match="cycle"):
        store.load(info, [Concept("x", parents=("y",)), Concept("y", parents=("x",))])
    with pytest.raises(ValueError, match="twice"):
        store.load(info, [Concept("x"), Concept("x")])
    assert store.count(URL, "1") == 5
    assert store.subsumes(URL, "root", "old")


def test_readers_see_the_old_version_until_the_replace_commits(store: ConceptStore) -> None:
    seen: list[tuple[int, bool]] = []

    def replacement() -> Iterator[Concept]:
        yield Concept("new1", "New one")
        # mid-load, another connection still reads the committed version
        seen.append((store.count(URL, "1", text="finding"), store.lookup(URL, "new1") is None))
        yield Concept("new2", "New two", parents=("new1",))

    store.load(SystemInfo(url=URL, version="1"), replacement())
    assert seen == [(2, True)]
    assert store.count(URL, "1") == 2 and store.subsumes(URL, "new1", "new2")


def test_concurrent_readers(store: ConceptStore) -> None:
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(200):
                assert store.subsumes(URL, "root", "ab")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    assert not errors


def test_codesystem_resource() -> None:
    resource = {
        "resourceType": "CodeSystem",
        "url": "http://example.org/fhir/cs",
        "version": "2.0",
        "hierarchyMeaning": "is-a",
        "property": [{"code": "status", "type": "code"}, {"code": "parent", "type": "code"}],
        "concept": [
            {
                "code": "A",
                "display": "A",
                "designation": [{"language": "de", "value": "A-de"}],
                "concept": [{"code": "A1", "display": "A one"}],
            },
            {"code": "B", "property": [{"code": "parent", "valueCode": "A1"}]},
            {"code": "C", "property": [{"code": "status", "valueCode": "retired"}]},
            {"code": "D", "property": [{"code": "inactive", "valueBoolean": True}]},
            {"code": "E", "property": [{"code": "child", "valueCode": "C"}]},
        ],
    }
    info, concepts = codesystem_to_concepts(resource)
    assert (info.url, info.version, info.count) == ("http://example.org/fhir/cs", "2.0", 6)
    by_code = {c.code: c for c in concepts}
    assert by_code["A1"].parents == ("A",)
    assert by_code["B"].parents == ("A1",)
    assert by_code["C"].parents == ("E",)
    assert not by_code["C"].active and not by_code["D"].active and by_code["B"].active
    assert by_code["A"].designations[0].language == "de"
    with pytest.raises(ValueError, match=r"CodeSystem\.url"):
        codesystem_to_concepts({"resourceType": "CodeSystem"})
