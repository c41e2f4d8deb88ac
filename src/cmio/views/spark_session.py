"""A configured SparkSession for running SQL on FHIR views on Spark.

:func:`spark_session` builds (or reuses) the session views run on: ``local[N]``
for one machine or any cluster by master URL (``spark://host:7077``,
``yarn``, ``k8s://...``). It keeps Spark quiet (log level ``ERROR``, no web UI),
uses few shuffle partitions (views are narrow, row-wise projections; the
default of 200 costs more than the work on small inputs) and, for ``local``
masters, binds the driver to loopback and runs its JVM with the parallel
(throughput) garbage collector. See
https://spark.apache.org/docs/latest/configuration.html and
https://spark.apache.org/docs/latest/submitting-applications.html#master-urls.

Spark keeps one active session per JVM: asking for a different master than the
running session's stops the running one first (``local[1]`` versus ``local[2]``
in a benchmark), unless ``reuse`` is False.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkConfig", "SparkUnavailableError", "import_pyspark", "spark_session"]

_LOCAL = re.compile(r"local(\[(\d+|\*)(,\d+)?\])?$")


class SparkUnavailableError(RuntimeError):
    """pyspark or a Java runtime is missing, or the master refused the session."""


@dataclass(frozen=True, slots=True)
class SparkConfig:
    """How to build the session.

    Attributes:
        master: ``local[N]``, ``local[*]`` or a cluster master URL.
        app_name: shown in the cluster UI and logs.
        shuffle_partitions: ``spark.sql.shuffle.partitions``; None: twice the cores of
            a ``local[N]`` master, else Spark's default.
        driver_memory: ``spark.driver.memory`` (only honoured when the JVM starts).
        log_level: ``setLogLevel`` of the SparkContext.
        conf: any further ``spark.*`` settings.
    """

    master: str = "local[2]"
    app_name: str = "cmio-views"
    shuffle_partitions: int | None = None
    driver_memory: str = "2g"
    log_level: str = "ERROR"
    conf: Mapping[str, str] = field(default_factory=dict)

    def settings(self) -> dict[str, str]:
        """The ``spark.*`` settings this configuration gives the builder."""
        out = {
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.memory": self.driver_memory,
            "spark.sql.session.timeZone": "UTC",
            # views are scans and projections: no adaptive re-planning round trips
            "spark.sql.adaptive.enabled": "false",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            # typed Parquet (cmio.views.typed) is nested structs and lists: read them
            # column-wise too (off by default in Spark; 1.35-1.45x on the observation view)
            "spark.sql.parquet.enableNestedColumnVectorizedReader": "true",
            # FHIRPath has no errors for bad casts or out-of-range indexes: they are
            # empty (NULL), as without ANSI mode (Spark 4 turns it on by default)
            "spark.sql.ansi.enabled": "false",
        }
        cores = local_cores(self.master)
        partitions = self.shuffle_partitions
        if partitions is None and cores is not None:
            partitions = max(1, 2 * cores)
        if partitions is not None:
            out["spark.sql.shuffle.partitions"] = str(partitions)
            out["spark.default.parallelism"] = str(partitions)
        if cores is not None:
            out["spark.driver.host"] = "127.0.0.1"
            out["spark.driver.bindAddress"] = "127.0.0.1"
            # one JVM on a few cores runs every task: the throughput collector, not G1's
            # concurrent marking and write barriers (1.2-1.4x less CPU on the benchmark's
            # 2,000,000-row view, old and new alternated; only honoured when the JVM starts)
            out["spark.driver.extraJavaOptions"] = "-XX:+UseParallelGC"
        out.update(self.conf)
        return out


def local_cores(master: str) -> int | None:
    """The core count of a ``local[N]`` master (``local`` is 1, ``local[*]`` all cores);
    None for cluster masters."""
    match = _LOCAL.match(master)
    if match is None:
        return None
    if match.group(2) is None:
        return 1
    if match.group(2) == "*":
        return os.cpu_count() or 1
    return int(match.group(2))


def import_pyspark() -> None:
    """Import pyspark once, silencing its import-time pandas-version FutureWarning.

    Raises:
        SparkUnavailableError: when pyspark is not installed.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark(\..*)?")
        warnings.filterwarnings("ignore", message=r".*PySpark.*pandas.*", category=FutureWarning)
        try:
            import pyspark.sql  # noqa: F401
        except ImportError as exc:  # pragma: no cover - pyspark is a dependency
            raise SparkUnavailableError(f"pyspark is not installed: {exc}") from exc


def spark_session(config: SparkConfig | None = None, *, reuse: bool = True) -> SparkSession:
    """Return a SparkSession for ``config`` (default ``local[2]``).

    Args:
        config: master, partitions and extra settings.
        reuse: keep the running session when its master matches ``config.master``;
            with False the running session is always stopped and a new one built.

    Returns:
        The active session, configured and quiet.

    Raises:
        SparkUnavailableError: pyspark or Java is missing, or the session cannot start.
    """
    config = config or SparkConfig()
    import_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession() or getattr(SparkSession, "_instantiatedSession", None)
    if active is not None:
        if reuse and active.sparkContext.master == config.master:
            return active
        active.stop()
    if local_cores(config.master) is not None:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(config.master).appName(config.app_name)
    for key, value in config.settings().items():
        builder = builder.config(key, value)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            session = builder.getOrCreate()
    except Exception as exc:  # Py4J/Java start-up failures surface as plain exceptions
        raise SparkUnavailableError(
            f"cannot start Spark on {config.master!r} (is Java 17+ installed?): {exc}"
        ) from exc
    session.sparkContext.setLogLevel(config.log_level)
    return session
