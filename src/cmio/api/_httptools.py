"""uvicorn's httptools HTTP/1.1 protocol with one socket write per response
(:class:`cmio.api.serving.GatheringTransport`); importing it needs httptools."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cmio.api.serving import GatheringTransport

__all__ = ["HttpProtocol"]


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`GatheringTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Serve the connection through a transport that gathers each callback's writes."""
        super().connection_made(GatheringTransport(transport, self.loop))
