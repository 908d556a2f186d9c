"""Summarise a day's papers: cache first, then bounded concurrent model calls, failing softly.

Papers arrive most-read first. The first ``max_papers_to_summarize`` may be sent to the model,
in that order, while the day's token budget lasts; every cached summary is served free. One
paper's failure is logged, counted and never touches another paper, and no failure stops the
digest: the caller always gets a ``SummaryRun`` back.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import openai
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.domain import Paper, Summary
from newsletter.summaries import store
from newsletter.summaries.budget import TokenBudget, estimate_tokens
from newsletter.summaries.fulltext import PdfTextError, pdf_text
from newsletter.summaries.model_client import CallError, ModelClient
from newsletter.summaries.prompt import SYSTEM_MESSAGE, PromptError, PromptTemplate, load_prompt
from newsletter.summaries.reply import ReplyError, parse_reply
from newsletter.summaries.store import ABSTRACT, CacheKey

log = logging.getLogger(__name__)

PdfFetcher = Callable[[Paper], bytes]
SKIP_CAP = "cap"
SKIP_BUDGET = "budget"
FULLTEXT = "fulltext"
# Room for the template, title and authors around the paper's text when estimating a call.
_PROMPT_OVERHEAD_CHARS = 4000


@dataclass
class SummaryRun:
    """What a summarising run did, for the run's summary line and the renderers."""

    summaries: dict[str, Summary] = field(default_factory=dict)
    calls: int = 0
    cache_hits: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # arxiv_id -> "cap" or "budget"
    tokens: int = 0
    disabled_reason: str | None = None

    @property
    def new(self) -> int:
        return len(self.summaries) - self.cache_hits

    def describe(self) -> str:
        """One line for the run's summary."""
        if self.disabled_reason:
            return f"AI summaries: none ({self.disabled_reason})"
        parts = [f"{self.new} new", f"{self.cache_hits} cached", f"{len(self.failures)} failed"]
        if self.skipped:
            cap = sum(1 for r in self.skipped.values() if r == SKIP_CAP)
            budget = len(self.skipped) - cap
            why = [f"{cap} over max_papers_to_summarize"] if cap else []
            why += [f"{budget} over the daily token budget"] if budget else []
            parts.append(f"{len(self.skipped)} skipped ({', '.join(why)})")
        return f"AI summaries: {', '.join(parts)}; {self.calls} model calls, {self.tokens:,} tokens"


def cache_key(
    settings: Settings, prompt: PromptTemplate, source: str, language: str | None = None
) -> CacheKey:
    """The cache key of summaries in ``language`` (default: the site's ``ai_summary.language``)."""
    ai = settings.ai_summary
    return CacheKey(
        model=ai.model, prompt_hash=prompt.hash, language=language or ai.language, source=source
    )


def cached_summaries(
    session: Session, settings: Settings, papers: Sequence[Paper], language: str | None = None
) -> dict[str, Summary]:
    """Stored summaries for the current model, prompt, language and source (read-only).

    ``language`` defaults to the site's. Empty when summaries are disabled or the prompt cannot
    be read.
    """
    if not settings.ai_summary.enabled:
        return {}
    try:
        prompt = load_prompt(settings.ai_summary)
    except PromptError as exc:
        log.warning("AI summaries: %s", exc)
        return {}
    key = cache_key(settings, prompt, settings.ai_summary.source, language)
    return store.lookup(session, key, papers)


@dataclass
class _Job:
    paper: Paper
    reserved: int
    key: CacheKey  # its language's cache key


@dataclass
class _Context:
    """What every worker shares for one run."""

    engine: Engine
    settings: Settings
    prompt: PromptTemplate
    source: str  # "abstract" or "fulltext" for every language
    model: ModelClient
    budget: TokenBudget
    pdf_fetcher: PdfFetcher | None


class _PaperFailed(Exception):
    pass


def _paper_text(ctx: _Context, paper: Paper) -> tuple[str, str, str]:
    """``(text, stored source, description)``; the abstract when the PDF cannot be had."""
    ai = ctx.settings.ai_summary
    if ctx.source == FULLTEXT and ctx.pdf_fetcher is not None:
        try:
            text = pdf_text(ctx.pdf_fetcher(paper), ai.max_input_chars)
        except PdfTextError as exc:
            log.warning("summary of %s: %s; summarising the abstract", paper.versioned_id, exc)
        except Exception as exc:  # the fetcher is someone else's: any failure falls back
            log.warning(
                "summary of %s: PDF download failed (%s: %s); summarising the abstract",
                paper.versioned_id,
                type(exc).__name__,
                exc,
            )
        else:
            return text, FULLTEXT, f"full text, first {len(text)} characters"
    return paper.abstract[: ai.max_input_chars], ABSTRACT, "abstract"


