from __future__ import annotations

import aiosmtplib
import pytest

from eropaf_notification.adapters.smtp import classify_smtp_error
from eropaf_notification.domain.delivery import SendStatus

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (aiosmtplib.SMTPDataError(451, "try later"), SendStatus.TEMPORARY),
        (aiosmtplib.SMTPDataError(554, "rejected"), SendStatus.PERMANENT),
        (aiosmtplib.SMTPSenderRefused(550, "no", "a@b"), SendStatus.PERMANENT),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "busy", "a@b")]),
            SendStatus.TEMPORARY,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no", "a@b")]),
            SendStatus.PERMANENT,
        ),
        (aiosmtplib.SMTPConnectError("refused"), SendStatus.TEMPORARY),
        (aiosmtplib.SMTPServerDisconnected("gone"), SendStatus.TEMPORARY),
        (aiosmtplib.SMTPTimeoutError("slow"), SendStatus.TEMPORARY),
        (ConnectionRefusedError(111, "refused"), SendStatus.TEMPORARY),
    ],
)
def test_smtp_errors_by_kind(exc: BaseException, status: SendStatus) -> None:
    assert classify_smtp_error(exc).status is status
