"""The one object that owns the model's manners: timeouts, retries, backoff, Retry-After.

The ``openai`` client's own retries are switched off (``max_retries=0``) so this policy is the
only one: exponential backoff with jitter on 408/409/429/5xx, timeouts and dropped connections,
waiting at least what ``Retry-After`` asks, and giving up rather than waiting longer than
``MAX_WAIT_SECONDS``. Sleeping and randomness are injected so tests never wait.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import openai

from newsletter.config import AISummarySettings
from newsletter.retry_after import retry_after_seconds

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0
MAX_WAIT_SECONDS = 60.0
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


def backoff_seconds(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with jitter: half to all of ``base * 2**attempt``, capped."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
    return ceiling * rng.uniform(0.5, 1.0)


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"][:200]
    return str(exc.message)[:200]


class ModelClient:
    """Chat completions with this project's retry policy; safe to share between threads."""

    def __init__(
        self,
        client: openai.OpenAI,
        settings: AISummarySettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client.with_options(max_retries=0, timeout=settings.timeout_seconds)
        self._settings = settings
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._json_mode = True
        self._lock = threading.Lock()
        self.calls = 0

    def _count_call(self) -> None:
        with self._lock:
            self.calls += 1

    def _create(self, messages: list[dict[str, str]]) -> Any:
        extra: dict[str, Any] = {"response_format": _JSON_MODE} if self._json_mode else {}
        return self._client.chat.completions.create(
            model=self._settings.model,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=self._settings.max_output_tokens,
            temperature=0.2,
            **extra,
        )

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        """One reply, retried on transient failures; ``CallError`` when it cannot be had."""
        retries = self._settings.max_retries
        attempt = 0
        while True:
            self._count_call()
            wait: float | None = None
            try:
                response = self._create(messages)
            except openai.APITimeoutError:
                reason = f"timed out after {self._settings.timeout_seconds:g}s"
            except openai.APIConnectionError as exc:
                reason = f"connection failed ({exc.__cause__ or exc})"
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status == 400 and self._json_mode and "response_format" in str(exc.body):
                    # A provider without JSON mode: ask again without it (the prompt asks for JSON).
                    self._json_mode = False
                    continue
                reason = f"HTTP {status}: {_error_message(exc)}"
                if status not in RETRY_STATUSES and status < 500:
                    raise CallError(reason) from exc
                wait = wait_asked(exc.response.headers)
            else:
                return _completion(response, sum(len(m["content"]) for m in messages))
            if attempt >= retries:
                raise CallError(f"{reason} (gave up after {attempt + 1} attempts)")
            if wait is not None and wait > MAX_WAIT_SECONDS:
                raise CallError(f"{reason}; Retry-After of {wait:g}s is longer than we wait")
            delay = (
                wait + self._rng.uniform(0, 0.1 * max(wait, 1.0))
                if wait is not None
                else backoff_seconds(attempt, self._rng)
            )
            self._sleep(delay)
            attempt += 1


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
