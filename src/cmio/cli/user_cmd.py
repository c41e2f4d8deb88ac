"""``cmio user`` and ``cmio client``: accounts and OAuth clients of the built-in server.

Users and clients live in the store (``--database``), so a running server sees a
change at once. Passwords come from a prompt or an owner-only file, never from the
command line. ``cmio demo`` calls :func:`ensure_demo_users`.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from cmio.security.roles import ROLES

__all__ = ["DEMO_USERS_FILE", "ensure_demo_users", "register"]

DEMO_USERS_FILE = "demo-users.txt"

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database", help="Database URL (default: $CMIO_DATABASE_URL or the embedded store)"
    ),
]


@contextmanager
def _stores(database: str | None) -> Iterator[tuple[Any, Any]]:
    """The user store and client registry of a database."""
    from cmio.security.kv import RepositoryKeyValue
    from cmio.security.oauth.clients import ClientRegistry
    from cmio.security.users import UserStore
    from cmio.store import default_database_url, open_repository

    hasher = _hasher()
    repository = open_repository(database or default_database_url())
    try:
        kv = RepositoryKeyValue(repository)
        yield UserStore(kv, hasher), ClientRegistry(kv, hasher)
    finally:
        repository.close()


def _hasher() -> Any:
    """argon2id with the costs of the environment (``CMIO_PASSWORD_*``) or the defaults."""
    from argon2 import PasswordHasher

    from cmio.security.oauth.settings import AuthSettings

    settings = AuthSettings.from_environment({**os.environ, "CMIO_AUTH": "on"}) or AuthSettings()
    return PasswordHasher(
        time_cost=settings.password_time_cost, memory_cost=settings.password_memory_kib
    )


def _password(password_file: Path | None) -> str:
    if password_file is None:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    from cmio.security.secrets import read_secret_file

    try:
        return read_secret_file(password_file).decode("utf-8")
    except (OSError, LookupError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--password-file") from exc


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add the ``user`` and ``client`` command groups to the CLI."""
    users = typer.Typer(no_args_is_help=True, help="Users of the built-in login (argon2id hashes)")
    clients = typer.Typer(no_args_is_help=True, help="OAuth clients (SMART apps, backend services)")
    app.add_typer(users, name="user")
    app.add_typer(clients, name="client")

    @users.command("add")
    def user_add(
        name: Annotated[str, typer.Argument(help="User name")],
        role: Annotated[
            list[str], typer.Option("--role", help=f"Role (repeatable): {', '.join(ROLES)}")
        ],
        fhir_user: Annotated[
            str | None, typer.Option("--fhir-user", help="e.g. Practitioner/123")
        ] = None,
        password_file: Annotated[
            Path | None, typer.Option("--password-file", help="Owner-only file with the password")
        ] = None,
        database: DatabaseOption = None,
    ) -> None:
        """Create a user (the password is prompted for unless --password-file)."""
        from cmio.security.users import UserError

        password = _password(password_file)
        with _stores(database) as (store, _):
            try:
                store.add(name, password, role, fhir_user)
            except UserError as exc:
                _fail(str(exc))
        typer.echo(f"user {name} added ({', '.join(role)})")

    @users.command("list")
    def user_list(
        as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
        database: DatabaseOption = None,
    ) -> None:
        """List users (never their hashes)."""
        with _stores(database) as (store, _):
            rows = [
                {
                    "name": u.name,
                    "roles": list(u.roles),
                    "fhirUser": u.fhir_user,
                    "disabled": u.disabled,
                }
                for u in store.list()
            ]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            state = " (disabled)" if row["disabled"] else ""
            typer.echo(f"{row['name']}\t{','.join(row['roles'])}\t{row['fhirUser'] or '-'}{state}")

    @users.command("disable")
    def user_disable(
        name: Annotated[str, typer.Argument(help="User name")],
        enable: Annotated[bool, typer.Option("--enable", help="Enable again")] = False,
        database: DatabaseOption = None,
    ) -> None:
        """Disable a user (no new logins or tokens; --enable reverses)."""
        from cmio.security.users import UserError

        with _stores(database) as (store, _):
            try:
                store.set_disabled(name, not enable)
            except UserError as exc:
                _fail(str(exc))
        typer.echo(f"user {name} {'enabled' if enable else 'disabled'}")

    @users.command("passwd")
    def user_passwd(
        name: Annotated[str, typer.Argument(help="User name")],
        password_file: Annotated[
            Path | None, typer.Option("--password-file", help="Owner-only file with the password")
        ] = None,
        database: DatabaseOption = None,
    ) -> None:
        """Set a user's password."""
        from cmio.security.users import UserError

        password = _password(password_file)
        with _stores(database) as (store, _):
            try:
                store.set_password(name, password)
            except UserError as exc:
                _fail(str(exc))
        typer.echo(f"password of {name} changed")

    @clients.command("add")
    def client_add(
        client_id: Annotated[str, typer.Argument(help="Client id")],
        kind: Annotated[
            str, typer.Option("--kind", help="public, confidential or backend")
        ] = "public",
        redirect_uri: Annotated[
            list[str] | None, typer.Option("--redirect-uri", help="Exact redirect URI (repeatable)")
        ] = None,
        scope: Annotated[
            list[str] | None,
            typer.Option("--scope", help="Allowed scope (repeatable; backend: system/...)"),
        ] = None,
        jwks_file: Annotated[
            Path | None, typer.Option("--jwks-file", help="Backend client's public JWKS (JSON)")
        ] = None,
        jwks_url: Annotated[
            str | None, typer.Option("--jwks-url", help="Or where the client publishes it")
        ] = None,
        name: Annotated[str, typer.Option("--name", help="Shown on the consent page")] = "",
        database: DatabaseOption = None,
    ) -> None:
        """Register a client; a confidential client's secret is printed once."""
        jwks = None
        if jwks_file is not None:
            try:
                jwks = json.loads(jwks_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                _fail(f"{jwks_file}: {exc}")
            if any("d" in key for key in (jwks or {}).get("keys", [])):
                _fail(f"{jwks_file} holds a private key: register the public JWKS only")
        with _stores(database) as (_, registry):
            try:
                _, secret = registry.register(
                    client_id,
                    kind,  # type: ignore[arg-type]  # checked by register
                    name=name,
                    redirect_uris=tuple(redirect_uri or ()),
                    scopes=tuple(scope or ()),
                    jwks=jwks,
                    jwks_url=jwks_url,
                )
            except ValueError as exc:
                _fail(str(exc))
        typer.echo(f"client {client_id} registered ({kind})")
        if secret:
            typer.echo(f"client secret (shown once): {secret}")

    keys = typer.Typer(no_args_is_help=True, help="Token signing keys (auth-keys.json)")
    app.add_typer(keys, name="auth-keys")

    @keys.command("rotate")
    def keys_rotate(
        key_file: Annotated[
            Path, typer.Option("--key-file", help="The key file (default: beside the store)")
        ] = Path("cmio-data/auth-keys.json"),
        alg: Annotated[str | None, typer.Option("--alg", help="ES256 or RS256")] = None,
        keep: Annotated[int, typer.Option("--keep", min=1, help="Old keys kept to verify")] = 3,
    ) -> None:
        """Make a new signing key; old public keys keep verifying until dropped by --keep.
        Restart the server to sign with the new key."""
        from cmio.security.keys import KeyFileError, KeyRing

        try:
            ring = KeyRing.load(key_file) if key_file.exists() else KeyRing.generate(alg or "ES256")
            rotated = ring.rotate(alg, keep=keep) if key_file.exists() else ring
        except (KeyFileError, ValueError) as exc:
            _fail(str(exc))
        rotated.save(key_file)
        typer.echo(f"signing key {rotated.current.kid} ({rotated.current.alg}) in {key_file}")

    @keys.command("jwks")
    def keys_jwks(
        key_file: Annotated[Path, typer.Option("--key-file", help="The key file")] = Path(
            "cmio-data/auth-keys.json"
        ),
    ) -> None:
        """Print the public JWK Set (as served at /auth/jwks)."""
        from cmio.security.keys import KeyFileError, KeyRing

        try:
            typer.echo(json.dumps(KeyRing.load(key_file).jwks(), indent=2))
        except (KeyFileError, OSError) as exc:
            _fail(str(exc))

    @clients.command("list")
    def client_list(database: DatabaseOption = None) -> None:
        """List registered clients."""
        with _stores(database) as (_, registry):
            for client in registry.list():
                uris = " ".join(client.redirect_uris) or "-"
                typer.echo(f"{client.client_id}\t{client.kind}\t{uris}\t{' '.join(client.scopes)}")


def ensure_demo_users(repository: Any, data_dir: Path) -> tuple[Path, list[tuple[str, str]]]:
    """One user per role (``demo-<role>``) with random passwords, written to
    ``demo-users.txt`` (0600) in ``data_dir``; existing demo users are kept.

    Returns:
        The file and the (user, role) pairs.
    """
    from cmio.security.kv import RepositoryKeyValue
    from cmio.security.users import UserStore
    from cmio.store.base import SearchQuery

    store = UserStore(RepositoryKeyValue(repository), _hasher())
    path = data_dir / DEMO_USERS_FILE
    page = repository.search(SearchQuery("Practitioner", count=1, total=False))
    practitioner = f"Practitioner/{page.resources[0].id}" if page.resources else None
    lines: list[str] = []
    pairs: list[tuple[str, str]] = []
    for role in ROLES:
        name = f"demo-{role}"
        pairs.append((name, role))
        if store.get(name) is not None:
            continue
        password = secrets.token_urlsafe(12)
        fhir_user = practitioner if role == "clinician" else None
        store.add(name, password, [role], fhir_user)
        lines.append(f"{name}\t{password}\t{role}")
    if lines:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in lines))
    if path.exists():
        os.chmod(path, 0o600)
    return path, pairs
