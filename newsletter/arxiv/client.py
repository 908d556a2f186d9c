"""The one client that talks to arXiv: feed, API and PDFs, all through one ``httpx.Client``.

It owns arXiv's manners in one place: at most one request per ``delay_seconds`` across all three
services (measured with the injected clock, waited out with the injected sleep), a timeout on
every request, retries with exponential backoff on 429, 5xx, read timeouts, and empty or
malformed pages (a ``Retry-After`` header is honoured), and an ArxivError naming the URL and the
number of tries when arXiv stays unavailable. A failure to connect at all (DNS, refused, connect
timeout) is not arXiv being busy: it is tried ``CONNECT_TRIES`` times, seconds apart, then
reported. API queries and their Atom pages are ``newsletter.arxiv.api``'s (no `arxiv` package:
it offers no public way to route its requests through this client).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from urllib.parse import parse_qs, urlsplit

import httpx
from lxml import etree

from newsletter import __version__
from newsletter.arxiv.api import parse_api_page, query_url
from newsletter.arxiv.feed import ARXIV_ID_RE, NS
from newsletter.config import ArxivSettings
from newsletter.domain import Paper
from newsletter.retry_after import retry_after_seconds

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"arxiv-newsletter/{__version__} (self-hosted daily digest)"
_MAX_PAGE_BYTES = 64_000_000
_OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
_ERROR_ID_PREFIX = "https://arxiv.org/api/errors"
# No connection at all (a DNS failure, a refused or timed-out connect) is retried briefly: the
# network or the configured URL is wrong, and waiting minutes for arXiv will not fix it.
CONNECT_TRIES = 2
CONNECT_RETRY_SECONDS = 1.0


class ArxivError(Exception):
    """arXiv could not give us what we asked for; says what, where, and after how many tries."""

    def __init__(self, message: str, *, url: str, tries: int, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.tries = tries
        self.status = status


class ArxivStopped(ArxivError):
    """A stop (SIGTERM) arrived while waiting to ask arXiv again: the run ends at once."""


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What to make of one reply: fine (problem None), retry, or give up at once."""

    problem: str | None = None
    permanent: bool = False
    # e.g. an id_list page still empty after this many tries: use it (the API may simply not know
    # the ids yet; the feed's metadata stands in), don't fail and don't wait out every retry
    accept_after_tries: int | None = None


_OK = _Verdict()


def _api_error_message(body: bytes) -> str | None:
    """The message of an arXiv API error page (an Atom feed with an entry under /api/errors)."""
    if b"/api/errors" not in body[:4096]:
        return None
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None
    for entry in root.iterfind("atom:entry", NS):
        if (entry.findtext("atom:id", "", NS) or "").startswith(_ERROR_ID_PREFIX):
            return (entry.findtext("atom:summary", "", NS) or "unknown error").strip()
    return None


def _status_verdict(status: int, body: bytes) -> _Verdict:
    if status == 200:
        return _OK
    api_error = _api_error_message(body)
    snippet = api_error or " ".join(body[:200].decode("utf-8", "replace").split())
    detail = f"HTTP {status}" + (f" ({snippet})" if snippet else "")
    if status == 429 or status >= 500 or status == 408:
        return _Verdict(detail)
    return _Verdict(detail, permanent=True)


def check_feed_page(body: bytes) -> _Verdict:
    """The announcement feed must at least look like RSS or Atom (an empty day has no items)."""
    head = body[:4096].lstrip()
    if not head:
        return _Verdict("empty response")
    if b"<rss" not in head and b"<feed" not in head:
        return _Verdict(f"not a feed: {head[:60]!r}")
    return _OK


def check_api_page(url: str, body: bytes) -> _Verdict:
    """An API page must be a whole Atom feed; an empty page that should hold results is retried."""
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        text = " ".join(body[:80].decode("utf-8", "replace").split())
        return _Verdict(f"malformed page ({exc}; starts {text!r})")
    if root.tag != f"{{{NS['atom']}}}feed":
        return _Verdict(f"malformed page (root element {root.tag!r})")
    api_error = _api_error_message(body)
    if api_error is not None:
        return _Verdict(f"arXiv API error: {api_error}", permanent=True)
    entries = root.findall("atom:entry", NS)
    if entries:
        return _OK
    query = parse_qs(urlsplit(url).query)
    if any(query.get("id_list", [""])[0].split(",")):
        return _Verdict("empty page for an id_list query", accept_after_tries=2)
    total = int(root.findtext("opensearch:totalResults", "0", {"opensearch": _OPENSEARCH}) or 0)
    start = int(query.get("start", ["0"])[0] or 0)
    if total > start:
        return _Verdict(f"empty page although {total} results were announced")
    return _OK


