"""Baseline for the HTTP benchmark: a minimal ASGI app that reads one SQLite row by key.

It does what a FHIR read must do at the very least (parse the path, look a key
up, send the bytes), so the ratio cmio/baseline shows what the FHIR layers cost.
Run: ``uvicorn --factory bench.baseline_app:make_app`` with BASELINE_DB set.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]


def make_app() -> Callable[[Scope, Any, Any], Awaitable[None]]:
    """Create the baseline app over the database in ``$BASELINE_DB``."""
    conn = sqlite3.connect(os.environ["BASELINE_DB"], check_same_thread=False)

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        key = scope["path"].rsplit("/", 1)[-1]
        row = conn.execute("SELECT data FROM kv WHERE id = ?", (key,)).fetchone()
        body = row[0] if row else b"{}"
        await send(
            {
                "type": "http.response.start",
                "status": 200 if row else 404,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def prepare(path: str, rows: list[tuple[str, bytes]]) -> None:
    """Create the baseline table with the given rows."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS kv (id TEXT PRIMARY KEY, data BLOB)")
    conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", rows)
    conn.commit()
    conn.close()
