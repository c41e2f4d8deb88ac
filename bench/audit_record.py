"""CPU cost of auditing one read: the request path and the writer's chain work, per read.

Reads one Patient N times through the in-process FHIR router (``FhirRouter.respond``) with
audit off and on, on one thread, timing CPU (``time.process_time``: less sensitive to
other processes than wall time on a shared machine), then times the audit writer's work
on the records those reads produced (``chain_rows``: serialization, if any, and the hash
link; the commit is left out: it is shared by a whole group). The overhead per read is
(on + chain) - off. Run the old code with ``PYTHONPATH=<old tree>/src`` to compare.

    python bench/audit_record.py [--reads 3000] [--rounds 5]
    python bench/audit_record.py --batch 5000   # an import batch's record, two ways
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from typing import Any

from cmio.api.app import build_env
from cmio.api.context import RequestContext
from cmio.api.env import Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.model import load_model
from cmio.security.audit.chain import chain_rows


def measure(url: str, model: Any, audit: bool, reads: int, rounds: int) -> tuple[float, float]:
    """Median CPU microseconds per read (request path) and per record (writer chain)."""
    env = build_env(url, Settings(validation="off", terminology_db=None, audit=audit), model)
    try:
        router = FhirRouter(env)
        created = router.handle(
            FhirRequest(
                "POST",
                "Patient",
                [],
                headers={"content-type": "application/fhir+json"},
                body=b'{"resourceType":"Patient"}',
            )
        )
        pid = json.loads(created.body)["id"]
        path, ctx = f"Patient/{pid}", RequestContext
        respond, chain = [], []
        for _ in range(rounds):
            requests = [
                FhirRequest("GET", path, [], headers={}, context=ctx(remote_addr="10.0.0.1"))
                for _ in range(reads)
            ]
            records = []
            start = time.process_time()
            for request in requests:
                _response, pending = router.respond(request)
                if pending is not None:
                    records.append(pending._event)
            middle = time.process_time()
            if records:
                chain_rows(None, records)
            end = time.process_time()
            respond.append((middle - start) / reads * 1e6)
            chain.append((end - middle) / reads * 1e6)
        return statistics.median(respond), statistics.median(chain)
    finally:
        if env.auditor is not None:
            env.auditor.close()
        env.repository.close()


def batch_record(size: int, rounds: int) -> None:
    """Milliseconds to serialize and hash an import batch's record (``size`` entities and
    one per 50 resources for patients): from nested dicts, and spliced from entity parts."""
    from cmio.security.audit import AuditFacts, build_event
    from cmio.security.audit.jobs import JobAudit, _batch_record

    source = JobAudit.for_command("import").source
    facts = AuditFacts("create", operation="import", source=source, id="x")
    refs = tuple(f"Observation/{uuid.uuid4()}/_history/1" for _ in range(size))
    patients = tuple(str(uuid.uuid4()) for _ in range(max(1, size // 50)))
    full = facts.evolve(patients=patients, resources=refs)
    for name, make in (
        ("nested dicts (build_event)", lambda: build_event(full)),
        ("spliced parts (JobAudit)", lambda: _batch_record(facts, patients, refs)),
    ):
        times = []
        for _ in range(rounds):
            start = time.process_time()
            chain_rows(None, [make()])
            times.append((time.process_time() - start) * 1000)
        print(f"{name:28s} {statistics.median(times):7.1f} ms per {size:,}-resource batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=0, help="time an import batch's record")
    args = parser.parse_args()
    if args.batch:
        batch_record(args.batch, args.rounds)
        return
    model = load_model()
    with tempfile.TemporaryDirectory() as tmp:
        off, _ = measure(f"sqlite:///{tmp}/{uuid.uuid4().hex}.db", model, False, args.reads, 1)
        off, _ = measure(
            f"sqlite:///{tmp}/{uuid.uuid4().hex}.db", model, False, args.reads, args.rounds
        )
        on, chain = measure(
            f"sqlite:///{tmp}/{uuid.uuid4().hex}.db", model, True, args.reads, args.rounds
        )
    overhead = on + chain - off
    print(
        f"CPU per read: audit off {off:.1f} us, audit on {on:.1f} us + writer chain {chain:.1f} us"
    )
    print(f"audit overhead per read {overhead:.1f} us; CPU-bound on/off {off / (on + chain):.2f}")


if __name__ == "__main__":
    main()
