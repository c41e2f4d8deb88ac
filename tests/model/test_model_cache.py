"""Building, caching and loading the model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import cmio.model.build
from cmio.model import ElementDef, Model, load_model
from cmio.model.cache import CACHE_ENV, cache_file, default_cache_dir
from cmio.model.package import find_package_tarball, iter_package_resources


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Model, float]:
    """A model built into an empty cache directory, and the build time."""
    cache_dir = tmp_path_factory.mktemp("cache")
    start = time.perf_counter()
    model = load_model(cache_dir=cache_dir)
    return cache_dir, model, time.perf_counter() - start


def _summary(model: Model) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []

    def walk(elements: dict[str, ElementDef], seen: set[int]) -> None:
        for key, elem in elements.items():
            rows.append((key, elem.path, elem.min, elem.max, elem.types, elem.target_types))
            if elem.children is not None and id(elem.children) not in seen:
                walk(elem.children, seen | {id(elem.children)})

    for name, tdef in sorted(model.types.items()):
        rows.append((name, tdef.kind, tdef.abstract, tdef.base, sorted(tdef.json_index)))
        walk(tdef.elements, set())
    rows.append(tuple(sorted(model.resource_types)))
    rows.extend((p.url, p.code, p.expression) for p in model.search_params)
    rows.extend(sorted((c.code, sorted(c.resources.items())) for c in model.compartments.values()))
    return rows


def test_package_is_found() -> None:
    tarball = find_package_tarball()
    assert tarball.name == "hl7.fhir.r4.core.tgz"
    compartments = list(iter_package_resources(tarball, {"CompartmentDefinition"}))
    assert len(compartments) == 6
    assert {c["resourceType"] for c in compartments} == {"CompartmentDefinition"}


def test_cache_round_trip(
    built: tuple[Path, Model, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir, model, build_seconds = built
    print(f"model build + cache write: {build_seconds:.2f} s")
    files = sorted(p.name for p in cache_dir.iterdir())
    assert files == [cache_file(cache_dir, model.package_sha256).name]  # no temp files left

    def no_build(*args: object, **kwargs: object) -> Model:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(cmio.model.build, "build_model", no_build)
    loaded = load_model(cache_dir=cache_dir)
    assert loaded is not model
    assert loaded.package_sha256 == model.package_sha256
    assert _summary(loaded) == _summary(model)
    item = loaded.types["Questionnaire"].elements["item"]
    assert item.children is not None
    assert item.children["item"].children is item.children  # cycle preserved
    # Shared objects stay shared after unpickling.
    index = loaded.types["Patient"].json_index
    assert index["name"].members is loaded.types["HumanName"].json_index


def test_corrupt_cache_is_rebuilt(built: tuple[Path, Model, float], tmp_path: Path) -> None:
    _, model, _ = built
    path = cache_file(tmp_path, model.package_sha256)
    path.write_bytes(b"not a pickle")
    rebuilt = load_model(cache_dir=tmp_path)
    assert len(rebuilt.resource_types) == 146
    assert path.read_bytes()[:1] == b"\x80"  # rewritten as a pickle


def test_stale_cache_files_are_removed(built: tuple[Path, Model, float], tmp_path: Path) -> None:
    cache_dir, model, _ = built
    stale = tmp_path / "fhir-r4-model-0000-old.pickle"
    stale.write_bytes(b"old")
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(stale, (week_ago, week_ago))
    recent = tmp_path / "fhir-r4-model-0000-other-checkout.pickle"
    recent.write_bytes(b"recent")
    current = cache_file(tmp_path, model.package_sha256)
    current.write_bytes(cache_file(cache_dir, model.package_sha256).read_bytes())
    load_model(cache_dir=tmp_path)
    assert stale.exists()  # loading never deletes
    current.unlink()
    load_model(cache_dir=tmp_path)  # rebuild + write cleans up
    assert not stale.exists() and current.exists()
    assert recent.exists()  # may belong to another version of the code


def test_use_cache_false_writes_nothing(tmp_path: Path) -> None:
    model = load_model(cache_dir=tmp_path, use_cache=False)
    assert len(model.search_params) == 1375
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv(CACHE_ENV)
    assert default_cache_dir() == Path.home() / ".cache" / "cmio"


def test_cold_load_time(built: tuple[Path, Model, float]) -> None:
    cache_dir, _, _ = built
    script = (
        "import time; t = time.perf_counter()\n"
        "from cmio.model import load_model\n"
        f"m = load_model(cache_dir={str(cache_dir)!r})\n"
        "assert len(m.resource_types) == 146\n"
        "print(time.perf_counter() - t)\n"
    )
    timings = []
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        timings.append(float(done.stdout.strip()))
    print(f"cold import + load_model() from cache: best {min(timings):.3f} s")
    assert min(timings) < 1.0
