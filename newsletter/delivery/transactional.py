"""One-off messages (signup confirmations) through the configured delivery backend."""

from __future__ import annotations

from collections.abc import Mapping
from email.message import EmailMessage

from newsletter.config import Settings
from newsletter.delivery.backends import Backend, make_backend


class DeliveryError(RuntimeError):
    """A one-off message was not accepted; the message says why (never the secret)."""


def send_message(
    settings: Settings,
    msg: EmailMessage,
    *,
    environ: Mapping[str, str] | None = None,
    backend: Backend | None = None,
) -> str | None:
    """Send one message now; returns the provider's id (file name for the outbox)."""
    chosen = backend or make_backend(settings, environ)
    try:
        outcome = chosen.send_message(msg)
    finally:
        if backend is None:
            chosen.close()
    if outcome.status != "sent":
        raise DeliveryError(f"{chosen.name}: {outcome.status}: {outcome.error}")
    return outcome.provider_id
