"""Fixtures: one generated health system per test session (and its parsed resources)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.model import Model, load_model
from cmio.synth import SynthConfig, SynthSummary, generate

PATIENTS = 600
SEED = 20260501


@dataclass
class Generated:
    """A generated output folder and its resources by type."""

    out: Path
    summary: SynthSummary
    by_type: dict[str, list[dict[str, Any]]]

    def lines(self) -> list[bytes]:
        """Every NDJSON line of the output."""
        return [
            line
            for path in sorted(self.out.glob("*.ndjson"))
            for line in path.read_bytes().splitlines()
        ]


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """600 patients, one year of care, generated with two workers."""
    out = tmp_path_factory.mktemp("synth") / "out"
    summary = generate(SynthConfig(PATIENTS, out, years=1.0, seed=SEED, workers=2))
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(out.glob("*.ndjson")):
        for line in path.read_bytes().splitlines():
            resource = orjson.loads(line)
            by_type[resource["resourceType"]].append(resource)
    return Generated(out, summary, dict(by_type))


@pytest.fixture(scope="session")
def model() -> Model:
    """The FHIR R4 model."""
    return load_model()
