"""Concurrency: If-Match read-modify-write from many threads loses no update."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import orjson

from cmio.store import Repository, SearchQuery, VersionConflictError

THREADS = 32
UPDATES_PER_THREAD = 3


def test_if_match_retries_lose_no_update(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.create({"resourceType": "Patient", "multipleBirthInteger": 0}, id="counter")
    start = threading.Barrier(THREADS)

    def worker() -> tuple[int, int]:
        start.wait()
        done = conflicts = 0
        while done < UPDATES_PER_THREAD:
            current = repo.read("Patient", "counter")
            resource = orjson.loads(current.data or b"")
            resource["multipleBirthInteger"] += 1
            try:
                with repo.transaction() as tx:
                    tx.update(resource, if_match=current.version)
            except VersionConflictError:
                conflicts += 1
                continue
            done += 1
        return done, conflicts

    with ThreadPoolExecutor(THREADS) as pool:
        results = [f.result() for f in [pool.submit(worker) for _ in range(THREADS)]]
    successes = sum(done for done, _ in results)
    assert successes == THREADS * UPDATES_PER_THREAD
    final = repo.read("Patient", "counter")
    assert final.version == 1 + successes
    assert orjson.loads(final.data or b"")["multipleBirthInteger"] == successes
    with repo.read_transaction() as tx:
        assert tx.history("Patient", "counter").total == 1 + successes


def test_many_threads_creating_at_once(repo: Repository) -> None:
    threads, per_thread = 16, 25
    start = threading.Barrier(threads)

    def worker(n: int) -> list[str]:
        start.wait()
        out = []
        for i in range(per_thread):
            with repo.transaction() as tx:
                out.append(tx.create({"resourceType": "Patient", "id": "ignored"}).id)
            if i % 5 == 0:
                repo.read("Patient", out[-1])
        with repo.transaction() as tx:
            out.append(tx.update({"resourceType": "Patient", "id": f"t{n}"})[0].id)
        return out

    with ThreadPoolExecutor(threads) as pool:
        created = [i for f in [pool.submit(worker, n) for n in range(threads)] for i in f.result()]
    assert len(set(created)) == threads * (per_thread + 1)
    assert repo.search(SearchQuery("Patient", count=0)).total == threads * (per_thread + 1)
    with repo.read_transaction() as tx:
        assert tx.history("Patient", count=0).total == threads * (per_thread + 1)
