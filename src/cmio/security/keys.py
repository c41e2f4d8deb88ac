"""Token signing keys: generated on first start (0600) or read from a file; the JWKS.

Access tokens are signed with ES256 (default) or RS256 (RFC 7518 section 3.1). A
rotation makes a new key current and keeps the old public keys in the JWKS, so
tokens issued before the rotation stay valid until they expire
(https://hl7.org/fhir/smart-app-launch/app-launch.html#response-5).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, RSAKey

__all__ = ["SIGNING_ALGORITHMS", "KeyFileError", "KeyRing", "SigningKey"]

SIGNING_ALGORITHMS = ("ES256", "RS256")
"""The algorithms the built-in server signs with (and accepts on its own tokens)."""

Key = ECKey | RSAKey


class KeyFileError(Exception):
    """The key file is unreadable, malformed or readable by other users."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key of the ring, with the algorithm it signs with."""

    key: Key
    alg: str

    @property
    def kid(self) -> str:
        """The key id (the RFC 7638 thumbprint)."""
        return str(self.key.kid or self.key.thumbprint())

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK with ``kid``, ``alg`` and ``use``."""
        jwk: dict[str, Any] = dict(self.key.as_dict(private=False))
        jwk.update(kid=self.kid, alg=self.alg, use="sig")
        return jwk


def _generate(alg: str) -> SigningKey:
    if alg == "ES256":
        return SigningKey(ECKey.generate_key("P-256", auto_kid=True), alg)
    if alg == "RS256":
        return SigningKey(RSAKey.generate_key(2048, auto_kid=True), alg)
    raise ValueError(f"signing algorithm must be one of {SIGNING_ALGORITHMS}, not {alg!r}")


class KeyRing:
    """The current signing key and the older public keys still accepted."""

    def __init__(self, keys: list[SigningKey]) -> None:
        """The first key of ``keys`` signs; the others only verify."""
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.keys = list(keys)

    @classmethod
    def generate(cls, alg: str = "ES256") -> KeyRing:
        """A ring with one fresh key."""
        return cls([_generate(alg)])

    @property
    def current(self) -> SigningKey:
        """The key new tokens are signed with."""
        return self.keys[0]

    def find(self, kid: str) -> SigningKey | None:
        """The key with id ``kid``, or None."""
        return next((k for k in self.keys if k.kid == kid), None)

    def rotate(self, alg: str | None = None, keep: int = 3) -> KeyRing:
        """A new ring whose current key is fresh; up to ``keep`` old keys still verify."""
        return KeyRing([_generate(alg or self.current.alg), *self.keys[:keep]])

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (RFC 7517 section 5) served at ``/auth/jwks``."""
        return {"keys": [k.public_jwk() for k in self.keys]}

    def to_json(self) -> dict[str, Any]:
        """The private key set (for the 0600 key file)."""
        keys = []
        for k in self.keys:
            jwk = dict(k.key.as_dict(private=True))
            jwk.update(kid=k.kid, alg=k.alg)
            keys.append(jwk)
        return {"keys": keys}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRing:
        """Read a private JWK Set written by :meth:`to_json` (first key signs)."""
        keys: list[SigningKey] = []
        for jwk in data.get("keys", []):
            alg = jwk.get("alg", "ES256" if jwk.get("kty") == "EC" else "RS256")
            if alg not in SIGNING_ALGORITHMS:
                raise KeyFileError(f"key {jwk.get('kid')!r}: algorithm {alg!r} not supported")
            fields = {k: v for k, v in jwk.items() if k not in ("alg", "use")}
            key: Key = (
                ECKey.import_key(fields) if jwk.get("kty") == "EC" else RSAKey.import_key(fields)
            )
            if not key.is_private:
                raise KeyFileError(f"key {jwk.get('kid')!r} has no private part")
            keys.append(SigningKey(key, alg))
        if not keys:
            raise KeyFileError("the key file holds no key")
        return cls(keys)

    def save(self, path: Path) -> None:
        """Write the private key set to ``path`` with permissions 0600."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self.to_json(), out)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """Read a key file: a private JWK Set or a PEM private key (EC P-256 or RSA).

        Raises:
            KeyFileError: the file is readable by group or others, or malformed.
        """
        mode = path.stat().st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"{path} must not be accessible by group or others (chmod 600)")
        text = path.read_text(encoding="utf-8")
        try:
            if text.lstrip().startswith("-----BEGIN"):
                return cls([_from_pem(text)])
            return cls.from_json(json.loads(text))
        except KeyFileError:
            raise
        except Exception as exc:  # malformed JSON or key material
            raise KeyFileError(f"{path}: not a private JWK Set or PEM key ({exc})") from exc

    @classmethod
    def load_or_create(cls, path: Path, alg: str = "ES256") -> KeyRing:
        """Read ``path``, or create it (exclusively, 0600) with a fresh key on first start."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            ring = cls.generate(alg)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(ring.to_json(), out)
            try:  # publish complete: a link fails if another worker published first
                os.link(tmp, path)
            except FileExistsError:
                return cls.load(path)
            finally:
                os.unlink(tmp)
            return ring
        return cls.load(path)


def _from_pem(text: str) -> SigningKey:
    if "EC PRIVATE" in text or _is_ec_pem(text):
        return SigningKey(ECKey.import_key(text), "ES256")
    return SigningKey(RSAKey.import_key(text), "RS256")


def _is_ec_pem(text: str) -> bool:
    try:
        ECKey.import_key(text)
    except Exception:
        return False
    return True
