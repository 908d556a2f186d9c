"""One recipient's RFC 5322 message from a batch: the local backends' (file, SMTP) wire format."""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from newsletter.delivery.backends.base import (
    Batch,
    InvalidMessage,
    Recipient,
    Sender,
    check_header,
    check_headers,
)
from newsletter.email.headers import DIGEST_POLICY
from newsletter.email.render import personalise

# Headers the message builder sets itself; a batch or recipient may not override them.
_OWN = {"from", "to", "subject", "reply-to", "message-id", "content-type", "mime-version"}


def _address(email: str, name: str = "") -> Address:
    check_header("Address", email)
    check_header("Name", name)
    return Address(display_name=name, addr_spec=email)


def personal_message(batch: Batch, recipient: Recipient) -> EmailMessage:
    """The message one recipient receives: substitutions then sections applied (as SendGrid
    does), multipart text + HTML."""
    check_headers(batch.headers)
    check_headers(recipient.headers)
    personal = personalise(batch.content, recipient.substitutions)
    subject = personal.subject
    check_header("Subject", subject)
    msg = EmailMessage(policy=DIGEST_POLICY)
    sender: Sender = batch.sender
    msg["From"] = _address(sender.email, sender.name)
    msg["To"] = _address(recipient.email)
    if sender.reply_to:
        msg["Reply-To"] = _address(sender.reply_to)
    msg["Subject"] = subject
    msg["Message-ID"] = recipient.message_id
    extra = {**batch.headers, **recipient.headers}
    if not any(k.lower() == "date" for k in extra):
        msg["Date"] = formatdate(localtime=False, usegmt=True)
    for name, value in extra.items():
        if name.lower() not in _OWN:
            msg[name] = value
    msg.set_content(personal.text, subtype="plain", cte="quoted-printable")
    msg.add_alternative(personal.html, subtype="html", cte="quoted-printable")
    return msg


@dataclass(frozen=True, slots=True)
class _Parsed:
    subject: str
    html: str
    text: str


def _part(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return ""
    content: str = part.get_content()
    return content


def batch_from_message(msg: EmailMessage) -> Batch:
    """A ready-made message (a signup confirmation) as a one-recipient batch, for providers."""
    name, addr = parseaddr(str(msg.get("From", "")))
    reply_to = parseaddr(str(msg.get("Reply-To", "")))[1] or None
    to = parseaddr(str(msg.get("To", "")))[1]
    if not addr or not to:
        raise InvalidMessage("the message needs From and To")
    message_id = str(msg.get("Message-ID") or make_msgid())
    headers = {
        k: str(v)
        for k, v in msg.items()
        if k.lower() not in _OWN and not k.lower().startswith("content-") and k.lower() != "date"
    }
    content = _Parsed(str(msg.get("Subject", "")), _part(msg, "html"), _part(msg, "plain"))
    rcpt = Recipient(email=to, message_id=message_id, headers=headers)
    return Batch(content=content, recipients=(rcpt,), sender=Sender(addr, name, reply_to))
