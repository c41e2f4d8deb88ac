"""``cmio hl7``: the HL7 v2 interface engine (listen, send, status, replay).

* ``cmio hl7 listen --channel lab.yaml [--port 2575]``: serve channels (MLLP or folder
  sources) into the FHIR store; every message is journaled before its ACK.
* ``cmio hl7 send FILE... --host H --port P``: a real MLLP client; files hold one or
  many messages, plain (CR, LF or CRLF) or MLLP-framed, as ``cmio synth-feeds`` writes.
* ``cmio hl7 status``: interface health from the journal.
* ``cmio hl7 replay --channel lab.yaml``: process the error queue again.
* ``cmio hl7 prune --channel lab.yaml``: drop finished messages past the retention.

MLLP: https://www.hl7.org/implement/standards/product_brief.cfm?product_id=55 .
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cmio.cli.hl7_prune import add_prune
from cmio.cli.hl7_send import add_send

if TYPE_CHECKING:
    from cmio.interfaces.hl7v2.engine.destinations import SinkItem, SinkOutcome

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``hl7`` command group to the CLI."""
    hl7 = typer.Typer(no_args_is_help=True, help="HL7 v2 interface engine (MLLP, journal, FHIR)")
    app.add_typer(hl7, name="hl7")
    add_prune(hl7)
    add_send(hl7)

    @hl7.command("listen")
    def listen(
        channel: Annotated[
            list[Path], typer.Option("--channel", exists=True, dir_okay=False, help="Channel YAML")
        ],
        port: Annotated[
            int | None, typer.Option("--port", help="Port (one MLLP channel; 0: any free)")
        ] = None,
        host: Annotated[str | None, typer.Option("--host", help="Address to bind")] = None,
        database: Annotated[str | None, typer.Option("--database", help="Store URL")] = None,
        journal: Annotated[
            Path | None, typer.Option("--journal", help="Journal file (default: channel's)")
        ] = None,
        validation: Annotated[
            str, typer.Option("--validation", help="Store validation: off, base, profiles")
        ] = "base",
        worker_after: Annotated[
            int,
            typer.Option(
                "--worker-after",
                help="Start a channel's preparation process (a second core) once this many"
                " messages wait; 0: at start, -1: never",
            ),
        ] = 16,
    ) -> None:
        """Serve channels: journal, ACK, map to FHIR and store, until Ctrl-C or SIGTERM."""
        from dataclasses import replace

        from rich.console import Console

        from cmio.interfaces.hl7v2.engine.channels import ChannelError, load_channel
        from cmio.interfaces.hl7v2.engine.prepworker import PrepWorker
        from cmio.interfaces.hl7v2.engine.runtime import Engine, settle_heap
        from cmio.interfaces.hl7v2.mapping import SUPPORTED
        from cmio.store import default_database_url

        console = Console(stderr=True)
        try:
            configs = [load_channel(p) for p in channel]
        except ChannelError as exc:
            raise typer.BadParameter(str(exc), param_hint="--channel") from exc
        mllp = [c for c in configs if c.source.type == "mllp"]
        if (port is not None or host is not None) and len(mllp) != 1:
            raise typer.BadParameter("--port/--host need exactly one MLLP channel")
        if host is not None:
            configs = [replace(c, source=replace(c.source, host=host)) if c in mllp else c
                       for c in configs]  # fmt: skip
        sink = _StoreWhenReady(database or default_database_url(), validation)

        def settled(worker: PrepWorker) -> None:  # (from the thread that waited for it)
            state = "failed" if worker.failed else "ready"
            console.print(f"Channel {worker.channel.name}: preparation worker {state}"
                          f" (pid {worker.pid})")  # fmt: skip

        try:
            engine = Engine(
                configs,
                sink,
                journal=journal,
                supported_types=frozenset(SUPPORTED),
                translate=sink.translate,
                patient_links=sink.patient_links,
                worker_after=worker_after if worker_after >= 0 else None,
                on_worker=settled,
            )
        except ValueError as exc:
            sink.close()
            raise typer.BadParameter(str(exc), param_hint="--channel") from exc
        recovered = engine.start()
        if recovered:
            console.print(f"Resuming {recovered:,} journaled messages")
        ports = {mllp[0].name: port} if port is not None else {}

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)

            def ready(bound: dict[str, int]) -> None:
                for name, p in bound.items():
                    console.print(f"Channel {name} listening on MLLP port {p}")
                console.print(f"Journal: {engine.journal.path}", highlight=False)

            async def watch_store() -> None:
                error = await asyncio.to_thread(sink.wait)
                if error is not None:  # keep what was journaled; stop instead of parking it all
                    console.print(f"[red]The store could not be opened: {error}[/red]")
                    failed.append(error)
                    stop.set()
                    return
                settle_heap()  # the store, model and mapping are loaded: out of GC scans

            watcher = asyncio.create_task(watch_store())
            await engine.run(stop, ports=ports, ready=ready)
            watcher.cancel()

        failed: list[BaseException] = []
        try:
            asyncio.run(main())
        finally:
            engine.close()
            sink.close()
        if failed:
            raise typer.Exit(1)

    @hl7.command("status")
    def status(
        journal: Annotated[Path, typer.Option("--journal")] = Path("cmio-data/hl7/journal.db"),
        as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
    ) -> None:
        """Interface health: rates, errors, queue depth, lag, last message, per channel."""
        from rich.console import Console
        from rich.table import Table

        from cmio.interfaces.hl7v2.engine.metrics import read_health

        health = read_health(journal)
        if as_json:
            typer.echo(json.dumps(health.to_dict(), indent=2))
            return
        if not health.channels:
            Console().print(f"No messages journaled in {journal}")
            return
        console = Console()
        console.print(f"HL7 v2 interfaces ({journal})", highlight=False)
        for c in health.channels:
            last = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c.last_message_at))
                    if c.last_message_at else "-")  # fmt: skip
            table = Table(title=f"channel {c.channel}", show_header=False)
            table.add_column("figure")
            table.add_column("value")
            rows = [
                ("messages, last minute",
                 ", ".join(f"{t} {n}" for t, n in sorted(c.per_minute.items())) or "0"),
                ("messages by state",
                 ", ".join(f"{s} {n}" for s, n in sorted(c.received_total.items()))),
                ("error rate (last hour)", f"{c.error_rate:.1%}"),
                ("queue depth", str(c.queue_depth)),
                ("error queue", str(c.error_queue)),
                ("lag", f"{c.lag_seconds:.1f} s"),
                ("receipt to stored, p95",
                 "-" if c.latency_p95_seconds is None else f"{c.latency_p95_seconds:.3f} s"),
                ("last message", last),
            ]  # fmt: skip
            for name, value in rows:
                table.add_row(name, value)
            console.print(table)

    @hl7.command("replay")
    def replay(
        channel: Annotated[Path, typer.Option("--channel", exists=True, dir_okay=False)],
        errors: Annotated[
            bool, typer.Option("--errors/--no-errors", help="Replay the error queue")
        ] = True,
        ids: Annotated[
            list[int] | None, typer.Option("--id", help="Replay these journal ids")
        ] = None,
        database: Annotated[str | None, typer.Option("--database", help="Store URL")] = None,
        journal: Annotated[Path | None, typer.Option("--journal")] = None,
    ) -> None:
        """Process parked messages again (after fixing a mapping, a code map or the store)."""
        from rich.console import Console
        from rich.progress import Progress

        from cmio.api.app import build_env
        from cmio.api.env import Settings
        from cmio.api.hl7 import RouterSink
        from cmio.api.router import FhirRouter
        from cmio.interfaces.hl7v2.engine.channels import ChannelError, load_channel
        from cmio.interfaces.hl7v2.engine.journal import Journal
        from cmio.interfaces.hl7v2.engine.processor import Processor
        from cmio.store import default_database_url

        console = Console(stderr=True)
        try:
            config = load_channel(channel)
        except ChannelError as exc:
            raise typer.BadParameter(str(exc), param_hint="--channel") from exc
        book = Journal(journal or config.journal)
        book.start()
        chosen = list(ids or [])
        if errors and not chosen:
            chosen = [r["id"] for r in book.rows(channel=config.name, states=["error"])]
        if not chosen:
            console.print("Nothing to replay")
            book.close()
            return
        audit = Settings.from_environment(os.environ).audit  # CMIO_AUDIT, on by default
        env = build_env(database or default_database_url(), Settings(audit=audit))
        processor = Processor(config, book, RouterSink(FhirRouter(env)))
        try:
            rows = book.requeue(chosen)
            processor.submit(rows)
            processor.start()
            with Progress(console=console, transient=True) as bar:
                bar.add_task(f"Replaying {len(rows):,} messages", total=None)
                processor.drain(timeout=3600)
        finally:
            processor.stop()
            book.close()
        book = Journal(journal or config.journal)
        try:
            after = book.rows(ids=chosen)
        finally:
            book.close()
            if env.auditor is not None:
                env.auditor.close()
            env.repository.close()
        states: dict[str, int] = {}
        for row in after:
            states[row["state"]] = states.get(row["state"], 0) + 1
        console.print("Replayed: " + ", ".join(f"{k} {v:,}" for k, v in sorted(states.items())))
        for row in after:
            if row["state"] == "error":
                console.print(
                    f"  #{row['id']} {row['control_id']}: {row['error']}", highlight=False
                )


