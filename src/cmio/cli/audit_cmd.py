"""``cmio audit``: verify the hash chain, checkpoint its head, export and search the trail.

``verify`` walks the chain (:mod:`cmio.security.audit.chain`) and exits 1 at the
first missing, altered or reordered record; with ``--checkpoint`` it also detects
a cut tail. ``checkpoint`` writes the head, HMAC-signed, to a file kept apart from
the database. ``export`` writes the AuditEvents as NDJSON or as CSV rows for the
EHR-use metrics (columns: :data:`CSV_COLUMNS`). See https://profiles.ihe.net/ITI/BALP/.
"""

from __future__ import annotations

import base64
import csv
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

__all__ = ["CSV_COLUMNS", "csv_row", "register"]

CSV_COLUMNS = (
    "seq", "recorded", "event_id", "type", "interaction", "action", "outcome", "user_id",
    "user_kind", "user_reference", "roles", "client_id", "network_address", "token_jti",
    "patient", "resource", "query", "break_glass", "request_id",
)  # fmt: skip
"""Columns of ``cmio audit export --format csv`` (one row per AuditEvent):
``seq`` chain position; ``recorded`` instant; ``event_id`` AuditEvent.id; ``type`` rest or
110114 (authentication); ``interaction`` subtype code (read, search-type, create, 110122 login
...); ``action`` C/R/U/D/E; ``outcome`` 0/4/8/12; ``user_id`` the requesting agent's
identifier; ``user_kind`` user/client/local (its identifier system); ``user_reference`` e.g.
Practitioner/1; ``roles`` space-separated; ``client_id`` the client app; ``network_address``
the client's address; ``token_jti`` the access token id; ``patient`` Patient id; ``resource``
Type/id/_history/version; ``query`` the decoded search query; ``break_glass`` the reason;
``request_id`` the correlation id."""

_DB_HELP = "Database URL (default: $CMIO_DATABASE_URL or sqlite:///cmio-data/cmio.db)"
_KEY_HELP = "File holding the checkpoint HMAC key (default: $CMIO_AUDIT_KEY)"


def _key(key_file: Path | None) -> bytes:
    if key_file is not None:
        return key_file.read_bytes().strip()
    env = os.environ.get("CMIO_AUDIT_KEY")
    if not env:
        raise typer.BadParameter("a checkpoint needs --key-file or $CMIO_AUDIT_KEY")
    return env.encode()


def _agent(event: dict[str, Any], requestor: bool) -> dict[str, Any]:
    agents = [a for a in event.get("agent", []) if bool(a.get("requestor")) == requestor]
    return agents[-1] if requestor and agents else (agents[0] if agents else {})


