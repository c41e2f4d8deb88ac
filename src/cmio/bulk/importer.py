"""Bulk import of FHIR Bundles and NDJSON into a repository.

:func:`import_paths` reads transaction/batch/collection Bundles
(https://hl7.org/fhir/R4/bundle.html) and Bulk Data NDJSON files
(https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format), validates
every resource with the API's structural validation, keeps the input ids,
rewrites ``urn:uuid:`` and conditional references, and stores the valid
resources in batches with ``Transaction.put_many`` (so re-running an import
adds no versions). Invalid resources go to a report and are not stored.

Parsing and validation run inline (``workers=0``) or in N worker processes
feeding one writer, which is all SQLite allows anyway.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cmio.api.env import Env
from cmio.bulk.parser import (
    ChunkParser,
    ChunkResult,
    Deferred,
    conditional_references,
    reference_path,
)
from cmio.bulk.report import ImportSummary, Problem, Rejected, ReportWriter
from cmio.bulk.sources import InputFile, Task, discover, iter_tasks
from cmio.bulk.workers import StoreResolver, WorkerConfig, WorkerPool, make_validator
from cmio.bulk.writer import BatchAudit, BatchWriter
from cmio.indexing import SearchIndexer
from cmio.model import Model
from cmio.store.base import Repository

__all__ = ["ImportProgress", "ProgressCallback", "import_paths"]

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Progress of a running import (passed to the ``progress`` callback).

    Attributes:
        resources: resources read so far (stored, unchanged or rejected).
        rejected: resources rejected so far.
        bytes_done: input bytes processed.
        bytes_total: input bytes in all files.
    """

    resources: int
    rejected: int
    bytes_done: int
    bytes_total: int


ProgressCallback = Callable[[ImportProgress], None]


def _finish_deferred(
    writer: BatchWriter, deferred: list[Deferred], resolver: StoreResolver | None
) -> None:
    """Resolve the held-back conditional references now that everything is stored."""
    if not deferred:
        return
    writer.flush()
    parser = ChunkParser(frozenset(), lambda r: (), resolver)
    for item in deferred:
        resource = orjson.loads(item.data)
        pending, problems = parser.rewrite(resource, {})
        if pending and not problems:
            problems = [
                Problem(
                    "error",
                    "not-found",
                    f"conditional reference {ref!r} matches no resource",
                    reference_path(resource, ref),
                )
                for ref in conditional_references(resource)[:5]
            ]
        if problems:
            writer.reject(
                Rejected(
                    item.file,
                    item.line,
                    item.entry,
                    resource.get("resourceType"),
                    resource.get("id"),
                    tuple(problems),
                )
            )
        else:
            writer.add_claimed(resource)
    writer.flush()


def _claim_deferred(writer: BatchWriter, deferred: list[Deferred], keep: list[Deferred]) -> None:
    for item in deferred:
        head = orjson.loads(item.data)
        if writer.claim(head["resourceType"], head["id"]):
            keep.append(item)


def import_paths(
    target: Env | Repository | str,
    paths: Sequence[str | Path],
    *,
    model: Model | None = None,
    database_url: str | None = None,
    workers: int = 0,
    batch_size: int = 5000,
    report_path: str | Path | None = None,
    progress: ProgressCallback | None = None,
    audit: BatchAudit | None = None,
) -> ImportSummary:
    """Import Bundles and NDJSON files into a repository.

    See https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format for the
    NDJSON layout and https://hl7.org/fhir/R4/bundle.html#references for how
    Bundle references are resolved.

    Args:
        target: an :class:`~cmio.api.env.Env`, a repository, or a database URL
            (opened here with the server's search indexer, and closed).
        paths: files or folders (searched recursively for ``*.json``,
            ``*.ndjson``, ``*.jsonl``, optionally ``.gz``).
        model: the FHIR model (loaded when not given and not in ``target``).
        database_url: lets worker processes resolve conditional references
            themselves (otherwise the writer resolves them at the end).
        workers: 0 parses inline; N >= 1 uses N worker processes.
        batch_size: resources per write transaction.
        report_path: where rejected resources are written (NDJSON, or CSV for
            ``*.csv``); created only if something is rejected.
        progress: called after each block of input.
        audit: records each batch's writes inside its transaction (the audit trail,
            e.g. :meth:`cmio.security.audit.jobs.JobAudit.batch`).

    Returns:
        Counts per resource type, files read and the report path.
    """
    with relaxed_gc():
        return _import(
            target, paths, model, database_url, workers, batch_size, report_path, progress, audit
        )


