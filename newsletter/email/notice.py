"""One-off e-mails (signup confirmation, "already subscribed") in the digest's design.

``templates/email/notice.mjml`` shares the digest's colours, dark-mode styles and footer (with
``email.postal_address``); it is compiled, given its dark-mode metas and minified like the digest
(``render.compiled_html``), then rendered by Jinja with autoescaping. The text part says the same
in plain text, the link on a line of its own so it can be copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jinja2
from jinja2 import Environment, StrictUndefined

from newsletter.config import Settings
from newsletter.email.render import RenderedEmail, TemplateError, compiled_html, email_templates_dir


@dataclass(frozen=True, slots=True)
class Notice:
    """What a one-off e-mail says: paragraphs around one action (a link and its label)."""

    subject: str
    heading: str
    before: Sequence[str]
    action_label: str
    action_url: str
    after: Sequence[str] = ()


_env = Environment(autoescape=True, undefined=StrictUndefined)


def render_notice(settings: Settings, notice: Notice) -> RenderedEmail:
    """The notice's HTML (MJML design) and plain text."""
    source = compiled_html(email_templates_dir() / "notice.mjml")
    context = {
        "subject": notice.subject,
        "preheader": notice.before[0] if notice.before else notice.heading,
        "heading": notice.heading,
        "before": list(notice.before),
        "after": list(notice.after),
        "action_label": notice.action_label,
        "action_url": notice.action_url,
        "site_name": settings.site_name,
        "site_url": settings.base_url,
        "from_name": settings.email.from_name,
        "from_email": settings.email.from_email,
        "postal_address": settings.email.postal_address,
    }
    try:
        html = _env.from_string(source).render(context)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"notice.mjml: {exc}") from exc
    footer = ["--", settings.site_name, settings.base_url]
    if settings.email.postal_address:
        footer.append(settings.email.postal_address)
    text = "\n\n".join(
        [
            *notice.before,
            notice.action_url,
            *notice.after,
            "\n".join(footer),
        ]
    )
    return RenderedEmail(subject=notice.subject, html=html, text=text + "\n")
