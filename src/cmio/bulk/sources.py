"""Finding import inputs and cutting them into units of work.

Inputs are Bundle files (``*.json``, https://hl7.org/fhir/R4/bundle.html) and
NDJSON files (``*.ndjson``, ``*.jsonl``, optionally gzipped; the Bulk Data
format, https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format),
given as files or folders (searched recursively).

Work is ordered in *tiers* so that resources usually targeted by conditional
references (``Practitioner?identifier=...``) are committed before the files
that point at them are read: Organization first, then Location and
Practitioner, then PractitionerRole and Patient, then everything else.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import orjson

__all__ = [
    "LAST_TIER",
    "TRUNCATED",
    "InputFile",
    "Task",
    "discover",
    "iter_tasks",
    "read_bytes",
    "tier_of",
]

NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
BUNDLE_SUFFIXES = (".json", ".json.gz")
_TIERS: dict[str, int] = {
    "Organization": 0,
    "Medication": 0,
    "Substance": 0,
    "Endpoint": 0,
    "Location": 1,
    "Practitioner": 1,
    "HealthcareService": 1,
    "PractitionerRole": 2,
    "Patient": 2,
}
LAST_TIER = 3
BLOCK_BYTES = 1 << 20
#: the line put after the last complete data of a truncated or damaged gzip file: the
#: parser rejects it (with its line number) as the place where the data ends early
TRUNCATED = b"\x00 compressed data ends early here: the file is truncated or damaged"


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input file: ``kind`` is ``ndjson`` or ``bundle``; ``label`` is shown in reports."""

    path: Path
    label: str
    kind: str
    tier: int
    size: int

    @property
    def gzipped(self) -> bool:
        """Whether the file is gzip-compressed."""
        return self.path.name.endswith(".gz")


@dataclass(frozen=True, slots=True)
class Task:
    """A unit of work for a parser: a block of NDJSON lines or one Bundle file.

    Attributes:
        seq: position in the run (results are written in this order).
        tier: the file's tier (see module docstring).
        kind: ``ndjson`` or ``bundle``.
        path: file to read.
        label: file name for the report.
        offset: byte offset of the block in an uncompressed NDJSON file.
        length: byte length of the block.
        first_line: 1-based line number of the block's first line.
        data: the block itself, when it cannot be re-read by offset (gzip).
        progress: input bytes this task accounts for (for progress bars).
    """

    seq: int
    tier: int
    kind: str
    path: str
    label: str
    offset: int = 0
    length: int = 0
    first_line: int = 1
    data: bytes | None = None
    progress: int = 0


def tier_of(resource_type: str | None) -> int:
    """The tier of a resource type (see module docstring); unknown types go last."""
    if resource_type is None:
        return LAST_TIER
    return _TIERS.get(resource_type, LAST_TIER)


