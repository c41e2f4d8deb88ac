"""Prefetch templates and their resolution (https://cds-hooks.hl7.org/2.0/#prefetch-template).

A template such as ``Observation?patient={{context.patientId}}`` is rendered with the
hook's context (``{{context.X}}``) and the user tokens (``{{userPractitionerId}}``,
``{{userPractitionerRoleId}}``, ``{{userPatientId}}``, ``{{userRelatedPersonId}}``, from
``context.userId``). Keys the client prefetched are used as sent; the others are fetched
from the FHIR server with the hook's ``fhirAuthorization`` bearer token (or in-process
when the FHIR server is this one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["Fetcher", "HttpFetcher", "PrefetchError", "render", "resolve_prefetch"]

_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_USER_TYPES = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


class PrefetchError(Exception):
    """Prefetch data could not be obtained (the service answers 412)."""


class Fetcher(Protocol):
    """Reads one relative FHIR URL (``Patient/1``, ``Observation?patient=1``)."""

    def get(self, url: str) -> dict[str, Any] | None:
        """The resource or search Bundle (None: not found)."""
        ...


def render(template: str, request: Mapping[str, Any]) -> str | None:
    """The template with its tokens replaced (None: a token has no value in this request)."""
    context = request.get("context") or {}
    missing = False

    def token(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        value: Any = None
        if name.startswith("context."):
            value = context.get(name.removeprefix("context."))
        elif name in _USER_TYPES:
            user = str(context.get("userId") or "")
            kind, _, rid = user.partition("/")
            value = rid if kind == _USER_TYPES[name] and rid else None
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if value is None or isinstance(value, (dict, bool)):
            missing = True
            return ""
        return str(value)

    rendered = _TOKEN.sub(token, template)
    return None if missing else rendered


def resolve_prefetch(
    templates: Mapping[str, str], request: Mapping[str, Any], fetcher: Fetcher | None
) -> dict[str, Any]:
    """Every prefetch key: the client's value, else fetched (None: no data).

    Raises:
        PrefetchError: a key the client did not send and no FHIR server to fetch it from.
    """
    sent = request.get("prefetch") or {}
    out: dict[str, Any] = {}
    for key, template in templates.items():
        if key in sent:
            out[key] = sent[key]
            continue
        url = render(template, request)
        if url is None:
            out[key] = None
            continue
        if fetcher is None:
            raise PrefetchError(f"prefetch {key!r} was not sent and no fhirServer is available")
        out[key] = fetcher.get(url)
    return out


class HttpFetcher:
    """Fetches from a remote FHIR server with the hook's bearer token."""

    def __init__(self, fhir_server: str, access_token: str | None, timeout: float = 10.0):
        self.base = fhir_server.rstrip("/")
        self.headers = {"accept": "application/fhir+json"}
        if access_token:
            self.headers["authorization"] = f"Bearer {access_token}"
        self.timeout = timeout

    def get(self, url: str) -> dict[str, Any] | None:
        """GET ``[fhirServer]/[url]``; 404/410 is None, other failures a PrefetchError."""
        import httpx

        try:
            response = httpx.get(f"{self.base}/{url}", headers=self.headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise PrefetchError(f"prefetch {url}: {exc}") from None
        if response.status_code in (404, 410):
            return None
        if response.status_code >= 400:
            raise PrefetchError(f"prefetch {url}: HTTP {response.status_code}")
        body = response.json()
        return body if isinstance(body, dict) else None
