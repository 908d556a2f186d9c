"""SMTP backend: smtplib over STARTTLS, implicit TLS or plain, one connection per batch."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage

from newsletter.delivery.backends.base import Batch, InvalidMessage, Outcome
from newsletter.delivery.mime import personal_message

SMTPFactory = Callable[[], smtplib.SMTP]


def _reply_outcome(code: int, detail: object) -> Outcome:
    """4xx replies are passing (greylisting, full queue), 5xx are final."""
    text = f"SMTP {code}: {detail!r}"[:500]
    return Outcome("retry" if 400 <= code < 500 else "failed", error=text)


class SMTPBackend:
    """Sends through one SMTP server; the password is given, never read here from the env."""

    name = "smtp"
    max_batch = 200
    sections = True  # section tags are filled in per message here
    substitution_limit: int | None = None
    requests: int | None = None  # one a batch

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"unknown SMTP security {security!r}")
        self.host, self.port, self.security = host, port, security
        self.user, self.password, self.timeout = user, password, timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    def connect(self) -> smtplib.SMTP:
        conn: smtplib.SMTP
        if self.security == "tls":
            conn = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.ssl_context
            )
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                conn.starttls(context=self.ssl_context)
                conn.ehlo()
        if self.user:
            conn.login(self.user, self.password or "")
        return conn

    def _send_one(self, conn: smtplib.SMTP, msg: EmailMessage) -> Outcome:
        try:
            refused = conn.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            code, detail = next(iter(exc.recipients.values()))
            return _reply_outcome(code, detail)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            return _reply_outcome(exc.smtp_code, exc.smtp_error)
        if refused:
            code, detail = next(iter(refused.values()))
            return _reply_outcome(code, detail)
        return Outcome("sent")

    def send_batch(self, batch: Batch) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        try:
            conn = self.connect()
        except (OSError, smtplib.SMTPException) as exc:
            error = f"SMTP connect: {type(exc).__name__}: {exc}"[:500]
            return {r.message_id: Outcome("retry", error=error) for r in batch.recipients}
        try:
            for rcpt in batch.recipients:
                if rcpt.message_id in outcomes:
                    continue
                try:
                    msg = personal_message(batch, rcpt)
                except InvalidMessage as exc:
                    outcomes[rcpt.message_id] = Outcome("failed", error=str(exc))
                    continue
                try:
                    outcomes[rcpt.message_id] = self._send_one(conn, msg)
                except (OSError, smtplib.SMTPException) as exc:
                    # The connection broke mid-message: this one may have been accepted.
                    outcomes[rcpt.message_id] = Outcome("unknown", error=f"SMTP: {exc}"[:500])
                    break
        finally:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()
        for rcpt in batch.recipients:
            outcomes.setdefault(rcpt.message_id, Outcome("retry", error="SMTP connection lost"))
        return outcomes

    def send_message(self, msg: EmailMessage) -> Outcome:
        with self.connect() as conn:
            return self._send_one(conn, msg)

    def close(self) -> None:
        pass
