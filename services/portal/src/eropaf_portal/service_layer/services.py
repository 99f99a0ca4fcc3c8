"""The portal's use cases, one function each, over the services' APIs (`ports`).

The portal holds no data of its own: every page asks the services as the staff member signed
in, and their permission rules decide (a refusal comes back as `Forbidden`). Figures of a
region (funnel, DDAS export) come from matching's internal API, which knows no staff, so the
rule for them is applied here (`rules.check_region`). Personal data is read only through
intake's audited API, with the purpose the staff member gave, after scheduling confirmed the
case is theirs; it is returned for one page and never stored or logged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta

from eropaf_portal.domain import rules
from eropaf_portal.domain.i18n import translator
from eropaf_portal.domain.model import (
    AbsenceRecorded,
    Attempt,
    AttemptInput,
    BacklogEntry,
    CapacityWeek,
    Case,
    ContactDetails,
    DdasExport,
    Funnel,
    Me,
    StaffEntry,
    Task,
    Visit,
)
from eropaf_portal.service_layer.ports import (
    Forbidden,
    IntakeApi,
    LoginLinks,
    Mailer,
    MatchingApi,
    NotFound,
    SchedulingApi,
    Unauthenticated,
)

CAPACITY_WEEKS = 4


async def request_login_link(
    scheduling: SchedulingApi, links: LoginLinks, mailer: Mailer, code: str, base_url: str
) -> bool:
    """Mail a one-time login link to the staff member `code`. False (and nothing sent) for
    an unknown code; the page says the same either way, so it reveals no codes."""
    code = code.strip().lower()
    if not rules.STAFF_CODE.fullmatch(code):
        return False
    try:
        me = await scheduling.me(code)
    except Unauthenticated:
        return False
    t = translator(me.taal)
    link = login_url(base_url, links.issue(me.code))
    body = f"{t('login.mail_body', minutes=links.max_age_s // 60)}\n\n{link}\n\n{t('app')}\n"
    await mailer.send(to=me.email, subject=t("login.mail_subject"), body=body)
    return True


def login_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/login/link?token={token}"


async def issue_login_link(
    scheduling: SchedulingApi, links: LoginLinks, code: str, base_url: str
) -> str:
    """A login link for `code` (operators and the demo: `eropaf staff login-link`)."""
    me = await scheduling.me(code.strip().lower())
    return login_url(base_url, links.issue(me.code))


async def redeem_login_link(scheduling: SchedulingApi, links: LoginLinks, token: str) -> Me:
    """The staff member a login link names, once (Unauthenticated otherwise)."""
    code = links.redeem(token)
    if code is None:
        raise Unauthenticated("invalid, expired or used login link")
    return await scheduling.me(code)


async def sign_in(scheduling: SchedulingApi, code: str) -> Me:
    """The staff member an identity provider named (OIDC): known and active, or Unauthenticated."""
    return await scheduling.me(code)


@dataclass(frozen=True)
class VisitsPage:
    visits: rules.MyVisits
    tasks: list[Task]


async def my_visits(scheduling: SchedulingApi, me: Me, today: date) -> VisitsPage:
    last = today + timedelta(days=rules.VISITS_AHEAD_DAYS)
    if me.is_coordinator:
        return VisitsPage(rules.my_visits([], me.code, today), [])
    # both at once: the page waits for the slower, not for the sum
    visits, tasks = await asyncio.gather(
        scheduling.visits(me.code, today, last), scheduling.tasks(me.code)
    )
    return VisitsPage(rules.my_visits(visits, me.code, today), tasks)


async def visit_of(scheduling: SchedulingApi, me: Me, case_ref: str, visit_id: str) -> Visit:
    case = await scheduling.case(me.code, case_ref)
    for visit in case.visits:
        if visit.visit_id == visit_id:
            return visit
    raise NotFound("no such visit")


async def case_page(scheduling: SchedulingApi, me: Me, case_ref: str) -> Case:
    if not rules.CASE_REF.fullmatch(case_ref):
        raise NotFound("no such case")
    return await scheduling.case(me.code, case_ref)


async def record_attempt(
    scheduling: SchedulingApi, me: Me, case_ref: str, attempt: AttemptInput
) -> tuple[Attempt, Case]:
    """Record the attempt; the case as it is afterwards (a next visit may still be planned:
    scheduling replans within seconds)."""
    if not rules.CASE_REF.fullmatch(case_ref):
        raise NotFound("no such case")
    recorded = await scheduling.record_attempt(me.code, case_ref, attempt)
    return recorded, await scheduling.case(me.code, case_ref)


async def reveal_contact_details(
    scheduling: SchedulingApi,
    matching: MatchingApi,
    intake: IntakeApi,
    me: Me,
    case_ref: str,
    purpose: str,
) -> list[ContactDetails]:
    """The household's contact details and address, read through intake's audited API with
    the staff member as accessor and their purpose, only for a case scheduling lets them see."""
    purpose = " ".join(purpose.split())
    if len(purpose) < 3:
        raise ValueError("purpose")
    await case_page(scheduling, me, case_ref)  # Forbidden/NotFound before anything is read
    refs = await matching.signal_refs(case_ref)
    if not refs:
        return []
    records = await intake.personal_data(refs, accessor=me.code, purpose=purpose)
    return [rules.contact_details(ref, records[ref]) for ref in refs if ref in records]


async def backlog(scheduling: SchedulingApi, me: Me) -> list[BacklogEntry]:
    if not me.sees_backlog:
        raise Forbidden("the backlog is for counsellors and coordinators")
    entries = await scheduling.backlog(me.code)
    return sorted(entries, key=lambda e: (e.deadline, e.gemeentecode, e.case_ref))


async def capacity(scheduling: SchedulingApi, me: Me, today: date) -> list[CapacityWeek]:
    if not me.is_coordinator:
        raise Forbidden("capacity is for coordinators")
    monday, _ = rules.week_of(today)
    weeks = await scheduling.capacity(
        me.code, monday, monday + timedelta(days=7 * CAPACITY_WEEKS - 1)
    )
    return sorted(weeks, key=lambda w: (w.week, w.gemeentecode, w.team))


async def funnel(
    matching: MatchingApi, me: Me, gemeentecode: str, month: str | None, today: date
) -> Funnel:
    rules.check_region(me, gemeentecode)
    first, last = rules.month_of(month, today)
    return await matching.funnel(gemeentecode, first, last)


async def staff(scheduling: SchedulingApi, me: Me) -> list[StaffEntry]:
    if not me.is_coordinator:
        raise Forbidden("the staff page is for coordinators")
    return sorted(await scheduling.staff(me.code), key=lambda s: (s.organisatie, s.code))


async def mark_absent(
    scheduling: SchedulingApi, me: Me, staff_code: str, first: date, last: date
) -> AbsenceRecorded:
    """Record leave or sickness (inclusive dates); scheduling replans the visits it touches."""
    if not me.is_coordinator:
        raise Forbidden("absences are recorded by coordinators")
    if last < first:
        raise ValueError("to before from")
    return await scheduling.add_absence(me.code, staff_code, first, last)


async def visits_of_staff(
    scheduling: SchedulingApi, me: Me, staff_code: str, today: date
) -> list[Visit]:
    """A staff member's planned visits from today on, as the coordinator sees them."""
    visits = await scheduling.visits(
        me.code, today, today + timedelta(days=rules.VISITS_AHEAD_DAYS)
    )
    return sorted(
        (v for v in visits if staff_code in v.staff and v.status == "planned"),
        key=lambda v: v.start,
    )


async def ddas_export(
    matching: MatchingApi, me: Me, gemeentecode: str, first: date, last: date
) -> DdasExport:
    rules.check_region(me, gemeentecode)
    if last < first:
        raise ValueError("to before from")
    return await matching.ddas_export(gemeentecode, first, last)
