"""``cmio serve``: run the FHIR API and web app on the embedded or PostgreSQL store."""

from __future__ import annotations

import os

import typer

from cmio.api.env import Settings
from cmio.store import default_database_url

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the CLI."""

    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
        port: int = typer.Option(8080, help="TCP port"),
        database: str = typer.Option(
            None,
            "--database",
            help="Database URL (default: $CMIO_DATABASE_URL or sqlite:///cmio-data/cmio.db)",
        ),
        workers: int = typer.Option(
            1, help="Server processes (each opens its own store connections)"
        ),
        max_body_bytes: int = typer.Option(16 * 1024 * 1024, help="Larger request bodies get 413"),
        max_bundle_entries: int = typer.Option(10_000, help="Larger Bundles get 413"),
        validation: str = typer.Option(
            "base",
            help="Checks on write beyond structure: off, base (R4 invariants and required"
            " bindings) or profiles (also meta.profile)",
        ),
        log_level: str = typer.Option("warning", help="uvicorn log level"),
    ) -> None:
        """Serve the FHIR R4 API at http://HOST:PORT/fhir."""
        import uvicorn

        url = database or default_database_url()
        os.environ["CMIO_MAX_BODY_BYTES"] = str(max_body_bytes)
        os.environ["CMIO_MAX_BUNDLE_ENTRIES"] = str(max_bundle_entries)
        os.environ["CMIO_VALIDATION"] = validation
        settings = Settings.from_environment(os.environ)
        typer.echo(
            f"cmio: FHIR API on http://{host}:{port}/fhir  (store: {url}, workers: {workers})"
        )
        if workers > 1:
            os.environ["CMIO_DATABASE_URL"] = url
            from cmio.api.app import build_env

            build_env(
                url
            ).repository.close()  # build the model cache and schema once, before forking
            uvicorn.run(
                "cmio.api.app:app_from_environment",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level=log_level,
                access_log=False,
            )
            return
        from cmio.api.app import create_app

        application = create_app(url, settings)
        try:
            uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False)
        finally:
            application.close()
