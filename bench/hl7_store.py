"""The HL7 v2 engine's store path alone: mapped messages through ``RouterSink.apply``.

Run: ``python -m bench.hl7_store [--messages 640] [--batch 64] [--kind ORU] [--profile]
[--no-shortcuts]``

Maps ``--messages`` messages (``bench.hl7``'s ORU^R01 with 10 OBX, or ADT^A08) for
``--patients`` patients, then applies them to a fresh SQLite FHIR store (validation off)
in batches of ``--batch`` as the processor does (one commit per batch, a savepoint per
message, the marker Provenance in each Bundle) and reports the time per message, first
pass (patients new) and second pass (the same patients again: updates). With
``--profile`` the second pass runs under cProfile and the top functions are printed
(cumulative time). ``--no-shortcuts`` applies every entry as mapped (the identifier
conditionals searched each time, unchanged resources rewritten): the code before them.
``--split`` reports the first pass's CPU time per message (this thread's, so other
processes on a loaded machine do not count) and the share of its stages: the engine's own
(parse, mapping, marker), the sink's patient/visit matching, conditional searches,
reference rewriting, search-index extraction, index-row inserts, other statements, commits,
validation; the rest is the router, the Bundle's handling and the sink. ``--ahead`` does
what the engine's preparation worker does (``RouterSink.ahead_spec``: each entry's final
resource and index rows, the identifiers resolved so far) before the timed apply, and
counts the pickled hand-over's loading in the writer's CPU: the writer's share alone.
The garbage collector is set as in the engine's process (``settle_heap``, when the tree has
it) unless ``--default-gc``.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pickle
import pstats
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.hl7 import adt, oru

import cmio.interfaces.hl7v2.engine.runtime as runtime
from cmio.api.app import build_env
from cmio.api.env import Settings
from cmio.api.hl7 import RouterSink
from cmio.api.router import FhirRouter
from cmio.interfaces.hl7v2.engine.destinations import (
    SinkItem,
    marker_id,
    marker_resource,
    with_marker,
)
from cmio.interfaces.hl7v2.mapping import MappingOptions, map_message
from cmio.interfaces.hl7v2.parser import parse


def items(
    kind: str, count: int, patients: int, tag: str, spent: dict[str, float] | None = None
) -> list[SinkItem]:
    """Mapped messages as the processor hands them to the sink (``spent``: CPU by step)."""
    make = oru if kind == "ORU" else adt
    raws = [make(f"{tag}{i}", i % patients) for i in range(count)]
    clock = [time.thread_time()]

    def lap(label: str) -> None:
        now = time.thread_time()
        if spent is not None:
            spent[label] = spent.get(label, 0.0) + now - clock[0]
        clock[0] = now

    out = []
    options = MappingOptions()
    for i, raw in enumerate(raws):
        lap("")
        message = parse(raw)
        lap("engine: parse")
        mapped = map_message(message, options)
        lap("engine: v2-to-FHIR mapping")
        marker = marker_resource(mapped.bundle, marker_id("bench", "LAB|HOSP", f"{tag}{i}"),
                                 channel="bench", sender="LAB|HOSP", control_id=f"{tag}{i}",
                                 recorded="2024-01-01T12:00:00Z")  # fmt: skip
        out.append(SinkItem(with_marker(mapped.bundle, marker)))
        lap("engine: marker Provenance")
    if spent is not None:
        spent.pop("", None)
    return out


def split_stages() -> dict[str, float]:
    """Wrap the store's stages with CPU-time counters (this bench's process only)."""
    import functools

    import cmio.api.ops.bundle as bundle
    import cmio.api.ops.common as common
    from cmio.indexing.extract import SearchIndexer
    from cmio.store.sqlite import SqliteTransaction

    spent: dict[str, float] = {}

    def wrap(owner: Any, name: str, label: str) -> None:
        inner = getattr(owner, name)

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.thread_time() - started

        setattr(owner, name, timed)

    wrap(RouterSink, "_shortcut", "patient/visit matching (sink: remembered ids, index probe)")
    wrap(bundle, "match_conditional", "conditional matching in the store (searches)")
    wrap(bundle, "rewrite_references", "reference rewriting (urn:uuid -> Type/id)")
    wrap(SearchIndexer, "table_rows", "index extraction")
    wrap(SqliteTransaction, "_executemany", "index-row inserts")
    wrap(SqliteTransaction, "_execute", "other statements")
    wrap(SqliteTransaction, "__exit__", "commit / release")
    wrap(common, "validate_resource", "structural validation")
    bundle.validate_resource = common.validate_resource  # type: ignore[attr-defined]
    return spent


def ahead(
    sink: RouterSink, todo: list[SinkItem], spent: dict[str, float] | None = None
) -> list[SinkItem] | bytes:
    """``todo`` with the worker's work ahead, pickled as the worker hands it over."""
    spec = sink.ahead_spec()
    assert spec is not None
    build = spec.build()
    assert build is not None
    known = dict(sink.learned_ids(0)[1])
    started = time.thread_time()
    done = [dataclasses.replace(i, bundle={}, ahead=build.encode(i.bundle, known)) for i in todo]
    if spent is not None:
        spent["worker: final resources and index rows ahead"] = time.thread_time() - started
    return pickle.dumps(done)


