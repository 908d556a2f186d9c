"""The arXiv client against real loopback servers: retries, backoff, rate limit, PDFs."""

from __future__ import annotations

import datetime as dt
import io
import socket
from collections.abc import Callable, Iterator

import pypdf
import pytest

from newsletter.arxiv.client import ArxivClient, ArxivError
from newsletter.arxiv.replay import answer_api, render_feed, render_pdf
from tests.fixtures_arxiv import (
    EMPTY_PAGE,
    ERROR_PAGE,
    RATE_EXCEEDED,
    SINGLE_PAGE,
    FakeClock,
    arxiv_settings,
    recorded_entries,
)
from tests.httpserver import Request, Response, TestServer

ENTRIES = recorded_entries()
DAY = dt.date(2026, 4, 22)
ATOM = "application/atom+xml; charset=utf-8"


def _api(req: Request) -> Response:
    status, body = answer_api(req.query, ENTRIES)
    return Response(status, body, content_type=ATOM)


def _feed(_req: Request) -> Response:
    return Response(200, render_feed(ENTRIES, ["cs.LG"], DAY), content_type="application/rss+xml")


def _after(
    failures: list[Response], then: Callable[[Request], Response]
) -> Callable[..., Response]:
    """A route that answers each of ``failures`` once, then ``then`` forever."""
    pending = list(failures)

    def handler(req: Request) -> Response:
        return pending.pop(0) if pending else then(req)

    return handler


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer() as srv:
        srv.routes[("GET", "/api/query")] = _api
        srv.routes[("GET", "/rss/cs.LG")] = _feed
        yield srv


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _client(server: TestServer, clock: FakeClock, **overrides: object) -> ArxivClient:
    return ArxivClient(arxiv_settings(server.url, **overrides), clock=clock, sleep=clock.sleep)


def test_429_rate_exceeded_then_success(server: TestServer, clock: FakeClock) -> None:
    limited = Response(429, RATE_EXCEEDED.read_bytes())
    server.routes[("GET", "/api/query")] = _after([limited], _api)
    with _client(server, clock) as client:
        found = client.fetch_metadata(["2604.19485v1"])
    assert list(found) == ["2604.19485"]
    assert len(server.requests) == 2
    assert clock.sleeps == [5.0]  # backoff (5 s) is longer than the 3 s rate limit


def test_retry_after_header_honoured(server: TestServer, clock: FakeClock) -> None:
    limited = Response(429, RATE_EXCEEDED.read_bytes(), headers={"Retry-After": "17"})
    server.routes[("GET", "/api/query")] = _after([limited], _api)
    with _client(server, clock) as client:
        assert "2604.19485" in client.fetch_metadata(["2604.19485"])
    assert clock.sleeps == [17.0]


def test_retry_after_longer_than_cap_gives_up_at_once(server: TestServer, clock: FakeClock) -> None:
    limited = Response(429, b"Rate exceeded.", headers={"Retry-After": "3600"})
    server.routes[("GET", "/rss/cs.LG")] = _after([limited], _feed)
    with _client(server, clock) as client, pytest.raises(ArxivError, match="wait 3600 s"):
        client.fetch_feed(["cs.LG"])
    assert len(server.requests) == 1 and clock.sleeps == []


def test_503_then_success_on_feed(server: TestServer, clock: FakeClock) -> None:
    server.routes[("GET", "/rss/cs.LG")] = _after([Response(503, b"Service Unavailable")], _feed)
    with _client(server, clock) as client:
        xml = client.fetch_feed(["cs.LG"])
    assert "<rss" in xml and "2604.19485" in xml
    assert [r.path for r in server.requests] == ["/rss/cs.LG", "/rss/cs.LG"]
    assert clock.sleeps == [5.0]


def test_empty_result_page_retried(server: TestServer, clock: FakeClock) -> None:
    empty = Response(200, EMPTY_PAGE.read_bytes(), content_type=ATOM)
    server.routes[("GET", "/api/query")] = _after([empty], _api)
    with _client(server, clock) as client:
        found = client.fetch_metadata(["2604.19485", "2604.19453"])
    assert set(found) == {"2604.19485", "2604.19453"}
    assert len(server.requests) == 2 and clock.sleeps == [5.0]


