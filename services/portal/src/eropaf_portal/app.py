"""Wiring of the staff portal: settings, the services' clients, sessions, pages;
``python -m eropaf_portal``.

The portal has no database: it shows what scheduling's staff API, matching's read side and
intake's audited read return, as the staff member signed in.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Self

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.middleware.sessions import SessionMiddleware

from eropaf_platform.logging import configure_logging, get_logger
from eropaf_platform.settings import fill_secrets
from eropaf_portal import metrics, web
from eropaf_portal.adapters.http_clients import IntakeClient, MatchingClient, SchedulingClient
from eropaf_portal.adapters.login_links import SignedLoginLinks
from eropaf_portal.adapters.mailer import SmtpMailer
from eropaf_portal.service_layer.ports import (
    IntakeApi,
    LoginLinks,
    Mailer,
    MatchingApi,
    SchedulingApi,
)

__all__ = ["PortalSettings", "build_app", "main"]

log = get_logger(__name__)

SESSION_COOKIE = "eropaf_portal"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class PortalSettings(BaseSettings):
    """Settings of the portal (prefix ``EROPAF_``); secrets have no default outside dev mode."""

    # No default outside dev mode (as eropaf_platform.settings.ServiceSettings.secret_fields).
    secret_fields: ClassVar[tuple[str, ...]] = ("internal_api_token", "session_secret")

    model_config = SettingsConfigDict(env_prefix="EROPAF_", extra="ignore", env_file=None)

    service_name: str = "portal"
    dev_mode: bool = False
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    public_url: str | None = Field(
        default=None, description="the address staff use (links in mail); default from host:port"
    )

    scheduling_url: str = "http://127.0.0.1:8002"
    matching_url: str = "http://127.0.0.1:8001"
    intake_url: str = "http://127.0.0.1:8000"
    internal_api_token: SecretStr | None = None
    request_timeout_s: float = Field(default=10.0, gt=0)

    session_secret: SecretStr | None = None
    session_max_age_s: int = Field(default=12 * 3600, ge=60)
    # None: Secure cookies exactly when public_url is https
    secure_cookies: bool | None = None
    login_link_max_age_s: int = Field(default=900, ge=60, le=3600)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    mail_from: str = "Eropaf <portal@eropaf.invalid>"

    oidc_metadata_url: str | None = Field(
        default=None, description="the identity provider's .well-known/openid-configuration"
    )
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_staff_claim: str = Field(default="staff_code", description="ID-token claim: staff code")
    oidc_scope: str = "openid email profile"

    @model_validator(mode="after")
    def _secrets_present(self) -> Self:
        fill_secrets(self, self.secret_fields, self.dev_mode)
        if self.oidc_metadata_url and not (self.oidc_client_id and self.oidc_client_secret):
            raise ValueError("OIDC needs EROPAF_OIDC_CLIENT_ID and EROPAF_OIDC_CLIENT_SECRET")
        return self

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    def secret(self, name: str) -> str:
        value: SecretStr | None = getattr(self, name)
        assert value is not None  # the validator filled or refused it
        return value.get_secret_value()


def oidc_client(settings: PortalSettings) -> Any:
    """The Authlib client of the organisation's identity provider, or None when not set."""
    if not settings.oidc_metadata_url:
        return None
    from authlib.integrations.starlette_client import OAuth

    oauth = OAuth()
    assert settings.oidc_client_secret is not None
    return oauth.register(
        "staff",
        server_metadata_url=settings.oidc_metadata_url,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret.get_secret_value(),
        client_kwargs={"scope": settings.oidc_scope},
    )


def build_app(
    settings: PortalSettings | None = None,
    *,
    scheduling: SchedulingApi | None = None,
    matching: MatchingApi | None = None,
    intake: IntakeApi | None = None,
    mailer: Mailer | None = None,
    links: LoginLinks | None = None,
) -> FastAPI:
    """The portal app; the services' clients are built from the settings unless given."""
    settings = settings or PortalSettings()
    token = settings.secret("internal_api_token")
    http = httpx.AsyncClient(timeout=settings.request_timeout_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await http.aclose()

    app = FastAPI(title="eropaf-portal", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.portal = web.Portal(
        scheduling=scheduling or SchedulingClient(http, settings.scheduling_url, token),
        matching=matching or MatchingClient(http, settings.matching_url, token),
        intake=intake or IntakeClient(http, settings.intake_url, token),
        mailer=mailer
        or SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls,
        ),
        links=links
        or SignedLoginLinks(
            settings.secret("session_secret"), max_age_s=settings.login_link_max_age_s
        ),
        sessions=web.SessionRegistry(settings.session_max_age_s),
        public_url=settings.base_url,
        internal_token=token,
        oidc=oidc_client(settings),
        oidc_claim=settings.oidc_staff_claim,
    )
    secure = (
        settings.secure_cookies
        if settings.secure_cookies is not None
        else settings.base_url.startswith("https://")
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret("session_secret"),
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=secure,
    )

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        metrics.observe(request, response.status_code, time.perf_counter() - started)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    app.add_api_route("/metrics", metrics.endpoint, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=web.HERE / "static"), name="static")
    app.include_router(web.router())
    web.install_error_pages(app)
    return app


def main() -> None:
    import uvicorn

    settings = PortalSettings()
    configure_logging(settings.service_name, settings.log_level)
    log.info("portal.starting", url=settings.base_url, oidc=bool(settings.oidc_metadata_url))
    uvicorn.run(
        build_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,  # paths hold case references; no request log of staff activity
        lifespan="on",
    )
