"""Fixtures for the FHIRPath tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmio.fhirpath import FhirPathEngine
from cmio.model import Model, load_model

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
"""The shared folder beside the repository (read-only test material)."""


@pytest.fixture(scope="session")
def model() -> Model:
    """The R4 model, loaded once per test session."""
    return load_model()


@pytest.fixture(scope="session")
def engine(model: Model) -> FhirPathEngine:
    """One FHIRPath engine for the session."""
    return FhirPathEngine(model)