def run(sink: RouterSink, todo: list[SinkItem] | bytes, batch: int) -> float:
    """Seconds per message (a pickled list is loaded first, in the timing)."""
    started = time.perf_counter()
    if isinstance(todo, bytes):  # as the engine receives them from its worker
        spec = sink.ahead_spec()
        assert spec is not None
        todo = [
            dataclasses.replace(i, bundle=b, ahead=a)
            for i in pickle.loads(todo)
            for b, a in [spec.decode(i.ahead)]
        ]
    for start in range(0, len(todo), batch):
        outcomes = sink.apply(todo[start : start + batch])
        bad = [o for o in outcomes if o.status != 200]
        assert not bad, bad[0].detail
    return (time.perf_counter() - started) / len(todo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=640)
    parser.add_argument("--patients", type=int, default=640)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--kind", choices=("ORU", "ADT"), default="ORU")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-shortcuts", action="store_true", help="every entry as mapped")
    parser.add_argument("--split", action="store_true", help="CPU per message by stage")
    parser.add_argument("--ahead", action="store_true", help="the worker's share done before")
    parser.add_argument(
        "--default-gc", action="store_true", help="CPython's GC settings, not the engine's"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cmio-hl7-store-"))
    env = build_env(f"sqlite:///{tmp / 'store.db'}", Settings(validation="off",
                                                            terminology_db=None))  # fmt: skip
    sink = RouterSink(FhirRouter(env), shortcuts=not args.no_shortcuts)
    try:
        engine: dict[str, float] = {}
        first: list[SinkItem] | bytes = items(args.kind, args.messages, args.patients, "A", engine)
        second: list[SinkItem] | bytes = items(args.kind, args.messages, args.patients, "B")
        count = args.messages
        if args.ahead:
            first = ahead(sink, list(first), engine)
        if args.split:
            run(sink, items(args.kind, 8, 8, "W"), args.batch)  # warm-up
        settle = getattr(runtime, "settle_heap", None)  # as the engine's process (old trees: none)
        if settle is not None and not args.default_gc:
            settle()
        if args.split:
            spent = split_stages()
            cpu = time.thread_time()
        new = run(sink, first, args.batch)
        if args.split:
            applied = (time.thread_time() - cpu) * 1000 / count
            own = sum(engine.values()) * 1000 / count
            total = applied + own
            where = "worker process" if args.ahead else "engine"
            print(f"{args.kind}, batches of {args.batch}, first pass: {total:.2f} ms CPU per"
                  f" message: {where} {own:.2f} ms, store apply (router, store, commit)"
                  f" {applied:.2f} ms")  # fmt: skip
            for label, seconds in [*engine.items(), *spent.items()]:
                ms = seconds * 1000 / count
                print(f"  {label}: {ms:.2f} ms ({100 * ms / total:.0f}%)")
            rest = applied - sum(spent.values()) * 1000 / count
            print(f"  the rest of the store apply (router, Bundle handling, sink, JSON):"
                  f" {rest:.2f} ms ({100 * rest / total:.0f}%)")  # fmt: skip
        if args.ahead:
            second = ahead(sink, list(second))
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
        again = run(sink, second, args.batch)
        if args.profile:
            profile.disable()
            pstats.Stats(profile).sort_stats(
                os.environ.get("CMIO_BENCH_SORT", "cumulative")
            ).print_stats(45)
        print(f"{args.kind}, batches of {args.batch}: {new * 1000:.2f} ms per message (new"
              f" patients), {again * 1000:.2f} ms (known patients, updates);"
              f" {sink.ahead_used} of {2 * count} with work ahead")  # fmt: skip
    finally:
        env.repository.close()
        shutil.rmtree(tmp, ignore_errors=True)  # (the store: ~50 MB)


if __name__ == "__main__":
    main()
