"""Summaries in each reader's language: which (paper, language) pairs are wanted, most-read
first, and each language's summaries with the site language's as the fallback."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from newsletter.config import Settings
from newsletter.domain import IssueView, Paper, Summary
from newsletter.email.loading import Audience
from newsletter.email.selection import SubscriberPrefs
from subscribers.rhythm import effective_language

PdfFetcher = Callable[[Paper], bytes]


def reader_languages(prefs: Iterable[SubscriberPrefs], settings: Settings) -> dict[int, str]:
    """Each reader's effective language, by subscriber id."""
    return {p.id: effective_language(p.language, settings) for p in prefs}


def wanted_pairs(
    view: IssueView, audience: Audience, settings: Settings
) -> list[tuple[Paper, str]]:
    """Every (paper, language) a reader will see, most-read first across languages.

    The global digest counts as one reader in the site's language (the archive shows it), each
    reader for their own language (in another language only when they asked for summaries).
    Ties keep the digest's order, then the pool's.
    """
    site = settings.ai_summary.language
    langs = reader_languages(audience.prefs, settings)
    readers: Counter[tuple[str, str]] = Counter()
    for entry in view.digest:
        readers[(entry.paper.arxiv_id, site)] += 1
    for sid, selection in audience.selections.items():
        lang = langs.get(sid, site)
        if lang != site and not selection.include_summaries:
            continue  # they read no summary (the site language counts everyone, as always did)
        for entry in selection.entries:
            readers[(entry.paper.arxiv_id, lang)] += 1
    by_id = {e.paper.arxiv_id: e.paper for e in (*view.pool, *view.digest)}
    order = {e.paper.arxiv_id: i for i, e in enumerate(view.digest)}
    for i, e in enumerate(view.pool):
        order.setdefault(e.paper.arxiv_id, len(view.digest) + i)
    ranked = sorted(
        readers, key=lambda pair: (-readers[pair], order.get(pair[0], 0), pair[1] != site)
    )
    return [(by_id[a], lang) for a, lang in ranked if a in by_id]


@dataclass
class LanguageSummaries:
    """The site language's summaries and, per other language, that language's summaries over
    the site's (a paper with none in the reader's language shows the site's)."""

    site: dict[str, Summary] = field(default_factory=dict)
    by_language: dict[str, dict[str, Summary]] = field(default_factory=dict)
    calls: int = 0
    failures: int = 0
    describe: str = ""
    disabled: bool = False

    def for_language(self, language: str) -> Mapping[str, Summary]:
        return self.by_language.get(language, self.site)


def summarise_for_audience(
    engine: Engine,
    settings: Settings,
    view: IssueView,
    audience: Audience,
    *,
    pdf_fetcher: PdfFetcher | None = None,
    **kwargs: object,
) -> LanguageSummaries:
    """Summaries for what this audience will see, in their languages (cached ones are free).

    A pair whose summary could not be made falls back to the site language's: those papers are
    asked for in the site language in a second pass, under the same budget.
    """
    from newsletter.summaries import summarise_languages

    site = settings.ai_summary.language
    pairs = wanted_pairs(view, audience, settings) if settings.ai_summary.enabled else []
    runs = summarise_languages(
        engine,
        settings,
        pairs,
        languages=[site],
        pdf_fetcher=pdf_fetcher,
        **kwargs,  # type: ignore[arg-type]
    )
    out = LanguageSummaries(disabled=bool(runs[site].disabled_reason))
    missing = [p for p, lang in pairs if lang != site and p.arxiv_id not in runs[lang].summaries]
    missing = [p for p in missing if p.arxiv_id not in runs[site].summaries]
    calls = sum(r.calls for r in runs.values())
    if missing and not out.disabled:
        extra = summarise_languages(
            engine,
            settings,
            [(p, site) for p in missing],
            pdf_fetcher=pdf_fetcher,
            **kwargs,  # type: ignore[arg-type]
        )[site]
        runs[site].summaries.update(extra.summaries)
        calls += extra.calls
    out.site = dict(runs[site].summaries)
    out.by_language = {
        lang: {**out.site, **run.summaries} for lang, run in runs.items() if lang != site
    }
    out.calls = calls
    out.failures = sum(len(r.failures) for r in runs.values())
    out.describe = "; ".join(
        f"[{lang}] {run.describe()}" if len(runs) > 1 else run.describe()
        for lang, run in runs.items()
    )
    return out
