"""A loopback arXiv made of recorded data: announcement feed, API and PDFs over real HTTP.

Used by ``newsletter demo`` and the tests. The API answers are the recorded entries, served
verbatim (id_list lookups, category and submittedDate searches, paging). arXiv's feed of that
day was not recorded, so the feed is derived from the same entries the way rss.arxiv.org writes
it (RSS 2.0; ``new`` when the primary category was asked for, else ``cross``; new first, by id),
and each PDF is a one-page PDF of the recorded title, authors and abstract.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from lxml import etree

from newsletter.arxiv.calendar import ARXIV_TZ, announcement_date
from newsletter.arxiv.feed import ARXIV_ID_RE, NS

DEMO_RECORDING = "yanhua_search-cat-cs.LG_max50_50entries_2026-04-22.xml"
_ATOM_HEAD = (
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
    'xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">\n'
)
_ENTRY_RE = re.compile(r"<entry>.*?</entry>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class RecordedEntry:
    """One recorded API entry: the fields the replay needs, and its XML as recorded."""

    arxiv_id: str
    version: int
    title: str
    summary: str
    authors: tuple[str, ...]
    primary_category: str
    categories: tuple[str, ...]
    published: dt.datetime
    xml: str


def demo_recording_path() -> Path:
    return Path(str(resources.files("newsletter") / "demo_data" / "arxiv" / DEMO_RECORDING))


def load_recording(path: Path) -> list[RecordedEntry]:
    """Entries of a recorded API answer (current or legacy format), in recorded order."""
    text = path.read_text(encoding="utf-8")
    root = etree.fromstring(text.encode("utf-8"))
    elements = root.findall("atom:entry", NS)
    raw = _ENTRY_RE.findall(text)
    if len(raw) != len(elements):
        raise ValueError(f"{path}: cannot line up the recorded entries")
    entries = []
    for elem, xml in zip(elements, raw, strict=True):
        ident = ARXIV_ID_RE.search(elem.findtext("atom:id", "", NS).rsplit("/abs/", 1)[-1])
        published = elem.findtext("atom:published", "", NS)
        if ident is None or not published:
            continue
        primary = elem.find("arxiv:primary_category", NS)
        cats = tuple(c.get("term", "") for c in elem.findall("atom:category", NS))
        entries.append(
            RecordedEntry(
                arxiv_id=ident.group("id"),
                version=int(ident.group("v") or 1),
                title=" ".join(elem.findtext("atom:title", "", NS).split()),
                summary=elem.findtext("atom:summary", "", NS).strip(),
                authors=tuple(
                    a.findtext("atom:name", "", NS) for a in elem.findall("atom:author", NS)
                ),
                primary_category=primary.get("term", "") if primary is not None else cats[0],
                categories=cats,
                published=dt.datetime.fromisoformat(published.replace("Z", "+00:00")),
                xml=xml,
            )
        )
    return entries


def recording_date(entries: Sequence[RecordedEntry]) -> dt.date:
    """The announcement date most of the recorded papers belong to."""
    counts = Counter(announcement_date(e.published) for e in entries)
    return counts.most_common(1)[0][0]


# -- the announcement feed --------------------------------------------------------------------


def render_feed(entries: Sequence[RecordedEntry], categories: Sequence[str], day: dt.date) -> bytes:
    """rss.arxiv.org's RSS 2.0 feed of ``day`` for ``categories`` (joined by '+')."""
    wanted = set(categories)
    name = "+".join(categories)
    stamp = dt.datetime.combine(day, dt.time(0), tzinfo=ARXIV_TZ)
    built = format_datetime(stamp.astimezone(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=4))
    chosen = [e for e in entries if wanted & set(e.categories)]
    kinds = {e.arxiv_id: "new" if e.primary_category in wanted else "cross" for e in chosen}
    chosen.sort(key=lambda e: (kinds[e.arxiv_id] != "new", e.arxiv_id))
    items = []
    for e in chosen:
        cats = (e.primary_category, *[c for c in e.categories if c != e.primary_category])
        items.append(
            "    <item>\n"
            f"      <title>{escape(e.title)}</title>\n"
            f"      <link>https://arxiv.org/abs/{e.arxiv_id}</link>\n"
            f"      <description>arXiv:{e.arxiv_id}v{e.version} Announce Type: "
            f"{kinds[e.arxiv_id]} \nAbstract: {escape(e.summary)}</description>\n"
            f'      <guid isPermaLink="false">oai:arXiv.org:{e.arxiv_id}v{e.version}</guid>\n'
            + "".join(f"      <category>{escape(c)}</category>\n" for c in cats)
            + f"      <pubDate>{format_datetime(stamp)}</pubDate>\n"
            f"      <arxiv:announce_type>{kinds[e.arxiv_id]}</arxiv:announce_type>\n"
            f"      <dc:creator>{escape(', '.join(e.authors))}</dc:creator>\n"
            "    </item>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss xmlns:arxiv="http://arxiv.org/schemas/atom" '
        'xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">\n'
        "  <channel>\n"
        f"    <title>{escape(name)} updates on arXiv.org</title>\n"
        f"    <link>http://rss.arxiv.org/rss/{escape(name)}</link>\n"
        f"    <description>{escape(name)} updates on the arXiv.org e-print archive.</description>\n"
        "    <language>en-us</language>\n"
        f"    <lastBuildDate>{built}</lastBuildDate>\n"
        "    <managingEditor>rss-help@arxiv.org</managingEditor>\n"
        f"    <pubDate>{format_datetime(stamp)}</pubDate>\n"
        "    <skipDays>\n      <day>Saturday</day>\n      <day>Sunday</day>\n    </skipDays>\n"
        + "".join(items)
        + "  </channel>\n</rss>\n"
    ).encode("utf-8")


