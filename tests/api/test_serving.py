"""One socket write per response (cmio.api.serving): the same bytes, in order, gathered."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

from cmio.api.serving import GatheringTransport, http_protocol
from cmio.testing.server import free_port


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0


def test_writes_of_one_callback_go_out_together_and_close_sends_first() -> None:
    async def go() -> Recording:
        raw = Recording()
        gathered = GatheringTransport(raw, asyncio.get_running_loop())
        gathered.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        gathered.write(b"")
        gathered.writelines([b"{", bytearray(b"}")])
        assert raw.writes == [] and gathered.get_write_buffer_size() == 40
        await asyncio.sleep(0)  # the callback returned: one write
        assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        gathered.write(b"last")
        gathered.close()  # sent before the close, not dropped
        assert raw.writes[-1] == b"last" and raw.closed
        await asyncio.sleep(0)
        assert len(raw.writes) == 2  # nothing sent twice
        other = Recording()
        dropped = GatheringTransport(other, asyncio.get_running_loop())
        dropped.write(b"x")
        dropped.abort()
        await asyncio.sleep(0)
        assert other.writes == [] and other.aborted
        return raw

    asyncio.run(go())


def test_serves_keep_alive_pipelined_and_large_responses_intact() -> None:
    big = b"y" * 3_000_000

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = big if scope["path"] == "/big" else scope["path"].encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    protocol = http_protocol()
    assert not isinstance(protocol, str)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="error", lifespan="off", http=protocol
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.02)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for n in range(20):  # one keep-alive connection
                assert client.get(f"/r{n}").content == f"/r{n}".encode()
            assert client.get("/big").content == big
        with socket.create_connection(("127.0.0.1", port)) as sock:  # pipelined
            sock.sendall(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\n")
            data = b""
            while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"/b"):
                chunk = sock.recv(65536)
                assert chunk
                data += chunk
            assert data.index(b"/a") < data.index(b"HTTP/1.1 200", 1) < data.index(b"/b")
    finally:
        server.should_exit = True
        thread.join(10)


def test_serve_refuses_an_unknown_protocol_or_loop() -> None:
    from typer.testing import CliRunner

    from cmio.cli.main import app as cli

    for option in (["--http", "spdy"], ["--loop", "trio"]):
        result = CliRunner().invoke(cli, ["serve", "--no-auth", *option])
        assert result.exit_code == 2, result.output
