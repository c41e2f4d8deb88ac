"""Where a search's CPU goes, per query of the HTTP bench's mix, through the router.

Runs each of ``bench/search.py``'s typical queries (values picked from the store, sent as
the HTTP bench sends them: no ``_total``, ``_include`` as a parameter) ``--repeat`` times
through :class:`cmio.api.router.FhirRouter` (no sockets, no ASGI layers) and prints the
median process CPU per search split into: the SQLite statements (page, count, includes'
reads), compiling (statement shape and bind values, :mod:`cmio.search.shapes`), parsing
the parameters, the Bundle bytes, and the rest (routing, links, result objects). The
whole app's CPU per request in process is ``bench/search_asgi.py``'s figure; the
difference is the ASGI layers and the executor hand-off. See
https://hl7.org/fhir/R4/search.html.

    python bench/search_split.py --db /tmp/s7/store1m.db --repeat 30

Run it against another checkout with ``PYTHONPATH=<checkout>/src`` (the store is only
read).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cmio.api.ops.search as api_search
import cmio.search.compiler as search_compiler
from cmio.api.env import Env
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.indexing import SearchIndexer
from cmio.model import load_model
from cmio.store.sqlite import SqliteRepository
from search import _pick, queries

PARTS = ("sqlite", "compile", "parse", "bundle")


def _timed(owner: Any, name: str, part: str, spent: dict[str, float]) -> None:
    """Wrap ``owner.name`` so that its process CPU is added to ``spent[part]``."""
    inner: Callable[..., Any] = getattr(owner, name)
    clock = time.process_time

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[part] += clock() - start

    setattr(owner, name, wrapper)


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    model = load_model()
    repo = SqliteRepository(Path(args.db), indexer=SearchIndexer(model))
    router = FhirRouter(Env(repo, model, lambda r: []))
    spent: dict[str, float] = defaultdict(float)
    with repo.read_transaction() as tx:  # the backend's transaction class
        backend = type(tx)
    _timed(backend, "_fetchall", "sqlite", spent)
    _timed(backend, "_fetchone", "sqlite", spent)
    _timed(search_compiler.SearchCompiler, "compile", "compile", spent)
    _timed(api_search, "parse_search", "parse", spent)
    _timed(api_search, "searchset_body", "bundle", spent)
    columns = ("total", *PARTS, "rest")
    print(f"{'query (CPU ms per search, median)':48}" + "".join(f"{c:>9}" for c in columns))
    rows: list[dict[str, float]] = []
    for label, rtype, params, incs in queries(_pick(repo)):
        query = list(params) + [("_include", f"{i.source}:{i.params[0]}") for i in incs]
        request = FhirRequest("GET", rtype, query)
        for _ in range(3):  # warm: shapes, statement cache, pages
            router.handle(request)
        samples: dict[str, list[float]] = defaultdict(list)
        for _ in range(args.repeat):
            spent.clear()
            start = time.process_time()
            response = router.handle(request)
            total = time.process_time() - start
            assert response.status == 200, response.body[:300]
            samples["total"].append(total)
            for part in PARTS:
                samples[part].append(spent[part])
            samples["rest"].append(total - sum(spent[p] for p in PARTS))
        row = {c: statistics.median(samples[c]) * 1000 for c in columns}
        rows.append(row)
        print(f"{label:48}" + "".join(f"{row[c]:9.3f}" for c in columns))
    means = {c: statistics.mean(r[c] for r in rows) for c in columns}
    print(f"{'mean of the queries':48}" + "".join(f"{means[c]:9.3f}" for c in columns))
    repo.close()


if __name__ == "__main__":
    main()
