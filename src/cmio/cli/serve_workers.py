"""``cmio serve --workers N``: N server processes, each with its own listening socket.

uvicorn's own supervisor binds one socket in the parent and hands it to every worker.
On Linux the workers then race to ``accept`` from one queue, and the one that wakes first
drains it: a client that opens its connections together (a load balancer's pool, wrk) can
find 13 of 16 on one worker while the other idles (measured in docs/benchmarks.md,
session 10). Here each worker binds its own socket with ``SO_REUSEPORT``, and the kernel
spreads new connections across the listening sockets by a hash of the connection's
addresses (https://man7.org/linux/man-pages/man7/socket.7.html, ``SO_REUSEPORT``).

The parent first binds the port without ``SO_REUSEPORT`` (so a port in use, a second
``cmio serve`` included, is refused as with one process), then keeps one bound,
non-listening ``SO_REUSEPORT`` socket on it (it takes no connections; it holds the port
so that a later server's probe fails), starts the workers (the first ones listen only
once all have loaded the app, so early clients' kept-alive connections are not all taken
by the worker that was ready first), restarts one that dies after it has served, stops
when one dies at start, and on SIGTERM or SIGINT asks every worker to stop (SIGTERM:
uvicorn's graceful shutdown) and waits for them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

__all__ = ["WorkerStartError", "reuseport_socket", "run_workers"]

#: a worker that dies sooner than this after its start failed to start
STARTUP_SECONDS = 10.0
#: how long the first workers wait for each other before listening anyway
BARRIER_SECONDS = 120.0


class WorkerStartError(RuntimeError):
    """A worker process exited during its start (the app, TLS files or the port)."""


def reuseport_socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening), with ``SO_REUSEPORT``
    unless ``reuse_port`` is False (then it fails on a port any other socket holds).

    Raises:
        OSError: the port is taken by a socket without ``SO_REUSEPORT`` (or another user's).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _worker(options: dict[str, Any], together: Any = None) -> None:
    """One worker process: uvicorn on its own ``SO_REUSEPORT`` socket.

    ``together`` (a barrier of the first workers): the app is loaded first and the socket
    listens only once every first worker has loaded its app, so that the first clients'
    kept-alive connections do not all land on the worker that was ready first.
    """
    import uvicorn

    config = uvicorn.Config(**options)
    sock = reuseport_socket(config.host, config.port)
    if together is not None:
        config.load()  # the app (and its factory's store) before listening
        with contextlib.suppress(threading.BrokenBarrierError):  # a sibling failed
            together.wait(BARRIER_SECONDS)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(
    options: dict[str, Any],
    workers: int,
    grace: float = 30.0,
    startup: float = STARTUP_SECONDS,
) -> None:
    """Serve with ``workers`` processes until SIGTERM/SIGINT; see the module docstring.

    Args:
        options: ``uvicorn.Config`` keyword arguments (the app as an import string with
            ``factory=True``, host, port, ...), given to every worker.
        workers: the number of worker processes.
        grace: seconds a worker gets to finish after SIGTERM before it is killed.
        startup: a worker that exits within this many seconds of its start failed.

    Raises:
        OSError: the port is in use.
        WorkerStartError: a worker exited during its start.
    """
    host, port = str(options.get("host", "127.0.0.1")), int(options["port"])
    reuseport_socket(host, port, reuse_port=False).close()  # EADDRINUSE when taken
    holder = reuseport_socket(host, port)
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    started: dict[int, float] = {}

    together = context.Barrier(workers)

    def start(number: int, first: bool = False) -> BaseProcess:
        args = (options, together if first else None)
        process = context.Process(target=_worker, args=args, name=f"cmio-worker-{number}")
        process.start()
        started[number] = time.monotonic()
        return process

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    processes = [start(n, first=True) for n in range(workers)]
    try:
        while not stopping.wait(0.5):
            for number, process in enumerate(processes):
                if process.is_alive() or stopping.is_set():
                    continue
                if time.monotonic() - started[number] < startup:
                    raise WorkerStartError(
                        f"worker {number} exited during its start (exit code {process.exitcode})"
                    )
                processes[number] = start(number)  # it had served: replace it
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()  # SIGTERM: uvicorn finishes in-flight requests
        for process in processes:
            process.join(grace)
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        holder.close()
