"""Start-up checks of the sender's identity that warn rather than refuse."""

from __future__ import annotations

import logging

from newsletter.config import Settings

log = logging.getLogger(__name__)

REAL_BACKENDS = frozenset({"sendgrid", "smtp"})


def postal_address_warning(settings: Settings) -> str | None:
    """Bulk mail to real inboxes should show the sender's postal address (CAN-SPAM, and what
    SendGrid requires in marketing mail); the file backend sends nothing, so it is not warned."""
    if settings.delivery.backend in REAL_BACKENDS and not settings.email.postal_address.strip():
        return (
            f"delivery.backend is {settings.delivery.backend!r} but email.postal_address is "
            "empty: e-mails will go out without the sender's postal address in the footer"
        )
    return None


def warn_about_sender(settings: Settings) -> None:
    """Log the warnings above (called when a sending run or the web service starts)."""
    warning = postal_address_warning(settings)
    if warning:
        log.warning(warning)
