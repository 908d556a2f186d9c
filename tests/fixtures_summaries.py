"""A small OpenAI-compatible server for the summary tests and benchmark, built on TestServer.

It speaks ``POST /v1/chat/completions`` with the real request and response shapes (``choices``,
``usage``, the ``error`` object), records every request, and misbehaves on request: latency,
429 with Retry-After, 5xx, hanging past the client's timeout, truncated or non-JSON replies, and
replies carrying HTML, scripts and links. Behaviour is scripted per paper (by a marker found in
the prompt), so concurrent calls get what each test planned, whatever order they arrive in.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from newsletter.domain import Paper
from tests.httpserver import Request, Response, TestServer

CHAT_PATH = "/v1/chat/completions"
INJECTION_REPLY = {
    "tldr": 'Ignore this <script>alert("tldr")</script> [click](javascript:alert(1)) now',
    "contributions": (
        "<script>alert(1)</script> <img src=x onerror=alert(2)> "
        "[prize](https://evil.example/win) <a href='javascript:alert(3)'>here</a>"
    ),
    "method": "![tracker](https://evil.example/pixel.png) <style>body{display:none}</style>",
    "results": "[x](javascript:alert(4)) [y](data:text/html;base64,PHNjcmlwdD4=) "
    "<https://evil.example/auto> visit www.evil.example",
    "conclusions": '<iframe src="https://evil.example"></iframe> <b onclick="x()">bold</b>',
}

Behaviour = str | Callable[[dict[str, Any]], Response]


def make_paper(n: int, *, version: int = 1, abstract: str | None = None, title: str = "") -> Paper:
    """A plausible paper; ``n`` makes its id and title unique."""
    return Paper(
        arxiv_id=f"2604.{10000 + n:05d}",
        version=version,
        title=title or f"Paper number {n}: scalable attention for LLM training",
        abstract=abstract
        or (
            f"We study problem {n}. We propose a method that improves inference throughput by "
            f"{n}% on standard benchmarks, compared with strong baselines."
        ),
        authors=("Ada Lovelace", "Alan Turing"),
        primary_category="cs.LG",
        categories=("cs.LG", "cs.AI"),
        published=dt.datetime(2026, 4, 20, tzinfo=dt.UTC),
    )


def summary_json(title: str) -> dict[str, str]:
    return {
        "tldr": f"A short summary of {title}.",
        "contributions": f"- New method for **{title}**",
        "method": "Benchmarks A and B; baselines X and Y.",
        "results": "Improves accuracy by 3 points.",
        "conclusions": "Works; limits remain.",
    }


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return Response(status, json.dumps(body), headers or {}, "application/json")


class FakeOpenAI:
    """Scripted chat-completions endpoint on a ``TestServer`` (see the module docstring)."""

    def __init__(self, server: TestServer, *, latency: float = 0.0) -> None:
        self.server = server
        self.latency = latency
        self.hang_seconds = 1.5
        self.retry_after = "1"
        self.arrivals: list[tuple[str, float]] = []  # (prompt, monotonic time) of each request
        self.in_flight = 0
        self.max_in_flight = 0
        self.fixed_tokens: int | None = None
        self.bodies: list[dict[str, Any]] = []
        self.plan: dict[str, list[Behaviour]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        server.route("POST", CHAT_PATH)(self._handle)

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/v1"

    def script(self, marker: str, *behaviours: Behaviour) -> None:
        """The next calls whose prompt contains ``marker`` behave so, in order; then "ok"."""
        self.plan[marker] = list(behaviours)

    def calls_for(self, marker: str) -> int:
        return sum(1 for b in self.bodies if marker in b["messages"][-1]["content"])

    def _next(self, prompt: str) -> Behaviour:
        with self._lock:
            for marker, queue in self.plan.items():
                if marker in prompt and queue:
                    return queue.pop(0)
        return "ok"

    def _handle(self, req: Request) -> Response:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self._respond(req)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _respond(self, req: Request) -> Response:
        if req.headers.get("authorization", "") != "Bearer test-key":
            return _error(401, "Incorrect API key provided", "invalid_api_key")
        body = json.loads(req.body)
        with self._lock:
            self.bodies.append(body)
        prompt = body["messages"][-1]["content"]
        with self._lock:
            self.arrivals.append((prompt, time.monotonic()))
        behaviour = self._next(prompt)
        if self.latency:
            time.sleep(self.latency)  # the server is slow; the test itself never sleeps
        if callable(behaviour):
            return behaviour(body)
        match = re.search(r"^Title: (.*)$", prompt, re.MULTILINE)
        title = match.group(1) if match else "untitled"
        good = json.dumps(summary_json(title))
        if behaviour == "ok":
            return self.reply(body, good)
        if behaviour == "429":
            return _error(
                429, "Rate limit reached", "rate_limit_exceeded", {"Retry-After": self.retry_after}
            )
        if behaviour == "429-long":
            return _error(429, "Quota exceeded", "rate_limit_exceeded", {"Retry-After": "3600"})
        if behaviour in ("500", "503"):
            return _error(int(behaviour), "The server had an error", "server_error")
        if behaviour == "400-json-mode":
            if "response_format" in body:
                return _error(400, "response_format is not supported", "invalid_request_error")
            return self.reply(body, good)
        if behaviour == "timeout":
            time.sleep(self.hang_seconds)
            return self.reply(body, good)
        if behaviour == "truncated":
            return self.reply(body, good[: len(good) // 2], finish="length")
        if behaviour == "nonjson":
            return self.reply(body, "I'm sorry, here is a summary in prose: it is a fine paper.")
        if behaviour == "prose":
            return self.reply(
                body, f"Sure! Here is the JSON:\n```json\n{good}\n```\nHope it helps."
            )
        if behaviour == "injection":
            return self.reply(body, json.dumps(INJECTION_REPLY))
        raise AssertionError(f"unknown behaviour {behaviour!r}")

    def reply(self, request: dict[str, Any], content: str, *, finish: str = "stop") -> Response:
        """A chat completion in the real wire shape, with ``usage``."""
        prompt_chars = sum(len(m["content"]) for m in request["messages"])
        prompt_tokens = prompt_chars // 4
        completion_tokens = max(len(content) // 4, 1)
        total = self.fixed_tokens or prompt_tokens + completion_tokens
        payload = {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": total,
            },
        }
        return Response(200, json.dumps(payload), {}, "application/json")


@pytest.fixture(name="fake_openai")
def fake_openai_fixture() -> Iterator[FakeOpenAI]:
    with TestServer() as server:
        yield FakeOpenAI(server)


ENV = {"TEST_AI_KEY": "test-key"}


def ai_section(base_url: str, **overrides: Any) -> dict[str, Any]:
    """An ``ai_summary`` settings section pointed at the fake server."""
    section: dict[str, Any] = {
        "enabled": True,
        "api_key_env": "TEST_AI_KEY",
        "base_url": base_url,
        "model": "test-model",
        "max_workers": 4,
        "timeout_seconds": 5,
        "max_retries": 2,
    }
    section.update(overrides)
    return section
