"""Output sinks: Bulk Data NDJSON (one ``Type.ndjson`` per type), per-patient
transaction Bundles, and the vendor-style audit log CSV.

NDJSON follows https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format;
Bundles are transactions of ``PUT Type/id`` entries
(https://hl7.org/fhir/R4/http.html#transaction) so ids are kept on import.
Resources are serialized with orjson as they arrive (constant memory).
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import orjson

from cmio.synth.context import AUDIT_COLUMNS

__all__ = ["AUDIT_LOG", "BundleSink", "NdjsonSink", "Sink", "merge_shards"]

AUDIT_LOG = "audit-log.csv"
"""File name of the vendor-style audit log written beside the FHIR output."""


class Sink:
    """Base sink: the audit-log CSV and counters."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.counts: dict[str, int] = {}
        self._csv_file = open(out / AUDIT_LOG, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._csv = csv.writer(self._csv_file, lineterminator="\n")
        self._csv.writerow(AUDIT_COLUMNS)

    def write_rows(self, rows: Iterable[tuple[str, ...]]) -> None:
        """Append audit-log rows."""
        self._csv.writerows(rows)

    def write(self, resources: list[dict[str, Any]]) -> None:
        """Write one group of resources (one patient, or the system)."""
        raise NotImplementedError

    def close(self) -> None:
        """Flush and close every file."""
        self._csv_file.close()


class NdjsonSink(Sink):
    """Bulk Data layout: one ``Type.ndjson`` per resource type."""

    def __init__(self, out: Path) -> None:
        super().__init__(out)
        self._files: dict[str, IO[bytes]] = {}

    def write(self, resources: list[dict[str, Any]]) -> None:
        """Append each resource as one line of its type's file."""
        files = self._files
        counts = self.counts
        dumps = orjson.dumps
        newline = orjson.OPT_APPEND_NEWLINE
        for resource in resources:
            rtype = resource["resourceType"]
            handle = files.get(rtype)
            if handle is None:
                handle = files[rtype] = open(self.out / f"{rtype}.ndjson", "wb", buffering=1 << 20)  # noqa: SIM115
                counts[rtype] = 0
            handle.write(dumps(resource, option=newline))
            counts[rtype] += 1

    def close(self) -> None:
        """Close every file."""
        for handle in self._files.values():
            handle.close()
        super().close()


class BundleSink(Sink):
    """One transaction Bundle per group (``system.json``, then one per patient)."""

    def __init__(self, out: Path) -> None:
        super().__init__(out)
        self._n = 0

    def write(self, resources: list[dict[str, Any]]) -> None:
        """Write the group as a transaction Bundle of PUT entries."""
        entries = []
        for r in resources:
            rtype, rid = r["resourceType"], r["id"]
            self.counts[rtype] = self.counts.get(rtype, 0) + 1
            entries.append(
                {
                    "fullUrl": f"urn:uuid:{rid}",
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{rtype}/{rid}"},
                }
            )
        first = resources[0]
        name = "system" if first["resourceType"] != "Patient" else f"patient-{first['id']}"
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        (self.out / f"{name}.json").write_bytes(orjson.dumps(bundle))
        self._n += 1


def _append(src: IO[bytes], target: IO[bytes]) -> None:
    """Append the rest of ``src`` to ``target`` (in the kernel where possible)."""
    target.flush()
    offset = src.tell()
    remaining = os.fstat(src.fileno()).st_size - offset
    try:
        while remaining > 0:
            n = os.copy_file_range(src.fileno(), target.fileno(), remaining, offset)
            if n == 0:
                break
            offset += n
            remaining -= n
    except (AttributeError, OSError):
        src.seek(offset)
        shutil.copyfileobj(src, target, 1 << 22)


def merge_shards(out: Path, shards: list[Path]) -> None:
    """Concatenate worker shard folders into ``out`` in order (and remove them).

    NDJSON files and the audit log (without repeated headers) are appended; Bundle
    files are moved.
    """
    handles: dict[str, IO[bytes]] = {}
    try:
        for shard in shards:
            for path in sorted(shard.iterdir()):
                if path.suffix == ".ndjson" or path.name == AUDIT_LOG:
                    target = handles.get(path.name)
                    if target is None:
                        dest = out / path.name
                        target = handles[path.name] = open(dest, "r+b" if dest.exists() else "wb")  # noqa: SIM115
                        target.seek(0, os.SEEK_END)
                    with open(path, "rb") as src:
                        if path.name == AUDIT_LOG:
                            src.readline()
                        _append(src, target)
                elif path.suffix == ".json":
                    path.replace(out / path.name)
            shutil.rmtree(shard)
    finally:
        for handle in handles.values():
            handle.close()
