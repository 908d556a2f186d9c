"""The one object that owns the model's manners: timeouts, retries, Retry-After.

The ``openai`` client retries by itself, with its public settings (``max_retries``, ``timeout``
from ``ai_summary``): on 408, 409, 429 and 5xx, timeouts and dropped connections, with
exponential backoff and jitter, waiting what ``Retry-After`` asks up to two minutes and not
retrying at all when it asks for longer (openai 3.x; the version is pinned). This object counts
every request (an event hook on the client's HTTP client), turns what openai finally raises into
a ``CallError`` that says why and after how many attempts, and asks again without JSON mode
when a provider does not support it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import openai

from newsletter.config import AISummarySettings
from newsletter.retry_after import retry_after_seconds

# openai waits out a Retry-After up to this long and gives up at once beyond it.
MAX_RETRY_AFTER_SECONDS = 120.0
RETRY_STATUSES = frozenset({408, 409, 429})
_JSON_MODE: dict[str, Any] = {"type": "json_object"}


class CallError(Exception):
    """A model call that failed for good; ``str()`` is the reason, fit for a log line."""


@dataclass(frozen=True, slots=True)
class Completion:
    content: str | None
    tokens: int
    finish_reason: str | None


def wait_asked(headers: Mapping[str, str], now: dt.datetime | None = None) -> float | None:
    """``retry-after-ms`` (OpenAI's) or ``Retry-After``, if the server sent one."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    return retry_after_seconds(headers.get("retry-after"), now or dt.datetime.now(dt.UTC))


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"][:200]
    return str(exc.message)[:200]


class ModelClient:
    """Chat completions with the openai client's own retries; safe to share between threads."""

    def __init__(self, client: openai.OpenAI, settings: AISummarySettings) -> None:
        self._http = openai.DefaultHttpxClient(event_hooks={"request": [self._count_request]})
        self._client = client.with_options(
            max_retries=settings.max_retries,
            timeout=settings.timeout_seconds,
            http_client=self._http,
        )
        self._settings = settings
        self._json_mode = True
        self._lock = threading.Lock()
        self._attempts = threading.local()  # requests of the current call, per thread
        self.calls = 0  # every HTTP request, retries included

    def _count_request(self, _request: Any) -> None:
        with self._lock:
            self.calls += 1
        self._attempts.count = getattr(self._attempts, "count", 0) + 1

    def close(self) -> None:
        self._http.close()

    def _create(self, messages: list[dict[str, str]]) -> Any:
        extra: dict[str, Any] = {"response_format": _JSON_MODE} if self._json_mode else {}
        return self._client.chat.completions.create(
            model=self._settings.model,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=self._settings.max_output_tokens,
            temperature=0.2,
            **extra,
        )

    def _gave_up(self, reason: str) -> CallError:
        return CallError(f"{reason} (gave up after {self._attempts.count} attempts)")

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        """One reply (openai retries transient failures); ``CallError`` when it cannot be had."""
        while True:
            self._attempts.count = 0
            try:
                response = self._create(messages)
            except openai.APITimeoutError as exc:
                timeout = self._settings.timeout_seconds
                raise self._gave_up(f"timed out after {timeout:g}s") from exc
            except openai.APIConnectionError as exc:
                raise self._gave_up(f"connection failed ({exc.__cause__ or exc})") from exc
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status == 400 and self._json_mode and "response_format" in str(exc.body):
                    # A provider without JSON mode: ask again without it (the prompt asks for JSON).
                    self._json_mode = False
                    continue
                reason = f"HTTP {status}: {_error_message(exc)}"
                wait = wait_asked(exc.response.headers)
                if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
                    raise CallError(
                        f"{reason}; Retry-After of {wait:g}s is longer than we wait"
                    ) from exc
                if status in RETRY_STATUSES or status >= 500:
                    raise self._gave_up(reason) from exc
                raise CallError(reason) from exc
            return _completion(response, sum(len(m["content"]) for m in messages))


def _completion(response: Any, prompt_chars: int) -> Completion:
    choice = response.choices[0] if response.choices else None
    content = choice.message.content if choice is not None else None
    usage = getattr(response, "usage", None)
    tokens = int(getattr(usage, "total_tokens", 0) or 0) if usage is not None else 0
    if not tokens:
        # A provider that reports no usage: count characters, generously, so the budget holds.
        tokens = (prompt_chars + len(content or "")) // 3 + 1
    return Completion(
        content=content,
        tokens=tokens,
        finish_reason=choice.finish_reason if choice is not None else None,
    )
