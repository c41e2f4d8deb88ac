"""Cost of the full-text index rows (``_text``/``_content``) and of all index rows.

Times :func:`cmio.indexing.text.text_rows` and ``SearchIndexer.table_rows`` over the
Synthea bulk NDJSON and bundles in ``../shared/data/synthea-r4``; run it against
another checkout with ``PYTHONPATH=<checkout>/src`` to compare.

    python bench/text_rows.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cmio.indexing.extract import SearchIndexer
from cmio.indexing.text import text_rows
from cmio.model import load_model

SYNTHEA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "synthea-r4"


def load() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted((SYNTHEA / "bulk-ndjson-10-patients-partial").glob("[A-Z]*.ndjson")):
        out += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for path in sorted((SYNTHEA / "bundles").glob("*.json"))[:15]:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        out += [entry["resource"] for entry in bundle.get("entry", [])]
    return out


def per_resource_us(fn: Callable[[dict[str, Any]], object], resources: list[Any]) -> float:
    start = time.perf_counter()
    for resource in resources:
        fn(resource)
    return (time.perf_counter() - start) / len(resources) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    resources = load()
    indexer = SearchIndexer(load_model())
    for resource in resources[:500]:
        indexer.table_rows(resource)
    text, table = [], []
    for _ in range(args.runs):
        text.append(per_resource_us(text_rows, resources))
        table.append(per_resource_us(indexer.table_rows, resources))
    print(
        json.dumps(
            {
                "resources": len(resources),
                "text_rows_us": round(statistics.median(text), 1),
                "table_rows_us": round(statistics.median(table), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
