from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from fixtures_pipeline import announcement, recorded_papers, repo_config
from rich.console import Console
from sqlmodel import select

from newsletter.config import Settings
from newsletter.db import make_engine, session_scope
from newsletter.domain import Announcement, Summary
from newsletter.issue_store import list_issues, load_issue
from newsletter.models import IssueRow, RunRow
from newsletter.pipeline import (
    DEFAULT_STAGES,
    RunContext,
    Stage,
    check_announcement,
)
from newsletter.runtime.runner import finish_day

D = dt.date(2026, 4, 21)
QUIET = Console(file=open("/dev/null", "w"), force_terminal=False)  # noqa: SIM115


def _recorded_fetch(ann: Announcement | None) -> Stage:
    """The fetch stage's decision logic on a recorded announcement instead of the network."""
    return Stage("fetch", lambda ctx: check_announcement(ctx, ann))


def _stages(ann: Announcement | None, *extra: Stage) -> list[Stage]:
    """The default stages with a recorded fetch; ``extra`` runs just before the archive."""
    rest = [s for s in DEFAULT_STAGES if s.name != "fetch"]
    at = [s.name for s in rest].index("archive")
    return [_recorded_fetch(ann), *rest[:at], *extra, *rest[at:]]


def _settings(make_settings: Callable[..., Settings]) -> Settings:
    cfg = repo_config()
    return make_settings(keywords=cfg["keywords"], exclude_keywords=cfg["exclude_keywords"])


def _runs(settings: Settings) -> list[RunRow]:
    eng = make_engine(settings.database_url)
    with session_scope(eng) as session:
        rows = list(session.exec(select(RunRow).order_by(RunRow.id)))
    eng.dispose()
    return rows


def test_a_day_goes_from_announcement_to_archive(make_settings: Callable[..., Settings]) -> None:
    s = _settings(make_settings)
    result = finish_day(s, date=D, send=False, console=QUIET, stages=_stages(announcement(D)))
    assert (result.outcome, result.date, result.exit_code) == ("ok", D, 0)
    page = result.outputs["issue_markdown"]
    assert page == Path(s.archive_dir) / "2026-04-21.md"
    assert page.read_text(encoding="utf-8").count("\n### ") == result.counts["papers"] > 0
    assert "[2026-04-21](2026-04-21.md)" in result.outputs["archive_index"].read_text()
    (run,) = _runs(s)
    assert (run.outcome, run.date, run.papers, run.trigger) == (
        "ok",
        D,
        result.counts["papers"],
        "cli",
    )
    assert run.finished_at is not None and "sending skipped" in (run.message or "")


def test_no_announcement_ends_cleanly_without_an_issue(
    make_settings: Callable[..., Settings],
) -> None:
    s = _settings(make_settings)
    result = finish_day(s, date=D, console=QUIET, stages=_stages(None))
    assert (result.outcome, result.exit_code, result.issue_id) == ("no-announcement", 0, None)
    assert "no arXiv announcement for 2026-04-21" in result.message
    assert not Path(s.archive_dir).exists()
    assert [r.outcome for r in _runs(s)] == ["no-announcement"]


def test_feed_still_showing_a_built_day_is_no_new_announcement(
    make_settings: Callable[..., Settings],
) -> None:
    s = _settings(make_settings)
    first = finish_day(s, console=QUIET, stages=_stages(announcement(D)))
    assert first.outcome == "ok"
    before = first.outputs["issue_markdown"].stat().st_mtime_ns
    again = finish_day(s, console=QUIET, stages=_stages(announcement(D)))
    assert again.outcome == "no-announcement" and again.exit_code == 0
    assert "feed still shows 2026-04-21" in again.message and "--date 2026-04-21" in again.message
    assert first.outputs["issue_markdown"].stat().st_mtime_ns == before


def test_rerunning_a_date_rebuilds_the_same_issue(make_settings: Callable[..., Settings]) -> None:
    s = _settings(make_settings)
    one = finish_day(s, date=D, console=QUIET, stages=_stages(announcement(D)), rebuild=True)
    two = finish_day(s, date=D, console=QUIET, stages=_stages(announcement(D)), rebuild=True)
    three = finish_day(s, date=D, console=QUIET, stages=_stages(announcement(D)))
    assert (three.outcome, three.exit_code) == ("already-done", 0)  # sent: nothing to rebuild
    assert one.issue_id == two.issue_id is not None
    assert one.counts["papers"] == two.counts["papers"]
    eng = make_engine(s.database_url)
    with session_scope(eng) as session:
        assert len(list(session.exec(select(IssueRow)))) == 1
    eng.dispose()


def test_next_day_skips_papers_already_sent(make_settings: Callable[..., Settings]) -> None:
    s = _settings(make_settings)
    papers = recorded_papers()
    finish_day(s, date=D, console=QUIET, stages=_stages(announcement(D, papers[:30])))
    d2 = D + dt.timedelta(days=1)
    result = finish_day(s, date=d2, console=QUIET, stages=_stages(announcement(d2, papers[20:])))
    eng = make_engine(s.database_url)
    with session_scope(eng) as session:
        assert [i.date for i in list_issues(session)] == [d2, D]
        day1 = load_issue(session, D)
        day2 = load_issue(session, d2)
    eng.dispose()
    assert day1 is not None and day2 is not None
    went_out = {e.paper.arxiv_id for e in day1.pool}
    overlap = went_out & {p.arxiv_id for p in papers[20:30]}
    assert result.counts["repeats_skipped"] == len(overlap) >= 5
    assert not went_out & {e.paper.arxiv_id for e in day2.pool}


