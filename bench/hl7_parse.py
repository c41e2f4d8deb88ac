"""Parse speed of cmio's HL7 v2 parser against python-hl7 on ORU^R01 (10 OBX each).

Both parsers get the same messages (bytes off the wire) and read the same values: MSH-10,
MSH-9, PID-3.1, PID-5.1 and OBX-3.1/OBX-5/OBX-6.1 of every OBX, the work an interface engine
does per message. Runs alternate between the two (``--rounds``) on one core; the medians
and the ratio are printed. A last row maps each message to a FHIR transaction Bundle
(:func:`cmio.interfaces.hl7v2.mapping.map_message`; no python-hl7 counterpart).

Run: ``python -m bench.hl7_parse [--messages 2000] [--rounds 5]``; with ``--store N`` it
instead writes N mapped ORU^R01 Bundles through the FHIR router into SQLite, ids derived
from identifiers against conditional updates (as a module: run as a
script, ``bench/hl7.py`` -- the engine benchmark -- would shadow the python-hl7 package).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import hl7  # type: ignore[import-untyped]

from cmio.interfaces.hl7v2 import parse
from cmio.interfaces.hl7v2.mapping import map_message


def oru(i: int, rng: random.Random) -> bytes:
    """One ORU^R01 v2.5.1 message with 10 OBX, some escapes and repetitions."""
    obx = []
    for n in range(1, 11):
        value = f"{rng.uniform(1, 300):.1f}"
        obx.append(
            f"OBX|{n}|NM|{2000 + n}-{n % 10}^Analyte {n} \\T\\ co^LN^L{n}^Local {n}^L||{value}|"
            f"mg/dL^mg/dL^UCUM|10-{100 + n}|{rng.choice(['N', 'H', 'L', ''])}|||F|||"
            f"20250301{n:02d}3000-0500|LAB^Main lab^L|||||20250301{n:02d}4500-0500"
        )
    segs = [
        f"MSH|^~\\&|LIS|MAIN^2.16.840.1.113883.3.1^ISO|EHR|HOSP|20250301120000-0500||ORU^R01^ORU_R01|"
        f"CTRL{i:08d}|P|2.5.1|||AL|NE|||||",
        f"PID|1||MRN{i:07d}^^^HOSP^MR~{900000000 + i}^^^SSA^SS||Doe^Jane^Q^^Dr^^L~Roe^Jane^^^^^M||"
        f"19{50 + i % 50:02d}0{1 + i % 9}1{i % 9}|F|||12 Main St^Apt 4^Springfield^IL^62701^USA^H||"
        f"^PRN^PH^^1^217^5551234~^NET^Internet^jane@example.org|||M||ACC{i:06d}",
        f"PV1|1|O|CLINIC^101^1^MAIN||||1234^Welby^Marcus^^^Dr|||||||||||V{i:07d}",
        f"ORC|RE|PL{i:06d}^EHR|FI{i:06d}^LIS||CM",
        f"OBR|1|PL{i:06d}^EHR|FI{i:06d}^LIS|24323-8^Comprehensive metabolic panel^LN|||"
        f"202503010830-0500|||||||||1234^Welby^Marcus||||||202503011200-0500|||F",
        *obx,
        "SPM|1|SP1^LIS||119297000^Blood specimen^SCT|||||||||||||202503010830-0500",
    ]
    return ("\r".join(segs) + "\r").encode()


def read_cmio(data: bytes) -> int:
    """Parse with cmio and read the engine's values."""
    m = parse(data)
    n = len(m.control_id) + len(m.message_type.code)
    pid = m.segment("PID")
    assert pid is not None
    n += len(pid.get(3)) + len(pid.get(5))
    for obx in m.segments("OBX"):
        n += len(obx.get(3)) + len(obx.get(5)) + len(obx.get(6))
    return n


def read_python_hl7(data: bytes) -> int:
    """Parse with python-hl7 and read the same values."""
    m = hl7.parse(data.decode("utf-8"))
    n = len(str(m.segment("MSH")[10])) + len(str(m.segment("MSH")[9][0][0]))
    pid = m.segment("PID")
    n += len(str(pid[3][0][0])) + len(str(pid[5][0][0]))
    for obx in m.segments("OBX"):
        n += len(str(obx[3][0][0])) + len(str(obx[5])) + len(str(obx[6][0][0]))
    return n


def parse_only_cmio(data: bytes) -> int:
    """Parse only (lazy: the structure is checked, fields are split on read)."""
    return len(parse(data))


def parse_only_python_hl7(data: bytes) -> int:
    """Parse only (python-hl7 splits everything up front)."""
    return len(hl7.parse(data.decode("utf-8")))


