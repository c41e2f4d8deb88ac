"""A real HTTP server for tests and benchmarks: uvicorn in a thread on a free loopback port."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from cmio.api.serving import http_protocol

__all__ = ["ServerThread", "free_port"]


def _ephemeral_floor() -> int | None:
    """The lowest port the kernel hands out for ``bind(0)`` and outgoing connections."""
    try:
        low = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(low) if low.isdigit() else None


def free_port() -> int:
    """A free TCP port on the loopback interface, for a server started next.

    On Linux the port is drawn below the kernel's ephemeral range (which ``bind(0)`` and
    outgoing connections use), from a slice of its own per pytest-xdist worker: between
    choosing the port and the server binding it, no other process's ``bind(0)`` or
    connection and no other worker's server can take it. Elsewhere the kernel chooses.
    """
    floor = _ephemeral_floor()
    if floor is not None and floor > 12_000:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        index = int(worker[2:]) if worker[2:].isdigit() else 0
        count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1), index + 1)
        width = (floor - 10_000) // count
        start = 10_000 + index * width
        for port in random.sample(range(start, start + width), min(width, 64)):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


class ServerThread:
    """uvicorn serving an ASGI app on ``127.0.0.1`` in a background thread.

    Use as a context manager; with ``close_app`` the app's ``close()`` runs on exit.
    """

    def __init__(self, app: Any, *, close_app: bool = False) -> None:
        self.app = app
        self.close_app = close_app
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="error",
            access_log=False,
            lifespan="off",
            http=http_protocol(),  # as cmio serve: one socket write per response
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base(self) -> str:
        """The FHIR base URL."""
        return f"http://127.0.0.1:{self.port}/fhir"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        if self.close_app:
            self.app.close()