def csv_row(seq: int, event: dict[str, Any]) -> list[str]:
    """One CSV row (:data:`CSV_COLUMNS`) of an AuditEvent."""
    user, client = _agent(event, True), _agent(event, False)
    ident = user.get("who", {}).get("identifier", {})
    patient = resource = query = btg = request_id = ""
    for entity in event.get("entity", []):
        what = entity.get("what", {})
        role = entity.get("role", {}).get("code")
        if role == "1":
            patient = str(what.get("reference", "")).removeprefix("Patient/")
        elif role == "4":
            resource = str(what.get("reference", ""))
        elif "query" in entity:
            query = base64.b64decode(entity["query"]).decode("utf-8", "replace")
        elif entity.get("description") == "break-the-glass":
            btg = str(entity.get("detail", [{}])[0].get("valueString", ""))
        elif entity.get("type", {}).get("code") == "XrequestId":
            request_id = str(what.get("identifier", {}).get("value", ""))
    policy = user.get("policy") or [""]
    roles = [r["coding"][0]["code"] for r in user.get("role", []) if r.get("coding")]
    return [
        str(seq),
        str(event.get("recorded", "")),
        str(event.get("id", "")),
        str(event.get("type", {}).get("code", "")),
        str((event.get("subtype") or [{}])[0].get("code", "")),
        str(event.get("action", "")),
        str(event.get("outcome", "")),
        str(ident.get("value", "")),
        str(ident.get("system", "")).removeprefix("urn:cmio:"),
        str(user.get("who", {}).get("reference", "")),
        " ".join(roles),
        str(client.get("who", {}).get("identifier", {}).get("value", "")),
        str(client.get("network", {}).get("address", "")),
        str(policy[0]).removeprefix("urn:ietf:params:oauth:jti:"),
        patient,
        resource,
        query,
        btg,
        request_id,
    ]


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command group to the CLI."""
    audit = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail")
    app.add_typer(audit, name="audit")

    @audit.command("verify")
    def verify(
        database: Annotated[str | None, typer.Option("--database", help=_DB_HELP)] = None,
        checkpoint: Annotated[
            Path | None, typer.Option("--checkpoint", help="A file from `cmio audit checkpoint`")
        ] = None,
        key_file: Annotated[Path | None, typer.Option("--key-file", help=_KEY_HELP)] = None,
    ) -> None:
        """Walk the hash chain; exit 1 at the first missing, altered or reordered record."""
        from cmio.security.audit import AuditLog
        from cmio.security.audit.chain import ChainReport, verify_rows

        saved = None if checkpoint is None else json.loads(checkpoint.read_text())
        key = _key(key_file) if saved is not None else None
        with _repository(database) as repository:
            log = AuditLog(repository)
            if saved is None:
                report: ChainReport = verify_rows(_progress(log.rows(), "verify"))
            else:
                report = log.verify(saved, key)
        if report.ok:
            head = f"head {report.head[0]} {report.head[1]}" if report.head else "empty"
            typer.echo(f"audit chain OK: {report.count:,} records, {head}")
            return
        typer.echo(
            f"audit chain BROKEN at record {report.broken_at}: {report.reason}"
            f" ({report.count:,} records verified before it)",
            err=True,
        )
        raise typer.Exit(1)

    @audit.command("checkpoint")
    def checkpoint_cmd(
        out: Annotated[Path, typer.Option("--out", help="Where to write the signed head")],
        database: Annotated[str | None, typer.Option("--database", help=_DB_HELP)] = None,
        key_file: Annotated[Path | None, typer.Option("--key-file", help=_KEY_HELP)] = None,
    ) -> None:
        """Verify the chain and write its head, HMAC-signed, to ``--out`` (keep it elsewhere)."""
        from cmio.security.audit import AuditLog
        from cmio.security.audit.chain import make_checkpoint, verify_rows

        key = _key(key_file)
        with _repository(database) as repository:
            report = verify_rows(_progress(AuditLog(repository).rows(), "verify"))
        if not report.ok or report.head is None:
            typer.echo(f"no checkpoint written: {report.reason or 'the log is empty'}", err=True)
            raise typer.Exit(1)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        out.write_text(json.dumps(make_checkpoint(report.head, key, now), indent=2) + "\n")
        typer.echo(f"checkpoint of record {report.head[0]} written to {out}")

    @audit.command("export")
    def export(
        out: Annotated[Path, typer.Option("--out", help="Output file")],
        fmt: Annotated[str, typer.Option("--format", help="ndjson or csv")] = "ndjson",
        since: Annotated[
            str | None, typer.Option("--since", help="Only records at or after this instant")
        ] = None,
        database: Annotated[str | None, typer.Option("--database", help=_DB_HELP)] = None,
    ) -> None:
        """Write the AuditEvents as NDJSON, or CSV rows for the EHR-use metrics."""
        from cmio.security.audit import AuditLog

        if fmt not in ("ndjson", "csv"):
            raise typer.BadParameter("--format must be ndjson or csv")
        count = 0
        with _repository(database) as repository, out.open("w", newline="") as handle:
            writer = csv.writer(handle) if fmt == "csv" else None
            if writer is not None:
                writer.writerow(CSV_COLUMNS)
            for row in _progress(AuditLog(repository).rows(), "export"):
                if since is not None and row.recorded < since:
                    continue
                if writer is None:
                    handle.write(row.data.decode() + "\n")
                else:
                    writer.writerow(csv_row(row.seq, orjson.loads(row.data)))
                count += 1
        typer.echo(f"{count:,} audit records written to {out}")

    @audit.command("index")
    def index(
        database: Annotated[str | None, typer.Option("--database", help=_DB_HELP)] = None,
    ) -> None:
        """Bring the searchable AuditEvent copy up to date (e.g. before the EHR-use measures)."""
        from cmio.indexing import SearchIndexer
        from cmio.model import load_model
        from cmio.security.audit import AuditIndex, AuditLog
        from cmio.store import default_database_url, open_repository

        indexer = SearchIndexer(load_model())
        repository = open_repository(database or default_database_url(), indexer=indexer)
        try:
            copied = AuditIndex(AuditLog(repository)).sync()
        finally:
            repository.close()
        typer.echo(f"{copied:,} audit records copied to AuditEvent resources")

    @audit.command("search")
    def search(
        patient: Annotated[str | None, typer.Option("--patient", help="Patient id")] = None,
        user: Annotated[str | None, typer.Option("--user", help="User name or client id")] = None,
        action: Annotated[str | None, typer.Option("--action", help="C, R, U, D or E")] = None,
        since: Annotated[str | None, typer.Option("--since", help="From this instant")] = None,
        limit: Annotated[int, typer.Option("--limit", help="At most this many rows")] = 100,
        database: Annotated[str | None, typer.Option("--database", help=_DB_HELP)] = None,
    ) -> None:
        """Print matching records straight from the chain (no index needed), oldest first."""
        from rich.console import Console
        from rich.table import Table

        from cmio.security.audit import AuditLog

        shown = ("seq", "recorded", "interaction", "outcome", "user_id", "patient", "resource")
        table = Table(*shown)
        found = 0
        with _repository(database) as repository:
            for row in AuditLog(repository).rows():
                if found >= limit:
                    break
                if since is not None and row.recorded < since:
                    continue
                values = dict(
                    zip(CSV_COLUMNS, csv_row(row.seq, orjson.loads(row.data)), strict=True)
                )
                if (patient and values["patient"] != patient) or (
                    user and values["user_id"] != user
                ):
                    continue
                if action and values["action"] != action.upper():
                    continue
                table.add_row(*(values[c] for c in shown))
                found += 1
        Console().print(table)
        typer.echo(f"{found:,} records")


class _repository:
    """Open the store (context manager)."""

    def __init__(self, database: str | None) -> None:
        from cmio.store import default_database_url, open_repository

        self.repository = open_repository(database or default_database_url())

    def __enter__(self) -> Any:
        return self.repository

    def __exit__(self, *exc: object) -> None:
        self.repository.close()


def _progress(rows: Iterator[Any], label: str) -> Iterator[Any]:
    """Yield ``rows`` while a progress bar counts them (on stderr)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn(f"{label} {{task.completed:,}} records"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        for n, row in enumerate(rows, 1):
            if n % 5000 == 0:
                bar.update(task, completed=n)
            yield row