def test_empty_page_for_unknown_ids_accepted_after_one_retry(
    server: TestServer, clock: FakeClock
) -> None:
    with _client(server, clock) as client:
        assert client.fetch_metadata(["0000.0000"]) == {}
    assert len(server.requests) == 2 and clock.sleeps == [5.0]


def test_malformed_api_page_retried(server: TestServer, clock: FakeClock) -> None:
    truncated = Response(200, SINGLE_PAGE.read_bytes()[:1500], content_type=ATOM)
    server.routes[("GET", "/api/query")] = _after(
        [truncated], lambda _r: Response(200, SINGLE_PAGE.read_bytes(), content_type=ATOM)
    )
    with _client(server, clock) as client:
        paper = client.fetch_metadata(["1707.08567"])["1707.08567"]
    assert len(paper.authors) == 34 and "Dirk Wübben" in paper.authors
    assert paper.primary_category and paper.published.year == 2017
    assert len(server.requests) == 2


def test_arxiv_staying_down_raises_clear_error(server: TestServer, clock: FakeClock) -> None:
    server.routes[("GET", "/rss/cs.LG")] = lambda _r: Response(503, b"Service Unavailable")
    with _client(server, clock) as client, pytest.raises(ArxivError) as caught:
        client.fetch_feed(["cs.LG"])
    message = str(caught.value)
    assert "announcement feed failed" in message and "after 3 tries" in message
    assert "HTTP 503" in message and f"{server.url}/rss/cs.LG" in message
    assert caught.value.tries == 3 and caught.value.status == 503
    assert clock.sleeps == [5.0, 10.0]


def test_api_error_page_not_retried(server: TestServer, clock: FakeClock) -> None:
    server.routes[("GET", "/api/query")] = lambda _r: Response(
        400, ERROR_PAGE.read_bytes(), content_type=ATOM
    )
    with _client(server, clock) as client, pytest.raises(ArxivError, match="incorrect id format"):
        client.fetch_metadata(["2604.19485"])
    assert len(server.requests) == 1


def test_rate_limit_between_all_requests(server: TestServer, clock: FakeClock) -> None:
    with _client(server, clock) as client:
        client.fetch_feed(["cs.LG"])
        client.fetch_metadata(["2604.19485"])
        clock.now += 1.0  # the caller spent a second on something else
        client.fetch_feed(["cs.LG"])
        clock.now += 10.0
        client.fetch_feed(["cs.LG"])
    assert len(server.requests) == 4
    assert clock.sleeps == [3.0, 2.0]  # none before the first, none after a long pause


def test_metadata_fetched_in_id_list_batches(server: TestServer, clock: FakeClock) -> None:
    ids = [e.arxiv_id for e in ENTRIES[:7]]
    with _client(server, clock, batch_size=3, delay_seconds=0) as client:
        found = client.fetch_metadata([f"{i}v1" for i in ids])
    assert list(found) == ids
    batches = [r.query["id_list"][0].split(",") for r in server.requests]
    assert batches == [ids[0:3], ids[3:6], ids[6:7]]
    paper = found[ids[0]]
    assert paper.version == 1 and paper.authors and paper.abstract and paper.primary_category


def test_search_window_queries_submitted_date_and_pages(
    server: TestServer, clock: FakeClock
) -> None:
    start = dt.datetime(2026, 4, 20, 18, 0, tzinfo=dt.UTC)
    end = dt.datetime(2026, 4, 21, 18, 0, tzinfo=dt.UTC)
    with _client(server, clock, batch_size=20, delay_seconds=0) as client:
        papers = client.search_window(["cs.LG", "cs.AI"], start, end)
    assert len(papers) == 50
    assert [r.query["start"][0] for r in server.requests] == ["0", "20", "40"]
    query = server.requests[0].query["search_query"][0]
    assert query == "(cat:cs.LG OR cat:cs.AI) AND submittedDate:[202604201800 TO 202604211759]"


