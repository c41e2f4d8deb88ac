"""Where views read resources from: resources in memory, Bulk Data folders, Parquet, the store.

A source is resolved per view (only the view's resource type is read when the
layout allows it) to a :class:`Source`: DuckDB reads NDJSON and Parquet files
natively; resources in memory and the store's current resources stream to it as
Arrow record batches of JSON text.

Folder layout (the Bulk Data export layout,
https://hl7.org/fhir/uv/bulkdata/export.html#response---complete-status): one file
per type, ``Patient.ndjson`` (also ``Patient.ndjson.gz``, ``Patient.1.ndjson``,
``Patient-2.ndjson``...). Parquet layout: ``Patient.parquet`` (or
``Patient/*.parquet``), one row per resource with a ``resource`` column holding
the resource JSON as text (:func:`ndjson_to_parquet` converts a Bulk folder), and
in the typed layout of :mod:`cmio.views.typed` nested typed columns beside it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from cmio.model import Model, load_model
from cmio.store import Repository
from cmio.views.typed import write_typed_parquet

__all__ = [
    "BATCH_ROWS",
    "Source",
    "SourceError",
    "find_files",
    "ndjson_to_parquet",
    "resolve_source",
    "resource_batches",
]

BATCH_ROWS = 10_000
"""Resources per Arrow batch when streaming from memory or the store."""
RESOURCE_SCHEMA = pa.schema([pa.field("resource", pa.string())])


class SourceError(ValueError):
    """A source that cannot be read (missing folder, unknown layout)."""


@dataclass(frozen=True, slots=True)
class Source:
    """A resolved source.

    Attributes:
        kind: ``ndjson`` or ``parquet`` (``files`` set) or ``arrow`` (``batches`` set).
        files: the files to read.
        batches: a function returning a fresh stream of batches with a ``resource`` column.
        single_type: every resource is of the view's type (no type filter needed).
    """

    kind: str
    files: tuple[Path, ...] = ()
    batches: Callable[[], pa.RecordBatchReader] | None = None
    single_type: bool = False


def _type_of(path: Path) -> str:
    name = path.name
    for suffix in (".ndjson.gz", ".ndjson", ".parquet", ".jsonl", ".jsonl.gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return re.split(r"[.\-_]", name, maxsplit=1)[0]


def find_files(folder: Path, resource_type: str) -> tuple[str, tuple[Path, ...], bool]:
    """The files of ``folder`` holding ``resource_type``: (kind, files, single_type).

    Raises:
        SourceError: no NDJSON or Parquet files in the folder.
    """
    parquet = sorted(folder.glob("*.parquet")) + sorted(folder.glob("*/*.parquet"))
    ndjson = sorted(
        p
        for pattern in ("*.ndjson", "*.ndjson.gz", "*.jsonl", "*.jsonl.gz")
        for p in folder.glob(pattern)
    )
    for kind, files in (("parquet", parquet), ("ndjson", ndjson)):
        if not files:
            continue
        typed = [
            p
            for p in files
            if _type_of(p) == resource_type
            or (p.parent != folder and p.parent.name == resource_type)
        ]
        if typed:
            return kind, tuple(typed), True
        if all(_type_of(p) in ("", "data", "resources", "all") for p in files):
            return kind, tuple(files), False
        return kind, (), True
    raise SourceError(f"{folder}: no .ndjson(.gz) or .parquet files")


def resource_batches(resources: Iterable[Any], rows: int = BATCH_ROWS) -> pa.RecordBatchReader:
    """Resources (dicts, JSON text or bytes) as a stream of ``resource`` batches."""

    def generate() -> Iterator[pa.RecordBatch]:
        chunk: list[str] = []
        for item in resources:
            if isinstance(item, dict):
                chunk.append(json.dumps(item, separators=(",", ":")))
            elif isinstance(item, bytes):
                chunk.append(item.decode())
            else:
                chunk.append(str(item))
            if len(chunk) >= rows:
                yield pa.record_batch([pa.array(chunk, pa.string())], schema=RESOURCE_SCHEMA)
                chunk = []
        if chunk:
            yield pa.record_batch([pa.array(chunk, pa.string())], schema=RESOURCE_SCHEMA)

    return pa.RecordBatchReader.from_batches(RESOURCE_SCHEMA, generate())


def _store_resources(repository: Repository, resource_type: str) -> Iterator[bytes]:
    for stored in repository.iter_current([resource_type]):
        if stored.data is not None:
            yield stored.data


def resolve_source(source: Any, resource_type: str) -> Source:
    """Resolve what :func:`cmio.views.run` was given for one resource type.

    Args:
        source: a :class:`~cmio.store.Repository`, a folder or file path
            (NDJSON or Parquet), or an iterable of resources (dicts or JSON text).
        resource_type: the view's resource type.

    Raises:
        SourceError: the path does not exist or holds no resource files.
    """
    if isinstance(source, Repository):
        repository = source
        return Source(
            "arrow",
            batches=lambda: resource_batches(_store_resources(repository, resource_type)),
            single_type=True,
        )
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir():
            kind, files, single = find_files(path, resource_type)
            return Source(kind, files, single_type=single)
        if path.is_file():
            kind = "parquet" if path.name.endswith(".parquet") else "ndjson"
            return Source(kind, (path,), single_type=False)
        raise SourceError(f"{path}: no such file or folder")
    if isinstance(source, dict):
        raise SourceError("a source is an iterable of resources, not one resource")
    # Streamed: a generator of resources is read once, batch by batch, never held whole.
    return Source("arrow", batches=lambda: resource_batches(source), single_type=False)


def ndjson_to_parquet(
    folder: Path, out: Path, *, layout: str = "json", model: Model | None = None
) -> list[Path]:
    """Convert every ``Type*.ndjson(.gz)`` of a Bulk folder to ``out/Type.parquet``.

    Args:
        folder: the Bulk Data folder.
        out: the folder written.
        layout: ``json``: one ``resource`` column (the resource JSON text); ``typed``:
            that column plus nested typed columns per the R4 model
            (:mod:`cmio.views.typed`), which the engines read without parsing JSON.
        model: the FHIR model for ``typed`` (default: the R4 model).

    Raises:
        ValueError: an unknown layout.
        duckdb.Error: with ``typed``, a resource contradicting the model's JSON types.
    """
    import duckdb

    if layout not in ("json", "typed"):
        raise ValueError(f"unknown Parquet layout {layout!r} (json or typed)")
    if layout == "typed" and model is None:
        model = load_model()

    out.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[Path]] = {}
    for pattern in ("*.ndjson", "*.ndjson.gz"):
        for path in sorted(folder.glob(pattern)):
            groups.setdefault(_type_of(path), []).append(path)
    written = []
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        for rtype, files in sorted(groups.items()):
            target = out / f"{rtype}.parquet"
            if model is not None:
                write_typed_parquet(model, rtype, files, target, con)
                written.append(target)
                continue
            names = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            con.execute(
                f"COPY (SELECT json::VARCHAR AS resource FROM read_ndjson_objects([{names}])) "
                f"TO '{str(target).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)"
            )
            written.append(target)
    finally:
        con.close()
    return written
