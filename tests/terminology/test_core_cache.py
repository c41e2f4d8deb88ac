"""The R4 core terminology subset is cached on disk, keyed by the package digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmio.model.cache import CACHE_ENV
from cmio.terminology.factory import core_terminology


def test_core_terminology_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    built = list(core_terminology())
    files = list(tmp_path.glob("r4-core-terminology-*.json"))
    assert len(files) == 1
    assert {r["resourceType"] for r in built} == {"CodeSystem", "ValueSet"}
    assert any(r["url"] == "http://hl7.org/fhir/ValueSet/administrative-gender" for r in built)
    assert list(core_terminology()) == built  # read back from the cache
    files[0].write_bytes(b"{not json")  # a corrupt cache is rebuilt, not trusted
    assert list(core_terminology()) == built
    assert files[0].read_bytes().startswith(b"[")
