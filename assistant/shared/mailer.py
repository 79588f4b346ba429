"""Send one message through the configured SMTP server (aiosmtplib), or say why not.

The notifier is a plain loop in its own process, so each send runs its own
short event loop; nothing here ever runs on the chat's event loop.
Failures come back as a short description (the exception's type and the
server's reply code), never with the message's content, so they can be logged
and stored in the outbox's ``last_error``.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from typing import Optional

import aiosmtplib

from assistant.settings.smtp import SmtpSettings

logger = logging.getLogger(__name__)


async def _send(settings: SmtpSettings, message: EmailMessage) -> None:
    result = await aiosmtplib.send(
        message,
        hostname=settings.host,
        port=settings.port,
        username=settings.username,
        password=settings.password,
        use_tls=settings.security == "tls",
        # "none" means none: aiosmtplib would otherwise upgrade when offered,
        # and "starttls" must fail rather than fall back to plain text
        start_tls=settings.security == "starttls",
        tls_context=settings.tls_context(),
        timeout=settings.timeout,
    )
    refused = result[0] if isinstance(result, tuple) else {}
    if refused:
        # the others got it; sending again would give them a second copy
        logger.warning("the SMTP server refused %d of the message's recipients (%s)", len(refused),
                       ", ".join(sorted({str(reply.code) for reply in refused.values()})))


def send(settings: SmtpSettings, message: EmailMessage) -> Optional[str]:
    """Send `message` to its To: addresses; None when the server accepted it."""
    try:
        asyncio.run(_send(settings, message))
    except aiosmtplib.SMTPResponseException as error:
        return f"{type(error).__name__} {error.code}"
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
        return type(error).__name__
    return None
