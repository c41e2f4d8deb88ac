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
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from bench.hl7 import adt, oru

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


def items(kind: str, count: int, patients: int, tag: str) -> list[SinkItem]:
    """Mapped messages as the processor hands them to the sink."""
    make = oru if kind == "ORU" else adt
    out = []
    for i in range(count):
        message = parse(make(f"{tag}{i}", i % patients))
        mapped = map_message(message, MappingOptions())
        marker = marker_resource(mapped.bundle, marker_id("bench", "LAB|HOSP", f"{tag}{i}"),
                                 channel="bench", sender="LAB|HOSP", control_id=f"{tag}{i}",
                                 recorded="2024-01-01T12:00:00Z")  # fmt: skip
        out.append(SinkItem(with_marker(mapped.bundle, marker)))
    return out


def run(sink: RouterSink, todo: list[SinkItem], batch: int) -> float:
    """Seconds per message."""
    started = time.perf_counter()
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
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cmio-hl7-store-"))
    env = build_env(f"sqlite:///{tmp / 'store.db'}", Settings(validation="off",
                                                            terminology_db=None))  # fmt: skip
    sink = RouterSink(FhirRouter(env), shortcuts=not args.no_shortcuts)
    try:
        first = items(args.kind, args.messages, args.patients, "A")
        second = items(args.kind, args.messages, args.patients, "B")
        new = run(sink, first, args.batch)
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
        again = run(sink, second, args.batch)
        if args.profile:
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
        print(f"{args.kind}, batches of {args.batch}: {new * 1000:.2f} ms per message (new"
              f" patients), {again * 1000:.2f} ms (known patients, updates)")  # fmt: skip
    finally:
        env.repository.close()


if __name__ == "__main__":
    main()
