"""The default backend: one RFC 5322 ``.eml`` file per recipient under ``delivery.outbox_dir``.

Files are named after our Message-ID, so sending the same delivery again overwrites its file
instead of adding a second one; each file is written to a temporary name and renamed into place,
so a reader (or a crash) never sees half a message.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from email.message import EmailMessage
from pathlib import Path

from newsletter.delivery.backends.base import Batch, InvalidMessage, Outcome
from newsletter.delivery.mime import personal_message

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def eml_name(message_id: str) -> str:
    """A file name for a Message-ID: readable, and distinct for distinct ids."""
    core = message_id.strip().strip("<>")
    safe = _UNSAFE.sub("_", core)[:120] or "message"
    if safe != core:
        safe += "-" + hashlib.sha256(message_id.encode()).hexdigest()[:10]
    return f"{safe}.eml"


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class FileBackend:
    """Writes messages to a directory; nothing leaves the machine."""

    name = "file"
    max_batch = 1000
    sections = True  # section tags are filled in per message here
    substitution_limit: int | None = None
    requests: int | None = None  # one a batch

    def __init__(self, outbox_dir: str | os.PathLike[str]) -> None:
        self.outbox = Path(outbox_dir)

    def write(self, msg: EmailMessage) -> Path:
        self.outbox.mkdir(parents=True, exist_ok=True)
        message_id = str(msg.get("Message-ID") or f"<{uuid.uuid4().hex}@outbox>")
        path = self.outbox / eml_name(message_id)
        write_atomic(path, bytes(msg))
        return path

    def send_batch(self, batch: Batch) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        for rcpt in batch.recipients:
            try:
                path = self.write(personal_message(batch, rcpt))
            except InvalidMessage as exc:
                outcomes[rcpt.message_id] = Outcome("failed", error=str(exc))
            except OSError as exc:
                outcomes[rcpt.message_id] = Outcome("retry", error=f"outbox write: {exc}")
            else:
                outcomes[rcpt.message_id] = Outcome("sent", provider_id=path.name)
        return outcomes

    def send_message(self, msg: EmailMessage) -> Outcome:
        return Outcome("sent", provider_id=self.write(msg).name)

    def close(self) -> None:
        pass
