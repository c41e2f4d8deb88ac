"""Fixtures shared by the measure tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def spark_one_partition() -> Iterator[None]:
    """The Spark session the engine uses (:func:`cmio.views.spark_session.spark_session`)
    with one shuffle partition while the test runs: a few patients' rows, and every
    partition is a task per step to schedule and run."""
    from cmio.views.spark_session import spark_session

    session = spark_session()
    before = session.conf.get("spark.sql.shuffle.partitions")
    session.conf.set("spark.sql.shuffle.partitions", "1")
    yield
    session.conf.set("spark.sql.shuffle.partitions", before)
