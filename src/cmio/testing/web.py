"""A web site for tests, screenshots and demos of the pages: a small synthetic health
system in a fresh store, served with authentication on and one user per role.

Use::

    url = build_store(tmp_path / "site")
    with WebSite.start(url, tmp_path / "keys") as site:
        site.login_form("clinician")  # (user, password)
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.security.roles import ROLES
from cmio.testing.auth import test_auth_settings
from cmio.testing.server import ServerThread

__all__ = ["WebSite", "build_store"]


def build_store(data_dir: Path, patients: int = 80, seed: int = 7, years: float = 1.0) -> str:
    """Generate a synthetic health system (``cmio synth``) and import it into a fresh
    SQLite store under ``data_dir``; returns the database URL."""
    from cmio.bulk.importer import import_paths
    from cmio.synth import SynthConfig, generate

    data_dir.mkdir(parents=True, exist_ok=True)
    synth_dir = data_dir / "synth"
    generate(SynthConfig(patients, synth_dir, years=years, seed=seed, workers=1), lambda n: None)
    url = f"sqlite:///{data_dir / 'cmio.db'}"
    summary = import_paths(url, [str(synth_dir)], workers=1)
    if summary.rejected:
        raise RuntimeError(f"{summary.rejected} synthetic resources were rejected")
    return url


def _busiest_practitioner(app: CmioApp) -> str | None:
    """The Practitioner with the most encounters (the test clinician's fhirUser)."""
    from cmio.store.base import SearchQuery

    counts: Counter[str] = Counter()
    page = app.env.repository.search(SearchQuery("Encounter", count=2000, total=False))
    import orjson

    for stored in page.resources:
        body = orjson.loads(stored.data or b"{}")
        for participant in body.get("participant", []):
            ref = participant.get("individual", {}).get("reference", "")
            if ref.startswith("Practitioner/"):
                counts[ref] += 1
    return counts.most_common(1)[0][0] if counts else None


@dataclass
class WebSite:
    """A running server (uvicorn on loopback) with one user per role.

    Attributes:
        app: the application. server: the uvicorn thread. users: role -> (name, password).
    """

    app: CmioApp
    server: ServerThread
    users: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def start(cls, database_url: str, key_dir: Path, settings: Settings | None = None) -> WebSite:
        """Open the store, create the users and start serving (stop with ``close`` or
        use as a context manager)."""
        base = settings or Settings(validation="off", terminology_db=None)
        auth = test_auth_settings(key_dir)
        app = CmioApp(build_env(database_url, replace(base, auth=auth)))
        assert app.auth is not None
        clinician = _busiest_practitioner(app)
        users: dict[str, tuple[str, str]] = {}
        for role in ROLES:
            name, password = f"web-{role}", secrets.token_urlsafe(12)
            if app.auth.server.users.get(name) is None:
                fhir_user = clinician if role == "clinician" else None
                app.auth.server.users.add(name, password, [role], fhir_user)
            else:
                app.auth.server.users.set_password(name, password)
            users[role] = (name, password)
        server = ServerThread(app, close_app=True)
        server.__enter__()
        return cls(app, server, users)

    @property
    def url(self) -> str:
        """The site's root URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.server.port}"

    def close(self) -> None:
        """Stop the server and close the app."""
        self.server.__exit__(None, None, None)

    def __enter__(self) -> WebSite:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def session_cookies(self, role: str) -> dict[str, Any]:
        """Sign in as the role's user through ``/auth/login``; the session cookies."""
        import httpx

        name, password = self.users[role]
        answer = httpx.post(
            self.url + "/auth/login",
            data={"username": name, "password": password, "next": "/"},
            follow_redirects=False,
        )
        if answer.status_code != 303:
            raise RuntimeError(f"login as {name} failed: {answer.status_code}")
        return dict(answer.cookies)