def _summarise_one(ctx: _Context, job: _Job) -> tuple[Summary, int]:
    """Call the model for one paper (a reply that does not parse is asked for once more)."""
    paper = job.paper
    ai = ctx.settings.ai_summary
    body, source, described = _paper_text(ctx, paper)
    user = ctx.prompt.render(
        paper,
        language=job.key.language,
        body=body,
        source="full text" if source == FULLTEXT else source,
    )
    messages = [{"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": user}]
    tokens = 0
    reserved = job.reserved
    problem = ""
    for attempt in range(2):
        if attempt and not ctx.budget.try_reserve(reserved):
            raise _PaperFailed(f"{problem}; no token budget left to ask again")
        try:
            completion = ctx.model.complete(messages)
        except CallError as exc:
            ctx.budget.settle(reserved, 0)
            raise _PaperFailed(str(exc)) from exc
        ctx.budget.settle(reserved, completion.tokens)
        tokens += completion.tokens
        try:
            tldr, sections = parse_reply(completion.content)
        except ReplyError as exc:
            cut = " (cut off at max_output_tokens)" if completion.finish_reason == "length" else ""
            problem = f"{exc}{cut}"
            log.info("summary of %s: %s; asking once more", paper.versioned_id, problem)
            continue
        store.store(
            ctx.engine, job.key, paper, source=source, tldr=tldr, sections=sections, tokens=tokens
        )
        log.debug("summarised %s from the %s (%d tokens)", paper.versioned_id, described, tokens)
        return Summary(tldr=tldr, sections=sections, model=ai.model), tokens
    raise _PaperFailed(f"unusable reply twice: {problem}")


def _disabled_reason(settings: Settings, environ: Mapping[str, str], client: object) -> str | None:
    ai = settings.ai_summary
    if not ai.enabled:
        return "disabled (ai_summary.enabled is false)"
    if client is None and not settings.ai_api_key(environ):
        return (
            f"ai_summary is enabled but the environment variable {ai.api_key_env} "
            "holding the model's API key is not set"
        )
    return None


def _unique(papers: Sequence[Paper]) -> list[Paper]:
    seen: dict[str, Paper] = {}
    for paper in papers:
        seen.setdefault(paper.arxiv_id, paper)
    return list(seen.values())


def summarise_papers(
    engine: Engine,
    settings: Settings,
    papers: Sequence[Paper],
    *,
    language: str | None = None,
    environ: Mapping[str, str] | None = None,
    pdf_fetcher: PdfFetcher | None = None,
    client: openai.OpenAI | None = None,
    today: dt.date | None = None,
) -> SummaryRun:
    """Summaries for ``papers`` (most-read first) in ``language`` (default: the site's)."""
    lang = language or settings.ai_summary.language
    runs = summarise_languages(
        engine,
        settings,
        [(paper, lang) for paper in papers],
        environ=environ,
        pdf_fetcher=pdf_fetcher,
        client=client,
        today=today,
    )
    return runs[lang]