def _open(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def read_bytes(path: str | Path) -> bytes:
    """The whole (decompressed) content of a file."""
    with _open(Path(path)) as fh:
        return fh.read()


def _first_record(path: Path) -> object:
    """The first non-blank NDJSON line, parsed (``None`` if unreadable or empty)."""
    with _open(path) as fh:
        for raw in fh:
            line = raw.strip()
            if line:
                try:
                    return orjson.loads(line)
                except orjson.JSONDecodeError:
                    return None
    return None


def _ndjson_type(path: Path, known_types: frozenset[str]) -> tuple[str | None, bool]:
    """(resource type the file seems to hold, whether it looks like FHIR at all)."""
    stem = path.name.split(".", 1)[0].split("-", 1)[0]
    first = _first_record(path)
    if isinstance(first, dict) and "resourceType" not in first:
        return None, False
    if stem in known_types:
        return stem, True
    if isinstance(first, dict) and isinstance(first.get("resourceType"), str):
        return first["resourceType"], True
    return None, True


def discover(
    paths: Sequence[str | Path], known_types: frozenset[str]
) -> tuple[list[InputFile], list[str]]:
    """List the input files under ``paths``, in tier then path order.

    Returns:
        ``(files, skipped)``: ``skipped`` names NDJSON files whose records are
        JSON objects without ``resourceType`` (such as a bulk export ``log.ndjson``).

    Raises:
        FileNotFoundError: a path does not exist.
    """
    found: list[tuple[Path, str]] = []
    for given in paths:
        root = Path(given)
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in sorted(filenames):
                    full = Path(dirpath) / name
                    if name.endswith(NDJSON_SUFFIXES + BUNDLE_SUFFIXES):
                        found.append((full, str(full)))
        elif root.is_file():
            found.append((root, str(given)))
        else:
            raise FileNotFoundError(f"no such file or directory: {given}")
    files: list[InputFile] = []
    skipped: list[str] = []
    seen: set[Path] = set()
    for path, label in found:
        resolved = path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        size = path.stat().st_size
        if path.name.endswith(NDJSON_SUFFIXES):
            rtype, fhir = _ndjson_type(path, known_types)
            if not fhir:
                skipped.append(f"{label}: records have no resourceType (not FHIR NDJSON)")
                continue
            files.append(InputFile(path, label, "ndjson", tier_of(rtype), size))
        else:
            files.append(InputFile(path, label, "bundle", LAST_TIER, size))
    files.sort(key=lambda f: (f.tier, f.kind != "ndjson", str(f.path)))
    return files, skipped


def _ndjson_blocks(file: InputFile) -> Iterator[tuple[int, int, int, bytes | None, int]]:
    """(offset, length, first_line, data-or-None, progress bytes) per line-aligned block."""
    line = 1
    offset = 0
    with file.path.open("rb") as raw:
        fh = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")) if file.gzipped else raw
        try:
            carry = b""
            consumed = 0
            while True:
                chunk, truncated = _read(fh, file.gzipped)
                block = carry + chunk
                if truncated:  # end with the partial line, then the marker line
                    block += (b"\n" if block and not block.endswith(b"\n") else b"") + TRUNCATED
                    chunk = b""
                if not chunk:
                    if block.strip():
                        yield (
                            offset,
                            len(block),
                            line,
                            block if file.gzipped else None,
                            (file.size - consumed),
                        )
                    return
                cut = block.rfind(b"\n") + 1
                if cut == 0:
                    carry = block
                    continue
                body, carry = block[:cut], block[cut:]
                position = raw.tell() if file.gzipped else offset + cut
                done = min(position, file.size) - consumed
                consumed += done
                yield offset, cut, line, body if file.gzipped else None, done
                line += body.count(b"\n")
                offset += cut
        finally:
            if fh is not raw:
                fh.close()


def _read(fh: IO[bytes], gzipped: bool) -> tuple[bytes, bool]:
    """About :data:`BLOCK_BYTES` of the file, and whether a gzip stream ended early.

    A gzip file is read one decompressed piece at a time (``read1``), so what precedes
    a truncation or damage is kept (``read`` would drop the whole block).
    """
    if not gzipped:
        return fh.read(BLOCK_BYTES), False
    pieces: list[bytes] = []
    size = 0
    try:
        while size < BLOCK_BYTES:
            piece = cast(gzip.GzipFile, fh).read1(BLOCK_BYTES - size)
            if not piece:
                break
            pieces.append(piece)
            size += len(piece)
    except (EOFError, OSError, zlib.error):  # truncated stream, bad CRC or header
        return b"".join(pieces), True
    return b"".join(pieces), False


def iter_tasks(files: Sequence[InputFile]) -> Iterator[Task]:
    """Cut the files into tasks (NDJSON in blocks of about 1 MiB, Bundles whole)."""
    seq = 0
    for file in files:
        if file.kind == "bundle":
            yield Task(seq, file.tier, "bundle", str(file.path), file.label, progress=file.size)
            seq += 1
            continue
        for offset, length, first_line, data, progress in _ndjson_blocks(file):
            yield Task(
                seq,
                file.tier,
                "ndjson",
                str(file.path),
                file.label,
                offset,
                length,
                first_line,
                data,
                progress,
            )
            seq += 1
