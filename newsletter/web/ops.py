"""Operations endpoints: ``/healthz``, ``/metrics`` (Prometheus text, a registry per app; Bearer
``NEWSLETTER_ADMIN_TOKEN`` unless ``web.metrics_public``) and ``POST /admin/run`` (Bearer
``NEWSLETTER_ADMIN_TOKEN``; absent when no token is configured)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.responses import JSONResponse, Response

from newsletter.config import Settings
from newsletter.delivery.models import Delivery
from newsletter.models import IssueRow, RunRow, daily_issue
from newsletter.runtime.runner import waiting_by_issue
from newsletter.runtime.scheduler import stored_next_run
from newsletter.runtime.service import launcher_for
from newsletter.web.admin_auth import refusal
from newsletter.web.deps import EngineDep

router = APIRouter()
admin_router = APIRouter()


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat()


def health(engine: Engine) -> tuple[bool, dict[str, Any]]:
    """(healthy, body): the database answers, the next scheduled run, the last run's outcome."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return False, {"status": "error", "database": f"unreachable: {type(exc).__name__}"}
    with Session(engine) as session:
        last = session.exec(select(RunRow).order_by(col(RunRow.id).desc()).limit(1)).first()
    body: dict[str, Any] = {
        "status": "ok",
        "database": "ok",
        "next_run": _iso(stored_next_run(engine)),
        "last_run": None,
        # Issues whose send is not finished: alert when one stays here past its day.
        "deliveries_waiting": {d.isoformat(): n for d, n in waiting_by_issue(engine)},
    }
    if last is not None:
        body["last_run"] = {
            "id": last.id,
            "date": last.date.isoformat() if last.date else None,
            "trigger": last.trigger,
            "outcome": last.outcome,
            "started_at": _iso(last.started_at),
            "finished_at": _iso(last.finished_at),
        }
    return True, body


@router.get("/healthz")
def healthz(engine: EngineDep) -> Response:
    ok, body = health(engine)
    return JSONResponse(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})


class DatabaseCollector(Collector):
    """Figures computed from ``runs``, ``issues`` and ``deliveries`` at scrape time, so every
    process behind a load balancer reports the same totals and nothing is kept in globals."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("newsletter_database_up", "1 when the database answered")
        try:
            families = list(self._families())
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Any]:
        with Session(self.engine) as session:
            runs = CounterMetricFamily(
                "newsletter_runs",
                "Digest runs by trigger and outcome",
                labels=["trigger", "outcome"],
            )
            for trigger, outcome, n in session.exec(
                select(RunRow.trigger, RunRow.outcome, func.count()).group_by(
                    col(RunRow.trigger), col(RunRow.outcome)
                )
            ):
                runs.add_metric([trigger, outcome], n)
            totals = session.exec(
                select(
                    func.coalesce(func.sum(RunRow.papers), 0),
                    func.coalesce(func.sum(RunRow.model_calls), 0),
                )
            ).one()
            deliveries = dict(
                session.exec(
                    select(Delivery.status, func.count()).group_by(col(Delivery.status))
                ).all()
            )
            issues = session.exec(
                select(func.count()).select_from(IssueRow).where(daily_issue())
            ).one()
            finished = session.exec(
                select(RunRow.started_at, RunRow.finished_at)
                .where(col(RunRow.finished_at).is_not(None))
                .order_by(col(RunRow.id).desc())
                .limit(1000)
            ).all()
        yield runs
        papers = CounterMetricFamily("newsletter_papers", "Papers selected by finished runs")
        papers.add_metric([], int(totals[0]))
        yield papers
        calls = CounterMetricFamily("newsletter_model_calls", "Model calls made by runs")
        calls.add_metric([], int(totals[1]))
        yield calls
        sent = CounterMetricFamily("newsletter_emails_sent", "E-mails handed to the provider")
        sent.add_metric([], int(deliveries.get("sent", 0)))
        yield sent
        failed = CounterMetricFamily("newsletter_emails_failed", "E-mails that failed for good")
        failed.add_metric([], int(deliveries.get("failed", 0)))
        yield failed
        queued = GaugeMetricFamily(
            "newsletter_emails_pending", "Deliveries not settled yet", labels=["status"]
        )
        for status in ("queued", "sending", "unknown"):
            queued.add_metric([status], int(deliveries.get(status, 0)))
        yield queued
        per_issue = GaugeMetricFamily(
            "newsletter_issue_deliveries_waiting",
            "Deliveries of an unfinished issue still queued or in flight (absent: finished)",
            labels=["date"],
        )
        for day, n in waiting_by_issue(self.engine):
            per_issue.add_metric([day.isoformat()], n)
        yield per_issue
        issue_count = GaugeMetricFamily("newsletter_issues", "Issues in the archive")
        issue_count.add_metric([], int(issues))
        yield issue_count
        durations = [(f - s).total_seconds() for s, f in finished if f is not None]
        summary = SummaryMetricFamily(
            "newsletter_run_duration_seconds", "Duration of the last 1000 finished runs"
        )
        summary.add_metric([], count_value=len(durations), sum_value=sum(durations))
        yield summary
        last = GaugeMetricFamily(
            "newsletter_last_run_duration_seconds", "Duration of the latest finished run"
        )
        last.add_metric([], durations[0] if durations else 0.0)
        yield last
        nxt = stored_next_run(self.engine)
        upcoming = GaugeMetricFamily(
            "newsletter_next_run_timestamp_seconds", "Next scheduled run (0: none)"
        )
        upcoming.add_metric([], nxt.timestamp() if nxt else 0.0)
        yield upcoming


def metrics_registry(engine: Engine) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(engine))
    return registry


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Public with ``web.metrics_public``; otherwise for the admin token only (404 when none is
    configured, like ``/admin/run``)."""
    settings: Settings = request.app.state.settings
    if not settings.web.metrics_public:
        if settings.admin_token is None or not settings.admin_token.get_secret_value():
            raise HTTPException(status_code=404)
        refused = refusal(request, settings, request.app.state.engine)
        if refused is not None:
            return refused
    registry: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = metrics_registry(request.app.state.engine)
        request.app.state.metrics_registry = registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@admin_router.api_route("/admin/run", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
def admin_run(request: Request, date: str | None = None) -> Response:
    """Without a configured token this answers exactly like a path that does not exist."""
    settings: Settings = request.app.state.settings
    if settings.admin_token is None or not settings.admin_token.get_secret_value():
        raise HTTPException(status_code=404)
    if request.method != "POST":
        raise HTTPException(status_code=405, headers={"Allow": "POST"})
    refused = refusal(request, settings, request.app.state.engine)
    if refused is not None:
        return refused
    day: dt.date | None = None
    if date is not None:
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            raise HTTPException(status_code=400) from None
    launcher = launcher_for(settings, request.app.state.engine)
    launch = launcher.launch(date=day, trigger="admin")
    when = launch.day.isoformat() if launch.day else None
    if not launch.started:
        return JSONResponse(
            {"status": launch.status, "date": when, "reason": launch.message}, status_code=409
        )
    return JSONResponse({"status": "started", "date": when}, status_code=202)
