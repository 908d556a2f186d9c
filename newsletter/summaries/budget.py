"""The daily token budget, shared by concurrent calls (thread-safe; no I/O).

A call may start only if its worst case fits: the tokens already spent today, plus the worst case
of the calls in flight, plus its own. When a call ends, its reservation is replaced by what the
provider reported, so cheap calls free room for later papers.
"""

from __future__ import annotations

import math
import threading

# English prose runs at about four characters per token; three over-estimates on purpose.
CHARS_PER_TOKEN = 3


def estimate_tokens(prompt_chars: int, max_output_tokens: int) -> int:
    """A call's worst case: its prompt, generously counted, plus the output limit."""
    return math.ceil(prompt_chars / CHARS_PER_TOKEN) + max_output_tokens


class TokenBudget:
    """``limit`` tokens a day (0: no limit), of which ``spent`` were used before this run."""

    def __init__(self, limit: int, spent: int = 0) -> None:
        self.limit = limit
        self.spent = spent
        self.used_now = 0
        self._reserved = 0
        self._lock = threading.Lock()

    def try_reserve(self, tokens: int) -> bool:
        """Reserve room for one call, or say no if it could overrun the day's limit."""
        with self._lock:
            if self.limit and self.spent + self._reserved + tokens > self.limit:
                return False
            self._reserved += tokens
            return True

    def settle(self, reserved: int, used: int) -> None:
        """A call ended: release its reservation and count what it really used."""
        with self._lock:
            self._reserved -= reserved
            self.spent += used
            self.used_now += used