class _StoreWhenReady:
    """The store sink, opened on a background thread so the listener ACKs at once.

    Receipt needs only the journal; processing waits here until the store is open.
    """

    def __init__(self, database_url: str, validation: str) -> None:
        import threading

        self._ready = threading.Event()
        self._sink: Any = None
        self._env: Any = None
        self._translator: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._open, args=(database_url, validation), daemon=True
        )
        self._thread.start()

    def _open(self, database_url: str, validation: str) -> None:
        try:
            from cmio.api.app import build_env
            from cmio.api.env import Settings
            from cmio.api.hl7 import RouterSink
            from cmio.api.router import FhirRouter
            from cmio.interfaces.hl7v2.mapping import ConceptMapTranslator

            audit = Settings.from_environment(os.environ).audit  # CMIO_AUDIT, on by default
            self._env = build_env(database_url, Settings(validation=validation, audit=audit))
            self._sink = RouterSink(FhirRouter(self._env))
            if self._env.terminology is not None:
                self._translator = ConceptMapTranslator(self._env.terminology.resources)
        except Exception as exc:  # reported by listen, which stops
            self._error = exc
        finally:
            self._ready.set()

    def wait(self) -> BaseException | None:
        """Wait until the store is open; the error when it could not be."""
        self._ready.wait()
        return self._error

    def _get(self) -> Any:
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError(f"the store could not be opened: {self._error}")
        return self._sink

    def apply(self, items: Sequence[SinkItem]) -> list[SinkOutcome]:
        """Apply through the store once it is open."""
        result: list[SinkOutcome] = self._get().apply(items)
        return result

    def exists(self, resource_type: str, resource_id: str) -> bool:
        """Ask the store once it is open."""
        return bool(self._get().exists(resource_type, resource_id))

    def ahead_spec(self) -> Any:
        """What the preparation worker needs to index as the store does (see RouterSink)."""
        return self._get().ahead_spec()

    def learned_ids(self, since: int) -> tuple[int, list[Any]]:
        """The identifiers the store sink resolved since ``since`` (see RouterSink)."""
        found: tuple[int, list[Any]] = self._get().learned_ids(since)
        return found

    def translate(self, system: str, code: str) -> Sequence[tuple[str, str, str]]:
        """Local codes through the terminology service's ConceptMaps (none without it)."""
        self._get()
        if self._translator is None:
            return []
        found: Sequence[tuple[str, str, str]] = self._translator(system, code)
        return found

    def patient_links(self, system: str, value: str) -> Sequence[Mapping[str, Any]]:
        """The stored patient's ``Patient.link`` entries (what an A40 merge set)."""
        from cmio.interfaces.hl7v2.mapping import store_patient_links

        return store_patient_links(self._get().client)(system, value)

    def close(self) -> None:
        """Close the store."""
        self._thread.join()
        if self._env is not None:
            if self._env.auditor is not None:
                self._env.auditor.close()
            self._env.repository.close()
