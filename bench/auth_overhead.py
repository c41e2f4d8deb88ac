"""What authentication costs per request.

1. Token validation alone (:meth:`TokenService.validate`: header, signature, claims,
   revocation cache), ES256 and RS256, microseconds per call: a token seen for the first
   time (signature verified) and a repeated one (verified-token cache; claims and
   revocation still checked).
2. ``GET /fhir/Patient/{id}`` over HTTP against one server with authentication off and
   one with it on (a bearer token with ``user/*.rs``), rounds interleaved so both see
   the same machine load. With authentication on the request also runs the
   authorization policy the grant feeds, so (2) is authentication + authorization.

    python bench/auth_overhead.py [--requests 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.model import load_model
from cmio.security.keys import KeyRing
from cmio.security.kv import MemoryKeyValue
from cmio.security.tokens import Revocations, TokenService
from cmio.testing.auth import auth_app, bearer, mint_token
from cmio.testing.server import ServerThread


def validate_micro(alg: str, calls: int, rounds: int) -> tuple[float, float]:
    """Median microseconds per validation: first sight of a token, and a repeated token."""
    service = TokenService(KeyRing.generate(alg), Revocations(MemoryKeyValue()))

    def issue() -> str:
        token, _ = service.issue(
            issuer="https://x",
            audience="https://x/fhir",
            subject="u",
            scopes=["user/*.rs"],
            client_id="c",
        )
        return token

    first, repeated = [], []
    for _ in range(rounds):
        tokens = [issue() for _ in range(calls)]
        start = time.perf_counter()
        for token in tokens:
            service.validate(token, issuer="https://x", audience="https://x/fhir")
        first.append((time.perf_counter() - start) / calls * 1e6)
        start = time.perf_counter()
        for _ in range(calls):
            service.validate(tokens[0], issuer="https://x", audience="https://x/fhir")
        repeated.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(first), statistics.median(repeated)


def http_round(base: str, headers: dict[str, str], requests: int) -> float:
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        latencies = []
        for _ in range(requests):
            start = time.perf_counter()
            response = client.get("/Patient/p1")
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise SystemExit(f"unexpected {response.status_code}: {response.text[:200]}")
    return statistics.median(latencies) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for alg in ("ES256", "RS256"):
        first, repeated = validate_micro(alg, 1000, args.rounds)
        print(f"validate {alg}: first use {first:.0f} us, repeated token {repeated:.1f} us")
    model = load_model()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(validation="off", terminology_db=None)
        plain = CmioApp(build_env(f"sqlite:///{root / 'off.db'}", settings, model))
        secured = auth_app(f"sqlite:///{root / 'on.db'}", root, model=model)
        with (
            ServerThread(plain, close_app=True) as off,
            ServerThread(secured, close_app=True) as on,
        ):
            admin = mint_token(secured, on.base, roles=["administrator"])
            patient = {"resourceType": "Patient", "id": "p1", "active": True}
            httpx.put(off.base + "/Patient/p1", json=patient).raise_for_status()
            httpx.put(
                on.base + "/Patient/p1", json=patient, headers=bearer(admin)
            ).raise_for_status()
            reader = bearer(mint_token(secured, on.base, scopes=["user/*.rs"], roles=["analyst"]))
            offs, ons = [], []
            for _ in range(args.rounds):
                offs.append(http_round(off.base, {}, args.requests))
                ons.append(http_round(on.base, reader, args.requests))
            off_ms, on_ms = statistics.median(offs), statistics.median(ons)
            print("rounds off:", " ".join(f"{v:.2f}" for v in offs))
            print("rounds on :", " ".join(f"{v:.2f}" for v in ons))
            print(f"GET Patient/p1 auth off: {off_ms:.3f} ms median of round medians")
            print(f"GET Patient/p1 auth on : {on_ms:.3f} ms (ratio {on_ms / off_ms:.2f})")


if __name__ == "__main__":
    main()