def map_cmio(data: bytes) -> int:
    """Parse and map to a FHIR transaction Bundle (no python-hl7 equivalent)."""
    return len(map_message(parse(data)).bundle["entry"])


def rate(fn: Callable[[bytes], int], messages: list[bytes]) -> tuple[float, float]:
    """Messages per second (wall clock) and CPU microseconds per message, for one pass."""
    start, cpu = time.perf_counter(), time.process_time()
    for data in messages:
        fn(data)
    wall = time.perf_counter() - start
    return len(messages) / wall, (time.process_time() - cpu) / len(messages) * 1e6


def store_rates(count: int, rounds: int) -> None:
    """ORU^R01 Bundles through the FHIR router into SQLite: ids derived from identifiers
    (``PUT Type/id``) against conditional updates (``PUT Type?identifier=``), alternating."""
    import tempfile

    import orjson

    from cmio.api.app import build_env
    from cmio.api.env import Settings
    from cmio.api.http import FhirRequest
    from cmio.api.router import FhirRouter
    from cmio.interfaces.hl7v2.mapping import MappingOptions

    rng = random.Random(2)
    messages = [parse(oru(i, rng)) for i in range(count + 1)]
    headers = {"content-type": "application/fhir+json"}
    results: dict[str, list[tuple[float, float]]] = {"derived ids": [], "conditional": []}
    for _ in range(rounds):
        for label in results:
            options = MappingOptions(deterministic_ids=label == "derived ids")
            bodies = [orjson.dumps(map_message(m, options).bundle) for m in messages]
            with tempfile.TemporaryDirectory() as tmp:
                env = build_env(f"sqlite:///{tmp}/bench.db", Settings(validation="off"))
                router = FhirRouter(env)
                router.handle(FhirRequest("POST", "", [], dict(headers), bodies[0]))
                wall, cpu = time.perf_counter(), time.process_time()
                for body in bodies[1:]:
                    response = router.handle(FhirRequest("POST", "", [], dict(headers), body))
                    assert response.status == 200, response.body[:300]
                results[label].append(
                    (
                        (time.perf_counter() - wall) / count * 1e3,
                        (time.process_time() - cpu) / count * 1e3,
                    )
                )
                env.repository.close()
    print(f"store (SQLite, validation off), {count} ORU^R01 per round, {rounds} rounds")
    print(f"{'writes':<12} {'wall ms/msg':>12} {'CPU ms/msg':>11}")
    for label, runs in results.items():
        wall_ms = statistics.median(w for w, _ in runs)
        cpu_ms = statistics.median(c for _, c in runs)
        print(f"{label:<12} {wall_ms:>12.1f} {cpu_ms:>11.1f}")


def main() -> None:
    """Run the comparison and print medians and ratios."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--store", type=int, default=0, help="also write N ORU^R01 to a store")
    args = ap.parse_args()
    if args.store:
        store_rates(args.store, args.rounds)
        return
    rng = random.Random(1)
    messages = [oru(i, rng) for i in range(args.messages)]
    assert read_cmio(messages[0]) == read_python_hl7(messages[0])
    cases = {
        "parse + read": (read_cmio, read_python_hl7),
        "parse only": (parse_only_cmio, parse_only_python_hl7),
    }
    size = statistics.median(len(m) for m in messages)
    print(
        f"{args.messages} ORU^R01 messages (10 OBX, median {size:.0f} bytes), {args.rounds} rounds"
    )
    print(
        f"{'case':<14} {'cmio msg/s':>11} {'(CPU us)':>9} {'python-hl7 msg/s':>17}"
        f" {'(CPU us)':>9} {'ratio':>6}"
    )
    for label, (ours, theirs) in cases.items():
        a: list[tuple[float, float]] = []
        b: list[tuple[float, float]] = []
        for _ in range(args.rounds):
            a.append(rate(ours, messages))
            b.append(rate(theirs, messages))
        ma, ca = statistics.median(x for x, _ in a), statistics.median(c for _, c in a)
        mb, cb = statistics.median(x for x, _ in b), statistics.median(c for _, c in b)
        print(f"{label:<14} {ma:>11,.0f} {ca:>9,.1f} {mb:>17,.0f} {cb:>9,.1f} {ma / mb:>5.1f}x")
    runs = [rate(map_cmio, messages) for _ in range(args.rounds)]
    mm, cm = statistics.median(x for x, _ in runs), statistics.median(c for _, c in runs)
    print(f"{'parse + map':<14} {mm:>11,.0f} {cm:>9,.1f} {'-':>17} {'-':>9}")


if __name__ == "__main__":
    main()
