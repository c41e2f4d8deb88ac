"""Users: argon2id hashes, roles, fhirUser, disabled flag, shared through the store."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from cmio.security.kv import MemoryKeyValue, RepositoryKeyValue
from cmio.security.users import UserError, UserStore
from cmio.store import open_repository

FAST = PasswordHasher(time_cost=1, memory_cost=8 * 1024)


def test_add_and_authenticate() -> None:
    users = UserStore(MemoryKeyValue(), FAST)
    user = users.add("alice", "a long password", ["clinician", "analyst"], "Practitioner/p1")
    assert user.password_hash.startswith("$argon2id$")
    assert "a long password" not in user.password_hash
    assert users.authenticate("alice", "a long password") == user
    assert users.authenticate("alice", "a wrong password") is None
    assert users.authenticate("nobody", "a long password") is None
    assert [u.name for u in users.list()] == ["alice"]


@pytest.mark.parametrize(
    ("name", "password", "roles", "fhir_user", "message"),
    [
        ("bob", "short", ["clinician"], None, "at least"),
        ("bob", "long enough pw", ["surgeon"], None, "unknown role"),
        ("bob", "long enough pw", [], None, "at least one role"),
        ("../bob", "long enough pw", ["clinician"], None, "not valid"),
        ("bob", "long enough pw", ["clinician"], "Observation/1", "fhirUser"),
    ],
)
def test_bad_input_is_refused(
    name: str, password: str, roles: list[str], fhir_user: str | None, message: str
) -> None:
    users = UserStore(MemoryKeyValue(), FAST)
    with pytest.raises(UserError, match=message):
        users.add(name, password, roles, fhir_user)
    assert users.list() == []


def test_disable_passwd_and_duplicates(tmp_path: Path) -> None:
    repository = open_repository(f"sqlite:///{tmp_path / 'u.db'}")
    try:
        users = UserStore(RepositoryKeyValue(repository), FAST)
        users.add("carol", "first password", ["administrator"])
        with pytest.raises(UserError, match="already exists"):
            users.add("carol", "other password", ["analyst"])
        users.set_disabled("carol")
        assert users.authenticate("carol", "first password") is None
        users.set_disabled("carol", False)
        users.set_password("carol", "second password")
        assert users.authenticate("carol", "first password") is None
        assert users.authenticate("carol", "second password") is not None
        with pytest.raises(UserError, match="no user"):
            users.set_disabled("dave")
        # another process (a new store connection) sees the same users
        other = open_repository(f"sqlite:///{tmp_path / 'u.db'}")
        try:
            assert UserStore(RepositoryKeyValue(other), FAST).get("carol") is not None
        finally:
            other.close()
    finally:
        repository.close()


def test_weak_hash_is_upgraded_on_login() -> None:
    kv = MemoryKeyValue()
    UserStore(kv, PasswordHasher(time_cost=1, memory_cost=8 * 1024)).add(
        "erin", "my password!", ["analyst"]
    )
    stronger = UserStore(kv, PasswordHasher(time_cost=2, memory_cost=8 * 1024))
    assert stronger.authenticate("erin", "my password!") is not None
    upgraded = stronger.get("erin")
    assert upgraded is not None and "t=2" in upgraded.password_hash


@pytest.mark.postgres
def test_users_and_revocations_on_postgresql(postgres_url: str) -> None:
    import uuid

    import psycopg

    from cmio.security.tokens import Revocations
    from cmio.testing.pg import with_search_path

    schema = f"auth_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = with_search_path(postgres_url, schema)
    repository = open_repository(url)
    other = open_repository(url)
    try:
        UserStore(RepositoryKeyValue(repository), FAST).add("pg-user", "pg password!", ["analyst"])
        shared = UserStore(RepositoryKeyValue(other), FAST)
        assert shared.authenticate("pg-user", "pg password!") is not None

        def bump(doc: dict[str, Any] | None) -> dict[str, Any]:
            return {"n": (doc or {}).get("n", 0) + 1}

        def worker(kv: RepositoryKeyValue) -> None:
            for _ in range(30):
                kv.update("counter", bump)

        threads = [
            threading.Thread(target=worker, args=(RepositoryKeyValue(r),))
            for r in (repository, other)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert RepositoryKeyValue(repository).get("counter") == {"n": 60}  # no lost update
        Revocations(RepositoryKeyValue(repository)).revoke("jti-1", 2e9)
        assert Revocations(RepositoryKeyValue(other)).is_revoked("jti-1")
        assert not Revocations(RepositoryKeyValue(other)).is_revoked("jti-2")
    finally:
        other.close()
        repository.close()
