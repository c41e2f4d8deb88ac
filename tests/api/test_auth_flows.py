"""SMART App Launch over HTTP: authorization code + PKCE (standalone and EHR launch),
refresh rotation, Backend Services, introspection, revocation, the web login."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from cmio.api.app import CmioApp
from cmio.model import Model
from cmio.security.oauth.server import AuthServer
from cmio.testing.auth import auth_app, auth_server, bearer, mint_token
from cmio.testing.server import ServerThread

REDIRECT = "http://127.0.0.1:9/callback"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[ServerThread]:
    root: Path = tmp_path_factory.mktemp("authflows")
    app = auth_app(f"sqlite:///{root / 'cmio.db'}", root, model=model)
    auth = auth_server(app)
    auth.users.add("dr-who", PASSWORD, ["clinician"], "Practitioner/doc1")
    auth.users.add("ann", PASSWORD, ["analyst"])
    auth.clients.register("app", "public", redirect_uris=(REDIRECT,), name="Growth chart")
    with ServerThread(app, close_app=True) as running:
        token = mint_token(app, running.base, roles=["administrator"])
        for pid in ("p1", "p2"):
            put = httpx.put(
                f"{running.base}/Patient/{pid}",
                json={"resourceType": "Patient", "id": pid, "active": True},
                headers=bearer(token),
            )
            assert put.status_code in (200, 201), put.text
        yield running


@pytest.fixture()
def app(server: ServerThread) -> CmioApp:
    assert isinstance(server.app, CmioApp)
    return server.app


@pytest.fixture()
def auth(app: CmioApp) -> AuthServer:
    return auth_server(app)


@pytest.fixture()
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base.removesuffix("/fhir"), timeout=30) as client:
        yield client


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _params(server: ServerThread, scope: str, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "st-" + secrets.token_hex(4),
        "aud": server.base,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def _hidden_request(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    match = re.search(r"name='request' value='([^']+)'", page.text)
    assert match is not None
    return match.group(1)


def _authorize(
    http: httpx.Client, params: dict[str, str], user: str = "dr-who", **form: str
) -> dict[str, list[str]]:
    """Log in and consent on the page; returns the query of the redirect back to the app."""
    page = http.get("/auth/authorize", params=params)
    assert "<label for='username'>" in page.text and "lang='en'" in page.text
    data = {"request": _hidden_request(page), "username": user, "password": PASSWORD}
    data.setdefault("decision", "approve")
    data.update(form)
    answer = http.post("/auth/authorize", data=data)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [params["state"]]
    return query


def _exchange(http: httpx.Client, code: str, verifier: str) -> httpx.Response:
    return http.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "app",
            "code_verifier": verifier,
        },
    )


def test_standalone_launch_with_patient_picker(server: ServerThread, http: httpx.Client) -> None:
    verifier, challenge = _pkce()
    scope = "launch/patient openid fhirUser patient/*.rs offline_access system/*.rs"
    params = _params(server, scope, challenge, nonce="n-1")
    page = http.get("/auth/authorize", params=params)
    assert "<label for='patient'>" in page.text  # standalone: the user picks the patient
    query = _authorize(http, params, patient="p1")
    code = query["code"][0]
    assert _exchange(http, code, "x" * 43).status_code == 400  # wrong verifier burns the code
    query = _authorize(http, params, patient="p1")
    response = _exchange(http, query["code"][0], verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["cache-control"] == "no-store"
    assert body["token_type"] == "Bearer" and body["patient"] == "p1"
    granted = set(body["scope"].split())
    assert "patient/*.rs" in granted and "system/*.rs" not in granted
    assert body["refresh_token"] and body["id_token"]
    id_claims = jwt.decode(body["id_token"], auth_server_key(server)).claims
    assert id_claims["aud"] == "app" and id_claims["nonce"] == "n-1"
    assert id_claims["fhirUser"] == server.base + "/Practitioner/doc1"
    read = httpx.get(f"{server.base}/Patient/p1", headers=bearer(body["access_token"]))
    assert read.status_code != 401, read.text  # authenticated (what it may see: authorization)
    assert read.json()["resourceType"] in ("Patient", "OperationOutcome")
    again = _exchange(http, query["code"][0], verifier)  # a code is good once
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def auth_server_key(server: ServerThread) -> Any:
    assert isinstance(server.app, CmioApp)
    return auth_server(server.app).keys.current.key


def test_ehr_launch_gives_patient_context(
    server: ServerThread, app: CmioApp, http: httpx.Client
) -> None:
    user_token = mint_token(app, server.base, roles=["clinician"], subject="dr-who")
    refused = http.post("/auth/launch", data={"patient": "nobody"}, headers=bearer(user_token))
    assert refused.status_code == 400
    launch = http.post("/auth/launch", data={"patient": "p2"}, headers=bearer(user_token)).json()
    assert launch["iss"] == server.base
    verifier, challenge = _pkce()
    params = _params(server, "launch openid patient/Patient.rs", challenge, launch=launch["launch"])
    page = http.get("/auth/authorize", params=params)
    assert "<label for='patient'>" not in page.text  # the EHR gave the patient
    query = _authorize(http, params)
    body = _exchange(http, query["code"][0], verifier).json()
    assert body["patient"] == "p2" and "refresh_token" not in body
    bad = _params(server, "launch patient/Patient.rs", challenge, launch="forged")
    answer = http.get("/auth/authorize", params=bad)
    assert answer.status_code == 302 and "error=invalid_request" in answer.headers["location"]


def test_refresh_tokens_rotate_and_reuse_ends_the_family(
    server: ServerThread, http: httpx.Client
) -> None:
    verifier, challenge = _pkce()
    params = _params(server, "user/Patient.rs offline_access", challenge)
    first = _exchange(http, _authorize(http, params)["code"][0], verifier).json()

    def refresh(token: str, **extra: str) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": "app"}
        return http.post("/auth/token", data={**data, **extra})

    assert (
        refresh(first["refresh_token"], scope="user/Patient.rs user/Observation.rs").json()["error"]
        == "invalid_scope"
    )
    second = refresh(first["refresh_token"])
    assert second.status_code == 400  # the failed attempt above used the token
    verifier, challenge = _pkce()
    params = _params(server, "user/Patient.rs offline_access", challenge)
    first = _exchange(http, _authorize(http, params)["code"][0], verifier).json()
    second = refresh(first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == "offline_access user/Patient.rs"
    assert (
        httpx.get(f"{server.base}/Patient", headers=bearer(second["access_token"])).status_code
        == 200
    )
    replay = refresh(first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert refresh(second["refresh_token"]).status_code == 400  # the family is revoked


def _assertion(
    key: RSAKey | ECKey, alg: str, aud: str, client_id: str = "etl", **claims: Any
) -> str:
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "exp": now + 240,
        "jti": secrets.token_hex(8),
    }
    body.update(claims)
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, body, key, algorithms=[alg])


def test_backend_services_client_credentials(
    server: ServerThread, auth: AuthServer, http: httpx.Client
) -> None:
    rsa = RSAKey.generate_key(2048, auto_kid=True)
    ec = ECKey.generate_key("P-384", auto_kid=True)
    jwks = {"keys": [rsa.as_dict(private=False), ec.as_dict(private=False)]}
    auth.clients.register("etl", "backend", jwks=jwks, scopes=("system/Patient.rs",))
    endpoint = http.base_url.join("/auth/token")

    def ask(
        assertion: str, scope: str = "system/Patient.rs system/Observation.rs"
    ) -> httpx.Response:
        return http.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "scope": scope,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )

    signed = _assertion(rsa, "RS384", str(endpoint))
    answer = ask(signed)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["scope"] == "system/Patient.rs" and body["expires_in"] <= 300
    ok = httpx.get(f"{server.base}/Patient", headers=bearer(body["access_token"]))
    assert ok.status_code == 200
    assert ask(signed).json()["error"] == "invalid_client"  # jti replay
    assert ask(_assertion(ec, "ES384", str(endpoint))).status_code == 200
    now = int(time.time())
    for bad in (
        _assertion(rsa, "RS256", str(endpoint)),
        _assertion(rsa, "RS384", "https://elsewhere.example/token"),
        _assertion(rsa, "RS384", str(endpoint), exp=now + 900),
        _assertion(rsa, "RS384", str(endpoint), exp=now - 120),
        _assertion(rsa, "RS384", str(endpoint), sub="other"),
        _assertion(RSAKey.generate_key(2048, auto_kid=True), "RS384", str(endpoint)),
    ):
        refused = ask(bad)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert ask(_assertion(rsa, "RS384", str(endpoint)), "user/*.rs").json()["error"] == (
        "invalid_scope"
    )


def test_introspection_and_revocation(
    server: ServerThread, app: CmioApp, auth: AuthServer, http: httpx.Client
) -> None:
    _, secret = auth.clients.register("portal", "confidential", redirect_uris=(REDIRECT,))
    assert secret
    token = mint_token(app, server.base, roles=["analyst"], client_id="portal", patient="p1")
    creds = (("portal", secret),)
    assert http.post("/auth/introspect", data={"token": token}).status_code == 401
    wrong = http.post("/auth/introspect", data={"token": token}, auth=("portal", "nope"))
    assert wrong.status_code == 401
    active = http.post("/auth/introspect", data={"token": token}, auth=creds[0]).json()
    assert active["active"] is True and active["patient"] == "p1"
    assert active["client_id"] == "portal" and active["sub"] == "test-user"
    by_bearer = http.post("/auth/introspect", data={"token": token}, headers=bearer(token))
    assert by_bearer.json()["active"] is True
    garbage = http.post("/auth/introspect", data={"token": "abc"}, auth=creds[0]).json()
    assert garbage == {"active": False}
    other = mint_token(app, server.base, roles=["analyst"], client_id="app")
    revoked = http.post("/auth/revoke", data={"token": other}, auth=creds[0])
    assert revoked.status_code == 200  # another client's token: ignored
    assert httpx.get(f"{server.base}/Patient", headers=bearer(other)).status_code == 200
    assert http.post("/auth/revoke", data={"token": token}, auth=creds[0]).status_code == 200
    gone = http.post("/auth/introspect", data={"token": token}, auth=creds[0]).json()
    assert gone == {"active": False}
    refused = httpx.get(f"{server.base}/Patient", headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["resourceType"] == "OperationOutcome"


def test_authorization_errors(server: ServerThread, auth: AuthServer, http: httpx.Client) -> None:
    events: list[dict[str, Any]] = []
    auth.audit = lambda **event: events.append(event)
    try:
        _, challenge = _pkce()
        params = _params(server, "user/Patient.rs", challenge)
        page = http.get("/auth/authorize", params={**params, "redirect_uri": REDIRECT + "x"})
        assert page.status_code == 400 and "role='alert'" in page.text
        assert (
            http.get("/auth/authorize", params={**params, "client_id": "nope"}).status_code == 400
        )
        for change in (
            {"code_challenge_method": "plain"},
            {"aud": "https://x.example/fhir"},
            {"state": ""},
            {"response_type": "token"},
        ):
            answer = http.get("/auth/authorize", params={**params, **change})
            assert answer.status_code == 302 and "error=" in answer.headers["location"]
        form = {"request": _hidden_request(http.get("/auth/authorize", params=params))}
        wrong = http.post(
            "/auth/authorize", data={**form, "username": "dr-who", "password": "bad password!"}
        )
        assert wrong.status_code == 401 and "role='alert'" in wrong.text
        tampered = http.post(
            "/auth/authorize",
            data={
                "request": form["request"][:-4] + "AAAA",
                "username": "dr-who",
                "password": PASSWORD,
                "decision": "approve",
            },
        )
        assert tampered.status_code == 400
        query = _authorize(http, params, decision="deny")
        assert query["error"] == ["access_denied"]
        assert _authorize(http, params, user="ann")["code"]  # analyst: user/Patient.rs allowed
    finally:
        auth.audit = None
    outcomes = [(e["action"], e["subject"], e["outcome"]) for e in events]
    assert ("login", "dr-who", "failure") in outcomes and ("login", "ann", "success") in outcomes
    assert all(e["remote_addr"] == "127.0.0.1" and e["client_id"] == "app" for e in events)


def test_web_login_session_cookie(
    server: ServerThread, auth: AuthServer, http: httpx.Client
) -> None:
    form = http.get("/auth/login", params={"next": "/"})
    assert form.status_code == 200 and "autocomplete='current-password'" in form.text
    bad = http.post("/auth/login", data={"username": "ann", "password": "wrong password"})
    assert bad.status_code == 401 and "cmio_session" not in bad.headers.get("set-cookie", "")
    evil = http.post(
        "/auth/login", data={"username": "ann", "password": PASSWORD, "next": "//evil.example"}
    )
    assert evil.status_code == 303 and evil.headers["location"] == "/"
    cookie = evil.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    session = evil.cookies["cmio_session"]
    with httpx.Client(base_url=http.base_url, cookies={"cmio_session": session}) as browser:
        home = browser.get("/")
        assert home.status_code == 200 and "<span>ann · analyst</span>" in home.text
        assert browser.get("/fhir/Patient").status_code == 200
        post = browser.post("/fhir/Patient", json={"resourceType": "Patient"})
        assert post.status_code == 401  # the cookie only reads; writes need a bearer token
        _, challenge = _pkce()
        scope = "user/Patient.rs user/Patient.c openid"
        consent = browser.get("/auth/authorize", params=_params(server, scope, challenge))
        assert "Signed in as <strong>ann</strong>" in consent.text  # no password asked again
        assert "<code>user/Patient.c</code> <em>(not granted" in consent.text
        assert "<code>user/Patient.rs</code> <em>" not in consent.text
        assert browser.get("/auth/logout").status_code == 200
        assert browser.get("/fhir/Patient").status_code == 401  # the session was revoked
