"""``cmio doctor --journal``: the HL7 v2 engine's journal agrees with the store.

Checks (``journal`` findings):

* SQLite ``PRAGMA integrity_check`` of the journal file;
* one accepted row per ``(channel, sender, control id)`` (a resent message is a
  ``duplicate`` row pointing at an existing accepted one);
* every state is one the engine writes;
* every ``processed`` message's resources (the ``result`` the engine recorded) are
  in the store at the recorded version: nothing acknowledged and applied was lost.

See https://www.sqlite.org/pragma.html#pragma_integrity_check and
https://v2plus.hl7.org/2021Jan/message-control-id.html for control ids.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from cmio.store import Repository
from cmio.store.base import GoneError, StoreError

if TYPE_CHECKING:
    from cmio.admin.doctor import DoctorReport

__all__ = ["STATES", "check_journal"]

#: the states the engine writes (journal.py, processor.py)
STATES = frozenset(
    {"received", "retrying", "processed", "filtered", "error", "rejected", "duplicate"}
)


def check_journal(path: str | Path, repo: Repository, report: DoctorReport) -> None:
    """Add ``journal`` findings for the journal at ``path`` checked against ``repo``."""
    path = Path(path)
    if not path.is_file():
        report.add("journal", str(path), "no journal file")
        return
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        for (problem,) in conn.execute("PRAGMA integrity_check"):
            if problem != "ok":
                report.add("journal", "database", str(problem))
        for channel, sender, control, n in conn.execute(
            "SELECT channel, sender, control_id, count(*) FROM messages"
            " WHERE ack_code = 'AA' AND dup_of IS NULL GROUP BY 1, 2, 3 HAVING count(*) > 1"
        ):
            report.add("journal", f"{channel}/{sender}/{control}", f"accepted {n} times")
        for row_id, dup_of in conn.execute(
            "SELECT d.id, d.dup_of FROM messages d WHERE d.dup_of IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM messages m WHERE m.id = d.dup_of)"
        ):
            report.add("journal", f"message {row_id}", f"duplicate of missing message {dup_of}")
        for state, n in conn.execute("SELECT state, count(*) FROM messages GROUP BY state"):
            if state not in STATES:
                report.add("journal", f"state {state}", f"{n} messages in an unknown state")
        processed = conn.execute(
            "SELECT id, control_id, result FROM messages WHERE state = 'processed'"
        ).fetchall()
        total = int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
    for row_id, control, result in processed:
        for location in _locations(result):
            problem = _missing(repo, location)
            if problem is not None:
                report.add("journal", f"message {row_id} ({control})", f"{location}: {problem}")
    report.checked["journal"] = total


def _locations(result: str | None) -> list[str]:
    """The resource locations a processed message's ``result`` lists."""
    try:
        data = orjson.loads(result or "{}")
    except orjson.JSONDecodeError:
        return ["(result is not JSON)"]
    found = data.get("resources", []) if isinstance(data, dict) else []
    return [str(loc) for loc in found]


def _missing(repo: Repository, location: str) -> str | None:
    """Why ``Type/id[/_history/n]`` is not in the store at that version or later, or None."""
    parts = location.split("/")
    if len(parts) not in (2, 4) or (len(parts) == 4 and parts[2] != "_history"):
        return "not a resource location"
    try:
        if len(parts) == 4:
            repo.vread(parts[0], parts[1], int(parts[3]))
        else:
            repo.read(parts[0], parts[1])
    except ValueError:
        return "not a resource location"
    except GoneError:
        return None  # stored, and deleted by a later message
    except StoreError as exc:
        return f"not in the store ({type(exc).__name__})"
    return None
