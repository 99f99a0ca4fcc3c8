"""The portal app on in-memory fakes of the services, driven through Starlette's test client."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from eropaf_portal.adapters.login_links import SignedLoginLinks
from eropaf_portal.app import PortalSettings, build_app

from ..service_layer.fakes import TODAY, World, demo_world

BASE = "http://portal.test"


@pytest.fixture
def world() -> World:
    return demo_world()


@pytest.fixture
def make_client(world: World) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(public_url: str = BASE) -> TestClient:
        app = build_app(
            PortalSettings(dev_mode=True, public_url=public_url),
            scheduling=world.scheduling,
            matching=world.matching,
            intake=world.intake,
            mailer=world.mailer,
            links=SignedLoginLinks("test-secret", max_age_s=600),
        )
        app.state.portal.today = lambda: TODAY
        client = TestClient(app, base_url=public_url, follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def log_in(client: TestClient, world: World, code: str) -> str:
    """Ask for a login link as `code`, follow the mailed link; the CSRF token of the session."""
    page = client.get("/login")
    client.post("/login", data={"code": code, "csrf_token": csrf_of(page.text)})
    link = world.mailer.sent[-1]["body"].split(BASE, 1)[1].split()[0]
    response = client.get(link)
    assert response.status_code == 303, response.text
    return csrf_of(client.get(response.headers["location"], follow_redirects=True).text)
