"""Longer fuzzing run of the FHIR API: every OpenAPI operation, schemathesis-generated requests.

Serves a fresh store (optionally loaded with a small synthetic health system) on
loopback, fetches ``/fhir/openapi.json`` and runs ``--examples`` generated requests
against each operation (filtered by ``--types``/``--methods``), with authentication
off, or on with an all-access token (``--auth``). Prints the status histogram, the
calls per second and every 5xx (the expected count is zero).

    python bench/fuzz_api.py --examples 10 [--types Patient,Observation] [--methods GET]
        [--auth] [--patients 20] [--out fuzz.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.bulk.importer import import_paths
from cmio.model import load_model
from cmio.synth import SynthConfig, generate
from cmio.testing.auth import auth_app, bearer, mint_token
from cmio.testing.server import ServerThread


def run_operation(
    operation: Any, base: str, headers: dict[str, str], examples: int, seen: dict[str, Any]
) -> None:
    """Send ``examples`` generated requests to one operation, counting statuses."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(base_url=base, headers=headers, timeout=60)
        seen["calls"] += 1
        seen["status"][response.status_code] += 1
        if response.status_code >= 500:
            seen["failures"].append(
                {
                    "operation": operation.label,
                    "status": response.status_code,
                    "path": case.path_parameters,
                    "query": case.query,
                    "body": str(case.body)[:500],
                    "response": response.text[:500],
                }
            )

    run()


def main() -> int:
    """Parse options, serve, fuzz, report; exit 1 when any 5xx was seen."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10)
    parser.add_argument("--types", default="", help="Comma-separated resource types (default all)")
    parser.add_argument("--methods", default="", help="Comma-separated HTTP methods (default all)")
    parser.add_argument("--auth", action="store_true", help="Authentication on, all-access token")
    parser.add_argument("--patients", type=int, default=10, help="Synthetic patients loaded first")
    parser.add_argument("--out", type=Path, default=None, help="Write the report as JSON")
    args = parser.parse_args()
    types = {t for t in args.types.split(",") if t}
    methods = {m.upper() for m in args.methods.split(",") if m}
    model = load_model()
    with tempfile.TemporaryDirectory(prefix="cmio-fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        url = f"sqlite:///{tmp / 'fuzz.db'}"
        settings_ = Settings(terminology_db=None, export_dir=str(tmp / "exports"))
        if args.patients:
            generate(SynthConfig(patients=args.patients, out=tmp / "synth", years=0.5, seed=5))
            import_paths(url, [tmp / "synth"], model=model)
        if args.auth:
            app = auth_app(url, tmp, model=model, settings=settings_)
        else:
            app = CmioApp(build_env(url, settings_, model=model))
        with ServerThread(app, close_app=True) as server:
            headers = (
                bearer(mint_token(app, server.base, scopes=["user/*.cruds"])) if args.auth else {}
            )
            document = httpx.get(f"{server.base}/openapi.json", headers=headers).json()
            schema = schemathesis.openapi.from_dict(document)
            seen: dict[str, Any] = {
                "calls": 0,
                "status": collections.Counter(),
                "failures": [],
                "operations": 0,
            }
            started = time.perf_counter()
            for path, methods_of in document["paths"].items():
                head = path.strip("/").split("/")[0]
                if types and head not in types:
                    continue
                for method in methods_of:
                    if methods and method.upper() not in methods:
                        continue
                    operation = schema[path][method.upper()]
                    run_operation(operation, server.base, headers, args.examples, seen)
                    seen["operations"] += 1
                    print(f"\r{seen['operations']} operations, {seen['calls']} calls", end="")
            elapsed = time.perf_counter() - started
    print()
    report = {
        "command": " ".join(sys.argv),
        "operations": seen["operations"],
        "calls": seen["calls"],
        "seconds": round(elapsed, 1),
        "calls_per_second": round(seen["calls"] / elapsed, 1) if elapsed else None,
        "status": {str(k): v for k, v in sorted(seen["status"].items())},
        "server_errors": len(seen["failures"]),
        "failures": seen["failures"][:50],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}, indent=2))
    for failure in seen["failures"][:20]:
        print("5xx:", json.dumps(failure))
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2))
    return 1 if seen["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
