"""``cmio governance``: lifecycle decisions, diffs, change requests and the agenda.

``submit|approve|reject|activate|retire TYPE/ID`` move a governed artifact along its
lifecycle as the user named by ``--user`` with the organization roles ``--role`` (the
CLI runs with the operator's local rights; the roles decide as on the API). ``diff``
compares two versions; ``requests`` manages the change-request board; ``agenda`` exports
the steering-committee agenda and minutes. See docs/governance.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

_DATABASE = typer.Option("--database", help="Store URL (default: $CMIO_DATABASE_URL)")
_USER = typer.Option("--user", help="Who decides (recorded in the Provenance)")
_ROLE = typer.Option("--role", help="The user's organization role (repeatable)")


def _governance(database: str | None) -> Any:
    """The governance service over the store with its search indexer."""
    from cmio.governance import ApprovalPolicy, Governance
    from cmio.indexing import SearchIndexer
    from cmio.model import load_model
    from cmio.store import default_database_url, open_repository

    text = os.environ.get("CMIO_GOVERNANCE_APPROVERS")
    try:
        policy = ApprovalPolicy.parse(text) if text else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="CMIO_GOVERNANCE_APPROVERS") from None
    url = database or default_database_url()
    repository = open_repository(url, indexer=SearchIndexer(load_model()))
    from cmio.cli.governance_impact_cmd import impact_recorder

    impact = impact_recorder(repository)  # summary recorded in submit/approve Provenance
    return Governance(repository, policy, audit=True, impact=impact)  # audited here, not by the API


def _grant(user: str, roles: list[str] | None) -> Any:
    from cmio.security.grant import AccessGrant

    return AccessGrant(user, "local", frozenset({"system/*.cruds"}), roles=frozenset(roles or []))


def _split(reference: str) -> tuple[str, str]:
    rtype, _, rid = reference.partition("/")
    if not rtype or not rid or "/" in rid:
        raise typer.BadParameter(f"'{reference}' is not TYPE/ID", param_hint="ARTIFACT")
    return rtype, rid


def _fail(error: Exception) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(1)


def _register_transitions(group: typer.Typer) -> None:
    from cmio.governance import ACTIONS

    def make(action: str) -> None:
        def command(
            artifact: Annotated[str, typer.Argument(help="TYPE/ID, e.g. ValueSet/a1c")],
            user: Annotated[str, _USER],
            role: Annotated[list[str] | None, _ROLE] = None,
            comment: Annotated[str | None, typer.Option(help="Comment or reason")] = None,
            database: Annotated[str | None, _DATABASE] = None,
        ) -> None:
            from cmio.governance import GovernanceError
            from cmio.store.base import StoreError

            rtype, rid = _split(artifact)
            governance = _governance(database)
            try:
                decision = governance.transition(rtype, rid, action, _grant(user, role), comment)
            except (GovernanceError, StoreError) as error:
                raise _fail(error) from None
            finally:
                governance.repository.close()
            target = decision.provenance["target"][0]["reference"]
            typer.echo(f"{target}: {action} -> {decision.state}")

        command.__doc__ = f"{action.capitalize()} a governed artifact (lifecycle decision)."
        group.command(action)(command)

    for action in ACTIONS:
        make(action)


def _register_requests(group: typer.Typer) -> None:
    requests = typer.Typer(no_args_is_help=True, help="Change requests (Task) and their board")
    group.add_typer(requests, name="requests")

    @requests.command("board")
    def board(database: Annotated[str | None, _DATABASE] = None) -> None:
        """The change requests by status column."""
        from rich.console import Console
        from rich.table import Table

        from cmio.governance.requests import ChangeRequests

        governance = _governance(database)
        try:
            columns = ChangeRequests(governance).board()
        finally:
            governance.repository.close()
        table = Table("status", "request", "priority", "change", "requester", "outputs")
        for status, tasks in columns.items():
            for task in tasks:
                table.add_row(
                    status,
                    f"Task/{task['id']}",
                    str(task.get("priority")),
                    str(task.get("description")),
                    str((task.get("requester") or {}).get("display")),
                    str(len(task.get("output") or [])),
                )
        Console(width=160).print(table)

    @requests.command("new")
    def new(
        description: Annotated[str, typer.Argument(help="The change asked for")],
        rationale: Annotated[str, typer.Option(help="The clinical rationale")],
        user: Annotated[str, _USER],
        role: Annotated[list[str] | None, _ROLE] = None,
        priority: Annotated[str, typer.Option(help="routine, urgent, asap or stat")] = "routine",
        artifact: Annotated[list[str] | None, typer.Option(help="Type/id concerned")] = None,
        database: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """Open a change request."""
        from cmio.governance import GovernanceError
        from cmio.governance.requests import ChangeRequests

        governance = _governance(database)
        try:
            task = ChangeRequests(governance).create(
                _grant(user, role), description, rationale, priority, artifact
            )
        except GovernanceError as error:
            raise _fail(error) from None
        finally:
            governance.repository.close()
        typer.echo(f"Task/{task['id']} requested")

    @requests.command("move")
    def move(
        task_id: Annotated[str, typer.Argument(help="The Task id")],
        status: Annotated[str, typer.Argument(help="accepted, in-progress, completed, rejected")],
        user: Annotated[str, _USER],
        role: Annotated[list[str] | None, _ROLE] = None,
        note: Annotated[str | None, typer.Option(help="A note (required to reject)")] = None,
        output: Annotated[
            list[str] | None, typer.Option(help="Artifact version produced: Type/id/_history/n")
        ] = None,
        database: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """Link produced artifact versions, then move a change request on the board."""
        from cmio.governance import GovernanceError
        from cmio.governance.requests import ChangeRequests
        from cmio.store.base import StoreError

        governance = _governance(database)
        requests_ = ChangeRequests(governance)
        grant = _grant(user, role)
        try:
            for ref in output or []:
                requests_.link_output(task_id, ref, grant)
            task = requests_.move(task_id, status, grant, note)
        except (GovernanceError, StoreError) as error:
            raise _fail(error) from None
        finally:
            governance.repository.close()
        typer.echo(f"Task/{task_id} {task['status']}")


def register(app: typer.Typer) -> None:
    """Add the ``governance`` command group to ``app``."""
    group = typer.Typer(no_args_is_help=True, help="Governed artifacts and change requests")
    app.add_typer(group, name="governance")
    _register_transitions(group)
    _register_requests(group)
    from cmio.cli.governance_impact_cmd import register_impact

    register_impact(group)  # cmio governance impact TYPE/ID

    @group.command("diff")
    def diff(
        artifact: Annotated[str, typer.Argument(help="TYPE/ID of the newer version")],
        other: Annotated[str, typer.Option(help="The older version: url|version or TYPE/ID")],
        expand: Annotated[
            bool, typer.Option(help="Compare value set expansions (else the compose's codes)")
        ] = True,
        database: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """Codes added/removed and logic changes between two versions (JSON)."""
        import orjson

        from cmio.governance import diff_artifacts
        from cmio.terminology.factory import open_terminology

        rtype, rid = _split(artifact)
        governance = _governance(database)
        repository = governance.repository
        terminology = open_terminology(repository)
        try:
            right = orjson.loads(repository.read(rtype, rid).data or b"{}")
            if "|" in other or not other.startswith(f"{rtype}/"):
                url, _, version = other.partition("|")
                left = governance.find(rtype, url, version or None)
                if left is None:
                    raise _fail(ValueError(f"no {rtype} {other}"))
            else:
                left = orjson.loads(repository.read(*_split(other)).data or b"{}")
            result = diff_artifacts(left, right, terminology if expand else None)
        except Exception as error:
            if isinstance(error, typer.Exit):
                raise
            raise _fail(error) from None
        finally:
            terminology.close()
            repository.close()
        typer.echo(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2).decode())

    @group.command("agenda")
    def agenda(
        start: Annotated[str, typer.Option(help="Period start (FHIR date or instant)")],
        end: Annotated[str, typer.Option(help="Period end, exclusive")],
        fmt: Annotated[str, typer.Option("--format", help="md or html")] = "md",
        out: Annotated[Path | None, typer.Option(help="Write to this file")] = None,
        database: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """The steering-committee agenda (open requests) and minutes (decisions)."""
        from cmio.governance.agenda import build_agenda
        from cmio.governance.requests import ChangeRequests

        if fmt not in ("md", "html"):
            raise typer.BadParameter("md or html", param_hint="--format")
        governance = _governance(database)
        try:
            built = build_agenda(ChangeRequests(governance), start, end)
        finally:
            governance.repository.close()
        text = built.to_html() if fmt == "html" else built.to_markdown()
        if out is None:
            typer.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
            typer.echo(
                f"{out}: {len(built.open_requests)} open request(s), "
                f"{len(built.decisions)} decision(s)"
            )
