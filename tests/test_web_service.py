"""Archive pages, feeds, health, metrics and the admin trigger through the real app."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from newsletter.config import Settings
from newsletter.db import make_engine, session_scope
from newsletter.delivery.models import Delivery
from newsletter.models import IssueRow, RunRow
from newsletter.runtime.locking import DayLock
from newsletter.runtime.runner import lock_name
from newsletter.runtime.service import launcher_for
from newsletter.summaries.prompt import load_prompt
from newsletter.web.app import create_app
from subscribers.models import Subscriber
from tests.fixtures_service import add_issue, add_paper, count_runs

SECRET = "k9Vq2mZr7Lp4Xw8Nf3Hb6Tj1Yc5Gd0Sa"
HOSTILE = '<script>alert(1)</script> & "LLM"\x0b inference </title>]]>'
DAY = dt.date(2026, 5, 4)
OLD = dt.date(2026, 5, 1)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text (a real HTML parser, no regexes)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def ids(self) -> list[str]:
        return [a["id"] for _, a in self.tags if a.get("id")]  # type: ignore[misc]

    def hrefs(self) -> list[str]:
        return [a["href"] for t, a in self.tags if t == "a" and a.get("href")]  # type: ignore[misc]


ADMIN_TOKEN = "admin-token-1-Qx7vLp2mZr9sKd4wTn8yBh3c"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def with_secrets(
    settings: Settings, admin: str | None = "admin-token-1-Qx7vLp2mZr9sKd4wTn8yBh3c"
) -> Settings:
    update: dict[str, Any] = {"secret_key": SecretStr(SECRET)}
    update["admin_token"] = SecretStr(admin) if admin else None
    return settings.model_copy(update=update)


@contextmanager
def site_of(
    make_settings: Callable[..., Settings],
) -> Iterator[tuple[TestClient, Settings, Engine]]:
    """The app over a database of two issues (one hostile title, one summary)."""
    settings = with_secrets(make_settings(ai_summary={"enabled": True}))
    engine = make_engine(settings.database_url)
    add_paper(
        engine,
        "2605.00001",
        title=HOSTILE,
        authors=("Ann <b>Bold</b>", "Bo Li"),
        categories=("cs.LG", "cs.AI"),
        abstract="We study LLM inference.",
    )
    add_paper(
        engine,
        "2605.00002",
        title="Graph networks",
        categories=("cs.AI",),
        abstract="About graphs.",
    )
    add_paper(
        engine, "2605.00003", title="Inference at scale", categories=("cs.LG",), abstract="Serving."
    )
    add_paper(engine, "2605.00004", title="Old LLM paper", categories=("cs.LG",))
    add_issue(
        engine,
        DAY,
        [
            ("2605.00001", 3.0, ["LLM"], 1),
            ("2605.00002", 1.0, [], 2),
            ("2605.00003", 0.5, [], None),
        ],
    )
    add_issue(engine, OLD, [("2605.00004", 2.0, ["LLM"], 1)])
    prompt = load_prompt(settings.ai_summary)
    with session_scope(engine) as session:
        from newsletter.models import SummaryRow

        session.add(
            SummaryRow(
                arxiv_id="2605.00001",
                version=1,
                model=settings.ai_summary.model,
                prompt_hash=prompt.hash,
                language="English",
                source="abstract",
                tldr="Fast <i>LLM</i> serving.",
                sections={
                    "contributions": "**New** method <script>x()</script>",
                    "method": "[click](javascript:alert(1)) and `code`",
                    "results": "2x faster",
                    "conclusions": "Works.",
                },
            )
        )
    app = create_app(settings, engine=engine, migrate=False)
    with TestClient(app) as client:
        yield client, settings, engine
    engine.dispose()


@pytest.fixture
def site(make_settings: Callable[..., Settings]) -> Iterator[tuple[TestClient, Settings, Engine]]:
    with site_of(make_settings) as built:
        yield built


def test_archive_index_lists_issues_newest_first(site: Any) -> None:
    client, _, _ = site
    page = Tags(client.get("/archive").text)
    issue_links = [h for h in page.hrefs() if h.startswith("/archive/20") and "." not in h[9:]]
    assert issue_links == ["/archive/2026-05-04", "/archive/2026-05-01"]


def test_issue_page_has_anchors_escaped_titles_and_safe_summaries(site: Any) -> None:
    client, _, _ = site
    resp = client.get("/archive/2026-05-04")
    assert resp.status_code == 200
    page = Tags(resp.text)
    assert {"2605.00001", "2605.00002", "2605.00003"} <= set(page.ids())
    assert "script" not in [t for t, _ in page.tags]
    assert not [h for h in page.hrefs() if h.lower().startswith("javascript")]
    text = "".join(page.text)
    assert "<script>alert(1)</script>" in text  # shown as text, not markup
    assert "Ann <b>Bold</b>" in text
    assert "Fast <i>LLM</i> serving." in text
    assert "Contributions" in text and "2x faster" in text
    assert "strong" in [t for t, _ in page.tags]  # Markdown rendered through the sanitiser
    assert "Also announced" in text  # the pool paper, linkable from a subscriber's e-mail


def test_issue_markdown_is_served_as_written(site: Any) -> None:
    client, settings, _ = site
    archive = Path(settings.archive_dir)
    archive.mkdir(parents=True, exist_ok=True)
    (archive / "2026-05-04.md").write_text("# Issue\n\n<b>as written</b>\n", encoding="utf-8")
    resp = client.get("/archive/2026-05-04.md")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/markdown")
    assert resp.text == "# Issue\n\n<b>as written</b>\n"


@pytest.mark.parametrize(
    "path",
    [
        "/archive/2026-05-05",
        "/archive/2026-13-01",
        "/archive/20260504",
        "/archive/2026-05-01.md",
        "/archive/..%2F..%2Fetc%2Fpasswd.md",
        "/archive/2026-05-04.md.md",
        "/archive/%2e%2e.md",
    ],
)
def test_archive_404s(site: Any, path: str) -> None:
    client, _, _ = site
    assert client.get(path).status_code == 404


def _ids(parsed: Any) -> list[str]:
    return [e.link.rsplit("/", 1)[1] for e in parsed.entries]


@pytest.mark.parametrize("path", ["/feed.xml", "/feed.atom"])
def test_feeds_parse_cleanly_newest_first_with_every_field(site: Any, path: str) -> None:
    client, _, _ = site
    resp = client.get(path)
    assert resp.status_code == 200
    parsed = feedparser.parse(resp.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert _ids(parsed) == ["2605.00001", "2605.00002", "2605.00004"]
    first = parsed.entries[0]
    assert first.title == HOSTILE.replace("\x0b", "")
    assert [a.get("name") for a in first.authors] == ["Ann <b>Bold</b>", "Bo Li"] or (
        "Ann <b>Bold</b>" in first.get("author", "")
    )
    assert {t.term for t in first.tags} == {"cs.LG", "cs.AI"}
    assert "Score: 3.0" in first.summary and "Fast <i>LLM</i> serving." in first.summary
    assert first.get("published_parsed") or first.get("updated_parsed")
    assert parsed.entries[2].summary.startswith("Score: 2.0 · Matched: LLM")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?keywords=inference", ["2605.00001", "2605.00003"]),
        ("?categories=cs.AI", ["2605.00001", "2605.00002"]),
        ("?keywords=llm&categories=cs.LG", ["2605.00001", "2605.00004"]),
        ("?keywords=world", []),
    ],
)
def test_feed_filters_use_the_matcher_over_the_pool(
    site: Any, query: str, expected: list[str]
) -> None:
    client, _, _ = site
    for path in ("/feed.xml", "/feed.atom"):
        parsed = feedparser.parse(client.get(path + query).content)
        assert parsed.bozo == 0
        assert _ids(parsed) == expected


def test_category_feed_and_unknown_categories(site: Any) -> None:
    client, _, _ = site
    parsed = feedparser.parse(client.get("/rss/cs.LG").content)
    assert parsed.bozo == 0
    assert _ids(parsed) == ["2605.00001", "2605.00003", "2605.00004"]
    assert client.get("/rss/cs.CV").status_code == 404
    assert client.get("/rss/..%2Fetc").status_code == 404
    assert client.get("/feed.xml?categories=math.XX").status_code == 404
    assert (
        client.get("/feed.xml?keywords=" + ",".join(f"k{i}" for i in range(30))).status_code == 400
    )


def test_healthz_reports_last_run_and_next_run(site: Any) -> None:
    client, _, engine = site
    body = client.get("/healthz").json()
    assert body == {
        "status": "ok",
        "database": "ok",
        "next_run": None,
        "last_run": None,
        "deliveries_waiting": {},
    }
    _queue_one(engine, DAY)
    assert client.get("/healthz").json()["deliveries_waiting"] == {"2026-05-04": 1}
    with session_scope(engine) as session:
        session.add(
            RunRow(
                date=DAY, trigger="schedule", outcome="failed", finished_at=dt.datetime.now(dt.UTC)
            )
        )
    body = client.get("/healthz").json()
    assert body["last_run"]["outcome"] == "failed" and body["last_run"]["date"] == "2026-05-04"


def _queue_one(engine: Engine, day: dt.date) -> None:
    """A delivery of the issue of ``day`` still waiting (its send was interrupted)."""
    from newsletter.issue_store import issue_id_for

    with session_scope(engine) as session:
        sub = Subscriber(email=f"waiting-{day}@example.org", status="active")
        session.add(sub)
        session.flush()
        issue_id = issue_id_for(session, day)
        session.add(
            Delivery(issue_id=issue_id or 0, subscriber_id=sub.id or 0, message_id=f"<w{day}@x>")
        )


def test_healthz_is_503_when_the_database_is_unreachable(
    make_settings: Callable[..., Settings],
) -> None:
    settings = with_secrets(make_settings())
    dead = make_engine("postgresql://postgres@127.0.0.1:1/none", pool_pre_ping=False)
    with TestClient(create_app(settings, engine=dead, migrate=False)) as client:
        resp = client.get("/healthz")
        assert resp.status_code == 503
        assert resp.json()["database"].startswith("unreachable")
        metrics = client.get("/metrics", headers=ADMIN).text
        assert "newsletter_database_up 0.0" in metrics


def test_metrics_from_runs_and_deliveries(site: Any) -> None:
    client, _, engine = site
    start = dt.datetime(2026, 5, 4, 5, 40, tzinfo=dt.UTC)
    with session_scope(engine) as session:
        session.add(
            RunRow(
                date=DAY,
                trigger="schedule",
                outcome="ok",
                papers=30,
                model_calls=12,
                started_at=start,
                finished_at=start + dt.timedelta(seconds=90),
            )
        )
        session.add(
            RunRow(
                date=OLD,
                trigger="admin",
                outcome="failed",
                started_at=start,
                finished_at=start + dt.timedelta(seconds=10),
            )
        )
        subs = [Subscriber(email=f"s{i}@example.org", status="active") for i in range(3)]
        session.add_all(subs)
        session.flush()
        issue_id = session.exec(select(IssueRow.id).where(IssueRow.date == DAY)).first()
        for sub, status in zip(subs, ("sent", "sent", "failed"), strict=True):
            session.add(
                Delivery(
                    issue_id=issue_id or 0,
                    subscriber_id=sub.id or 0,
                    status=status,
                    message_id=f"<{sub.id}@x>",
                )
            )
    _queue_one(engine, DAY)
    text = client.get("/metrics", headers=ADMIN).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    assert samples[("newsletter_runs_total", (("outcome", "ok"), ("trigger", "schedule")))] == 1
    assert samples[("newsletter_runs_total", (("outcome", "failed"), ("trigger", "admin")))] == 1
    assert samples[("newsletter_papers_total", ())] == 30
    assert samples[("newsletter_model_calls_total", ())] == 12
    assert samples[("newsletter_emails_sent_total", ())] == 2
    assert samples[("newsletter_emails_failed_total", ())] == 1
    assert samples[("newsletter_run_duration_seconds_count", ())] == 2
    assert samples[("newsletter_run_duration_seconds_sum", ())] == 100
    assert samples[("newsletter_issues", ())] == 2
    waiting = ("newsletter_issue_deliveries_waiting", (("date", "2026-05-04"),))
    assert samples[waiting] == 1


def test_admin_route_does_not_exist_without_a_token(make_settings: Callable[..., Settings]) -> None:
    settings = with_secrets(make_settings(), admin=None)
    with TestClient(create_app(settings, migrate=False)) as client:
        assert client.post("/admin/run").status_code == 404
        assert client.get("/admin/run").status_code == 404
        assert client.post("/admin/run", headers={"Authorization": "Bearer x"}).status_code == 404


def test_admin_trigger_needs_the_token_and_shares_the_lock(site: Any) -> None:
    client, settings, engine = site
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic admin-token-1-Qx7vLp2mZr9sKd4wTn8yBh3c"},
        {"Authorization": "Bearer "},
    ):
        resp = client.post("/admin/run?date=2026-05-04", headers=headers)
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"].startswith("Bearer")
    assert count_runs(engine) == 0
    auth = ADMIN
    done = client.post("/admin/run?date=2026-05-04", headers=auth)
    assert done.status_code == 409 and done.json()["status"] == "already-done"
    _queue_one(engine, DAY)  # the issue of DAY is not finished any more
    holder = DayLock(engine, lock_name(DAY))
    assert holder.acquire()
    try:
        busy = client.post("/admin/run?date=2026-05-04", headers=auth)
    finally:
        holder.release()
    assert busy.status_code == 409 and busy.json()["status"] == "locked"
    first = client.post("/admin/run?date=2026-05-04", headers=auth)
    assert first.status_code == 202 and first.json() == {"status": "started", "date": "2026-05-04"}
    assert launcher_for(settings, engine).join(20)
    with session_scope(engine) as session:
        (row,) = session.exec(select(RunRow)).all()
        assert (row.trigger, row.outcome, row.date) == ("admin", "ok", DAY)
        assert not session.exec(select(Delivery).where(Delivery.status == "queued")).all()
    assert client.post("/admin/run?date=not-a-date", headers=auth).status_code == 400
