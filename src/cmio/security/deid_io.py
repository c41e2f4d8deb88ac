"""De-identified copies of a store or of a Bulk NDJSON folder, for analytics runs.

``cmio view run --deidentify`` runs the view over such a copy, so no engine ever
sees the identified resources. The copy has the Bulk Data layout (``Type.ndjson``,
https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format); the rules are
those of :class:`cmio.security.deid.Deidentifier` (HIPAA Safe Harbor).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO

from cmio.security.deid import Deidentifier
from cmio.store.base import Repository

__all__ = ["deidentify_folder", "deidentify_store"]

_NDJSON = (".ndjson", ".jsonl")


def deidentify_store(
    deid: Deidentifier, repository: Repository, out_dir: Path, types: Sequence[str] | None = None
) -> list[Path]:
    """Write the store's current resources, de-identified, as ``out_dir/Type.ndjson``.

    Args:
        deid: the de-identifier.
        repository: the store (read as one stream).
        out_dir: the folder (created).
        types: only these resource types (all when None).

    Returns:
        The files written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    handles: dict[str, IO[bytes]] = {}
    rows = repository.iter_current(list(types) if types is not None else None, None)
    try:
        for stored in rows:
            if stored.data is None:
                continue
            data = deid.deidentify_json(stored.data)
            if data is None:
                continue
            fh = handles.get(stored.type)
            if fh is None:
                fh = handles[stored.type] = (out_dir / f"{stored.type}.ndjson").open("wb")
            fh.write(data + b"\n")
    finally:
        for fh in handles.values():
            fh.close()
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    return sorted(out_dir / f"{t}.ndjson" for t in handles)


def deidentify_folder(deid: Deidentifier, source: Path, out_dir: Path) -> list[Path]:
    """De-identify an NDJSON file or every NDJSON file of a folder into ``out_dir`` (same names).

    Args:
        deid: the de-identifier.
        source: an ``.ndjson`` file or a folder of them (Bulk layout).
        out_dir: the folder (created).

    Returns:
        The files written.

    Raises:
        ValueError: the source holds no NDJSON (Parquet sources are not de-identified:
            export them from NDJSON after de-identification), or a line is not JSON.
    """
    files = [source] if source.is_file() else sorted(source.iterdir())
    files = [f for f in files if f.is_file() and f.suffix.lower() in _NDJSON]
    if not files:
        raise ValueError(f"{source}: no NDJSON files to de-identify (.ndjson, .jsonl)")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for path in files:
        target = out_dir / path.name
        with path.open("rb") as src, target.open("wb") as dst:
            try:
                for line in deid.deidentify_ndjson(src):
                    dst.write(line)
            except ValueError as exc:
                raise ValueError(f"{path.name}: {exc}") from None
        written.append(target)
    return written
