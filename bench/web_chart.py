"""Server time of the patient chart (issue 12, item 6) beside the start page.

Builds (or reuses) a synthetic store of ``--patients`` patients, serves it with
authentication on, waits for the web app's warm-up, then, in interleaved rounds (so
machine load affects them alike), opens the chart of ``--sample`` patients as the
administrator and as the site's clinician (their own patients), the patient search, and
the start page as the baseline. Reports per page the median and p90 of the request time
over loopback and of the chart's own ``Server-Timing`` parts (``fhir``: the
``$everything`` read as the viewer; ``build``; ``render``; ``total``), the median
resources per chart, and the ratio to the start page. The CDS and care-gap sections
(loaded by htmx after the chart) are timed once warm.

Usage::

    python bench/web_chart.py [--patients 80] [--sample 20] [--rounds 5] [--store DIR]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

from cmio.testing.web import WebSite, build_store

TARGET_MS = 300.0


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def _timing(answer: httpx.Response) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in re.findall(r"(\w+);dur=([\d.]+)", answer.headers.get("server-timing", ""))
    }


def _get(client: httpx.Client, url: str, cookies: dict[str, str]) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    answer = client.get(url, cookies=cookies)
    wall = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {answer.status_code}")
    return wall, answer


def _wait_for_warmup(site: WebSite, seconds: float = 600.0) -> None:
    """Let the web app's background warm-up (oversight summaries) finish first."""
    cache = site.app.web.ctx.cache
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and cache.peek("overview:warm") is None:
        time.sleep(1.0)


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=80)
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--store", type=Path, default=None, help="reuse/build the store here")
    args = parser.parse_args()
    folder = args.store or Path(tempfile.mkdtemp(prefix="web-chart-"))
    database = folder / "cmio.db"
    started = time.perf_counter()
    url = f"sqlite:///{database}" if database.exists() else build_store(folder, args.patients)
    print(f"store {url} ready in {time.perf_counter() - started:.0f} s")
    with tempfile.TemporaryDirectory() as keys, WebSite.start(url, Path(keys)) as site:
        _wait_for_warmup(site)
        admin = site.session_cookies("administrator")
        clinician = site.session_cookies("clinician")
        walls: dict[str, list[float]] = defaultdict(list)
        parts: dict[str, list[float]] = defaultdict(list)
        counts: list[int] = []
        with httpx.Client(base_url=site.url, timeout=300) as client:
            everyone: list[str] = []
            for page in range(1, 100):
                _, listing = _get(client, f"/patients?page={page}", admin)
                ids = re.findall(r'href="/patients/([^"/?]+)"', listing.text)
                if not ids or len(everyone) >= args.sample:
                    break
                everyone += [p for p in dict.fromkeys(ids) if p not in everyone]
            _, mine = _get(client, "/patients", clinician)
            own = list(dict.fromkeys(re.findall(r'href="/patients/([^"/?]+)"', mine.text)))
            chosen = everyone[: args.sample]
            own = own[: args.sample]
            for pid in chosen[:1]:  # warm: the CDS and care-gap sections compute once
                for part in ("cds", "gaps"):
                    wall, _ = _get(client, f"/patients/{pid}/{part}", admin)
                    print(f"first /patients/{{id}}/{part}: {wall:.0f} ms")
            for _ in range(args.rounds):
                for index, pid in enumerate(chosen):
                    wall, answer = _get(client, f"/patients/{pid}", admin)
                    walls["chart (administrator)"].append(wall)
                    for key, value in _timing(answer).items():
                        parts[key].append(value)
                    found = re.search(r"Read ([\d,]+) resources", answer.text)
                    counts.append(int(found.group(1).replace(",", "")) if found else 0)
                    if own:
                        wall, _ = _get(client, f"/patients/{own[index % len(own)]}", clinician)
                        walls["chart (clinician, own patient)"].append(wall)
                    wall, _ = _get(client, "/patients", clinician)
                    walls["/patients (clinician)"].append(wall)
                    wall, _ = _get(client, f"/patients/{pid}/cds", admin)
                    walls["CDS cards (warm)"].append(wall)
                    wall, _ = _get(client, f"/patients/{pid}/gaps", admin)
                    walls["care gaps (warm)"].append(wall)
                    wall, _ = _get(client, "/", admin)
                    walls["start page (baseline)"].append(wall)
        base = statistics.median(walls["start page (baseline)"])
        print(
            f"\n{len(chosen)} patients x {args.rounds} rounds; median {statistics.median(counts):.0f} resources per chart\n"
        )
        print("| page | median ms | p90 ms | x start page |")
        print("|---|---:|---:|---:|")
        for name, values in walls.items():
            median = statistics.median(values)
            print(f"| {name} | {median:.1f} | {_p90(values):.1f} | {median / base:.2f} |")
        print("\nchart Server-Timing parts (administrator):\n")
        print("| part | median ms | p90 ms |")
        print("|---|---:|---:|")
        for key in ("fhir", "build", "render", "total"):
            if parts[key]:
                print(f"| {key} | {statistics.median(parts[key]):.1f} | {_p90(parts[key]):.1f} |")
        total = statistics.median(parts["total"]) if parts["total"] else float("nan")
        verdict = "meets" if total < TARGET_MS else "misses"
        print(f"\nchart server time median {total:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()