# -- the API ----------------------------------------------------------------------------------


def _atom_page(title: str, entries: Sequence[str], total: int, start: int, per_page: int) -> str:
    updated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        _ATOM_HEAD + "  <id>https://arxiv.org/api/replay</id>\n"
        f"  <title>{escape(title)}</title>\n  <updated>{updated}</updated>\n"
        f"  <opensearch:itemsPerPage>{per_page}</opensearch:itemsPerPage>\n"
        f"  <opensearch:totalResults>{total}</opensearch:totalResults>\n"
        f"  <opensearch:startIndex>{start}</opensearch:startIndex>\n"
        + "".join(f"  {xml}\n" for xml in entries)
        + "</feed>\n"
    )


def _error_page(message: str) -> bytes:
    """arXiv's shape for a bad query (served with HTTP 400, as recorded)."""
    entry = (
        "<entry>\n    <id>https://arxiv.org/api/errors#"
        + escape(message.replace(" ", "_"))
        + "</id>\n    <title>Error</title>\n"
        f"    <summary>{escape(message)}</summary>\n"
        "    <author>\n      <name>arXiv api core</name>\n    </author>\n  </entry>"
    )
    return _atom_page("arXiv Search Results", [entry], 1, 0, 1).encode("utf-8")


def _parse_stamp(value: str, *, end: bool) -> dt.datetime:
    digits = value.ljust(12, "0")[:14]
    fmt = "%Y%m%d%H%M%S" if len(digits) == 14 else "%Y%m%d%H%M"
    stamp = dt.datetime.strptime(digits, fmt).replace(tzinfo=dt.UTC)
    if end and len(digits) == 12:
        stamp += dt.timedelta(seconds=59)
    return stamp


