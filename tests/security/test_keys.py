"""Signing keys: first-start generation (0600), reload, PEM, rotation, refusal of open files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cmio.security.keys import KeyFileError, KeyRing


def test_generated_on_first_start_with_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "auth-keys.json"
    ring = KeyRing.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = KeyRing.load_or_create(path)
    assert again.current.kid == ring.current.kid
    jwks = ring.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [ring.current.kid]
    assert all("d" not in k for k in jwks["keys"])  # no private part published
    assert jwks["keys"][0]["alg"] == "ES256" and jwks["keys"][0]["use"] == "sig"


def test_rotation_keeps_old_public_keys(tmp_path: Path) -> None:
    rsa = KeyRing.generate("RS256")
    assert rsa.rotate().current.alg == "RS256"  # the algorithm carries over
    ring = KeyRing.generate()
    rotated = ring.rotate(keep=2).rotate(keep=2).rotate(keep=2)
    assert len(rotated.keys) == 3 and rotated.current.alg == "ES256"
    second = ring.rotate()
    assert second.current.kid != ring.current.kid
    assert second.find(ring.current.kid) is not None
    path = tmp_path / "keys.json"
    second.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = KeyRing.load(path)
    assert [k.kid for k in loaded.keys] == [k.kid for k in second.keys]


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_pem_key_file(tmp_path: Path, kind: str) -> None:
    private = (
        ec.generate_private_key(ec.SECP256R1())
        if kind == "ec"
        else rsa.generate_private_key(65537, 2048)
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "key.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    ring = KeyRing.load(path)
    assert ring.current.alg == ("ES256" if kind == "ec" else "RS256")
    assert ring.current.kid


def test_group_readable_or_malformed_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    KeyRing.generate().save(path)
    if os.name == "posix":
        path.chmod(0o640)
        with pytest.raises(KeyFileError, match="chmod 600"):
            KeyRing.load(path)
    path.chmod(0o600)
    public_only = {"keys": [KeyRing.generate().jwks()["keys"][0]]}
    path.write_text(json.dumps(public_only))
    with pytest.raises(KeyFileError, match="private"):
        KeyRing.load(path)
    path.write_text("not json")
    with pytest.raises(KeyFileError):
        KeyRing.load(path)
    with pytest.raises(ValueError):
        KeyRing.generate("HS256")


def test_concurrent_first_start_agrees_on_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "auth-keys.json"
    with ThreadPoolExecutor(8) as pool:
        rings = list(pool.map(lambda _: KeyRing.load_or_create(path), range(8)))
    assert len({ring.current.kid for ring in rings}) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["auth-keys.json"]  # no temporary left
