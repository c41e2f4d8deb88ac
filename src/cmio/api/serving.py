"""How ``cmio serve`` runs uvicorn: one socket write per response.

uvicorn's HTTP/1.1 protocol writes a response's status line and headers, then its
body, as two ``transport.write`` calls; on an idle connection each is a ``send``
system call and a TCP segment of its own, and the client wakes up for each. On a
FHIR read (one small JSON resource) that pair of writes cost a third of the
server's CPU per request. :class:`HttpProtocol` is uvicorn's httptools protocol
with a transport that gathers the writes made during one event-loop callback and
sends them together at the end of it (``loop.call_soon``): the same bytes in the
same order, one ``send`` per response. Closing the connection sends what is
gathered first. See https://asgi.readthedocs.io/en/latest/specs/www.html and
RFC 9112 (HTTP/1.1 message framing is unchanged).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["GatheringTransport", "http_protocol"]


class GatheringTransport(asyncio.Transport):
    """A transport that sends the writes of one loop callback as one write.

    Args:
        transport: the connection's transport (uvloop's or asyncio's).
        loop: the connection's event loop.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data``; what one callback wrote is sent once it returns."""
        if not data:
            return
        if self._pending is None:
            self._pending = [bytes(data)]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        """Queue every item of ``list_of_data`` (see :meth:`write`)."""
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is queued now (one write)."""
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        """Send what is queued, then close."""
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        """Send what is queued, then half-close."""
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        """Whether the connection can be half-closed."""
        return self._transport.can_write_eof()

    def abort(self) -> None:
        """Close at once, dropping what is queued."""
        self._pending = None
        self._transport.abort()

    def is_closing(self) -> bool:
        """Whether the connection is closing or closed."""
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The connection's ``socket``, ``peername``, ``sockname``, ``sslcontext``..."""
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        """Stop reading from the connection (flow control)."""
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the connection again."""
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        """Whether the connection is being read."""
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Hand the connection to another protocol (an upgrade), sending what is queued."""
        self.flush()
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The connection's protocol."""
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        """Bytes buffered: the transport's and those queued here."""
        queued = sum(len(d) for d in self._pending) if self._pending else 0
        return self._transport.get_write_buffer_size() + queued

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """The transport's flow-control limits."""
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The transport's flow-control limits."""
        return self._transport.get_write_buffer_limits()


def http_protocol() -> type[asyncio.Protocol] | str:
    """uvicorn's ``http`` setting for ``cmio serve``: its httptools protocol sending one
    write per response, or ``"auto"`` when httptools is not installed."""
    try:
        from cmio.api._httptools import HttpProtocol
    except ImportError:
        return "auto"
    return HttpProtocol
