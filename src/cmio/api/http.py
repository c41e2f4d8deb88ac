"""Framework-free request and response types of the FHIR router.

The transport contract is ``FhirRouter.handle(FhirRequest) -> FhirResponse``:
nothing here knows about ASGI, sockets or SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cmio.api.context import RequestContext

__all__ = ["FhirRequest", "FhirResponse"]


@dataclass(slots=True)
class FhirRequest:
    """An HTTP request addressed to the FHIR base.

    Attributes:
        method: upper-case HTTP method.
        path: the path below the FHIR base without leading slash, e.g. ``Patient/1``.
        query: decoded query parameters in order (repeats kept).
        headers: lower-case header names to values.
        body: raw request body.
        base_url: absolute FHIR base URL, e.g. ``http://127.0.0.1:8080/fhir``.
        context: who is asking.
    """

    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    base_url: str = "http://localhost/fhir"
    context: RequestContext = field(default_factory=RequestContext)

    def header(self, name: str) -> str | None:
        """A header value by lower-case name."""
        return self.headers.get(name)

    def param(self, name: str) -> str | None:
        """The first value of a query parameter."""
        for key, value in self.query:
            if key == name:
                return value
        return None


@dataclass(slots=True)
class FhirResponse:
    """A response: status, body bytes and headers (content type included)."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
