"""The shared body stays exact per language and for a weekly view (issue 14): one reader's
e-mail from the shared body plus substitutions equals the template rendered for them alone."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import lxml.html
from fixtures_email import make_view, recorded_papers, summary

from newsletter.config import settings_for_tests
from newsletter.email.render import DigestRenderer, link_substitutions, personalise, shared_content
from newsletter.email.selection import SubscriberPrefs, select_all
from newsletter.rhythm.weekly import merge_days

SETTINGS = settings_for_tests(
    base_url="https://digest.example.org",
    ai_summary={"language": "English", "languages": ["Chinese"]},
)
LINKS = link_substitutions(
    {
        "unsubscribe_url": "https://digest.example.org/unsubscribe/abc",
        "preferences_url": "https://digest.example.org/preferences/def",
    }
)


def test_shared_body_equals_direct_render_in_each_language_daily_and_weekly() -> None:
    papers = recorded_papers()[:12]
    monday = make_view(papers[:6])
    tuesday = dataclasses.replace(make_view(papers[6:]), date=monday.date + dt.timedelta(days=1))
    weekly = merge_days(tuesday.date, [monday, tuesday])
    readers = [
        SubscriberPrefs(1, "a@x.org", keywords=("graph", "learning")),
        SubscriberPrefs(2, "b@x.org"),
        SubscriberPrefs(3, "c@x.org", keywords=("model",), include_summaries=False),
    ]
    summaries = {papers[0].arxiv_id: summary("中文要点 **one**"), papers[7].arxiv_id: summary("x")}
    renderer = DigestRenderer(SETTINGS)
    checked: dict[str, int] = {"daily": 0, "weekly": 0}
    for view in (monday, weekly):
        for reader in readers:
            selection = select_all(view, [reader], SETTINGS).get(reader.id)
            if selection is None:
                continue
            for language in (None, "English", "Chinese"):
                body = renderer.shared(view, summaries, selection.include_summaries, language)
                shared = personalise(
                    shared_content(body), {**body.substitutions(selection), **LINKS}
                )
                direct = personalise(
                    renderer.render_direct(view, selection, summaries, language), LINKS
                )
                assert shared == direct, (view.kind, reader.id, language)
                checked[view.kind] += 1
                assert ("退订" in shared.html) == (language == "Chinese")
                if view.kind == "weekly":
                    assert shared.subject.startswith(
                        "每周精选：" if language == "Chinese" else "Weekly: "
                    )
    assert checked["daily"] >= 6 and checked["weekly"] >= 6
    english = renderer.shared(monday, summaries, True, "English")
    assert renderer.shared(monday, summaries, True, "Chinese") is not english
    assert renderer.shared(monday, summaries, True, "English") is english


def test_a_readers_email_declares_their_language_and_links_the_hidden_cards_in_it() -> None:
    """Past the 90 KB budget the last cards become one link to the archive: its words, and the
    page's ``lang``, follow the reader's language (an independent HTML parser reads them)."""
    view = make_view(recorded_papers())
    long_tldr = "A long TL;DR that fills the card with words. " * 60
    summaries = {e.paper.arxiv_id: summary(long_tldr) for e in view.pool}
    reader = SubscriberPrefs(1, "a@x.org", keywords=("learning", "model", "data"), max_papers=30)
    selection = select_all(view, [reader], SETTINGS)[reader.id]
    renderer = DigestRenderer(SETTINGS)
    seen: dict[str | None, tuple[str, str, str]] = {}
    for language in (None, "Chinese"):
        body = renderer.shared(view, summaries, True, language)
        out = personalise(shared_content(body), {**body.substitutions(selection), **LINKS})
        doc = lxml.html.document_fromstring(out.html)
        archive = [a for a in doc.iter("a") if a.get("href", "").endswith(view.date.isoformat())]
        seen[language] = (doc.get("lang"), archive[-1].text_content(), out.text)
    lang, link, text = seen[None]
    assert lang == "en" and re.fullmatch(r"\d+ more papers in today's issue →", link)
    zh_lang, zh_link, zh_text = seen["Chinese"]
    assert zh_lang == "zh" and re.fullmatch(r"本期还有 \d+ 篇论文 →", zh_link)
    assert zh_link.split()[1] == link.split()[0]  # the same number of cards hidden
    assert "more papers in today's issue" in text and "本期还有" in zh_text
