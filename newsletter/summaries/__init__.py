"""AI summaries from any OpenAI-compatible model: cached, bounded, fail-soft, safe.

``summarise_papers`` runs once per digest; ``cached_summaries`` is the read-only lookup the
archive, e-mail and web use. Model output is untrusted: render it through
``newsletter.sanitize``. This package imports no web or e-mail code.
"""

from newsletter.summaries.prompt import PromptError, load_prompt
from newsletter.summaries.run import (
    SummaryRun,
    cached_summaries,
    summarise_languages,
    summarise_papers,
)

__all__ = [
    "PromptError",
    "SummaryRun",
    "cached_summaries",
    "load_prompt",
    "summarise_languages",
    "summarise_papers",
]
