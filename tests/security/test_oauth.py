"""The authorization server without HTTP: scope narrowing, request checks, codes, grants."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from cmio.security.keys import KeyRing
from cmio.security.kv import MemoryKeyValue
from cmio.security.oauth import authorize, grants
from cmio.security.oauth.errors import OAuthError
from cmio.security.oauth.narrowing import narrow_scopes
from cmio.security.oauth.server import AuthServer
from cmio.security.oauth.settings import AuthSettings

BASE = "https://cmio.example/fhir"
REDIRECT = "https://app.example/cb"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def server(clock: Clock) -> AuthServer:
    settings = AuthSettings(password_time_cost=1, password_memory_kib=8 * 1024)
    auth = AuthServer(
        settings,
        MemoryKeyValue(),
        KeyRing.generate(),
        clock=clock,
        patient_exists=lambda pid: pid in ("p1", "p2"),
    )
    auth.users.add("ana", "analyst password", ["analyst"])
    auth.users.add("pat", "patient password", ["clinician"], "Patient/p2")
    auth.clients.register("app", "public", redirect_uris=(REDIRECT,))
    return auth


def test_narrowing() -> None:
    allowed = ["user/*.rs", "user/Observation.cruds", "system/Patient.rs?active=true"]
    asked = [
        "patient/Observation.rs",
        "user/Observation.cud",
        "user/Patient.c",
        "patient/*.rs",
        "system/Observation.rs",
        "openid",
        "launch/patient",
        "made/up",
        "user/Observation.read",
    ]
    assert narrow_scopes(asked, allowed, interactive=True) == {
        "patient/Observation.rs",
        "user/Observation.cud",
        "patient/*.rs",
        "openid",
        "launch/patient",
        "user/Observation.read",
    }
    assert narrow_scopes(
        ["system/Patient.rs", "system/Patient.rs?active=true", "openid"], allowed, interactive=False
    ) == {"system/Patient.rs?active=true"}


def _params(**extra: str) -> dict[str, str]:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": REDIRECT,
        "scope": "launch/patient patient/*.rs offline_access",
        "state": "s1",
        "aud": BASE,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return params


def test_request_checks(server: AuthServer) -> None:
    request = authorize.check_request(server, _params(), BASE)
    assert request.scopes == ("launch/patient", "patient/*.rs", "offline_access")
    with pytest.raises(OAuthError) as shown:
        authorize.check_request(server, _params(redirect_uri=REDIRECT + "/x"), BASE)
    assert not isinstance(shown.value, authorize.RedirectError)
    for change, error in (
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"aud": "https://other.example/fhir"}, "invalid_request"),
        ({"scope": ""}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"launch": "unknown"}, "invalid_request"),
    ):
        with pytest.raises(authorize.RedirectError) as info:
            authorize.check_request(server, _params(**change), BASE)
        assert info.value.error == error and info.value.redirect_uri == REDIRECT


def test_signed_request_round_trip(server: AuthServer, clock: Clock) -> None:
    request = authorize.check_request(server, _params(), BASE)
    signed = authorize.request_token(server, request, BASE)
    assert authorize.request_from_token(server, signed, BASE) == request
    clock.now += 3600
    with pytest.raises(OAuthError, match="expired"):
        authorize.request_from_token(server, signed, BASE)


def _form(code: str, **extra: str) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": "app",
        "code_verifier": "v" * 50,
    }
    form.update(extra)
    return form


def test_code_flow_and_patient_context(server: AuthServer, clock: Clock) -> None:
    request = authorize.check_request(server, _params(), BASE)
    analyst = server.users.get("ana")
    assert analyst is not None
    with pytest.raises(authorize.RedirectError, match="no patient"):
        authorize.approve(server, request, analyst, None)
    with pytest.raises(authorize.RedirectError, match="does not exist"):
        authorize.approve(server, request, analyst, "p9")
    code = authorize.approve(server, request, analyst, "p1")
    answer = grants.token(server, _form(code), None, BASE)
    assert answer["patient"] == "p1" and "refresh_token" in answer
    claims = server.tokens.validate(
        answer["access_token"], issuer="https://cmio.example", audience=BASE
    )
    assert claims["patient"] == "p1" and claims["roles"] == ["analyst"]
    with pytest.raises(OAuthError, match="already used"):
        grants.token(server, _form(code), None, BASE)
    # a patient user's own record is the launch patient
    patient_user = server.users.get("pat")
    assert patient_user is not None
    own = authorize.approve(server, request, patient_user, None)
    assert grants.token(server, _form(own), None, BASE)["patient"] == "p2"
    # the EHR's launch context wins over a picked patient
    launch = authorize.create_launch(server, "p2")
    ehr = authorize.check_request(server, _params(launch=launch, scope="launch patient/*.rs"), BASE)
    assert (
        grants.token(server, _form(authorize.approve(server, ehr, analyst, "p1")), None, BASE)[
            "patient"
        ]
        == "p2"
    )
    late = authorize.approve(server, request, analyst, "p1")
    clock.now += 120
    with pytest.raises(OAuthError, match="expired"):
        grants.token(server, _form(late), None, BASE)


def test_code_checks(server: AuthServer) -> None:
    request = authorize.check_request(server, _params(), BASE)
    user = server.users.get("ana")
    assert user is not None
    for change, message in (
        ({"code_verifier": "w" * 50}, "does not match"),
        ({"code_verifier": "short"}, "malformed"),
        ({"redirect_uri": REDIRECT + "?x=1"}, "redirect_uri"),
    ):
        code = authorize.approve(server, request, user, "p1")
        with pytest.raises(OAuthError, match=message):
            grants.token(server, _form(code, **change), None, BASE)
    server.clients.register("other", "public", redirect_uris=(REDIRECT,))
    code = authorize.approve(server, request, user, "p1")
    with pytest.raises(OAuthError, match="another client"):
        grants.token(server, _form(code, client_id="other"), None, BASE)
    code = authorize.approve(server, request, user, "p1")
    server.users.set_disabled("ana")
    with pytest.raises(OAuthError, match="no longer active"):
        grants.token(server, _form(code), None, BASE)
    with pytest.raises(OAuthError) as info:
        grants.token(server, {"grant_type": "password", "client_id": "app"}, None, BASE)
    assert info.value.error == "unsupported_grant_type"


def test_confidential_client_authentication(server: AuthServer) -> None:
    _, secret = server.clients.register("portal", "confidential", redirect_uris=(REDIRECT,))
    assert secret is not None
    basic = "Basic " + base64.b64encode(f"portal:{secret}".encode()).decode()
    client = grants.authenticate_client(server, {}, basic, BASE)
    assert client is not None and client.client_id == "portal"
    posted = {"client_id": "portal", "client_secret": secret}
    assert grants.authenticate_client(server, posted, None, BASE) is not None
    for form, header in (
        ({"client_id": "portal"}, None),
        ({"client_id": "portal", "client_secret": "guess"}, None),
        ({}, "Basic !!!"),
        ({"client_id": "app", "client_secret": "x"}, None),
        ({"client_id": "nobody"}, None),
    ):
        with pytest.raises(OAuthError) as info:
            grants.authenticate_client(server, form, header, BASE)
        assert info.value.status == 401


def _assertion(key: ECKey, client_id: str, aud: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + 120}
    body["jti"] = secrets.token_hex(8)
    body.update(claims)
    return jwt.encode({"alg": "ES384", "kid": key.kid}, body, key, algorithms=["ES384"])


def test_backend_client_credentials(server: AuthServer) -> None:
    key = ECKey.generate_key("P-384", auto_kid=True)
    server.clients.register(
        "etl", "backend", jwks={"keys": [key.as_dict(private=False)]}, scopes=("system/*.rs",)
    )
    endpoint = "https://cmio.example/auth/token"
    form = {
        "grant_type": "client_credentials",
        "scope": "system/Observation.rs system/Patient.cruds",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": _assertion(key, "etl", endpoint),
    }
    answer = grants.token(server, form, None, BASE)
    assert answer["scope"] == "system/Observation.rs" and "refresh_token" not in answer
    claims = server.tokens.validate(
        answer["access_token"], issuer="https://cmio.example", audience=BASE
    )
    assert claims["kind"] == "client" and claims["sub"] == "etl"
    with pytest.raises(OAuthError, match="already used"):
        grants.token(server, form, None, BASE)
    with pytest.raises(OAuthError, match="client_credentials is for backend"):
        grants.token(server, {"grant_type": "client_credentials", "client_id": "app"}, None, BASE)
    with pytest.raises(ValueError, match="JWKS"):
        server.clients.register("nokeys", "backend")


def test_refresh_rotation_and_revocation(server: AuthServer) -> None:
    request = authorize.check_request(server, _params(), BASE)
    user = server.users.get("ana")
    assert user is not None
    first = grants.token(server, _form(authorize.approve(server, request, user, "p1")), None, BASE)
    refresh = {"grant_type": "refresh_token", "client_id": "app"}
    second = grants.token(server, {**refresh, "refresh_token": first["refresh_token"]}, None, BASE)
    assert second["patient"] == "p1"
    active = grants.introspect(server, second["refresh_token"], BASE)
    assert active["active"] and active["sub"] == "ana"
    assert grants.introspect(server, first["refresh_token"], BASE) == {"active": False}
    app = server.clients.get("app")
    assert app is not None
    grants.revoke(server, app, second["refresh_token"], None)
    assert grants.introspect(server, second["refresh_token"], BASE) == {"active": False}
    with pytest.raises(OAuthError, match="revoked"):
        grants.token(server, {**refresh, "refresh_token": second["refresh_token"]}, None, BASE)
    grants.revoke(server, app, second["access_token"], None)
    assert grants.introspect(server, second["access_token"], BASE) == {"active": False}


def test_redirect_uris_must_be_safe(server: AuthServer) -> None:
    for uri in ("http://app.example/cb", "https://app.example/cb#frag", "javascript:alert(1)"):
        with pytest.raises(ValueError, match="redirect URI"):
            server.clients.register("bad", "public", redirect_uris=(uri,))
    client, secret = server.clients.register(
        "native", "public", redirect_uris=("com.example.app:/cb", "http://127.0.0.1:8000/cb")
    )
    assert secret is None and client.redirect_uris[0] == "com.example.app:/cb"


def test_backend_client_with_a_jwks_url(server: AuthServer) -> None:
    key = ECKey.generate_key("P-384", auto_kid=True)
    fetched: list[str] = []

    def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        if url != "https://etl.example/jwks":
            raise OSError("unreachable")
        return {"keys": [key.as_dict(private=False)]}

    server.fetch_json = fetch
    server.clients.register(
        "etl", "backend", jwks_url="https://etl.example/jwks", scopes=("system/*.rs",)
    )
    server.clients.register(
        "gone", "backend", jwks_url="https://gone.example/jwks", scopes=("system/*.rs",)
    )
    endpoint = "https://cmio.example/auth/token"

    def form(client_id: str) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "scope": "system/Patient.rs",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": _assertion(key, client_id, endpoint),
        }

    assert grants.token(server, form("etl"), None, BASE)["scope"] == "system/Patient.rs"
    assert grants.token(server, form("etl"), None, BASE)["scope"] == "system/Patient.rs"
    assert fetched == ["https://etl.example/jwks"]  # cached
    with pytest.raises(OAuthError, match="did not answer"):
        grants.token(server, form("gone"), None, BASE)


def test_password_guessing_is_throttled(server: AuthServer, clock: Clock) -> None:
    events: list[dict[str, Any]] = []
    server.audit = lambda **event: events.append(event)
    for _ in range(5):
        assert server.check_password("ana", "wrong guess", "10.0.0.9") is None
    assert server.check_password("ana", "analyst password") is None  # locked: not even checked
    assert events[-1]["reason"] == "locked" and events[0]["remote_addr"] == "10.0.0.9"
    clock.now += 61
    assert server.check_password("ANA", "wrong again") is None  # the lock doubles
    clock.now += 61
    assert server.check_password("ana", "analyst password") is None
    clock.now += 61
    assert server.check_password("ana", "analyst password") is not None  # success resets
    assert server.check_password("ana", "wrong guess") is None
    assert server.check_password("ana", "analyst password") is not None
    assert [e["outcome"] for e in events].count("success") == 2
    assert server.login("pat", "patient password", BASE) is not None


def test_short_lived_records_clean_up(server: AuthServer, clock: Clock) -> None:
    kv = server.kv
    assert isinstance(kv, MemoryKeyValue)
    request = authorize.check_request(server, _params(), BASE)
    user = server.users.get("ana")
    assert user is not None
    for _ in range(50):
        authorize.approve(server, request, user, "p1")
    code_docs = [k for k in kv._data if k.startswith("codes:")]
    assert len(code_docs) <= 16  # sharded, not one row per code
    assert sum(len(kv.get(k) or {}) for k in code_docs) == 50
    clock.now += 120  # every code expired; the next writes drop them
    for _ in range(40):
        authorize.approve(server, request, user, "p1")
    fresh_total = 0
    for name in [k for k in kv._data if k.startswith("codes:")]:
        records = (kv.get(name) or {}).values()
        fresh = [r for r in records if r["exp"] >= clock.now]
        fresh_total += len(fresh)
        if fresh:  # a shard written since the expiry holds no stale record
            assert len(fresh) == len(records)
    assert fresh_total == 40


def test_confidential_asymmetric_client_code_flow(server: AuthServer) -> None:
    key = ECKey.generate_key("P-384", auto_kid=True)
    client, secret = server.clients.register(
        "viewer",
        "confidential",
        redirect_uris=(REDIRECT,),
        jwks={"keys": [key.as_dict(private=False)]},
    )
    assert secret is None and client.secret_hash is None
    request = authorize.check_request(server, _params(client_id="viewer"), BASE)
    user = server.users.get("ana")
    assert user is not None
    endpoint = "https://cmio.example/auth/token"
    form = _form(authorize.approve(server, request, user, "p1"))
    del form["client_id"]
    with pytest.raises(OAuthError, match="client_id or client authentication"):
        grants.token(server, form, None, BASE)
    with pytest.raises(OAuthError, match="signed assertion"):
        grants.token(server, {**form, "client_id": "viewer"}, None, BASE)
    signed = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": _assertion(key, "viewer", endpoint),
    }
    code = authorize.approve(server, request, user, "p1")
    answer = grants.token(server, {**_form(code), **signed}, None, BASE)
    assert answer["patient"] == "p1"
    with pytest.raises(ValueError, match="public client has no keys"):
        server.clients.register("p", "public", redirect_uris=(REDIRECT,), jwks={"keys": []})
    again = {**signed, "client_assertion": _assertion(key, "viewer", endpoint)}
    with pytest.raises(OAuthError, match="backend services"):
        grants.token(server, {"grant_type": "client_credentials", **again}, None, BASE)


def test_configured_issuer_fixes_iss_and_aud() -> None:
    settings = AuthSettings(issuer="https://cmio.example.org/", password_time_cost=1)
    auth = AuthServer(settings, MemoryKeyValue(), KeyRing.generate())
    internal = "http://10.0.0.7:8080/fhir"
    assert auth.issuer_for(internal) == "https://cmio.example.org"
    assert auth.audience_for(internal) == "https://cmio.example.org/fhir"
    user = auth.users.add("zed", "zed password!", ["executive"])
    token, claims = auth.issue_for_user(user, internal, client_id="app")
    assert claims["iss"] == "https://cmio.example.org"
    assert "user/Measure.rs" in claims["scope"].split()
    grant = auth.authenticate(token, "http://other-host/fhir")  # the Host header does not matter
    assert grant.subject == "zed" and grant.roles == {"executive"}


def test_online_access_lives_one_session(server: AuthServer, clock: Clock) -> None:
    user = server.users.get("ana")
    assert user is not None
    online = authorize.check_request(server, _params(scope="user/Patient.rs online_access"), BASE)
    first = grants.token(server, _form(authorize.approve(server, online, user, None)), None, BASE)
    refresh = {"grant_type": "refresh_token", "client_id": "app"}
    clock.now += server.settings.session_ttl - 60
    second = grants.token(server, {**refresh, "refresh_token": first["refresh_token"]}, None, BASE)
    clock.now += 120  # the session is over: rotation did not extend it
    with pytest.raises(OAuthError, match="unknown or expired"):
        grants.token(server, {**refresh, "refresh_token": second["refresh_token"]}, None, BASE)
    offline = authorize.check_request(server, _params(scope="user/Patient.rs offline_access"), BASE)
    kept = grants.token(server, _form(authorize.approve(server, offline, user, None)), None, BASE)
    clock.now += server.settings.session_ttl * 3
    assert grants.introspect(server, kept["refresh_token"], BASE)["active"] is True
