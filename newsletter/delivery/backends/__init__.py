"""Delivery backends (file outbox, SendGrid, SMTP) behind one small protocol."""

from __future__ import annotations

import os
import random
import ssl
import time
from collections.abc import Mapping

from newsletter.config import ConfigError, Settings
from newsletter.delivery.backends.base import (
    Backend,
    Batch,
    InvalidMessage,
    Outcome,
    Recipient,
    Sender,
)
from newsletter.delivery.backends.sendgrid import Sleep

__all__ = [
    "Backend",
    "Batch",
    "InvalidMessage",
    "Outcome",
    "Recipient",
    "Sender",
    "make_backend",
]


def make_backend(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    sleep: Sleep = time.sleep,
    rng: random.Random | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Backend:
    """The backend ``delivery.backend`` names, with its secrets from the environment."""
    d = settings.delivery
    if d.backend == "file":
        from newsletter.delivery.backends.file import FileBackend

        return FileBackend(d.outbox_dir)
    if d.backend == "sendgrid":
        from newsletter.delivery.backends.sendgrid import SendGridBackend

        key = settings.sendgrid_api_key(os.environ if environ is None else environ)
        if not key:
            raise ConfigError("delivery.backend is 'sendgrid' but SENDGRID_API_KEY is not set")
        return SendGridBackend(
            key,
            d.sendgrid_host,
            sandbox_mode=d.sandbox_mode,
            sections=d.sendgrid_sections,
            max_retries=d.max_retries,
            sleep=sleep,
            rng=rng,
        )
    from newsletter.delivery.backends.smtp import SMTPBackend

    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    if d.smtp_user and not password:
        raise ConfigError("delivery.smtp_user is set but NEWSLETTER_SMTP_PASSWORD is not")
    return SMTPBackend(
        d.smtp_host,
        d.smtp_port,
        security=d.smtp_security,
        user=d.smtp_user,
        password=password,
        timeout=d.smtp_timeout_seconds,
        ssl_context=ssl_context,
    )
