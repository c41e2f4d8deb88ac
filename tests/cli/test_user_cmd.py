"""``cmio user`` / ``cmio client``, demo users and the ``--no-auth`` loopback rule."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import click
import pytest
import typer
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from joserfc.jwk import RSAKey
from typer.testing import CliRunner as TyperRunner

from cmio.cli.main import app as typer_app
from cmio.cli.serve_cmd import is_loopback
from cmio.cli.user_cmd import ensure_demo_users
from cmio.security.kv import RepositoryKeyValue
from cmio.security.oauth.clients import ClientRegistry
from cmio.security.roles import ROLES
from cmio.security.users import UserStore
from cmio.store import open_repository


class _Cli:
    """The cmio command built once (typer rebuilds it on every invoke: ~0.7 s each)."""

    command: click.Command | None = None

    def invoke(self, args: list[str], input: str | None = None) -> Result:
        if _Cli.command is None:
            _Cli.command = typer.main.get_command(typer_app)
        return CliRunner().invoke(_Cli.command, args, input=input)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMIO_PASSWORD_TIME_COST", "1")
    monkeypatch.setenv("CMIO_PASSWORD_MEMORY_KIB", "8192")


def _secret(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "pw.txt"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def test_user_commands(tmp_path: Path) -> None:
    runner = _Cli()
    db = f"sqlite:///{tmp_path / 'cmio.db'}"
    pw = _secret(tmp_path, "a long password")
    added = runner.invoke(
        [
            "user",
            "add",
            "alice",
            "--role",
            "clinician",
            "--role",
            "analyst",
            "--fhir-user",
            "Practitioner/p1",
            "--password-file",
            str(pw),
            "--database",
            db,
        ],
    )
    assert added.exit_code == 0, added.output
    again = runner.invoke(
        [
            "user",
            "add",
            "alice",
            "--role",
            "clinician",
            "--password-file",
            str(pw),
            "--database",
            db,
        ],
    )
    assert again.exit_code == 2 and "already exists" in again.output
    bad_role = runner.invoke(
        ["user", "add", "bob", "--role", "surgeon", "--password-file", str(pw), "--database", db],
    )
    assert bad_role.exit_code == 2 and "unknown role" in bad_role.output
    listed = runner.invoke(["user", "list", "--json", "--database", db])
    rows = json.loads(listed.output)
    assert rows == [
        {
            "name": "alice",
            "roles": ["clinician", "analyst"],
            "fhirUser": "Practitioner/p1",
            "disabled": False,
        }
    ]
    assert "argon2" not in listed.output
    assert runner.invoke(["user", "disable", "alice", "--database", db]).exit_code == 0
    pw.write_text("a new password\n")
    assert (
        runner.invoke(
            ["user", "passwd", "alice", "--password-file", str(pw), "--database", db]
        ).exit_code
        == 0
    )
    open_pw = _secret(tmp_path, "world readable pw", 0o644)
    refused = runner.invoke(
        ["user", "passwd", "alice", "--password-file", str(open_pw), "--database", db]
    )
    assert refused.exit_code != 0
    prompted = TyperRunner().invoke(  # typer's runner answers the hidden prompt
        typer_app,
        ["user", "add", "carol", "--role", "executive", "--database", db],
        input="prompted password\nprompted password\n",
    )
    assert prompted.exit_code == 0, prompted.output
    repository = open_repository(db)
    try:
        users = UserStore(RepositoryKeyValue(repository), PasswordHasher(1, 8192))
        assert users.authenticate("alice", "a new password") is None  # disabled
        alice = users.get("alice")
        assert alice is not None and alice.disabled
        assert users.authenticate("carol", "prompted password") is not None
    finally:
        repository.close()


def test_client_commands(tmp_path: Path) -> None:
    runner = _Cli()
    db = f"sqlite:///{tmp_path / 'cmio.db'}"
    key = RSAKey.generate_key(2048, auto_kid=True)
    public = tmp_path / "jwks.json"
    public.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    ok = runner.invoke(
        [
            "client",
            "add",
            "etl",
            "--kind",
            "backend",
            "--jwks-file",
            str(public),
            "--scope",
            "system/*.rs",
            "--database",
            db,
        ],
    )
    assert ok.exit_code == 0, ok.output
    leaked = runner.invoke(
        [
            "client",
            "add",
            "etl2",
            "--kind",
            "backend",
            "--jwks-file",
            str(private),
            "--database",
            db,
        ],
    )
    assert leaked.exit_code == 2 and "private key" in leaked.output
    confidential = runner.invoke(
        [
            "client",
            "add",
            "portal",
            "--kind",
            "confidential",
            "--redirect-uri",
            "https://portal.example/cb",
            "--database",
            db,
        ],
    )
    assert "client secret (shown once): " in confidential.output
    secret = confidential.output.rsplit(": ", 1)[1].strip()
    no_uri = runner.invoke(["client", "add", "app", "--database", db])
    assert no_uri.exit_code == 2 and "redirect URI" in no_uri.output
    listed = runner.invoke(["client", "list", "--database", db]).output
    assert "etl\tbackend" in listed and "portal\tconfidential" in listed
    repository = open_repository(db)
    try:
        registry = ClientRegistry(RepositoryKeyValue(repository), PasswordHasher(1, 8192))
        portal = registry.get("portal")
        assert portal is not None and registry.check_secret(portal, secret)
    finally:
        repository.close()


def test_demo_users_file_is_private(tmp_path: Path) -> None:
    repository = open_repository(f"sqlite:///{tmp_path / 'cmio.db'}")
    try:
        path, pairs = ensure_demo_users(repository, tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [role for _, role in pairs] == list(ROLES)
        lines = [line.split("\t") for line in path.read_text().splitlines()]
        users = UserStore(RepositoryKeyValue(repository), PasswordHasher(1, 8192))
        for name, password, role in lines:
            user = users.authenticate(name, password)
            assert user is not None and user.roles == (role,)
        again, _ = ensure_demo_users(repository, tmp_path)  # a second run keeps them
        assert again.read_text() == path.read_text()
    finally:
        repository.close()


def test_no_auth_only_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host)
    for host in ("0.0.0.0", "::", "10.1.2.3", "example.org"):
        assert not is_loopback(host)
    # "on" (the default) is recorded, so the CMIO_AUTH=off that serve --no-auth writes into
    # os.environ is undone afterwards (it leaked into later tests' servers before)
    monkeypatch.setenv("CMIO_AUTH", "on")
    db = f"sqlite:///{tmp_path / 'cmio.db'}"
    refused = _Cli().invoke(["serve", "--no-auth", "--host", "0.0.0.0", "--database", db])
    assert refused.exit_code == 2 and "refused" in refused.output
    monkeypatch.setenv("CMIO_AUTH", "off")
    also = _Cli().invoke(["serve", "--host", "10.0.0.5", "--database", db])
    assert also.exit_code == 2


def test_key_rotation_command(tmp_path: Path) -> None:
    runner = _Cli()
    key_file = tmp_path / "auth-keys.json"
    first = runner.invoke(["auth-keys", "rotate", "--key-file", str(key_file)])
    assert first.exit_code == 0, first.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for _ in range(3):
        assert (
            runner.invoke(
                ["auth-keys", "rotate", "--key-file", str(key_file), "--keep", "2"]
            ).exit_code
            == 0
        )
    jwks = json.loads(runner.invoke(["auth-keys", "jwks", "--key-file", str(key_file)]).output)
    assert len(jwks["keys"]) == 3 and all("d" not in k for k in jwks["keys"])
    key_file.chmod(0o644)
    refused = runner.invoke(["auth-keys", "rotate", "--key-file", str(key_file)])
    assert refused.exit_code == 2 and "chmod 600" in refused.output
