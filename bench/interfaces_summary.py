"""Time the interface monitor's journal reading (:func:`cmio.oversight.interfaces.
interfaces_summary`) over a synthetic HL7 journal.

Usage: ``python bench/interfaces_summary.py [--rows 200000] [--repeat 5]``. Rows are
spread over 30 days on three channels (one in 997 parked in the error queue); the live
monitor reads without the period history, the overview and report with it.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from cmio.interfaces.hl7v2.engine.journal import Journal
from cmio.oversight.interfaces import interfaces_summary
from cmio.oversight.period import ReportingPeriod


def fill(path: Path, rows: int, seed: int = 1) -> None:
    """Write ``rows`` journal rows (300-byte messages) straight into the journal file."""
    Journal(path).close()
    rng = random.Random(seed)
    now = time.time()
    values = []
    for i in range(rows):
        state = "error" if i % 997 == 0 else "processed"
        received = now - rng.random() * 30 * 86400
        values.append((("adt", "lab", "rad")[i % 3], f"S{i % 5}", f"C{i}",
                       ("ORU^R01", "ADT^A08")[i % 2], "2.5.1", received, b"x" * 300, "AA",
                       state, 1, "boom" if state == "error" else None, received + 0.05))  # fmt: skip
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO messages (channel, sender, control_id, message_type, version, received_at,"
        " raw, ack_code, state, attempts, error, processed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        values,
    )
    conn.commit()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    period = ReportingPeriod.year_of(date.today())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "journal.db"
        fill(path, args.rows)
        for history in (False, True):
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                interfaces_summary(None, period, path, error_limit=50, history=history)
                times.append(time.perf_counter() - started)
            print(f"rows {args.rows:,} history={history}: median {statistics.median(times):.3f} s,"
                  f" min {min(times):.3f} s over {args.repeat}")  # fmt: skip


if __name__ == "__main__":
    main()