def check_pdf(body: bytes) -> _Verdict:
    if not body.startswith(b"%PDF-"):
        return _Verdict(f"not a PDF (starts {body[:20]!r})")
    return _OK


def _batches(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class ArxivClient:
    """Feed, API and PDF requests to arXiv, politely; use as a context manager or call close()."""

    def __init__(
        self,
        settings: ArxivSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = DEFAULT_USER_AGENT,
        stop: threading.Event | None = None,
    ) -> None:
        """``stop`` (a service's shutdown event) cuts short every wait, backoff included."""
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._stop = stop
        self._last_request: float | None = None
        self._http = httpx.Client(
            timeout=settings.timeout_seconds,
            headers={"User-Agent": user_agent},
            follow_redirects=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ArxivClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the one place requests are made -------------------------------------------------

    def _wait_turn(self, at_least: float) -> None:
        wait = at_least
        if self._last_request is not None:
            wait = max(wait, self.settings.delay_seconds - (self._clock() - self._last_request))
        if wait > 0 and self._stop is not None and self._sleep is time.sleep:
            self._stop.wait(wait)
        elif wait > 0:
            self._sleep(wait)
        if self._stop is not None and self._stop.is_set():
            raise ArxivStopped("stopped while waiting to ask arXiv", url="", tries=0)

    def _fetch_once(self, url: str, limit: int) -> tuple[int, httpx.Headers, bytes]:
        with self._http.stream("GET", url) as resp:
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise _TooLarge(int(declared))
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise _TooLarge(size)
                chunks.append(chunk)
            return resp.status_code, resp.headers, b"".join(chunks)

    def _get(
        self,
        url: str,
        *,
        what: str,
        check: Callable[[bytes], _Verdict],
        limit: int = _MAX_PAGE_BYTES,
    ) -> bytes:
        """GET url politely; retry what is worth retrying; return the body or raise ArxivError."""
        attempts = self.settings.max_retries + 1
        backoff = 0.0
        unreachable = 0
        for tries in range(1, attempts + 1):
            self._wait_turn(backoff)
            status: int | None = None
            retry_after: float | None = None
            try:
                status, headers, body = self._fetch_once(url, limit)
            except _TooLarge as exc:
                raise ArxivError(
                    f"{what} failed: response larger than the {limit:,}-byte limit "
                    f"({exc.size:,} bytes) from {url}",
                    url=url,
                    tries=tries,
                ) from None
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                unreachable += 1
                verdict = _Verdict(f"{type(exc).__name__}: {exc}")
                if unreachable >= CONNECT_TRIES or tries == attempts:
                    raise ArxivError(
                        f"{what} failed: cannot connect to {urlsplit(url).netloc} after "
                        f"{unreachable} tries ({verdict.problem}); check the network and the "
                        f"arxiv.* URLs ({url})",
                        url=url,
                        tries=tries,
                    ) from None
            except httpx.HTTPError as exc:
                verdict = _Verdict(f"{type(exc).__name__}: {exc}")
            else:
                verdict = _status_verdict(status, body)
                if verdict.problem is None:
                    verdict = check(body)
                    if verdict.problem is None:
                        return body
                now = dt.datetime.now(dt.UTC)
                retry_after = retry_after_seconds(headers.get("Retry-After"), now)
            finally:
                self._last_request = self._clock()
            problem = verdict.problem or "unknown problem"
            if verdict.permanent:
                raise ArxivError(
                    f"{what} failed: {problem} from {url} (not retried)",
                    url=url,
                    tries=tries,
                    status=status,
                )
            accept_at = verdict.accept_after_tries
            if accept_at is not None and status == 200 and tries >= min(accept_at, attempts):
                log.warning("%s: %s after %d tries; going on without it", what, problem, tries)
                return body
            if tries == attempts:
                raise ArxivError(
                    f"{what} failed: arXiv still unavailable after {tries} tries "
                    f"(last: {problem}) at {url}",
                    url=url,
                    tries=tries,
                    status=status,
                )
            cap = self.settings.max_backoff_seconds
            backoff = min(self.settings.backoff_seconds * 2 ** (tries - 1), cap)
            if status is None and unreachable:
                backoff = min(backoff, CONNECT_RETRY_SECONDS)
            if retry_after is not None:
                if retry_after > cap:
                    raise ArxivError(
                        f"{what} failed: arXiv asks to wait {retry_after:.0f} s (Retry-After), "
                        f"longer than arxiv.max_backoff_seconds={cap:g}; try again later ({url})",
                        url=url,
                        tries=tries,
                        status=status,
                    )
                backoff = max(backoff, retry_after)
            log.warning(
                "%s: %s (try %d of %d); retrying in %.1f s", what, problem, tries, attempts, backoff
            )
        raise AssertionError("unreachable")  # pragma: no cover

    # -- what the pipeline asks for ------------------------------------------------------

    def feed_url(self, categories: Sequence[str]) -> str:
        return f"{self.settings.rss_url}{'+'.join(categories)}"

    def fetch_feed(self, categories: Sequence[str]) -> str:
        """Today's announcement feed for all categories in one request (``rss/cs.AI+cs.LG``)."""
        if not categories:
            raise ValueError("fetch_feed needs at least one category")
        body = self._get(self.feed_url(categories), what="announcement feed", check=check_feed_page)
        return body.decode("utf-8", "replace")

    def _query(
        self, *, search_query: str = "", id_list: Sequence[str] = (), **sort: str
    ) -> list[Paper]:
        """Every result of an API query, page by page (``batch_size`` a page)."""
        size = self.settings.batch_size
        papers: list[Paper] = []
        start = 0
        while True:
            url = query_url(
                self.settings.api_url,
                search_query=search_query,
                id_list=id_list,
                start=start,
                max_results=size,
                **sort,
            )
            body = self._get(url, what="arXiv API query", check=partial(check_api_page, url))
            page = parse_api_page(body)
            papers.extend(page.papers)
            start += page.entries
            if not page.entries or start >= page.total or id_list:
                return papers

    def fetch_metadata(self, ids: Sequence[str]) -> dict[str, Paper]:
        """Full metadata by id (versions ignored), in id_list batches; missing ids are absent."""
        wanted: list[str] = []
        for raw in ids:
            match = ARXIV_ID_RE.fullmatch(raw.strip())
            if match is None:
                raise ValueError(f"{raw!r} is not an arXiv identifier")
            wanted.append(match.group("id"))
        wanted = list(dict.fromkeys(wanted))
        found: dict[str, Paper] = {}
        for batch in _batches(wanted, self.settings.batch_size):
            for paper in self._query(id_list=batch):
                if paper.arxiv_id in batch:
                    found[paper.arxiv_id] = paper
        return found

    def search_window(
        self, categories: Sequence[str], start: dt.datetime, end: dt.datetime
    ) -> list[Paper]:
        """Papers in these categories first submitted in [start, end) (aware datetimes)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("search_window needs time-zone-aware datetimes")
        stamp = "%Y%m%d%H%M"
        first = start.astimezone(dt.UTC).strftime(stamp)
        last = (end.astimezone(dt.UTC) - dt.timedelta(minutes=1)).strftime(stamp)
        cats = " OR ".join(f"cat:{c}" for c in categories)
        found = self._query(
            search_query=f"({cats}) AND submittedDate:[{first} TO {last}]",
            sort_by="submittedDate",
            sort_order="ascending",
        )
        papers = {p.arxiv_id: p for p in found if start <= p.published < end}
        return list(papers.values())

    def fetch_pdf(self, paper: Paper) -> bytes:
        """The paper's PDF (its announced version), within the size cap."""
        url = f"{self.settings.pdf_url}{paper.versioned_id}"
        return self._get(
            url,
            what=f"PDF of {paper.versioned_id}",
            check=check_pdf,
            limit=self.settings.max_pdf_bytes,
        )


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size
