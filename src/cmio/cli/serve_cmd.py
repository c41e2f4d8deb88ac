"""``cmio serve``: run the FHIR API and web app on the embedded or PostgreSQL store."""

from __future__ import annotations

import os

import typer

from cmio.api.env import Settings
from cmio.store import default_database_url

__all__ = ["is_loopback", "register"]


def is_loopback(host: str) -> bool:
    """True when ``host`` binds to the loopback interface only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
        config: str = typer.Option(
            None, "--config", help="Environment file of CMIO_* variables (default: $CMIO_CONFIG)"
        ),
        log_format: str = typer.Option(
            "text", "--log-format", help="text, or json: one JSON object per line (with request id)"
        ),
        shutdown_timeout: int = typer.Option(
            30, "--shutdown-timeout", help="Seconds in-flight requests may take to finish on stop"
        ),
        no_auth: bool = typer.Option(
            False, "--no-auth", help="No authentication (refused unless --host is loopback)"
        ),
        issuer: str = typer.Option(
            None, "--issuer", help="Public origin of the built-in authorization server"
        ),
        oidc_issuer: str = typer.Option(
            None, "--oidc-issuer", help="Also accept the JWTs of this external OIDC issuer"
        ),
        tls_cert: str = typer.Option(
            None, "--tls-cert", help="TLS certificate chain (PEM); serves HTTPS with --tls-key"
        ),
        tls_key: str = typer.Option(
            None, "--tls-key", help="TLS private key (PEM, mode 0600/0400: readable by you only)"
        ),
        http: str = typer.Option(
            "cmio",
            "--http",
            help="HTTP/1.1 implementation: cmio (httptools, one socket write per response),"
            " or uvicorn's httptools, h11 or auto",
        ),
        loop: str = typer.Option("auto", "--loop", help="Event loop: auto (uvloop), asyncio"),
    ) -> None:
        """Serve the FHIR R4 API at http://HOST:PORT/fhir (https:// with --tls-cert/--tls-key)."""
        import uvicorn

        if http not in ("cmio", "httptools", "h11", "auto"):
            raise typer.BadParameter("use cmio, httptools, h11 or auto", param_hint="--http")
        if loop not in ("auto", "uvloop", "asyncio"):
            raise typer.BadParameter("use auto, uvloop or asyncio", param_hint="--loop")
        if config or os.environ.get("CMIO_CONFIG"):  # configuration by file
            from cmio.admin.config import ConfigError, apply_env_file

            try:
                apply_env_file(config or os.environ["CMIO_CONFIG"], os.environ)
            except ConfigError as exc:
                raise typer.BadParameter(str(exc), param_hint="--config") from None
        cert, key = _tls_files(tls_cert, tls_key)
        if log_format not in ("text", "json"):
            raise typer.BadParameter("use text or json", param_hint="--log-format")
        logs = None
        if log_format == "json":  # structured logs (cmio.admin.logs)
            from cmio.admin.logs import JsonLogging

            logs = JsonLogging()
            logs.install(log_level)
            os.environ["CMIO_LOG_LEVEL"] = log_level

        url = database or default_database_url()
        if no_auth:
            os.environ["CMIO_AUTH"] = "off"
        if issuer:
            os.environ["CMIO_ISSUER"] = issuer
        if oidc_issuer:
            os.environ["CMIO_OIDC_ISSUER"] = oidc_issuer
        if Settings.from_environment(os.environ).auth is None and not is_loopback(host):
            typer.echo(
                "error: --no-auth (CMIO_AUTH=off) is refused unless --host is loopback", err=True
            )
            raise typer.Exit(2)
        os.environ["CMIO_MAX_BODY_BYTES"] = str(max_body_bytes)
        os.environ["CMIO_MAX_BUNDLE_ENTRIES"] = str(max_bundle_entries)
        os.environ["CMIO_VALIDATION"] = validation
        settings = Settings.from_environment(os.environ)
        scheme = "https" if cert else "http"
        from cmio.api.serving import http_protocol

        protocol = http_protocol() if http == "cmio" else http  # one socket write per response
        typer.echo(
            f"cmio: FHIR API on {scheme}://{host}:{port}/fhir  (store: {url}, workers: {workers})"
        )
        if settings.auth is None:
            typer.echo("cmio: authentication is OFF (loopback only)")
        else:
            typer.echo("cmio: authentication on (users: cmio user add; apps: cmio client add)")
        if workers > 1:
            os.environ["CMIO_DATABASE_URL"] = url
            from cmio.api.app import build_env

            build_env(
                url
            ).repository.close()  # build the model cache and schema once, before forking
            from cmio.cli.serve_workers import WorkerStartError, run_workers

            options = {
                "app": "cmio.admin.logs:json_app_from_environment"
                if logs is not None
                else "cmio.api.app:app_from_environment",
                "factory": True,
                "timeout_graceful_shutdown": shutdown_timeout,
                "log_config": None if logs is not None else uvicorn.config.LOGGING_CONFIG,
                "host": host,
                "port": port,
                "log_level": log_level,
                "access_log": False,
                "http": protocol,
                "loop": loop,
                "ssl_certfile": cert,
                "ssl_keyfile": key,
            }
            try:  # one SO_REUSEPORT socket per worker: connections spread evenly
                run_workers(options, workers, grace=(shutdown_timeout or 30) + 5)
            except (OSError, WorkerStartError) as exc:
                typer.echo(f"cmio serve: {exc}", err=True)
                raise typer.Exit(1) from None
            return
        from cmio.api.app import create_app

        application = create_app(url, settings)
        try:
            uvicorn.run(
                application if logs is None else logs.middleware(application),
                timeout_graceful_shutdown=shutdown_timeout,  # drain in-flight requests
                log_config=None if logs is not None else uvicorn.config.LOGGING_CONFIG,
                host=host,
                port=port,
                log_level=log_level,
                access_log=False,
                http=protocol,
                loop=loop,
                ssl_certfile=cert,
                ssl_keyfile=key,
            )
        finally:
            application.close()


def _tls_files(cert: str | None, key: str | None) -> tuple[str | None, str | None]:
    """The TLS certificate and key, checked (the key readable by its owner only)."""
    from cmio.security.secrets import InsecureSecretError, check_private_file

    if cert is None and key is None:
        return None, None
    if cert is None or key is None:
        raise typer.BadParameter("give both --tls-cert and --tls-key", param_hint="--tls-cert")
    if not os.path.isfile(cert):
        raise typer.BadParameter(f"{cert}: no such file", param_hint="--tls-cert")
    try:
        check_private_file(key)
    except FileNotFoundError:
        raise typer.BadParameter(f"{key}: no such file", param_hint="--tls-key") from None
    except InsecureSecretError as exc:
        raise typer.BadParameter(str(exc), param_hint="--tls-key") from None
    return cert, key
