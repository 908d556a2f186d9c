"""Refuse to start a sending run that configuration alone would make fail halfway."""

from __future__ import annotations

from collections.abc import Mapping

from newsletter.config import ConfigError, Settings
from newsletter.delivery.backends import make_backend
from newsletter.email.sender_checks import warn_about_sender
from subscribers.links import secret_of


def check_ready(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """ConfigError now, before fetching anything, if links cannot be signed or the backend lacks
    its secrets; a digest must never stop between the archive and the e-mails for that."""
    try:
        secret_of(settings)
    except ValueError as exc:
        raise ConfigError(
            "sending needs NEWSLETTER_SECRET_KEY (it signs the unsubscribe and preferences links); "
            "set it, or run with --no-send"
        ) from exc
    make_backend(settings, environ).close()
    warn_about_sender(settings)
