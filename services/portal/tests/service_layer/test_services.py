from __future__ import annotations

from datetime import timedelta

import pytest

from eropaf_portal.adapters.login_links import SignedLoginLinks
from eropaf_portal.domain import rules
from eropaf_portal.domain.model import AttemptInput
from eropaf_portal.service_layer import services
from eropaf_portal.service_layer.ports import Forbidden, Unauthenticated

from .fakes import CASE_A, CASE_B, TODAY, demo_world

pytestmark = pytest.mark.unit
BASE = "http://portal.test"


async def test_a_login_link_is_mailed_to_a_known_staff_member_only() -> None:
    w = demo_world()
    links = SignedLoginLinks("secret", max_age_s=600)
    assert await services.request_login_link(w.scheduling, links, w.mailer, " Anna ", BASE)
    assert not await services.request_login_link(w.scheduling, links, w.mailer, "nobody", BASE)
    assert not await services.request_login_link(w.scheduling, links, w.mailer, "<x>", BASE)
    [mail] = w.mailer.sent
    assert mail["to"] == "anna@example.org"
    assert "10 minuten" in mail["body"]
    link = next(line for line in mail["body"].splitlines() if line.startswith(BASE))
    token = link.split("token=", 1)[1]
    assert (await services.redeem_login_link(w.scheduling, links, token)).code == "anna"
    with pytest.raises(Unauthenticated):  # single use
        await services.redeem_login_link(w.scheduling, links, token)


async def test_a_login_link_of_a_member_no_longer_active_signs_nobody_in() -> None:
    w = demo_world()
    links = SignedLoginLinks("secret")
    url = await services.issue_login_link(w.scheduling, links, "anna", BASE)
    w.scheduling.inactive.add("anna")
    with pytest.raises(Unauthenticated):
        await services.redeem_login_link(w.scheduling, links, url.split("token=", 1)[1])


async def test_contact_details_are_read_audited_with_the_purpose_after_the_case_is_allowed() -> (
    None
):
    w = demo_world()
    anna = await w.scheduling.me("anna")
    details = await services.reveal_contact_details(
        w.scheduling, w.matching, w.intake, anna, CASE_A, "  huisbezoek   voorbereiden "
    )
    assert dict(details[0].fields)["telefoonnummer"] == "0612345678"
    assert w.intake.audit == [("anna", "huisbezoek voorbereiden", ("sig-a-1",))]
    with pytest.raises(Forbidden):  # olga's corporation has no visit on case A
        await services.reveal_contact_details(
            w.scheduling, w.matching, w.intake, await w.scheduling.me("olga"), CASE_A, "bezoek"
        )
    with pytest.raises(ValueError):
        await services.reveal_contact_details(w.scheduling, w.matching, w.intake, anna, CASE_A, " ")
    assert len(w.intake.audit) == 1  # refused requests read nothing


async def test_recording_not_reached_returns_the_case_with_its_next_visit() -> None:
    w = demo_world()
    bram = await w.scheduling.me("bram")
    case = await services.case_page(w.scheduling, bram, CASE_A)
    first = case.planned_visit
    assert first is not None
    attempt = AttemptInput("Huisbezoek", TODAY, first.dagdeel, False, None, first.visit_id)
    recorded, after = await services.record_attempt(w.scheduling, bram, CASE_A, attempt)
    assert not recorded.bereikt
    assert after.planned_visit is not None
    assert after.planned_visit.dagdeel != first.dagdeel
    assert after.planned_visit.attempt == 2


async def test_coordinator_pages_refuse_other_roles_and_other_regions() -> None:
    w = demo_world()
    anna, bram, cora = [await w.scheduling.me(c) for c in ("anna", "bram", "cora")]
    with pytest.raises(Forbidden):
        await services.backlog(w.scheduling, anna)
    await services.backlog(w.scheduling, bram)
    for call in (
        services.capacity(w.scheduling, bram, TODAY),
        services.staff(w.scheduling, bram),
        services.mark_absent(w.scheduling, bram, "anna", TODAY, TODAY),
    ):
        with pytest.raises(Forbidden):
            await call
    with pytest.raises(rules.OutsideRegion):
        await services.funnel(w.matching, bram, "0356", None, TODAY)
    with pytest.raises(rules.OutsideRegion):
        await services.ddas_export(w.matching, cora, "0344", TODAY, TODAY)
    assert (await services.funnel(w.matching, cora, "0356", "2026-10", TODAY)).signals == 100
    assert w.matching.exports == []


async def test_marking_absent_moves_the_visits_and_shows_them_in_the_backlog() -> None:
    w = demo_world()
    cora = await w.scheduling.me("cora")
    recorded = await services.mark_absent(
        w.scheduling, cora, "bram", TODAY, TODAY + timedelta(days=4)
    )
    assert recorded.visits_moved == 2
    assert await services.visits_of_staff(w.scheduling, cora, "bram", TODAY) == []
    backlog = await services.backlog(w.scheduling, cora)
    assert {e.case_ref for e in backlog} == {CASE_A, CASE_B}
    with pytest.raises(ValueError):
        await services.mark_absent(w.scheduling, cora, "bram", TODAY, TODAY - timedelta(days=1))
