"""The arXiv API's wire format: query URLs, and the Atom pages they return read into Papers.

Pure functions, no HTTP: ``ArxivClient`` fetches the pages (its rate limit, timeouts and retries
apply to every request). Why not the `arxiv` package: its ``Client`` owns its HTTP session (a
private ``_session`` of `requests`) with its own sleeps and retries, and its parser is private
(``arxiv._feed``); it offers no public way to hand it our pages. The API's Atom is well-formed
and small, so it is read here with lxml (as the package itself now does), with entity expansion
and network access off. See https://info.arxiv.org/help/api/user-manual.html.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from lxml import etree

from newsletter.arxiv.feed import ARXIV_ID_RE, NS, normalise_text, normalise_title
from newsletter.domain import Paper

log = logging.getLogger(__name__)

_NS = {**NS, "arxiv": "http://arxiv.org/schemas/atom", "os": "http://a9.com/-/spec/opensearch/1.1/"}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def query_url(
    api_url: str,
    *,
    search_query: str = "",
    id_list: Sequence[str] = (),
    start: int = 0,
    max_results: int,
    sort_by: str = "relevance",
    sort_order: str = "descending",
) -> str:
    """One page of a query (``sort_by``: relevance, lastUpdatedDate or submittedDate)."""
    args = {
        "search_query": search_query,
        "id_list": ",".join(id_list),
        "sortBy": sort_by,
        "sortOrder": sort_order,
        "start": str(start),
        "max_results": str(max_results),
    }
    return f"{api_url}?{urlencode(args)}"


@dataclass(frozen=True, slots=True)
class ApiPage:
    """One page: how many results the whole query has, and this page's papers."""

    total: int
    papers: list[Paper]
    entries: int  # entries on the page, including any that could not be read


def _text(node: Any, path: str) -> str | None:
    found = node.find(path, _NS)
    return found.text if found is not None and found.text is not None else None


def _when(text: str | None) -> dt.datetime:
    if text is None:
        raise ValueError("entry without <published>/<updated>")
    return dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")).astimezone(dt.UTC)


def paper_from_entry(entry: Any) -> Paper:
    """One ``<entry>`` as our Paper (announce type is the caller's to set); ValueError if the
    entry is not a paper (no usable id or dates)."""
    entry_id = _text(entry, "atom:id") or ""
    short = entry_id.split("arxiv.org/abs/")[-1]
    match = ARXIV_ID_RE.fullmatch(short)
    if match is None:
        raise ValueError(f"unexpected arXiv id {short!r} in API result")
    categories = tuple(
        term for c in entry.iterfind("atom:category", _NS) if (term := c.get("term")) is not None
    )
    primary = entry.find("arxiv:primary_category", _NS)
    primary_term = primary.get("term") if primary is not None else None
    return Paper(
        arxiv_id=match.group("id"),
        version=int(match.group("v") or 1),
        title=normalise_title(_text(entry, "atom:title") or ""),
        abstract=normalise_text(_text(entry, "atom:summary") or ""),
        authors=tuple(_text(a, "atom:name") or "" for a in entry.iterfind("atom:author", _NS)),
        primary_category=primary_term or (categories[0] if categories else ""),
        categories=categories,
        published=_when(_text(entry, "atom:published")),
        updated=_when(_text(entry, "atom:updated")),
        comment=_text(entry, "arxiv:comment") or None,
        journal_ref=_text(entry, "arxiv:journal_ref") or None,
        doi=_text(entry, "arxiv:doi") or None,
    )


def parse_api_page(body: bytes) -> ApiPage:
    """The page's papers; an entry that is not a paper is logged and skipped. The caller has
    checked that the page is a whole Atom feed (``check_api_page``)."""
    root = etree.fromstring(body, _PARSER)
    total_text = _text(root, "os:totalResults")
    entries = root.findall("atom:entry", _NS)
    papers: list[Paper] = []
    for entry in entries:
        try:
            papers.append(paper_from_entry(entry))
        except ValueError as exc:
            log.warning("arXiv API: %s; entry skipped", exc)
    total = int(total_text.strip()) if total_text and total_text.strip().isdigit() else 0
    return ApiPage(total=total, papers=papers, entries=len(entries))
