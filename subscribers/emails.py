"""The one-off e-mails of signup: the confirmation request and "you are already subscribed".

Plain text only (links must be copyable); every header value comes from validated data and
``EmailMessage`` itself refuses CR/LF in headers.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from newsletter.config import Settings


def _base(settings: Settings, to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = formataddr((settings.email.from_name, settings.email.from_email))
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    domain = settings.email.from_email.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    if settings.email.reply_to:
        msg["Reply-To"] = settings.email.reply_to
    return msg


def _footer(settings: Settings) -> str:
    lines = ["", "--", settings.site_name, settings.base_url]
    if settings.email.postal_address:
        lines.append(settings.email.postal_address)
    return "\n".join(lines) + "\n"


def confirmation_message(settings: Settings, *, to: str, confirm_url: str) -> EmailMessage:
    days = settings.web.confirm_token_days
    msg = _base(settings, to, f"Confirm your subscription to {settings.site_name}")
    msg.set_content(
        f"Hello,\n\n"
        f"someone (hopefully you) asked to receive {settings.site_name}, a daily e-mail of new "
        f"arXiv papers, at this address.\n\n"
        f"To confirm, open this link and press the button:\n\n{confirm_url}\n\n"
        f"The link works once and expires in {days} days. If you did not ask for this, ignore "
        f"this message: you will not hear from us again.\n" + _footer(settings)
    )
    return msg


def already_subscribed_message(
    settings: Settings, *, to: str, preferences_url: str
) -> EmailMessage:
    msg = _base(settings, to, f"You are already subscribed to {settings.site_name}")
    msg.set_content(
        f"Hello,\n\n"
        f"someone (hopefully you) tried to sign up for {settings.site_name} with this address, "
        f"which is already subscribed. Nothing has changed.\n\n"
        f"To change what you receive, or to unsubscribe, use this link:\n\n{preferences_url}\n"
        + _footer(settings)
    )
    return msg
