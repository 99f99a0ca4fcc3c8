from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ..service_layer.fakes import CASE_A, CASE_B, TODAY, World
from .conftest import BASE, csrf_of, log_in

pytestmark = pytest.mark.unit


def test_pages_ask_for_a_login_first(client: TestClient) -> None:
    for path in ("/", "/visits", f"/cases/{CASE_A}", "/backlog", "/staff"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/login"


def test_login_by_mailed_link_once_then_the_visits(client: TestClient, world: World) -> None:
    page = client.get("/login")
    assert page.status_code == 200 and '<html lang="nl">' in page.text
    sent = client.post("/login", data={"code": "anna", "csrf_token": csrf_of(page.text)})
    assert "inloglink" in sent.text
    body = world.mailer.sent[-1]["body"]
    link = re.search(r"http://portal\.test(/login/link\?token=\S+)", body)
    assert link
    landing = client.get(link.group(1))
    assert landing.status_code == 303 and landing.headers["location"] == "/"
    cookie = landing.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    visits = client.get("/visits")
    assert visits.status_code == 200
    assert visits.headers["cache-control"] == "no-store"
    assert CASE_A[:12] in visits.text and "bram" in visits.text and "Ochtend" in visits.text
    assert f"/cases/{CASE_A}/visits/{'1' * 16}.ics" in visits.text
    # the link works once
    again = client.get(link.group(1))
    assert again.status_code == 400 and "al gebruikt" in again.text


def test_an_unknown_code_gets_the_same_answer_and_no_mail(client: TestClient, world: World) -> None:
    page = client.get("/login")
    answer = client.post("/login", data={"code": "nobody", "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 200 and "Als deze code bij ons bekend is" in answer.text
    assert world.mailer.sent == []


def test_a_secure_cookie_over_tls(make_client: Callable[..., TestClient], world: World) -> None:
    client = make_client("https://portal.test")
    page = client.get("/login")
    client.post("/login", data={"code": "anna", "csrf_token": csrf_of(page.text)})
    link = world.mailer.sent[-1]["body"].split("https://portal.test", 1)[1].split()[0]
    assert "secure" in client.get(link).headers["set-cookie"].lower()


def test_posts_without_the_csrf_token_are_refused(client: TestClient, world: World) -> None:
    assert client.post("/login", data={"code": "anna"}).status_code == 403
    assert world.mailer.sent == []
    csrf = log_in(client, world, "bram")
    form = {"contactsoort": "Huisbezoek", "datum": TODAY.isoformat(), "bereikt": "nee"}
    refused = client.post(f"/cases/{CASE_A}/attempts", data=form)
    assert refused.status_code == 403
    wrong = client.post(f"/cases/{CASE_A}/attempts", data={**form, "csrf_token": csrf + "x"})
    assert wrong.status_code == 403
    assert world.scheduling.cases[CASE_A].attempts == []
    assert client.post("/logout").status_code == 403


def test_logout_ends_the_session_even_for_a_copied_cookie(client: TestClient, world: World) -> None:
    csrf = log_in(client, world, "anna")
    copied = dict(client.cookies)
    out = client.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    client.cookies.clear()
    client.cookies.update(copied)
    assert client.get("/visits").headers.get("location") == "/login"


def _attempt(client: TestClient, csrf: str, **fields: Any) -> Any:
    return client.post(
        f"/cases/{CASE_A}/attempts",
        data={
            "csrf_token": csrf,
            "contactsoort": "Huisbezoek",
            "datum": TODAY.isoformat(),
            **fields,
        },
        headers={"HX-Request": "true"},
    )


def test_not_at_home_then_help_accepted(client: TestClient, world: World) -> None:
    csrf = log_in(client, world, "bram")
    page = client.get(f"/cases/{CASE_A}")
    assert page.status_code == 200 and "Ochtend" in page.text
    not_home = _attempt(client, csrf, bereikt="nee", visit_id="1" * 16, dagdeel="Ochtend")
    assert not_home.status_code == 200
    assert not_home.text.lstrip().startswith('<div id="case-body">')  # the partial for htmx
    next_attempt = re.search(r'id="next-attempt" data-dagdeel="(\w+)"', not_home.text)
    assert next_attempt and next_attempt.group(1) != "Ochtend"
    second = world.scheduling.cases[CASE_A]
    assert second.attempt == 2
    planned = next(v for v in world.scheduling.visit_store.values() if v.attempt == 2)
    helped = _attempt(
        client,
        csrf,
        bereikt="ja",
        visit_id=planned.visit_id,
        eindresultaat="Vervolghulp en/of verwijzing financieel",
    )
    assert helped.status_code == 200
    assert "The outreach has ended: Vervolghulp en/of verwijzing financieel" in helped.text
    assert [a.bereikt for a in world.scheduling.cases[CASE_A].attempts] == [False, True]
    # without htmx: back to the case page
    ended = client.post(
        f"/cases/{CASE_A}/attempts",
        data={
            "csrf_token": csrf,
            "contactsoort": "Telefoon",
            "datum": TODAY.isoformat(),
            "bereikt": "nee",
        },
    )
    assert ended.status_code == 409 and "has ended" in ended.text


def test_a_malformed_attempt_is_shown_as_such(client: TestClient, world: World) -> None:
    csrf = log_in(client, world, "bram")
    bad = _attempt(client, csrf, bereikt="misschien")
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    bad = _attempt(client, csrf, bereikt="ja")  # reached needs an eindresultaat
    assert bad.status_code == 422
    assert world.scheduling.cases[CASE_A].attempts == []


def test_another_organisations_staff_member_gets_403_on_the_case(
    client: TestClient, world: World
) -> None:
    csrf = log_in(client, world, "olga")
    assert client.get(f"/cases/{CASE_A}").status_code == 403
    reveal = client.post(
        f"/cases/{CASE_A}/contact-details", data={"csrf_token": csrf, "purpose": "bezoek"}
    )
    assert reveal.status_code == 403
    assert world.intake.audit == []
    assert client.get(f"/cases/{CASE_B}").status_code == 200
    assert client.get(f"/cases/{'c' * 32}").status_code == 404
    assert client.get("/cases/not-a-ref").status_code == 404


def test_contact_details_only_after_a_purpose_and_audited(client: TestClient, world: World) -> None:
    csrf = log_in(client, world, "anna")
    page = client.get(f"/cases/{CASE_A}")
    assert "0612345678" not in page.text and "Jansen" not in page.text
    shown = client.post(
        f"/cases/{CASE_A}/contact-details",
        data={"csrf_token": csrf, "purpose": "huisbezoek voorbereiden"},
        headers={"HX-Request": "true"},
    )
    assert shown.status_code == 200 and "0612345678" in shown.text and "Jansen" in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert world.intake.audit == [("anna", "huisbezoek voorbereiden", ("sig-a-1",))]
    no_purpose = client.post(
        f"/cases/{CASE_A}/contact-details", data={"csrf_token": csrf, "purpose": "x"}
    )
    assert no_purpose.status_code == 422 and len(world.intake.audit) == 1


def test_the_calendar_file_of_a_visit(client: TestClient, world: World) -> None:
    log_in(client, world, "anna")
    ics = client.get(f"/cases/{CASE_A}/visits/{'1' * 16}.ics")
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    assert "UID:1111111111111111@eropaf" in ics.text
    assert client.get(f"/cases/{CASE_A}/visits/{'9' * 16}.ics").status_code == 404


def test_english_for_staff_who_prefer_it(client: TestClient, world: World) -> None:
    csrf = log_in(client, world, "bram")
    assert "Send me" not in world.mailer.sent[-1]["body"]
    assert world.mailer.sent[-1]["subject"] == "Your Eropaf login link"
    page = client.get("/visits")
    assert '<html lang="en">' in page.text and "My visits" in page.text
    client.post("/language", data={"csrf_token": csrf, "taal": "nl"})
    assert "Mijn bezoeken" in client.get("/visits").text


def test_a_duo_member_sees_no_coordinator_pages(client: TestClient, world: World) -> None:
    log_in(client, world, "anna")
    for path in ("/backlog", "/capacity", "/funnel", "/staff", "/export"):
        assert client.get(path).status_code == 403, path
    assert (
        client.get("/export/ddas?gemeente=0356&first=2026-11-01&last=2026-11-30").status_code == 403
    )
    assert world.matching.exports == []


def test_coordinator_pages(client: TestClient, world: World) -> None:
    csrf = log_in(client, world, "cora")
    assert client.get("/").headers["location"] == "/backlog"
    assert client.get("/backlog").status_code == 200
    assert client.get("/capacity").status_code == 200
    funnel = client.get("/funnel?gemeente=0356&month=2026-11")
    assert funnel.status_code == 200 and 'data-step="help_accepted">10<' in funnel.text
    assert client.get("/funnel?gemeente=0344").status_code == 403
    staff = client.get("/staff")
    assert staff.status_code == 200 and "bram" in staff.text
    absent = client.post(
        "/staff/absences",
        data={"csrf_token": csrf, "code": "bram", "from": TODAY.isoformat(), "to": "2026-11-20"},
    )
    assert absent.status_code == 200
    assert "bram is afwezig van 2026-11-16 t/m 2026-11-20; 2 bezoek(en) verplaatst." in absent.text
    assert "geen schuldhulpverlener beschikbaar" in absent.text  # the backlog it left
    export = client.get("/export/ddas?gemeente=0356&first=2026-11-01&last=2026-11-30")
    assert export.status_code == 200
    assert (
        'filename="ddas-0356-2026-11-01-2026-11-30.json"' in export.headers["content-disposition"]
    )
    assert export.headers["content-type"].startswith("application/json")
    assert world.matching.exports[-1][0] == "0356"


def test_the_cli_gets_a_login_link_with_the_internal_token(client: TestClient) -> None:
    from eropaf_platform.settings import dev_secret

    token = dev_secret("internal_api_token").get_secret_value()
    assert client.post("/internal/v1/login-links", json={"code": "anna"}).status_code == 401
    unknown = client.post(
        "/internal/v1/login-links",
        json={"code": "nobody"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert unknown.status_code == 404
    issued = client.post(
        "/internal/v1/login-links",
        json={"code": "anna"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert issued.status_code == 201
    url = issued.json()["url"]
    assert url.startswith(f"{BASE}/login/link?token=")
    assert client.get(url.removeprefix(BASE)).status_code == 303


class FakeOidc:
    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims

    async def authorize_access_token(self, _request: Any) -> dict[str, Any]:
        return {"userinfo": self.claims}


def test_oidc_callback_maps_the_claim_to_a_staff_member(client: TestClient) -> None:
    portal = client.app.state.portal  # type: ignore[attr-defined]
    portal.oidc = FakeOidc({"sub": "x1", "staff_code": "Cora"})
    signed_in = client.get("/login/oidc/callback")
    assert signed_in.status_code == 303
    assert client.get("/").headers["location"] == "/backlog"
    portal.oidc = FakeOidc({"sub": "x2"})
    client.cookies.clear()
    assert client.get("/login/oidc/callback").status_code == 403
    portal.oidc = FakeOidc({"staff_code": "nobody"})
    assert client.get("/login/oidc/callback").headers["location"] == "/login"
