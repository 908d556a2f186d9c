"""Tokens live in URL paths (``/unsubscribe/<token>``); they never reach a log line whole.

``redact_path`` is used wherever the app logs a path; ``RedactTokens`` is a logging filter put
on uvicorn's access log while the app runs.
"""

from __future__ import annotations

import logging
import re

from subscribers.links import ROUTES

_TOKEN_PATH = re.compile(
    r"(?P<route>" + "|".join(re.escape(r) for r in ROUTES.values()) + r")/[^/?#\s\"]+"
)
REDACTED = "[token]"


def redact_path(text: str) -> str:
    return _TOKEN_PATH.sub(lambda m: f"{m.group('route')}/{REDACTED}", text)


class RedactTokens(logging.Filter):
    """Rewrites the arguments of uvicorn's access records (client, method, path, version,
    status) and any string argument of other records, before they are formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_path(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_path(record.msg)
        return True


ACCESS_LOGGER = "uvicorn.access"


def install(logger_name: str = ACCESS_LOGGER) -> RedactTokens:
    log_filter = RedactTokens()
    logging.getLogger(logger_name).addFilter(log_filter)
    return log_filter


def uninstall(log_filter: RedactTokens, logger_name: str = ACCESS_LOGGER) -> None:
    logging.getLogger(logger_name).removeFilter(log_filter)
