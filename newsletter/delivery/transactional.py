"""One-off messages (signup confirmations) through the configured delivery backend."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from pathlib import Path

from newsletter.config import Settings


def send_message(settings: Settings, msg: EmailMessage) -> None:
    """Send one message. File backend only for now: an .eml file in ``delivery.outbox_dir``."""
    outbox = Path(settings.delivery.outbox_dir)
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{uuid.uuid4().hex}.eml"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(bytes(msg))
    tmp.replace(path)
