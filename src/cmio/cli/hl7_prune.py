"""``cmio hl7 prune``: drop finished journal rows past each channel's retention.

See :mod:`cmio.interfaces.hl7v2.engine.retention` for what is pruned (never the error
queue nor unprocessed messages) and the duplicate-control-id window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["add_prune"]


def add_prune(hl7: typer.Typer) -> None:
    """Add ``prune`` to the ``hl7`` command group."""

    @hl7.command("prune")
    def prune(
        channel: Annotated[
            list[Path], typer.Option("--channel", exists=True, dir_okay=False, help="Channel YAML")
        ],
        journal: Annotated[
            Path | None, typer.Option("--journal", help="Journal file (default: channel's)")
        ] = None,
        days: Annotated[
            float | None,
            typer.Option(
                "--days",
                min=0,
                help="Delete finished rows older than this (overrides"
                " retention.days and duplicate_window_days)",
            ),
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Count only")] = False,
    ) -> None:
        """Prune processed, filtered, duplicate and rejected messages past their retention."""
        from dataclasses import replace
        from functools import partial

        from rich.console import Console
        from rich.progress import Progress

        from cmio.interfaces.hl7v2.engine.channels import ChannelError, load_channel
        from cmio.interfaces.hl7v2.engine.retention import prune_journal

        console = Console(stderr=True)
        try:
            configs = [load_channel(p) for p in channel]
        except ChannelError as exc:
            raise typer.BadParameter(str(exc), param_hint="--channel") from exc
        for config in configs:
            retention = config.retention
            if days is not None:
                retention = replace(retention, days=days, duplicate_window_days=days)
            path = journal or Path(config.journal)
            if not path.exists():
                raise typer.BadParameter(f"no journal at {path}", param_hint="--journal")
            todo = prune_journal(path, config.name, retention, dry_run=True)
            total = todo.rows_deleted + todo.bodies_dropped
            if dry_run:
                console.print(f"channel {config.name}: would delete {todo.rows_deleted:,} rows"
                              f" and drop {todo.bodies_dropped:,} message bodies")  # fmt: skip
                continue
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task(f"Pruning {config.name}", total=total or None)
                done = prune_journal(path, config.name, retention,
                                     progress=partial(bar.advance, task))  # fmt: skip
            console.print(f"channel {config.name}: deleted {done.rows_deleted:,} rows, dropped"
                          f" {done.bodies_dropped:,} message bodies (older than"
                          f" {retention.duplicate_window_days:g} / {retention.days:g} days)")  # fmt: skip
