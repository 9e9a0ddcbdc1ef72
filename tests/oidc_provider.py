"""A real OpenID Connect provider for tests, served over HTTP on a free port in a thread.

Discovery, an authorization endpoint with a consent page, a token endpoint (client secret by post or
basic, PKCE S256), userinfo and JWKS, and RS256-signed ID tokens with a ``groups`` claim. A test sets
``provider.user`` (the person who signs in there) and may set ``provider.tamper`` (claims to overwrite
in the next ID tokens: ``iss``, ``aud``, ``exp``, ``nonce``) to play a broken or hostile provider."""
from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "atelier-test"
CLIENT_SECRET = "s3cret-for-tests"


class OidcProvider:
    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.user: dict[str, Any] = {}
        self.tamper: dict[str, Any] = {}
        self._codes: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, dict[str, Any]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> OidcProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def app_setting(self, name: str = "Acme SSO") -> dict[str, Any]:
        """This provider as one entry of ATELIER_OIDC_PROVIDERS."""
        return {"name": name, "issuer": self.issuer, "client_id": CLIENT_ID, "secret": CLIENT_SECRET}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}

    def approve(self, query: dict[str, str]) -> str:
        """The person consented: the redirect back to the client, with a one-time code."""
        code = secrets.token_urlsafe(16)
        self._codes[code] = {"query": query, "user": dict(self.user)}
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    def exchange(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict[str, Any]]:
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant["query"]["redirect_uri"] != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}
        challenge = grant["query"].get("code_challenge")
        if challenge:
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300, **grant["user"]}
        if "nonce" in grant["query"]:
            claims["nonce"] = grant["query"]["nonce"]
        claims.update(self.tamper)
        access = secrets.token_urlsafe(16)
        self._tokens[access] = grant["user"]
        id_token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": "k1"})
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}

    def userinfo(self, authorization: str) -> tuple[int, dict[str, Any]]:
        user = self._tokens.get(authorization.removeprefix("Bearer "))
        return (200, user) if user is not None else (401, {"error": "invalid_token"})


def _handler(provider: OidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any, content_type: str = "application/json",
                  location: str | None = None) -> None:
            data = (json.dumps(body) if content_type == "application/json" else body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            return {k: v[0] for k, v in parse_qs(raw).items()}

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._send(200, provider.discovery())
            elif url.path == "/jwks":
                self._send(200, provider.jwks())
            elif url.path == "/userinfo":
                self._send(*provider.userinfo(self.headers.get("Authorization", "")))
            elif url.path == "/authorize":
                if query.get("client_id") != CLIENT_ID:
                    self._send(400, {"error": "unauthorized_client"})
                    return
                hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                                 for k, v in query.items())
                self._send(200, f"<html><body><h1>Test IdP</h1><p>Sign in to Atelier as "
                                f"{html.escape(str(provider.user.get('email')))}?</p><form method='post' "
                                f"action='/authorize'>{hidden}<button id='consent'>Allow</button></form>"
                                f"</body></html>", "text/html")
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            form = self._form()
            if url.path == "/authorize":
                self._send(302, "", "text/plain", location=provider.approve(form))
            elif url.path == "/token":
                basic = None
                if self.headers.get("Authorization", "").startswith("Basic "):
                    user, _, secret = base64.b64decode(self.headers["Authorization"][6:]).decode().partition(":")
                    basic = (user, secret)
                self._send(*provider.exchange(form, basic))
            else:
                self._send(404, {"error": "not_found"})

    return Handler


def sso_login(client: Any, provider: OidcProvider, *, provider_id: str = "acme-sso", state: str | None = None) -> Any:
    """With Django's test ``client``: press "Sign in with <name>", consent at ``provider``, and come back
    (``state`` replaces the one the provider returns); the callback's answer."""
    import requests
    from django.urls import reverse

    start = client.post(reverse("openid_connect_login", kwargs={"provider_id": provider_id}))
    assert start.status_code == 302 and start["Location"].startswith(f"{provider.issuer}/authorize?"), start
    consent = requests.get(start["Location"], timeout=10)
    assert consent.status_code == 200 and b"Allow" in consent.content
    query = {k: v[0] for k, v in parse_qs(urlsplit(start["Location"]).query).items()}
    assert query["nonce"] and query["code_challenge"]
    back = requests.post(f"{provider.issuer}/authorize", data=query, allow_redirects=False, timeout=10)
    callback = urlsplit(back.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    if state is not None:
        params["state"] = state
    return client.get(callback.path, params)
