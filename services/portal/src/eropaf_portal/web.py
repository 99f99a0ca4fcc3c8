"""The portal's pages: thin handlers that read the form, call one use case and render.

Sessions are Starlette's signed cookie (HttpOnly, SameSite=Lax, Secure when served over
TLS) holding the staff member's code, role and language, a session id and a CSRF token. The
session id must also be live in this process (`SessionRegistry`): logging out removes it, so
a copy of the cookie no longer works. Every POST carries the CSRF token (form field
`csrf_token` or header `X-CSRF-Token`); a post without the session's token is refused with 403.
Pages are `Cache-Control: no-store`: a case page may show contact details.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import FormData

from eropaf_contracts.ddas import Contactsoort, Dagdeel, Eindresultaat
from eropaf_portal.domain import rules
from eropaf_portal.domain.i18n import translator
from eropaf_portal.domain.model import AttemptInput, Language, Me, Role
from eropaf_portal.service_layer import services
from eropaf_portal.service_layer.ports import (
    ApiError,
    Forbidden,
    IntakeApi,
    LoginLinks,
    Mailer,
    MatchingApi,
    NotFound,
    Refused,
    SchedulingApi,
    Unauthenticated,
    Unavailable,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["contactsoorten"] = [c.value for c in Contactsoort]
templates.env.globals["dagdelen"] = [d.value for d in Dagdeel]
templates.env.globals["eindresultaten"] = [e.value for e in Eindresultaat]
# Most polls of a case page waiting for its next visit (one a second).
MAX_POLLS = 30


class CsrfRefused(Exception):
    """A form post without the session's CSRF token."""


class NotSignedIn(Exception):
    pass


