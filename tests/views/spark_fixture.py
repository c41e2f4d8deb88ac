"""The Spark fixtures of the view tests: one SparkSession and the batched ``spark`` runner.

Imported by ``tests/views/conftest.py`` so each fixture is registered once for the
test session. Starting Spark costs 10-20 s and each Spark query about a second of
planning on this machine, so the runner computes every conformance case in a few
combined jobs (:func:`cmio.views.spark_engine.spark_run_many`) on first use and
answers from those results; other views run one query each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pytest

from cmio.model import Model
from cmio.views.spark_engine import spark_run, spark_run_many
from cmio.views.spark_session import SparkConfig, spark_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["spark", "view_runner_spark"]


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """A ``local[2]`` session with one shuffle partition, stopped after the session.

    Test inputs are a few rows: every partition is one more task to schedule and run
    (the setting is applied to a session already running too, as the measure tests
    start one with the defaults).
    """
    session = spark_session(SparkConfig(master="local[2]", shuffle_partitions=1))
    session.conf.set("spark.sql.shuffle.partitions", "1")
    yield session
    session.stop()


def _key(view: dict[str, Any], resources: list[dict[str, Any]]) -> bytes:
    return orjson.dumps([view, resources], option=orjson.OPT_SORT_KEYS)


@pytest.fixture(scope="session")
def view_runner_spark(spark: SparkSession, model: Model) -> Any:
    """Runs a view on Spark; conformance cases come from one batched run."""
    from tests.views.test_conformance import _cases, _resources

    jobs = []
    for case in _cases():
        view = json.loads(json.dumps(case.test["view"], default=float))
        jobs.append((view, _resources(case)))
    done = dict(
        zip(
            (_key(v, r) for v, r in jobs),
            spark_run_many(jobs, spark, model=model),
            strict=True,
        )
    )

    def runner(view: dict[str, Any], resources: list[dict[str, Any]]) -> pa.Table:
        result = done.get(_key(view, resources))
        if result is None:
            return spark_run(view, resources, spark, model=model)
        if isinstance(result, Exception):
            raise result
        return result

    return runner