def test_fetch_pdf(server: TestServer, clock: FakeClock) -> None:
    entry = ENTRIES[0]
    server.routes[("GET", f"/pdf/{entry.arxiv_id}v1")] = lambda _r: Response(
        200, render_pdf(entry), content_type="application/pdf"
    )
    with _client(server, clock) as client:
        paper = client.fetch_metadata([entry.arxiv_id])[entry.arxiv_id]
        pdf = client.fetch_pdf(paper)
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert pdf.startswith(b"%PDF-") and entry.title[:40] in " ".join(text.split())
    assert clock.sleeps == [3.0]  # the PDF waits its turn like every other request


def test_fetch_pdf_not_a_pdf_retried_then_error(server: TestServer, clock: FakeClock) -> None:
    entry = ENTRIES[0]
    server.routes[("GET", f"/pdf/{entry.arxiv_id}v1")] = lambda _r: Response(
        200, b"<html>PDF being generated</html>", content_type="text/html"
    )
    with _client(server, clock) as client:
        paper = client.fetch_metadata([entry.arxiv_id])[entry.arxiv_id]
        with pytest.raises(ArxivError, match="not a PDF"):
            client.fetch_pdf(paper)
    assert len(server.requests) == 4


def test_fetch_pdf_size_cap(server: TestServer, clock: FakeClock) -> None:
    entry = ENTRIES[0]
    server.routes[("GET", f"/pdf/{entry.arxiv_id}v1")] = lambda _r: Response(
        200, b"%PDF-1.4\n" + b"0" * 5000, content_type="application/pdf"
    )
    with _client(server, clock, max_pdf_bytes=2048) as client:
        paper = client.fetch_metadata([entry.arxiv_id])[entry.arxiv_id]
        with pytest.raises(ArxivError, match="2,048-byte limit"):
            client.fetch_pdf(paper)
    assert len(server.requests) == 2


def test_user_agent_sent(server: TestServer, clock: FakeClock) -> None:
    with _client(server, clock) as client:
        client.fetch_feed(["cs.LG"])
    assert server.requests[0].headers["user-agent"].startswith("arxiv-newsletter/")


def test_stop_interrupts_the_backoff_at_once(server: TestServer) -> None:
    """SIGTERM while arXiv is down: the stop event ends a 60-second backoff wait at once."""
    import threading
    import time

    from newsletter.arxiv.client import ArxivStopped

    stop = threading.Event()

    def down(_req: Request) -> Response:
        threading.Timer(0.2, stop.set).start()  # the stop arrives during the backoff
        return Response(503, b"unavailable")

    server.routes[("GET", "/rss/cs.LG")] = down
    settings = arxiv_settings(server.url, backoff_seconds=60, max_backoff_seconds=60)
    started = time.monotonic()
    with ArxivClient(settings, stop=stop) as client, pytest.raises(ArxivStopped):
        client.fetch_feed(["cs.LG"])
    assert time.monotonic() - started < 10  # not the 60 s backoff
    assert len(server.requests) == 1


def _closed_port() -> int:
    """A loopback port nobody listens on: connecting is refused, as when DNS or the network
    fails (httpx raises the same ConnectError for all three)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_connection_fails_fast_after_two_tries_seconds_apart(clock: FakeClock) -> None:
    port = _closed_port()
    settings = arxiv_settings(f"http://127.0.0.1:{port}", delay_seconds=0, max_retries=4)
    client = ArxivClient(settings, clock=clock, sleep=clock.sleep)
    with client, pytest.raises(ArxivError) as err:
        client.fetch_feed(["cs.LG"])
    assert f"cannot connect to 127.0.0.1:{port} after 2 tries" in str(err.value)
    assert "ConnectError" in str(err.value) and err.value.tries == 2
    assert clock.sleeps == [1.0]  # not the 5 s, 10 s, 20 s... kept for a busy arXiv


def test_a_busy_arxiv_still_gets_the_patient_backoff(server: TestServer, clock: FakeClock) -> None:
    busy = [Response(503, b"busy"), Response(429, RATE_EXCEEDED.read_bytes())]
    server.routes[("GET", "/api/query")] = _after(busy, _api)
    with _client(server, clock, max_retries=4) as client:
        assert "2604.19485" in client.fetch_metadata(["2604.19485"])
    assert clock.sleeps == [5.0, 10.0]