def answer_api(
    query: Mapping[str, list[str]], entries: Sequence[RecordedEntry]
) -> tuple[int, bytes]:
    """The API's answer to a query string, from the recorded entries: (status, Atom body)."""

    def arg(name: str, default: str = "") -> str:
        return (query.get(name) or [default])[0]

    ids: list[str] = []
    for raw in (i.strip() for i in arg("id_list").split(",")):
        match = ARXIV_ID_RE.fullmatch(raw)
        if raw and match is None:
            return 400, _error_page(f"incorrect id format for {raw}")
        if match is not None:
            ids.append(match.group("id"))
    chosen = list(entries)
    if ids:
        by_id = {e.arxiv_id: e for e in entries}
        chosen = [by_id[i] for i in ids if i in by_id]
    search = arg("search_query")
    cats = set(re.findall(r"cat:([\w.\-]+)", search))
    if cats:
        chosen = [e for e in chosen if cats & set(e.categories)]
    window = re.search(r"submittedDate:\[(\d{8,14})\s+TO\s+(\d{8,14})\]", search)
    if window:
        low = _parse_stamp(window.group(1), end=False)
        high = _parse_stamp(window.group(2), end=True)
        chosen = [e for e in chosen if low <= e.published <= high]
    if arg("sortBy") == "submittedDate":
        chosen.sort(key=lambda e: e.published, reverse=arg("sortOrder") != "ascending")
    start = int(arg("start", "0") or 0)
    per_page = int(arg("max_results", "10") or 10)
    page = chosen[start : start + per_page]
    title = f"arXiv Query: search_query={search}&id_list={arg('id_list')}"
    body = _atom_page(title, [e.xml for e in page], len(chosen), start, per_page)
    return 200, body.encode("utf-8")


# -- PDFs -------------------------------------------------------------------------------------


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return lines


def render_pdf(entry: RecordedEntry) -> bytes:
    """A small valid PDF whose text is the recorded title, authors and abstract."""
    text = f"{entry.title}\n\n{', '.join(entry.authors)}\n\nAbstract\n{entry.summary}"
    lines = _wrap(text.encode("latin-1", "replace").decode("latin-1"), 95)[:60]
    ops = ["BT", "/F1 10 Tf", "12 TL", "50 800 Td"]
    for line in lines:
        safe = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({safe}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


# -- the server -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    method: str
    path: str
    query: dict[str, list[str]]


@dataclass
class ReplayServer:
    """Where the replayed arXiv listens, what it holds, and what it was asked."""

    url: str
    date: dt.date  # announcement date of the recorded papers
    categories: tuple[str, ...]  # categories the recording covers in full
    entries: list[RecordedEntry]
    requests: list[ReplayRequest] = field(default_factory=list)
    feed_date: dt.date | None = None  # the date the feed claims (default: ``date``)

    @property
    def rss_url(self) -> str:
        return f"{self.url}/rss/"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/query"

    @property
    def pdf_url(self) -> str:
        return f"{self.url}/pdf/"

    def respond(self, path: str, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path``."""
        if path.startswith("/rss/") and len(path) > len("/rss/"):
            cats = [c for c in path[len("/rss/") :].split("+") if c]
            return (
                200,
                "application/rss+xml; charset=utf-8",
                render_feed(self.entries, cats, self.feed_date or self.date),
            )
        if path == "/api/query":
            status, body = answer_api(query, self.entries)
            return status, "application/atom+xml; charset=utf-8", body
        if path.startswith("/pdf/"):
            ref = ARXIV_ID_RE.fullmatch(path[len("/pdf/") :])
            match = [e for e in self.entries if ref and e.arxiv_id == ref.group("id")]
            if match:
                return 200, "application/pdf", render_pdf(match[0])
        return 404, "text/plain; charset=utf-8", b"not found"


def _handler(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query, keep_blank_values=True)
            with lock:
                server.requests.append(ReplayRequest("GET", parts.path, query))
            status, content_type, body = server.respond(parts.path, query)
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


@contextmanager
def demo_server(recording: Path | None = None) -> Iterator[ReplayServer]:
    """Serve a recorded API answer as arXiv on 127.0.0.1 (a free port) until the block ends."""
    entries = load_recording(recording or demo_recording_path())
    covered = Counter(e.primary_category for e in entries).most_common(1)[0][0]
    replay = ReplayServer(
        url="", date=recording_date(entries), categories=(covered,), entries=entries
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(replay))
    httpd.daemon_threads = True
    replay.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.05,), name="arxiv-replay", daemon=True
    )
    thread.start()
    try:
        yield replay
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
