"""The one exception family of the subscriber store; the web app maps it to pages in one place."""

from __future__ import annotations


class SubscriberError(Exception):
    """Base: a problem a person can understand; ``status_code`` is the HTTP answer for it."""

    status_code = 400
    title = "Something is not right"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(SubscriberError):
    """A field failed validation (syntax, length, CR/LF, unknown category...)."""

    title = "Please check the form"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidLink(SubscriberError):
    """A token is tampered with, expired, for another purpose, or already used."""

    status_code = 404
    title = "This link does not work"


class NotFound(SubscriberError):
    status_code = 404
    title = "Not found"


class Suppressed(SubscriberError):
    """The address bounced or complained; we will not mail it again."""

    status_code = 409
    title = "We cannot send to this address"


class RateLimited(SubscriberError):
    status_code = 429
    title = "Too many requests"


class CsrfFailed(SubscriberError):
    status_code = 403
    title = "This form has expired"