def summarise_languages(
    engine: Engine,
    settings: Settings,
    wanted: Sequence[tuple[Paper, str]],
    *,
    languages: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    pdf_fetcher: PdfFetcher | None = None,
    client: openai.OpenAI | None = None,
    today: dt.date | None = None,
) -> dict[str, SummaryRun]:
    """Summaries for (paper, language) pairs, most-read first across languages: cached ones
    free, new ones within the caps, one run per language in the result (``languages`` are
    listed even when nothing was asked of them).

    ``max_papers_to_summarize`` counts per language; the day's token budget is one for all, and
    calls start in the order given, so the pairs with most readers go first whatever their
    language. ``today`` is the UTC day whose spending counts against ``daily_token_budget``
    (default: now).
    """
    ai = settings.ai_summary
    pairs = list(dict.fromkeys((p.arxiv_id, lang) for p, lang in wanted))
    by_id = {(p.arxiv_id, lang): p for p, lang in reversed(wanted)}
    langs = list(dict.fromkeys([*languages, *(lang for _, lang in pairs)]))
    runs = {lang: SummaryRun() for lang in langs or [ai.language]}
    env = os.environ if environ is None else environ
    reason = _disabled_reason(settings, env, client)
    if reason is None:
        try:
            prompt = load_prompt(ai)
        except PromptError as exc:
            reason = str(exc)
    if reason is not None:
        for run in runs.values():
            run.disabled_reason = reason
        level = logging.INFO if not ai.enabled else logging.WARNING
        log.log(level, "AI summaries: none this run: %s", reason)
        return runs

    source: str = ai.source
    if source == FULLTEXT and pdf_fetcher is None:
        log.warning("ai_summary.source is 'fulltext' but no PDF fetcher was given; using abstracts")
        source = ABSTRACT
    keys = {lang: cache_key(settings, prompt, source, lang) for lang in runs}
    papers_of: dict[str, list[Paper]] = {lang: [] for lang in runs}
    for arxiv_id, lang in pairs:
        papers_of[lang].append(by_id[(arxiv_id, lang)])
    day = today or dt.datetime.now(dt.UTC).date()
    with session_scope(engine) as session:
        cached = {lang: store.lookup(session, keys[lang], papers_of[lang]) for lang in runs}
        spent = store.tokens_spent(session, day)
    for lang, run in runs.items():
        run.summaries.update(cached[lang])
        run.cache_hits = len(cached[lang])

    todo: list[_Job] = []
    position: dict[str, int] = dict.fromkeys(runs, 0)
    for arxiv_id, lang in pairs:
        nth = position[lang]
        position[lang] += 1
        if arxiv_id in cached[lang]:
            continue
        if nth >= ai.max_papers_to_summarize:
            runs[lang].skipped[arxiv_id] = SKIP_CAP
        else:
            todo.append(_Job(paper=by_id[(arxiv_id, lang)], reserved=0, key=keys[lang]))
    if not todo:
        for run in runs.values():
            log.info("%s", run.describe())
        return runs

    own_client = client is None
    api = client or openai.OpenAI(api_key=settings.ai_api_key(env), base_url=ai.base_url)
    model = ModelClient(api, ai)
    ctx = _Context(
        engine=engine,
        settings=settings,
        prompt=prompt,
        source=source,
        model=model,
        budget=TokenBudget(ai.daily_token_budget, spent),
        pdf_fetcher=pdf_fetcher,
    )
    try:
        _dispatch(ctx, todo, runs)
    finally:
        model.close()
        if own_client:
            api.close()
    order = {pair: i for i, pair in enumerate(pairs)}
    for lang, run in runs.items():
        run.summaries = dict(
            sorted(run.summaries.items(), key=lambda item: order.get((item[0], lang), 0))
        )
    # One model and one budget for all languages: the counts go to the site language's run
    # when it is there (the pipeline reports that one), else to the first.
    main = runs.get(ai.language) or next(iter(runs.values()))
    main.calls = ctx.model.calls
    main.tokens = ctx.budget.used_now
    for lang, run in runs.items():
        log.info("%s%s", f"[{lang}] " if len(runs) > 1 else "", run.describe())
    return runs


def _estimate(ctx: _Context, paper: Paper) -> int:
    ai = ctx.settings.ai_summary
    text_chars = ai.max_input_chars if ctx.source == FULLTEXT else len(paper.abstract)
    prompt_chars = min(text_chars, ai.max_input_chars) + len(ctx.prompt.text) + len(SYSTEM_MESSAGE)
    return estimate_tokens(prompt_chars + _PROMPT_OVERHEAD_CHARS, ai.max_output_tokens)


def _dispatch(ctx: _Context, todo: list[_Job], runs: Mapping[str, SummaryRun]) -> None:
    """Start calls in order, at most ``max_workers`` at a time, each only if the budget allows."""
    workers = ctx.settings.ai_summary.max_workers
    slots = threading.BoundedSemaphore(workers)
    results_lock = threading.Lock()

    def work(job: _Job) -> None:
        paper = job.paper
        run = runs[job.key.language]
        try:
            summary, _tokens = _summarise_one(ctx, job)
        except _PaperFailed as exc:
            _record_failure(run, results_lock, paper, str(exc))
        except Exception as exc:  # one paper's surprise must not sink the others
            log.warning("summary of %s failed unexpectedly", paper.versioned_id, exc_info=True)
            _record_failure(run, results_lock, paper, f"{type(exc).__name__}: {exc}", logged=True)
        else:
            with results_lock:
                run.summaries[paper.arxiv_id] = summary
        finally:
            slots.release()

    futures: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="summary") as pool:
        for job in todo:
            slots.acquire()
            reserved = _estimate(ctx, job.paper)
            if not ctx.budget.try_reserve(reserved):
                slots.release()
                runs[job.key.language].skipped[job.paper.arxiv_id] = SKIP_BUDGET
                continue
            futures.append(pool.submit(work, _Job(job.paper, reserved, job.key)))
    for future in futures:
        future.result()
    over = sum(1 for run in runs.values() for r in run.skipped.values() if r == SKIP_BUDGET)
    if over:
        log.warning(
            "AI summaries: daily_token_budget of %s tokens reached; %d papers left unsummarised",
            f"{ctx.settings.ai_summary.daily_token_budget:,}",
            over,
        )


def _record_failure(
    run: SummaryRun, lock: threading.Lock, paper: Paper, reason: str, *, logged: bool = False
) -> None:
    if not logged:
        log.warning("summary of %s failed: %s", paper.versioned_id, reason)
    with lock:
        run.failures[paper.arxiv_id] = reason
