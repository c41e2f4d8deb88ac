"""Optimistic locking under contention: 32 concurrent If-Match writers lose no update."""

from __future__ import annotations

import threading

import httpx

from tests.api.conftest import ServerThread
from tests.api.test_crud import JSON, create, patient


def test_concurrent_if_match_updates_lose_nothing(
    client: httpx.Client, server: ServerThread
) -> None:
    created = create(
        client, patient(extension=[{"url": "urn:test:counter", "valueInteger": 0}])
    ).json()
    rid = created["id"]
    # 32 concurrent writers (issue 2, item 9), one increment each: every success makes the
    # others retry, so ~writers**2 / 2 requests
    writers, increments = 32, 1
    errors: list[str] = []
    conflicts: list[int] = []

    def writer() -> None:
        with httpx.Client(base_url=server.base, timeout=60) as http:
            done = 0
            while done < increments:
                current = http.get(f"/Patient/{rid}")
                body = current.json()
                body["extension"][0]["valueInteger"] += 1
                response = http.put(
                    f"/Patient/{rid}",
                    json=body,
                    headers={**JSON, "if-match": current.headers["etag"]},
                )
                if response.status_code == 200:
                    done += 1
                elif response.status_code == 412:
                    conflicts.append(1)
                else:
                    errors.append(response.text)
                    return

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert conflicts, "the writers never raced (no 412)"
    final = client.get(f"/Patient/{rid}").json()
    assert final["extension"][0]["valueInteger"] == writers * increments
    assert final["meta"]["versionId"] == str(1 + writers * increments)
