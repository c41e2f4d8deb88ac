"""CPU seconds of building a view's PostgreSQL SQL (the Python side, no database).

Times ``ViewCompiler.value_sets``, ``compile``, ``render`` and ``postgres_sql`` on one
conformance view (default: ``repeat.json`` "combined with unionAll", the heaviest).
Run the old code with ``PYTHONPATH=<old tree>/src`` to compare::

    python bench/views_pg_compile.py [FILE TITLE]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from sqlglot import exp

from cmio.views import ViewCompiler, parse_view
from cmio.views.dialects.postgres import PostgresDialect
from cmio.views.postgres_engine import postgres_sql

SUITE = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "sql-on-fhir-v2"


def main() -> None:
    """Print the CPU seconds of each step."""
    name, title = (sys.argv[1], sys.argv[2]) if len(sys.argv) > 2 else ("repeat.json", "")
    title = title or "combined with unionAll"
    data = json.loads((SUITE / name).read_text(encoding="utf-8"))
    view = parse_view(next(t for t in data["tests"] if t["title"] == title)["view"])
    compiler = ViewCompiler(PostgresDialect())
    tree = compiler.compile(view, exp.to_table("x"))
    steps = {
        "value_sets": lambda: compiler.value_sets(view),
        "compile": lambda: compiler.compile(view, exp.to_table("x")),
        "render": lambda: compiler.dialect.render(tree),
        "postgres_sql": lambda: postgres_sql(view, relation="SELECT resource FROM x"),
    }
    for step, fn in steps.items():
        start = time.process_time()
        fn()
        print(f"{step:14s} {time.process_time() - start:8.3f} s CPU", flush=True)


if __name__ == "__main__":
    main()
