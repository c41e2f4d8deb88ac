"""Rules in batch over the store: one row per finding (``cmio rules run``).

The table (:data:`FINDINGS_SCHEMA`) is what the standards-adherence measures read:
rule, version, severity, message, resource (``Type/id``), resource type, element path
and source system (``meta.source``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa

from cmio.rules.definition import Rule
from cmio.rules.engine import Finding, RuleEngine
from cmio.store.base import Repository

__all__ = ["FINDINGS_SCHEMA", "findings_table", "run_rules", "write_findings"]

FINDINGS_SCHEMA = pa.schema(
    [
        pa.field("rule", pa.string()),
        pa.field("version", pa.string()),
        pa.field("severity", pa.string()),
        pa.field("message", pa.string()),
        pa.field("resource", pa.string()),
        pa.field("resource_type", pa.string()),
        pa.field("path", pa.string()),
        pa.field("source", pa.string()),
    ]
)


def findings_table(findings: Sequence[Finding]) -> pa.Table:
    """The findings as a table of :data:`FINDINGS_SCHEMA`."""
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
    return pa.Table.from_pylist(rows, schema=FINDINGS_SCHEMA)


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
