"""Import results: per-type counts, rejected-resource records and the report file.

A rejected resource is written to the report (NDJSON, or CSV when the file name
ends in ``.csv``) with where it came from and the validation issues, each with
its FHIRPath ``expression`` (https://hl7.org/fhir/R4/operationoutcome.html).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

__all__ = ["ImportSummary", "Problem", "Rejected", "ReportWriter", "TypeCounts"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One issue found with a resource (mirrors ``OperationOutcome.issue``)."""

    severity: str
    code: str
    message: str
    expression: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The issue as a JSON object for the report."""
        out: dict[str, Any] = {"severity": self.severity, "code": self.code}
        if self.expression:
            out["expression"] = self.expression
        out["message"] = self.message
        return out


@dataclass(frozen=True, slots=True)
class Rejected:
    """A resource that was not stored, and why.

    Attributes:
        file: the input file (as given on the command line).
        line: 1-based line number in an NDJSON file.
        entry: 0-based ``Bundle.entry`` index in a Bundle file.
        resource_type: ``resourceType`` when it could be read.
        id: the resource id when it could be read.
        problems: the issues (at least one).
    """

    file: str
    line: int | None
    entry: int | None
    resource_type: str | None
    id: str | None
    problems: tuple[Problem, ...]

    def to_json(self) -> dict[str, Any]:
        """The record as written to an NDJSON report."""
        out: dict[str, Any] = {"file": self.file}
        if self.line is not None:
            out["line"] = self.line
        if self.entry is not None:
            out["entry"] = self.entry
        out["resourceType"] = self.resource_type
        out["id"] = self.id
        out["issues"] = [p.to_json() for p in self.problems]
        return out


@dataclass(slots=True)
class TypeCounts:
    """What happened to the resources of one type."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    @property
    def total(self) -> int:
        """All resources of the type that were read."""
        return self.created + self.updated + self.unchanged + self.rejected


@dataclass(slots=True)
class ImportSummary:
    """The outcome of one import run.

    Attributes:
        by_type: counts per resource type (rejections without a readable type
            are counted under ``"(unknown)"``).
        files: number of input files read.
        skipped_files: files skipped as not being FHIR data, with the reason.
        seconds: wall-clock duration.
        report_path: where rejected resources were written, if anywhere.
    """

    by_type: dict[str, TypeCounts] = field(default_factory=dict)
    files: int = 0
    skipped_files: list[str] = field(default_factory=list)
    seconds: float = 0.0
    report_path: str | None = None

    def counts(self, rtype: str) -> TypeCounts:
        """The (mutable) counts of one type, created on first use."""
        found = self.by_type.get(rtype)
        if found is None:
            found = self.by_type[rtype] = TypeCounts()
        return found

    def totals(self) -> TypeCounts:
        """Counts summed over all types."""
        out = TypeCounts()
        for c in self.by_type.values():
            out.created += c.created
            out.updated += c.updated
            out.unchanged += c.unchanged
            out.rejected += c.rejected
        return out

    @property
    def rejected(self) -> int:
        """Number of resources not stored because they were invalid."""
        return sum(c.rejected for c in self.by_type.values())

    @property
    def resources(self) -> int:
        """Number of resources read (stored, unchanged or rejected)."""
        return sum(c.total for c in self.by_type.values())

    @property
    def per_second(self) -> float:
        """Resources read per second of wall-clock time."""
        return self.resources / self.seconds if self.seconds > 0 else 0.0


class ReportWriter:
    """Writes rejected resources to ``path`` (NDJSON, or CSV for ``*.csv``), opened lazily.

    Nothing is created until the first rejection unless ``always`` is set.
    """

    def __init__(self, path: str | Path | None, *, always: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.count = 0
        self._fh: IO[bytes] | None = None
        self._csv = self.path is not None and self.path.suffix.lower() == ".csv"
        if always:
            self._open()

    def _open(self) -> IO[bytes] | None:
        if self._fh is None and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("wb")
            if self._csv:
                self._fh.write(
                    b"file,line,entry,resourceType,id,severity,code,expression,message\n"
                )
        return self._fh

    def write(self, rejected: Rejected) -> None:
        """Append one rejected resource (one CSV row per issue)."""
        self.count += 1
        fh = self._open()
        if fh is None:
            return
        if not self._csv:
            fh.write(orjson.dumps(rejected.to_json()) + b"\n")
            return
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for p in rejected.problems:
            writer.writerow(
                [
                    rejected.file,
                    "" if rejected.line is None else rejected.line,
                    "" if rejected.entry is None else rejected.entry,
                    rejected.resource_type or "",
                    rejected.id or "",
                    p.severity,
                    p.code,
                    p.expression or "",
                    p.message,
                ]
            )
        fh.write(buf.getvalue().encode("utf-8"))

    def close(self) -> None:
        """Flush and close the file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
