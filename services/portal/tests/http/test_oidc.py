"""OIDC login against a minimal identity provider on 127.0.0.1 (discovery, authorize, token,
JWKS; RS256 ID tokens): the portal's Authlib wiring, state and nonce included."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from eropaf_platform.local.ports import free_port
from eropaf_platform.testing.wait import wait_until
from eropaf_portal.adapters.login_links import SignedLoginLinks
from eropaf_portal.app import PortalSettings, build_app

from ..service_layer.fakes import demo_world

pytestmark = pytest.mark.integration

CLIENT_ID, CLIENT_SECRET = "portal", "portal-secret"
BASE = "http://portal.test"


class Provider:
    """Names whoever logs in by the `staff_code` claim it is told to put in the ID token."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
        self.codes: dict[str, str] = {}  # code -> nonce
        self.claims: dict[str, Any] = {}
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.metadata),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
            ]
        )

    async def metadata(self, _request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        assert q["client_id"] == CLIENT_ID and q["response_type"] == "code"
        code = secrets.token_urlsafe(8)
        self.codes[code] = q["nonce"]
        return RedirectResponse(
            f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}"
        )

    async def token(self, request: Request) -> Response:
        form = await request.form()
        nonce = self.codes.pop(str(form["code"]), None)
        if nonce is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {
            "iss": self.url, "sub": "user-1", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
            "nonce": nonce, **self.claims,
        }  # fmt: skip
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)
        return JSONResponse(
            {"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": id_token}
        )

    async def jwks(self, _request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    port = free_port("127.0.0.1")
    provider = Provider(f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(provider.app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, interval=0.05)
    yield provider
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def portal(provider: Provider) -> Iterator[TestClient]:
    world = demo_world()
    settings = PortalSettings(
        dev_mode=True,
        public_url=BASE,
        oidc_metadata_url=f"{provider.url}/.well-known/openid-configuration",
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )
    app = build_app(
        settings,
        scheduling=world.scheduling,
        matching=world.matching,
        intake=world.intake,
        mailer=world.mailer,
        links=SignedLoginLinks("s"),
    )
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        yield client


def _through_the_provider(portal: TestClient) -> tuple[str, str]:
    """Start the login at the portal and let the provider answer; the callback's path+query."""
    start = portal.get("/login/oidc")
    assert start.status_code == 302
    answer = httpx.get(start.headers["location"], follow_redirects=False, timeout=10)
    assert answer.status_code in (302, 307)
    callback = urlsplit(answer.headers["location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{BASE}/login/oidc/callback"
    return f"{callback.path}?{callback.query}", start.headers["location"]


def test_the_login_page_offers_the_organisations_login(portal: TestClient) -> None:
    assert 'href="/login/oidc"' in portal.get("/login").text


def test_the_id_tokens_claim_names_the_staff_member(portal: TestClient, provider: Provider) -> None:
    provider.claims = {"staff_code": "cora"}
    callback, _ = _through_the_provider(portal)
    signed_in = portal.get(callback)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
    assert portal.get("/").headers["location"] == "/backlog"
    # the same answer twice: its state is spent
    assert portal.get(callback).status_code == 403


def test_no_staff_claim_or_an_unknown_code_signs_nobody_in(
    portal: TestClient, provider: Provider
) -> None:
    provider.claims = {"email": "x@example.org"}
    callback, _ = _through_the_provider(portal)
    assert portal.get(callback).status_code == 403
    provider.claims = {"staff_code": "nobody"}
    callback, _ = _through_the_provider(portal)
    assert portal.get(callback).headers["location"] == "/login"
    assert portal.get("/visits").headers["location"] == "/login"


def test_an_answer_meant_for_another_browser_is_refused(
    portal: TestClient, provider: Provider
) -> None:
    provider.claims = {"staff_code": "cora"}
    callback, _ = _through_the_provider(portal)
    portal.cookies.clear()  # another browser: no state in its session
    assert portal.get(callback).status_code == 403
