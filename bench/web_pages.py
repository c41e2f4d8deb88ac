"""Server time of every web page once its summaries are cached, beside the start page.

Builds (or reuses) a synthetic store of ``--patients`` patients, serves it with
authentication on, signs in as a role each page admits, opens every page once (cold:
the summaries are computed), then requests all pages in interleaved rounds so machine
load affects them alike. Reports per page: the cold time, the median and p90 of the
request time over loopback (the server's whole handling: routing, auth, data, render),
the median ``Server-Timing`` render time, and the ratio to the start page.

With ``--cold``, no server: the first computation of every oversight area for the
default period (as the overview's warm-up computes them, one after the other, sharing
work through :class:`cmio.oversight.shared.SharedWork` when the code has it), then the
steering report's previous period; seconds per area and in total.

Usage::

    python bench/web_pages.py [--patients 500] [--rounds 15] [--store DIR] [--cold]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from cmio.testing.web import WebSite, build_store

TARGET_MS = 300.0


def _role(roles: tuple[str, ...], users: dict[str, tuple[str, str]]) -> str:
    for role in ("executive", "clinician", "informaticist", "analyst", "administrator", *roles):
        if role in roles and role in users:
            return role
    raise LookupError(f"no user for {roles}")


def _timed(client: httpx.Client, url: str, cookies: dict[str, str]) -> tuple[float, float, int]:
    started = time.perf_counter()
    try:
        answer = client.get(url, cookies=cookies)
    except httpx.HTTPError:  # a page that breaks the connection: reported, not fatal
        return (time.perf_counter() - started) * 1000, float("nan"), 0
    wall = (time.perf_counter() - started) * 1000
    timing = answer.headers.get("server-timing", "")
    render = float(timing.split("dur=")[1]) if "dur=" in timing else float("nan")
    return wall, render, answer.status_code


def run(site: WebSite, rounds: int) -> list[dict[str, object]]:
    """Time every navigation page (and the start page) as a role allowed on it."""
    pages = [("/", "analyst")] + [
        (item.path, _role(item.roles, site.users)) for item in site.app.web.ctx.nav
    ]
    period = site.app.web.ctx.data_end().year  # the default period: the data's last year
    if "/reports" in {path for path, _ in pages}:  # the steering report, built then cached
        pages += [(f"/reports/steering.{kind}?period={period}", "executive") for kind in
                  ("html", "pdf")]  # fmt: skip
    cookies = {role: site.session_cookies(role) for role in {r for _, r in pages}}
    rows: dict[str, dict[str, object]] = {}
    with httpx.Client(base_url=site.url, timeout=1800) as client:
        for path, role in pages:  # cold: summaries computed (or awaited from the warm-up)
            wall, _, status = _timed(client, path, cookies[role])
            rows[path] = {"page": path, "role": role, "cold": wall, "status": status,
                          "wall": [], "render": []}  # fmt: skip
        for _ in range(rounds):
            for path, role in pages:
                wall, render, status = _timed(client, path, cookies[role])
                rows[path]["wall"].append(wall)  # type: ignore[attr-defined]
                rows[path]["render"].append(render)  # type: ignore[attr-defined]
                if status != 200:
                    rows[path]["status"] = status
    return list(rows.values())


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def report(rows: list[dict[str, object]]) -> str:
    """The results as a Markdown table."""
    base = statistics.median(rows[0]["wall"])  # type: ignore[arg-type]
    lines = [
        "| page | role | status | cold (ms) | median (ms) | p90 (ms) | render median (ms) "
        "| vs start page | < 300 ms |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        wall: list[float] = row["wall"]  # type: ignore[assignment]
        render: list[float] = row["render"]  # type: ignore[assignment]
        median = statistics.median(wall)
        lines.append(
            f"| `{row['page']}` | {row['role']} | {row['status']} | {row['cold']:,.0f} "
            f"| {median:.1f} | {_p90(wall):.1f} | {statistics.median(render):.1f} "
            f"| {median / base:.2f}x | {'yes' if median < TARGET_MS else 'NO'} |"
        )
    return "\n".join(lines)


def cold(url: str, period_text: str) -> list[tuple[str, float]]:
    """Seconds of each area's first computation (see the module docstring)."""
    from dataclasses import replace

    from cmio.api.app import build_env
    from cmio.api.env import Settings
    from cmio.oversight.areas import AREAS, AreaInputs, collect
    from cmio.oversight.period import ReportingPeriod
    from cmio.oversight.steering import gather

    env = build_env(url, Settings(validation="off", terminology_db=None))
    inputs = AreaInputs(env.repository, env.terminology, env.settings.hl7_journal)
    try:
        from cmio.oversight.shared import SharedWork

        inputs = replace(inputs, shared=SharedWork(env.repository, env.terminology))
    except ImportError:  # the code before shared work
        pass
    memo: dict[str, object] = {}

    def get(key: str, compute: object) -> object:
        if key not in memo:
            memo[key] = compute()  # type: ignore[operator]
        return memo[key]

    period = ReportingPeriod.parse(period_text)
    rows: list[tuple[str, float]] = []
    started = time.perf_counter()
    for area in AREAS:
        t = time.perf_counter()
        (result,) = collect(inputs, period, areas=[area], get=get)
        rows.append((f"{area.key} {period.label}", time.perf_counter() - t))
        if result.error:
            print(f"{area.key}: {result.error}", flush=True)
        print(f"{rows[-1][0]}: {rows[-1][1]:.1f} s", flush=True)
    t = time.perf_counter()
    gather(inputs, period, get=get)  # the steering report: this period cached, previous not
    rows.append((f"steering report (previous period {period.previous().label})",
                 time.perf_counter() - t))  # fmt: skip
    rows.append(("total", time.perf_counter() - started))
    print(f"{rows[-2][0]}: {rows[-2][1]:.1f} s", flush=True)
    return rows


def main() -> None:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--store", type=Path, help="keep the store here (reused if present)")
    parser.add_argument("--cold", action="store_true", help="time first computations only")
    parser.add_argument(
        "--period", default=str(time.gmtime().tm_year), help="--cold: the period (the data's year)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cmio-web-bench-") as tmp:
        folder = args.store or Path(tmp) / "site"
        started = time.perf_counter()
        if (folder / "cmio.db").exists():
            url = f"sqlite:///{folder / 'cmio.db'}"
        else:
            url = build_store(folder, patients=args.patients)
        print(f"store ready in {time.perf_counter() - started:.0f} s: {url}", flush=True)
        if args.cold:
            rows_cold = cold(url, args.period)
            print("\n| computation | seconds |\n|---|---:|")
            for name, seconds in rows_cold:
                print(f"| {name} | {seconds:.1f} |")
            return
        with WebSite.start(url, Path(tmp) / "keys") as site:
            # the cold pass measures the time to the content (a browser would show the
            # computing placeholder meanwhile): pages wait for their summaries here
            site.app.web.ctx.compute_wait = 1800.0
            rows = run(site, args.rounds)
            site.app.web.ctx.cache.wait_idle(1800)
    print(f"\n{args.patients} patients, {args.rounds} interleaved rounds\n")
    print(report(rows))


if __name__ == "__main__":
    main()
