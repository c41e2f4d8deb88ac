"""Rules in batch over the store: one row per finding (``cmio rules run``).

The table (:func:`findings_schema`) is what the standards-adherence measures read:
rule, version, severity, message, resource (``Type/id``), resource type, element path
and source system (``meta.source``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cmio.rules.definition import Rule
from cmio.rules.engine import Finding, RuleEngine
from cmio.store.base import Repository

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["FINDINGS_COLUMNS", "findings_schema", "findings_table", "run_rules", "write_findings"]

FINDINGS_COLUMNS = (
    "rule", "version", "severity", "message", "resource", "resource_type", "path", "source",
)  # fmt: skip
"""The findings table's columns (all strings)."""


def findings_schema() -> pa.Schema:
    """The Arrow schema of the findings table (pyarrow imported on first use, not by the
    write path)."""
    import pyarrow as pa

    return pa.schema([pa.field(name, pa.string()) for name in FINDINGS_COLUMNS])


def findings_table(findings: Sequence[Finding]) -> pa.Table:
    """The findings as a table of :func:`findings_schema`."""
    import pyarrow as pa

    rows = [
        {
            "rule": f.rule,
            "version": f.version,
            "severity": f.severity,
            "message": f.message,
            "resource": f.resource,
            "resource_type": f.resource_type,
            "path": f.path,
            "source": f.source,
        }
        for f in findings
    ]
    return pa.Table.from_pylist(rows, schema=findings_schema())


def run_rules(
    repository: Repository,
    engine: RuleEngine,
    rules: Sequence[Rule],
    *,
    types: Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> pa.Table:
    """Evaluate ``rules`` on every current resource (of ``types``) in the store.

    Args:
        repository: the store.
        engine: the rule engine.
        rules: the rules (usually :func:`cmio.rules.catalog.active_rules`).
        types: only these resource types (default: the types the rules are scoped to,
            every type when one rule is unscoped).
        progress: called with the number of resources read since the last call.
    """
    if types is None and rules and all(r.resource_types for r in rules):
        types = sorted({t for r in rules for t in r.resource_types})
    findings: list[Finding] = []
    seen = 0
    for stored in repository.iter_current(list(types) if types else None):
        if stored.data is not None:
            findings.extend(engine.evaluate(rules, json.loads(stored.data)))
        seen += 1
        if progress is not None and seen % 200 == 0:
            progress(200)
    if progress is not None:
        progress(seen % 200)
    return findings_table(findings)


def write_findings(table: pa.Table, out: Path) -> None:
    """Write the findings as ``.csv``, ``.parquet`` or ``.ndjson`` (by suffix)."""
    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, out)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, out)
    elif suffix in (".ndjson", ".jsonl"):
        with out.open("w", encoding="utf-8") as handle:
            for row in table.to_pylist():
                handle.write(json.dumps(row) + "\n")
    else:
        raise ValueError(f"unsupported output {out.name!r}: use .csv, .parquet or .ndjson")
