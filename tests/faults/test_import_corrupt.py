"""A corrupt line, a truncated last line and a truncated gzip file in one ``cmio import``.

Each bad spot is rejected in the report with its file and line number; every good
line is stored once (nothing after a bad line is lost); the store passes
``cmio doctor --full``; importing the repaired files afterwards completes the data.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from cmio.cli.main import app
from cmio.indexing import SearchIndexer
from cmio.store import open_repository

from .conftest import assert_doctor_ok


def patient(i: int, prefix: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": f"{prefix}{i}", "name": [{"family": f"F{i}"}]}


def stored_ids(url: str, indexer: SearchIndexer) -> list[str]:
    repo = open_repository(url, indexer=indexer)
    try:
        return [r.id for r in repo.iter_current(["Patient"])]
    finally:
        repo.close()


def test_corrupt_and_truncated_input(tmp_path: Path, indexer: SearchIndexer) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    lines = [orjson.dumps(patient(i, "a")) for i in range(200)]
    good = b"\n".join(lines) + b"\n"
    broken = lines.copy()
    broken[99] = lines[99][:25] + b"\xff\xfe garbage"  # line 100: corrupt mid-file
    text = b"\n".join(broken) + b"\n"
    (folder / "Patient-a.ndjson").write_bytes(text[: -len(lines[-1]) // 2])  # last line cut
    # A gzip file of 3000 lines cut in the middle of its compressed stream.
    zipped_lines = [orjson.dumps(patient(i, "z")) for i in range(3000)]
    zipped = gzip.compress(b"\n".join(zipped_lines) + b"\n")
    (folder / "Patient-z.ndjson.gz").write_bytes(zipped[: len(zipped) // 2])

    url = f"sqlite:///{tmp_path / 'store.db'}"
    report = tmp_path / "rejected.ndjson"
    args = ["import", str(folder), "--database", url, "--workers", "0", "--report", str(report)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    rejected = [orjson.loads(line) for line in report.read_bytes().splitlines()]
    by_file: dict[str, list[int]] = {}
    for row in rejected:
        by_file.setdefault(Path(row["file"]).name, []).append(row["line"])
    assert sorted(by_file["Patient-a.ndjson"]) == [100, 200]
    z_lines = sorted(by_file["Patient-z.ndjson.gz"])
    truncation = next(r for r in rejected if "ends early" in r["issues"][0]["message"])
    assert truncation["line"] == z_lines[-1]
    assert all(r["issues"][0]["code"] == "structure" for r in rejected)

    ids = stored_ids(url, indexer)
    assert len(ids) == len(set(ids))
    a_ids = {i for i in ids if i.startswith("a")}
    assert a_ids == {f"a{i}" for i in range(200)} - {"a99", "a199"}  # all but the two bad
    z_ids = {i for i in ids if i.startswith("z")}
    complete = z_lines[0] - 1  # the lines before the first rejected one were whole
    assert complete > 100 and z_ids == {f"z{i}" for i in range(complete)}
    assert_doctor_ok(url, indexer)

    # The repaired files: everything is there once, nothing imported twice.
    (folder / "Patient-a.ndjson").write_bytes(good)
    (folder / "Patient-z.ndjson.gz").write_bytes(zipped)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    ids = stored_ids(url, indexer)
    assert sorted(ids) == sorted([f"a{i}" for i in range(200)] + [f"z{i}" for i in range(3000)])
    assert_doctor_ok(url, indexer)
