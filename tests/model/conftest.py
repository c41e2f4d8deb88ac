"""Fixtures for the model tests."""

from __future__ import annotations

import pytest

from cmio.model import Model, load_model


@pytest.fixture(scope="session")
def model() -> Model:
    """The R4 model, loaded once per test session (from the default cache)."""
    return load_model()