@contextlib.contextmanager
def relaxed_gc() -> Iterator[None]:
    """Run the cyclic garbage collector rarely while importing.

    An import allocates millions of short-lived dicts and lists that never form
    cycles; with the default thresholds the collector runs every few hundred
    allocations and rescans long-lived objects (the model), costing about a third
    of the writer's CPU time. The previous thresholds are restored afterwards.
    """
    old = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _import(
    target: Env | Repository | str,
    paths: Sequence[str | Path],
    model: Model | None,
    database_url: str | None,
    workers: int,
    batch_size: int,
    report_path: str | Path | None,
    progress: ProgressCallback | None,
    audit: BatchAudit | None = None,
) -> ImportSummary:
    began = time.perf_counter()
    own: Repository | None = None
    validator: Callable[[Json], Any] | None = None
    if isinstance(target, Env):
        repository, model, validator = target.repository, target.model, target.validator
    elif isinstance(target, str):
        from cmio.store import open_repository

        model = model or _load_model()
        database_url = database_url or target
        # the same indexer as the server's (cmio.api.app.build_env), so that
        # compartment searches see imported resources
        repository = own = open_repository(target, indexer=SearchIndexer(model))
    else:
        repository = target
    database_url = database_url or _url_of(repository)
    try:
        model = model or _load_model()
        validator = validator or make_validator(model)
        env = Env(repository, model, validator)
        files, skipped = discover(paths, model.resource_types)
        summary = ImportSummary(files=len(files), skipped_files=skipped)
        report = ReportWriter(report_path)
        writer = BatchWriter(
            repository, summary, report, batch_size, audit=audit, expected=_estimate(files)
        )
        resolver = StoreResolver(env)
        # rows are extracted by the parser (in the workers) when the store's indexer is
        # the standard SearchIndexer, which a worker can rebuild from the model
        indexer = repository.indexer
        keyed_rows = indexer.keyed_rows if type(indexer) is SearchIndexer else None
        try:
            if workers <= 0:
                parser = ChunkParser(model.resource_types, validator, resolver, keyed_rows)
                results = _inline(parser, iter_tasks(files), writer.flush)
                deferred = _drive(writer, results, files, progress)
            else:
                config = WorkerConfig(database_url, index=keyed_rows is not None)
                with WorkerPool(workers, config) as pool:
                    results = pool.run(iter_tasks(files), writer.flush)
                    deferred = _drive(writer, results, files, progress)
            _finish_deferred(writer, deferred, resolver)
            writer.close()
            if progress is not None:
                size = sum(f.size for f in files)
                progress(ImportProgress(writer.resources, writer.rejected, size, size))
        finally:
            writer.close(abort=True)
            report.close()
        if report.count and report.path is not None:
            summary.report_path = str(report.path)
        summary.seconds = time.perf_counter() - began
        return summary
    finally:
        if own is not None:
            own.close()


def _estimate(files: Sequence[InputFile]) -> int:
    """About how many resources ``files`` hold (~1 kB each, ~8 kB gzipped)."""
    return sum(f.size * (8 if f.gzipped else 1) for f in files) // 1024


def _load_model() -> Model:
    from cmio.model import load_model

    return load_model()


def _url_of(repository: Repository) -> str | None:
    """A URL worker processes can open the same store with, when the backend tells."""
    if repository.dialect == "sqlite" and isinstance(getattr(repository, "path", None), Path):
        return f"sqlite:///{Path(repository.path).resolve()}"  # type: ignore[attr-defined]
    url = getattr(repository, "url", None)
    return url if isinstance(url, str) else None


def _drive(
    writer: BatchWriter,
    results: Iterator[ChunkResult],
    files: Sequence[InputFile],
    progress: ProgressCallback | None,
) -> list[Deferred]:
    """Feed parser results to the writer; returns the deferred resources it claimed."""
    total = sum(f.size for f in files)
    done = 0
    deferred: list[Deferred] = []
    for result in results:
        _claim_deferred(writer, writer.consume(result), deferred)
        done += result.progress
        if progress is not None:
            queued = writer.resources + len(writer.batch)
            progress(ImportProgress(queued, writer.rejected, done, total))
    return deferred


def _inline(
    parser: ChunkParser, tasks: Iterator[Task], flush: Callable[[], None]
) -> Iterator[ChunkResult]:
    tier: int | None = None
    for task in tasks:
        if tier is not None and task.tier != tier:
            flush()
        tier = task.tier
        yield parser.run(task)
