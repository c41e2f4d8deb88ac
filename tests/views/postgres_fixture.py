"""The ``postgres`` view runner: views compiled to PostgreSQL and run in the test server.

Imported by ``tests/views/conftest.py``. Each run loads the resources into a
temporary table of its own connection (:func:`cmio.views.postgres_engine.run`).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from cmio.model import Model
from cmio.views.postgres_engine import run

__all__ = ["view_runner_postgres"]


@pytest.fixture(scope="session")
def view_runner_postgres(postgres_url: str, model: Model) -> Any:
    """Runs a view over resources in the session's PostgreSQL server."""

    def runner(view: dict[str, Any], resources: list[dict[str, Any]]) -> pa.Table:
        return run(view, resources, database=postgres_url, model=model)

    return runner
