"""The one-off e-mails of signup: the confirmation request and "you are already subscribed".

HTML in the digest's design plus a plain-text part with the link on its own line (links must be
copyable), from ``newsletter.email.notice``. Every header value comes from validated data and
``EmailMessage`` itself refuses CR/LF in headers; Message-ID and Date are written raw
(``DIGEST_POLICY``), as in the digest.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from newsletter.config import Settings
from newsletter.email.headers import DIGEST_POLICY
from newsletter.email.notice import Notice, render_notice


def _message(settings: Settings, to: str, notice: Notice) -> EmailMessage:
    msg = EmailMessage(policy=DIGEST_POLICY)
    msg["From"] = formataddr((settings.email.from_name, settings.email.from_email))
    msg["To"] = to
    msg["Subject"] = notice.subject
    msg["Date"] = formatdate(localtime=False)
    domain = settings.email.from_email.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    if settings.email.reply_to:
        msg["Reply-To"] = settings.email.reply_to
    rendered = render_notice(settings, notice)
    msg.set_content(rendered.text, cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return msg


def confirmation_message(settings: Settings, *, to: str, confirm_url: str) -> EmailMessage:
    days = settings.web.confirm_token_days
    site = settings.site_name
    notice = Notice(
        subject=f"Confirm your subscription to {site}",
        heading="Confirm your subscription",
        before=(
            "Hello,",
            f"someone (hopefully you) asked to receive {site}, a daily e-mail of new arXiv "
            "papers, at this address.",
            "To confirm, open this link and press the button:",
        ),
        action_label="Confirm my subscription",
        action_url=confirm_url,
        after=(
            f"The link works once and expires in {days} days. If you did not ask for this, "
            "ignore this message: you will not hear from us again.",
        ),
    )
    return _message(settings, to, notice)


def already_subscribed_message(
    settings: Settings, *, to: str, preferences_url: str
) -> EmailMessage:
    site = settings.site_name
    notice = Notice(
        subject=f"You are already subscribed to {site}",
        heading="You are already subscribed",
        before=(
            "Hello,",
            f"someone (hopefully you) tried to sign up for {site} with this address, which is "
            "already subscribed. Nothing has changed.",
            "To change what you receive, or to unsubscribe, use this link:",
        ),
        action_label="Change my preferences",
        action_url=preferences_url,
    )
    return _message(settings, to, notice)
