"""One-time, short-lived login links.

A link's token is signed (itsdangerous, HMAC-SHA256 with the portal's session secret) and
carries the staff code, a random nonce and its issue time; it is good for `max_age_s`.
Single use: a redeemed nonce is kept in this process's memory until the token would have
expired anyway. The signing key also holds a random value drawn at start-up, so a restart voids
every link issued before it (otherwise one redeemed before the restart could be used again).
A deployment runs one portal process per set of links (or uses OIDC, which needs none of this).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_SALT = "eropaf-portal-login-link"


class SignedLoginLinks:
    def __init__(
        self,
        secret: str,
        *,
        max_age_s: int = 900,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._serializer = URLSafeTimedSerializer(secret + ":" + secrets.token_hex(16), salt=_SALT)
        self._used: dict[str, float] = {}  # nonce -> when it may be forgotten
        self._lock = threading.Lock()

    def issue(self, code: str) -> str:
        return self._serializer.dumps({"c": code, "n": secrets.token_urlsafe(16)})

    def redeem(self, token: str) -> str | None:
        try:
            payload = self._serializer.loads(token, max_age=self.max_age_s)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(payload, dict):
            return None
        code, nonce = payload.get("c"), payload.get("n")
        if not isinstance(code, str) or not isinstance(nonce, str):
            return None
        now = self._clock()
        with self._lock:
            for old in [n for n, until in self._used.items() if until < now]:
                del self._used[old]
            if nonce in self._used:
                return None
            self._used[nonce] = now + self.max_age_s + 60
        return code