class SessionRegistry:
    """The session ids that are live in this process, each until it expires."""

    def __init__(self, max_age_s: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._live: dict[str, float] = {}
        self._lock = threading.Lock()

    def open(self) -> str:
        sid = secrets.token_urlsafe(24)
        now = self._clock()
        with self._lock:
            for old in [s for s, until in self._live.items() if until < now]:
                del self._live[old]
            self._live[sid] = now + self.max_age_s
        return sid

    def alive(self, sid: object) -> bool:
        if not isinstance(sid, str):
            return False
        with self._lock:
            until = self._live.get(sid)
        return until is not None and until >= self._clock()

    def close(self, sid: object) -> None:
        if isinstance(sid, str):
            with self._lock:
                self._live.pop(sid, None)


@dataclass
class Portal:
    """What the handlers use: the services' APIs and the login machinery."""

    scheduling: SchedulingApi
    matching: MatchingApi
    intake: IntakeApi
    mailer: Mailer
    links: LoginLinks
    sessions: SessionRegistry
    public_url: str
    internal_token: str
    oidc: Any = None  # an Authlib client when OIDC is configured
    oidc_claim: str = "staff_code"
    today: Callable[[], date] = field(default=lambda: datetime.now(AMSTERDAM).date())


# -- session helpers ---------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's (else CsrfRefused)."""
    form = await request.form()
    sent = form.get("csrf_token") or request.headers.get("x-csrf-token") or ""
    expected = request.session.get("csrf")
    if (
        not isinstance(sent, str)
        or not isinstance(expected, str)
        or not hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise CsrfRefused
    return form


def start_session(request: Request, portal: Portal, me: Me) -> None:
    """A fresh session for `me` (nothing of an earlier one survives: no fixation)."""
    portal.sessions.close(request.session.get("sid"))
    request.session.clear()
    request.session.update(
        {
            "sid": portal.sessions.open(),
            "csrf": secrets.token_urlsafe(24),
            "code": me.code,
            "naam": me.naam,
            "organisatie": me.organisatie,
            "rol": me.rol.value,
            "gemeenten": list(me.gemeenten),
            "taal": me.taal.value,
        }
    )


def current_staff(request: Request) -> Me:
    portal: Portal = request.app.state.portal
    session = request.session
    if not portal.sessions.alive(session.get("sid")) or not isinstance(session.get("code"), str):
        raise NotSignedIn
    return Me(
        code=session["code"],
        naam=session.get("naam", ""),
        email="",
        organisatie=session.get("organisatie", ""),
        rol=Role(session.get("rol", "medewerker")),
        gemeenten=tuple(session.get("gemeenten", [])),
        taal=Language.of(session.get("taal")),
    )


def language(request: Request) -> Language:
    return Language.of(request.session.get("taal"))


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    me: Me | None = None,
) -> HTMLResponse:
    lang = me.taal if me else language(request)
    return templates.TemplateResponse(
        request,
        template,
        {
            "t": translator(lang),
            "lang": lang.value,
            "me": me,
            "csrf": csrf_token(request),
            **(context or {}),
        },
        status_code=status_code,
    )


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _date(form: Mapping[str, Any], name: str) -> date:
    try:
        return date.fromisoformat(str(form.get(name, "")))
    except ValueError:
        raise ValueError(name) from None


class LoginLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str


class LoginLinkOut(BaseModel):
    url: str
    expires_in_s: int


# -- routes ------------------------------------------------------------------------------


def router() -> APIRouter:
    r = APIRouter()

    def portal_of(request: Request) -> Portal:
        p: Portal = request.app.state.portal
        return p

    @r.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @r.get("/health/ready", include_in_schema=False)
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @r.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        me = current_staff(request)
        return RedirectResponse("/backlog" if me.is_coordinator else "/visits", status_code=303)

    # -- login / logout --

    @r.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request) -> HTMLResponse:
        return render(request, "login.html", {"oidc": portal_of(request).oidc is not None})

    @r.post("/login", response_class=HTMLResponse)
    async def login_request(request: Request) -> HTMLResponse:
        form = await checked_form(request)
        p = portal_of(request)
        await services.request_login_link(
            p.scheduling, p.links, p.mailer, str(form.get("code", "")), p.public_url
        )
        return render(request, "login.html", {"sent": True, "oidc": p.oidc is not None})

    @r.get("/login/link", response_class=HTMLResponse)
    async def login_link(request: Request, token: str = "") -> Response:
        p = portal_of(request)
        try:
            me = await services.redeem_login_link(p.scheduling, p.links, token)
        except Unauthenticated:
            return render(
                request,
                "login.html",
                {"bad_link": True, "oidc": p.oidc is not None},
                status_code=400,
            )
        start_session(request, p, me)
        return RedirectResponse("/", status_code=303)

    @r.get("/login/oidc", include_in_schema=False)
    async def login_oidc(request: Request) -> Response:
        p = portal_of(request)
        if p.oidc is None:
            raise HTTPException(404)
        redirect: Response = await p.oidc.authorize_redirect(
            request, p.public_url.rstrip("/") + "/login/oidc/callback"
        )
        return redirect

    @r.get("/login/oidc/callback", include_in_schema=False)
    async def login_oidc_callback(request: Request) -> Response:
        p = portal_of(request)
        if p.oidc is None:
            raise HTTPException(404)
        from authlib.integrations.base_client.errors import OAuthError

        try:
            token = await p.oidc.authorize_access_token(request)
        except OAuthError:  # wrong or replayed state, refused code, bad ID token
            raise Forbidden("the identity provider's answer is not valid here") from None
        claims = token.get("userinfo") or {}
        try:
            code = rules.staff_code_from_claims(claims, p.oidc_claim)
        except rules.NotAStaffCode:
            raise Forbidden("the identity provider names no staff code") from None
        me = await services.sign_in(p.scheduling, code)
        start_session(request, p, me)
        return RedirectResponse("/", status_code=303)

    @r.post("/logout")
    async def logout(request: Request) -> Response:
        await checked_form(request)
        portal_of(request).sessions.close(request.session.get("sid"))
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @r.post("/language")
    async def set_language(request: Request) -> Response:
        form = await checked_form(request)
        request.session["taal"] = Language.of(str(form.get("taal", "nl"))).value
        back = request.headers.get("referer", "/")
        return RedirectResponse(
            back if back.startswith(portal_of(request).public_url) else "/", 303
        )

    # -- duo member --

    @r.get("/visits", response_class=HTMLResponse)
    async def visits(request: Request) -> HTMLResponse:
        me = current_staff(request)
        p = portal_of(request)
        page = await services.my_visits(p.scheduling, me, p.today())
        return render(request, "visits.html", {"page": page, "today": p.today()}, me=me)

    @r.get("/cases/{case_ref}/visits/{visit_id}.ics")
    async def visit_ics(request: Request, case_ref: str, visit_id: str) -> Response:
        me = current_staff(request)
        visit = await services.visit_of(portal_of(request).scheduling, me, case_ref, visit_id)
        t = translator(me.taal)
        text = rules.visit_calendar(
            visit,
            summary=f"{t('outreach.home_visit')} {visit.case_ref[:12]} ({visit.gemeentecode})",
            now=datetime.now(AMSTERDAM),
        )
        return Response(
            text,
            media_type="text/calendar; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="visit-{visit_id[:16]}.ics"'},
        )

    async def case_body(
        request: Request, me: Me, case_ref: str, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        case = await services.case_page(portal_of(request).scheduling, me, case_ref)
        return {"case": case, "today": portal_of(request).today(), **(extra or {})}

    @r.get("/cases/{case_ref}", response_class=HTMLResponse)
    async def case_page(request: Request, case_ref: str, saved: int = 0) -> HTMLResponse:
        me = current_staff(request)
        context = await case_body(request, me, case_ref, {"saved": bool(saved), "poll": 0})
        return render(request, "case.html", context, me=me)

    @r.get("/cases/{case_ref}/body", response_class=HTMLResponse)
    async def case_partial(request: Request, case_ref: str, poll: int = 0) -> HTMLResponse:
        me = current_staff(request)
        context = await case_body(request, me, case_ref, {"poll": min(poll, MAX_POLLS)})
        return render(request, "_case_body.html", context, me=me)

    @r.post("/cases/{case_ref}/attempts", response_class=HTMLResponse)
    async def record_attempt(request: Request, case_ref: str) -> Response:
        form = await checked_form(request)
        me = current_staff(request)
        try:
            bereikt = {"ja": True, "nee": False}[str(form.get("bereikt", ""))]
            attempt = AttemptInput(
                contactsoort=Contactsoort(str(form.get("contactsoort", ""))).value,
                datum=_date(form, "datum"),
                dagdeel=Dagdeel(str(form["dagdeel"])).value if form.get("dagdeel") else None,
                bereikt=bereikt,
                eindresultaat=Eindresultaat(str(form["eindresultaat"])).value
                if form.get("eindresultaat")
                else None,
                visit_id=str(form["visit_id"]) if form.get("visit_id") else None,
            )
            await services.record_attempt(portal_of(request).scheduling, me, case_ref, attempt)
        except (KeyError, ValueError) as exc:
            return await case_refused(request, me, case_ref, f"{exc}")
        except Refused as exc:
            return await case_refused(request, me, case_ref, exc.detail, exc.status)
        if is_htmx(request):
            context = await case_body(request, me, case_ref, {"saved": True, "poll": 0})
            return render(request, "_case_body.html", context, me=me)
        return RedirectResponse(f"/cases/{case_ref}?saved=1", status_code=303)

    async def case_refused(
        request: Request, me: Me, case_ref: str, detail: str, status: int = 422
    ) -> HTMLResponse:
        context = await case_body(request, me, case_ref, {"error": detail, "poll": 0})
        template = "_case_body.html" if is_htmx(request) else "case.html"
        return render(request, template, context, status_code=status, me=me)

    @r.post("/cases/{case_ref}/contact-details", response_class=HTMLResponse)
    async def contact_details(request: Request, case_ref: str) -> HTMLResponse:
        form = await checked_form(request)
        me = current_staff(request)
        p = portal_of(request)
        purpose = str(form.get("purpose", ""))
        try:
            details = await services.reveal_contact_details(
                p.scheduling, p.matching, p.intake, me, case_ref, purpose
            )
        except ValueError:
            return render(
                request,
                "_contact.html",
                {"case_ref": case_ref, "error": True},
                status_code=422,
                me=me,
            )
        context = {"case_ref": case_ref, "details": details, "purpose": " ".join(purpose.split())}
        if is_htmx(request):
            return render(request, "_contact.html", context, me=me)
        return render(request, "contact.html", context, me=me)

    # -- coordinator --

    @r.get("/backlog", response_class=HTMLResponse)
    async def backlog(request: Request) -> HTMLResponse:
        me = current_staff(request)
        entries = await services.backlog(portal_of(request).scheduling, me)
        return render(request, "backlog.html", {"entries": entries}, me=me)

    @r.get("/capacity", response_class=HTMLResponse)
    async def capacity(request: Request) -> HTMLResponse:
        me = current_staff(request)
        p = portal_of(request)
        weeks = await services.capacity(p.scheduling, me, p.today())
        return render(request, "capacity.html", {"weeks": weeks}, me=me)

    @r.get("/funnel", response_class=HTMLResponse)
    async def funnel(request: Request, gemeente: str = "", month: str = "") -> HTMLResponse:
        me = current_staff(request)
        if not me.is_coordinator:
            raise Forbidden("the funnel is for coordinators")
        p = portal_of(request)
        gemeente = gemeente or (me.gemeenten[0] if me.gemeenten else "")
        month = month or p.today().strftime("%Y-%m")
        try:
            figures = await services.funnel(p.matching, me, gemeente, month, p.today())
        except ValueError:
            raise NotFound("no such month") from None
        context = {"funnel": figures, "gemeente": gemeente, "month": month}
        return render(request, "funnel.html", context, me=me)

    async def staff_context(request: Request, me: Me) -> dict[str, Any]:
        members = await services.staff(portal_of(request).scheduling, me)
        return {"members": members, "duo": [m for m in members if m.rol is not Role.COORDINATOR]}

    @r.get("/staff", response_class=HTMLResponse)
    async def staff(request: Request) -> HTMLResponse:
        me = current_staff(request)
        return render(request, "staff.html", await staff_context(request, me), me=me)

    @r.post("/staff/absences", response_class=HTMLResponse)
    async def mark_absent(request: Request) -> HTMLResponse:
        form = await checked_form(request)
        me = current_staff(request)
        p = portal_of(request)
        code = str(form.get("code", ""))
        try:
            first, last = _date(form, "from"), _date(form, "to")
            recorded = await services.mark_absent(p.scheduling, me, code, first, last)
        except ValueError as exc:
            context = {**await staff_context(request, me), "error": str(exc)}
            return render(request, "staff.html", context, status_code=422, me=me)
        except Refused as exc:
            context = {**await staff_context(request, me), "error": exc.detail}
            return render(request, "staff.html", context, status_code=exc.status, me=me)
        context = {
            **await staff_context(request, me),
            "recorded": recorded,
            "their_visits": await services.visits_of_staff(p.scheduling, me, code, p.today()),
            "backlog": await services.backlog(p.scheduling, me),
        }
        return render(request, "staff.html", context, me=me)

    @r.get("/export", response_class=HTMLResponse)
    async def export_page(request: Request) -> HTMLResponse:
        me = current_staff(request)
        if not me.is_coordinator:
            raise Forbidden("exports are for coordinators")
        first, last = rules.month_of(None, portal_of(request).today())
        return render(request, "export.html", {"first": first, "last": last}, me=me)

    @r.get("/export/ddas")
    async def export_ddas(request: Request, gemeente: str, first: date, last: date) -> Response:
        me = current_staff(request)
        try:
            export = await services.ddas_export(
                portal_of(request).matching, me, gemeente, first, last
            )
        except ValueError:
            raise HTTPException(422, "'last' is before 'first'") from None
        name = f"ddas-{gemeente}-{first.isoformat()}-{last.isoformat()}.{export.extension}"
        return Response(
            export.content,
            media_type=export.media_type,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    # -- operators (the CLI) --

    @r.post("/internal/v1/login-links", response_model=LoginLinkOut, status_code=201)
    async def issue_login_link(request: Request, body: LoginLinkIn) -> LoginLinkOut:
        p = portal_of(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), p.internal_token.encode()
        ):
            raise HTTPException(401, "internal token required")
        try:
            url = await services.issue_login_link(p.scheduling, p.links, body.code, p.public_url)
        except (Unauthenticated, NotFound):
            raise HTTPException(404, "no active staff member with this code") from None
        except ApiError as exc:
            raise HTTPException(502, f"scheduling answered {exc.status}") from None
        return LoginLinkOut(url=url, expires_in_s=p.links.max_age_s)

    return r


# -- errors ------------------------------------------------------------------------------


def install_error_pages(app: FastAPI) -> None:
    def page(status: int, key: str) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(request: Request, _exc: Exception) -> Response:
            if request.url.path.startswith("/internal/"):
                return JSONResponse({"detail": key}, status_code=status)
            me = None
            try:
                me = current_staff(request)
            except NotSignedIn:
                pass
            return render(request, "error.html", {"message": key}, status_code=status, me=me)

        return handler

    async def to_login(request: Request, _exc: Exception) -> Response:
        if isinstance(_exc, Unauthenticated):  # the code is no longer active: end the session
            portal: Portal = request.app.state.portal
            portal.sessions.close(request.session.get("sid"))
            request.session.clear()
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    app.add_exception_handler(NotSignedIn, to_login)
    app.add_exception_handler(Unauthenticated, to_login)
    app.add_exception_handler(Forbidden, page(403, "error.403"))
    app.add_exception_handler(rules.OutsideRegion, page(403, "error.403"))
    app.add_exception_handler(NotFound, page(404, "error.404"))
    app.add_exception_handler(CsrfRefused, page(403, "error.csrf"))
    app.add_exception_handler(Unavailable, page(503, "error.unavailable"))
    app.add_exception_handler(Refused, page(422, "error.invalid"))
