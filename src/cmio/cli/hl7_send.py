"""``cmio hl7 send``: a real MLLP client sending message files, each waiting for its ACK.

Files hold one or many messages, plain (CR, LF or CRLF) or MLLP-framed, as
``cmio synth-feeds`` writes. MLLP:
https://www.hl7.org/implement/standards/product_brief.cfm?product_id=55 .
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cmio.interfaces.hl7v2.engine.mllp import MllpClient

__all__ = ["add_send"]


def add_send(hl7: typer.Typer) -> None:
    """Add ``send`` to the ``hl7`` command group."""

    @hl7.command("send")
    def send(
        files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)],
        host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port")] = 2575,
        timeout: Annotated[float, typer.Option("--timeout", help="Seconds per ACK")] = 30.0,
        retries: Annotated[
            int, typer.Option("--retries", help="Reconnect and resend this often per message")
        ] = 5,
        connections: Annotated[
            int, typer.Option("--connections", min=1, help="Parallel connections (by patient)")
        ] = 1,
    ) -> None:
        """Send messages over MLLP, each waiting for its ACK.

        With several connections, each patient's messages (PID-3) go over one connection,
        in file order, so per-patient order is kept.
        """
        import threading
        import zlib

        from rich.console import Console
        from rich.progress import Progress

        from cmio.interfaces.hl7v2.engine.ack import read_header
        from cmio.interfaces.hl7v2.engine.mllp import MllpClient, read_message_files

        console = Console(stderr=True)
        messages = list(read_message_files(files))
        lanes: list[list[bytes]] = [[] for _ in range(connections)]
        for raw in messages:
            lanes[zlib.crc32(_pid3(raw)) % connections].append(raw)
        counts: dict[str, int] = {}
        problems: list[str] = []
        failures: list[BaseException] = []
        lock = threading.Lock()
        started = time.perf_counter()
        with Progress(console=console) as bar:
            task = bar.add_task("Sending", total=len(messages))

            def run(lane: list[bytes]) -> None:
                try:
                    with MllpClient(host, port, timeout=timeout) as client:
                        for i, raw in enumerate(lane):
                            header = read_header(raw)
                            control = header.control_id if header else "?"
                            answers: list[tuple[str, bytes]] = []
                            if (
                                header is not None
                                and header.enhanced
                                and header.accept_ack in ("NE", "ER", "SU")
                            ):  # enhanced mode: an answer may not come
                                client.post(raw)
                                last = i == len(lane) - 1
                                answers = _late_answers(client, 1.0 if last else 0.0)
                                answers.append((f"sent, MSH-15 {header.accept_ack}", b""))
                            else:
                                answers = _answers(_send_one(client, raw, retries), client,
                                                   control)  # fmt: skip
                            with lock:
                                for code, ack in answers:
                                    counts[code] = counts.get(code, 0) + 1
                                    if code not in ("AA", "CA") and ack:
                                        problems.append(f"{_msa(ack, 2)}: {code} {_err_text(ack)}")
                                bar.advance(task)
                except Exception as exc:  # reported below; the other lanes go on
                    with lock:
                        failures.append(exc)

            threads = [threading.Thread(target=run, args=(lane,)) for lane in lanes if lane]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        for exc in failures:
            problems.append(f"connection failed: {exc}")
        seconds = time.perf_counter() - started
        summary = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
        console.print(
            f"Sent {len(messages):,} messages in {seconds:.1f} s"
            f" ({len(messages) / max(seconds, 1e-9):,.0f}/s): {summary}"
        )
        for line in problems[:20]:
            console.print(f"  {line}", highlight=False)
        if problems:
            raise typer.Exit(1)


def _send_one(client: MllpClient, raw: bytes, retries: int) -> bytes:
    """Send with reconnect-and-resend on transport failure (the receiver drops duplicates)."""
    from cmio.interfaces.hl7v2.engine.mllp import MllpError

    for attempt in range(retries + 1):
        try:
            return client.send(raw)
        except (MllpError, OSError):
            if attempt == retries:
                raise
            time.sleep(min(5.0, 0.2 * 2**attempt))
    raise AssertionError("unreachable")


def _pid3(raw: bytes) -> bytes:
    """PID-3 as sent (the per-patient lane key); empty without a PID."""
    for line in raw.replace(b"\n", b"\r").split(b"\r"):
        if line.startswith(b"PID"):
            parts = line.split(line[3:4])
            return parts[3] if len(parts) > 3 else b""
    return b""


def _msa(ack: bytes, field: int = 1) -> str:
    """MSA-1 (the code) or MSA-2 (the acknowledged control id) of an ACK."""
    for line in ack.replace(b"\n", b"\r").split(b"\r"):
        if line.startswith(b"MSA"):
            parts = line.split(line[3:4])
            return parts[field].decode("utf-8", "replace") if len(parts) > field else "?"
    return "?"


def _answers(ack: bytes, client: MllpClient, control: str) -> list[tuple[str, bytes]]:
    """Codes of the ACK for ``control`` and of late answers to earlier enhanced-mode messages.

    A message sent with MSH-15 ``ER``/``SU`` may be answered after later messages were sent;
    ACKs are matched by MSA-2.
    """
    out: list[tuple[str, bytes]] = []
    while _msa(ack, 2) != control and _msa(ack, 2) != "?":
        out.append((_msa(ack), ack))
        ack = client.receive()
    out.append((_msa(ack), ack))
    return out


def _late_answers(client: MllpClient, wait: float) -> list[tuple[str, bytes]]:
    """Answers already arrived (or arriving within ``wait`` seconds) for posted messages."""
    out: list[tuple[str, bytes]] = []
    while True:
        try:
            ack = client.receive(timeout=max(wait, 0.001))
        except TimeoutError:
            return out
        out.append((_msa(ack), ack))


def _err_text(ack: bytes) -> str:
    for line in ack.replace(b"\n", b"\r").split(b"\r"):
        if line.startswith(b"ERR"):
            parts = line.decode("utf-8", "replace").split(line[3:4].decode())
            return parts[8] if len(parts) > 8 else parts[-1]
    return ""
