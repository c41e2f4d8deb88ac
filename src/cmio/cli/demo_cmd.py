"""``cmio demo``: the whole platform in one command.

Creates the embedded store under ``--data-dir``, generates a synthetic health
system (``cmio synth``), imports it through the real import path (``cmio
import``), then serves the FHIR API and web app. A second run with the same
size and seed reuses the data. See issue 5 and https://hl7.org/fhir/R4/http.html.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["DEMO_MARKER", "register"]

DEMO_MARKER = "demo.json"


def _demo_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((data_dir / DEMO_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return state


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the CLI."""

    @app.command("demo")
    def demo(
        patients: Annotated[
            int, typer.Option("--patients", min=1, help="Patients to generate")
        ] = 2000,
        years: Annotated[
            float, typer.Option("--years", min=0.1, max=20, help="Years of care")
        ] = 1.0,
        seed: Annotated[int, typer.Option("--seed", help="Generator seed")] = 1,
        data_dir: Annotated[
            Path, typer.Option("--data-dir", help="Where the demo store lives")
        ] = Path("cmio-data/demo"),
        host: Annotated[str, typer.Option("--host", help="Interface to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="TCP port")] = 8080,
        regenerate: Annotated[
            bool, typer.Option("--regenerate", help="Discard and rebuild the data")
        ] = False,
        serve: Annotated[
            bool, typer.Option("--serve/--no-serve", help="Start the server afterwards")
        ] = True,
    ) -> None:
        """Generate a synthetic health system, import it, and serve API and web app."""
        from rich.console import Console

        console = Console(stderr=True)
        data_dir = data_dir.resolve()
        database_url = f"sqlite:///{data_dir / 'cmio.db'}"
        wanted = {"patients": patients, "years": years, "seed": seed}
        state = _demo_state(data_dir)
        if regenerate or state is None or any(state.get(k) != v for k, v in wanted.items()):
            state = _build(console, data_dir, database_url, patients, years, seed)
        else:
            console.print(
                f"Reusing the demo data in {data_dir} ({state['resources']:,} resources,"
                f" {state['patients']:,} patients; --regenerate to rebuild)",
                soft_wrap=True,
            )
        from cmio.cli.terminology_cmd import ensure_default_content

        # R4 core terminology, ICD-10-CM and UCUM (a marker makes the second run instant)
        ensure_default_content(data_dir / "terminology.db", database_url, console)
        if not serve:
            return
        _serve(console, database_url, data_dir, host, port, state)


def _build(
    console: Any, data_dir: Path, database_url: str, patients: int, years: float, seed: int
) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cmio.api.env import Settings
    from cmio.bulk.importer import ImportProgress, import_paths
    from cmio.cli.import_cmd import _print_summary
    from cmio.security.audit.jobs import JobAudit
    from cmio.synth import SynthConfig, generate

    audited = Settings.from_environment(os.environ).audit  # CMIO_AUDIT, on by default
    audit = JobAudit.for_command("demo") if audited else None

    started = time.perf_counter()
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    synth_dir = data_dir / "synth"
    workers = max(1, (os.cpu_count() or 2))
    config = SynthConfig(patients, synth_dir, years=years, seed=seed, workers=workers)
    with Progress(
        TextColumn("[bold]generate"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("patients"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("generate", total=patients)
        generated = generate(config, lambda n: bar.advance(task, n))
    console.print(f"Generated {generated.resources:,} resources in {generated.seconds:.1f} s")
    with Progress(
        TextColumn("[bold]import  "),
        BarColumn(bar_width=24),
        TextColumn("{task.fields[resources]:>9,} resources"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("import", total=None, resources=0)

        def progress(p: ImportProgress) -> None:
            bar.update(task, completed=p.bytes_done, total=p.bytes_total, resources=p.resources)

        summary = import_paths(
            database_url,
            [str(synth_dir)],
            workers=max(1, workers - 1),
            report_path=data_dir / "import-rejected.ndjson",
            progress=progress,
            audit=None if audit is None else audit.batch,  # the seeding is audited like any import
        )
    _print_summary(console, summary)
    if summary.rejected:
        console.print(
            f"[red]{summary.rejected} resources were rejected[/red]; see {summary.report_path}"
        )
    state = {
        "patients": patients,
        "years": years,
        "seed": seed,
        "resources": summary.totals().created
        + summary.totals().updated
        + summary.totals().unchanged,
        "rejected": summary.rejected,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (data_dir / DEMO_MARKER).write_text(json.dumps(state, indent=2))
    console.print(f"Demo data ready in {state['seconds']} s")
    return state


def _serve(
    console: Any, database_url: str, data_dir: Path, host: str, port: int, state: dict[str, Any]
) -> None:
    import uvicorn

    from cmio.api.app import create_app
    from cmio.api.env import Settings
    from cmio.api.hardening import HardeningPolicy

    application = create_app(
        database_url,
        Settings(
            export_dir=str(data_dir / "exports"),
            terminology_db=str(data_dir / "terminology.db"),
            auth=_demo_auth(host),  # on, keys beside the store; CMIO_AUTH=off on loopback only
            audit=os.environ.get("CMIO_AUDIT", "on").lower() != "off",  # every access recorded
            hardening=HardeningPolicy.from_environment(os.environ),  # CORS, rate limit
        ),
    )
    sample = _sample_patient(application)
    base = f"http://{host}:{port}"
    if application.auth is not None:  # one demo user per role, passwords in a 0600 file
        from cmio.cli.user_cmd import ensure_demo_users

        users_file, _ = ensure_demo_users(application.env.repository, data_dir)
        console.print(f"\nSign in at {base}/auth/login as one of (user, password, role):")
        console.print(users_file.read_text(encoding="utf-8"), soft_wrap=True, markup=False)
        console.print(f"(kept in {users_file}, mode 0600)", soft_wrap=True)
    console.print(
        f"\n[bold]cmio demo[/bold]: {state['patients']:,} patients, {state['resources']:,} resources"
    )
    console.print(f"  web app             {base}/", soft_wrap=True)
    console.print(f"  FHIR API            {base}/fhir/metadata", soft_wrap=True)
    if sample:
        console.print(
            f"  a patient's record  {base}/fhir/Patient/{sample}/$everything", soft_wrap=True
        )
    console.print(f"  history             {base}/fhir/_history?_count=10\n", soft_wrap=True)
    # one process, people about to look: compute the dashboards' summaries now
    application.web.ctx.cache.start()
    try:
        uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
    finally:
        application.close()


def _demo_auth(host: str) -> Any:
    from cmio.cli.serve_cmd import is_loopback
    from cmio.security.oauth.settings import AuthSettings

    auth = AuthSettings.from_environment(os.environ)
    if auth is None and not is_loopback(host):
        raise typer.BadParameter("CMIO_AUTH=off is refused unless --host is loopback")
    return auth


def _sample_patient(application: Any) -> str | None:
    from cmio.store.base import SearchQuery

    page = application.env.repository.search(SearchQuery("Patient", count=1, total=False))
    return page.resources[0].id if page.resources else None