def test_a_failing_stage_is_recorded_and_reported(make_settings: Callable[..., Settings]) -> None:
    def boom(ctx: RunContext) -> None:
        raise OSError("disk full")

    s = _settings(make_settings)
    result = finish_day(
        s, date=D, console=QUIET, stages=_stages(announcement(D), Stage("boom", boom))
    )
    assert (result.outcome, result.exit_code) == ("failed", 1)
    assert result.message == "boom failed: OSError: disk full"
    assert isinstance(result.error, OSError)
    assert "issue_markdown" not in result.outputs  # stages after the failure did not run
    (run,) = _runs(s)
    assert (run.outcome, run.message) == ("failed", "boom failed: OSError: disk full")


def test_a_stage_added_before_archive_puts_summaries_into_the_page(
    make_settings: Callable[..., Settings],
) -> None:
    def summarise(ctx: RunContext) -> None:
        assert ctx.view is not None
        top = ctx.view.digest[0].paper.arxiv_id
        ctx.summaries[top] = Summary(tldr="Short <b>take</b>.", sections={}, model="m")
        ctx.counts["model_calls"] = 1

    s = _settings(make_settings)
    result = finish_day(
        s, date=D, console=QUIET, stages=_stages(announcement(D), Stage("summarise", summarise))
    )
    text = result.outputs["issue_markdown"].read_text(encoding="utf-8")
    assert text.count("<details>") == 1 and "Short \\<b\\>take\\</b\\>." in text
    assert _runs(s)[0].model_calls == 1


def test_an_unreachable_database_fails_with_a_clear_message(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    s = make_settings(database_url="postgresql://nobody@127.0.0.1:1/none")
    result = finish_day(s, date=D, console=QUIET, stages=_stages(announcement(D)))
    assert result.outcome == "failed" and result.exit_code == 1
    assert "could not be prepared" in result.message and "127.0.0.1:1" in result.message


def test_a_database_password_never_reaches_the_message(
    make_settings: Callable[..., Settings],
) -> None:
    s = make_settings(database_url="postgresql://digest:hunter2-s3cret@127.0.0.1:1/none")
    result = finish_day(s, date=D, console=QUIET, stages=_stages(announcement(D)))
    assert result.outcome == "failed" and "could not be prepared" in result.message
    assert "hunter2-s3cret" not in result.message and "digest:***@127.0.0.1:1" in result.message


def test_a_built_issue_with_queued_deliveries_is_not_done(
    make_settings: Callable[..., Settings],
) -> None:
    """The feed still shows a built issue, but some of its e-mails are queued (the run that
    built it was killed): the next run without a date sends them, and only them."""
    from sqlalchemy import update

    from newsletter.delivery.models import Delivery
    from tests.fixtures_delivery import seed_subscribers, with_secret

    s = with_secret(_settings(make_settings))
    eng = make_engine(s.database_url)
    seed_subscribers(eng, 5)
    first = finish_day(s, console=QUIET, stages=_stages(announcement(D)))
    assert (first.outcome, first.counts["emails_sent"]) == ("ok", 5)
    with eng.begin() as conn:  # as if killed after two of five
        ids = conn.execute(select(Delivery.id).order_by(Delivery.id)).scalars().all()
        conn.execute(update(Delivery).where(Delivery.id.in_(ids[2:])).values(status="queued"))
        conn.execute(update(IssueRow).values(status="sending"))
    again = finish_day(s, console=QUIET, stages=_stages(announcement(D)))
    assert (again.outcome, again.counts["emails_sent"], again.exit_code) == ("ok", 3, 0)
    with eng.connect() as conn:
        assert set(conn.execute(select(Delivery.status)).scalars()) == {"sent"}
        assert conn.execute(select(IssueRow.status)).scalar_one() == "sent"
    done = finish_day(s, console=QUIET, stages=_stages(announcement(D)))
    assert done.outcome == "no-announcement" and "already built" in done.message
    eng.dispose()


def test_send_mails_the_stored_summaries_even_without_the_model(
    make_settings: Callable[..., Settings],
) -> None:
    """`newsletter send` (finish_day without the build) in a process that cannot reach the
    model still mails the summaries stored for the issue, as the run that built it did."""
    from newsletter.models import SummaryRow
    from tests.fixtures_delivery import seed_subscribers, with_secret

    s = with_secret(
        _settings(make_settings).model_copy(
            update={
                "ai_summary": make_settings(
                    ai_summary={"enabled": True, "api_key_env": "NO_SUCH_KEY_FOR_TESTS"}
                ).ai_summary
            }
        )
    )
    eng = make_engine(s.database_url)
    seed_subscribers(eng, 3)
    built = finish_day(s, date=D, send=False, console=QUIET, stages=_stages(announcement(D)))
    assert built.outcome == "ok"
    with session_scope(eng) as session:
        view = load_issue(session, D)
        assert view is not None
        top = view.digest[0].paper
        session.add(
            SummaryRow(
                arxiv_id=top.arxiv_id,
                version=top.version,
                model=s.ai_summary.model,
                prompt_hash="h",
                language=s.ai_summary.language,
                source="abstract",
                tldr="A stored TL;DR that the first run mailed.",
            )
        )
    sent = finish_day(s, date=D, trigger="send", build=False, console=QUIET, engine=eng)
    assert (sent.outcome, sent.counts["emails_sent"]) == ("ok", 3)
    emails = sorted(Path(s.delivery.outbox_dir).glob("*.eml"))
    assert len(emails) == 3
    for path in emails:
        assert "A stored TL;DR that the first run mailed." in path.read_text(encoding="utf-8")
    missing = finish_day(s, date=D + dt.timedelta(days=1), trigger="send", build=False, engine=eng)
    assert missing.outcome == "failed" and "no issue for 2026-04-22" in missing.message
    eng.dispose()
