"""Rendering: hostile text stays text, links are ours only, MJML compiled once, placeholders."""

from __future__ import annotations

import json
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import newsletter.email.render as render_mod
from newsletter.config import settings_for_tests
from newsletter.email import tags
from newsletter.email.render import (
    PLACEHOLDERS,
    DigestRenderer,
    Expander,
    TemplateError,
    authors_line,
    link_substitutions,
    personalise,
    shared_content,
    snippet,
)
from newsletter.email.selection import Selection, SubscriberPrefs, select_all
from newsletter.email.shared import with_feedback
from newsletter.latex import latex_to_text
from tests.fixtures_email import make_view, paper, recorded_papers, summary, with_title

SETTINGS = settings_for_tests(
    base_url="https://digest.example.org",
    email={"postal_address": "1 Main Street, Springfield", "from_name": "Digest Team"},
)
LINKS = {
    "unsubscribe_url": "https://digest.example.org/unsubscribe/abc",
    "preferences_url": "https://digest.example.org/preferences/def",
}
FEEDBACK_TOKEN = "7.feedbacksignature"
LINK_SUBS = with_feedback(link_substitutions(LINKS), FEEDBACK_TOKEN)
HOSTILE_TITLE = (
    'AM$^3$Safety <script>alert("t")</script> <a href="https://evil.test">x</a> & ($\\lambda$)'
)
HOSTILE_ABSTRACT = (
    "<img src=x onerror=alert(1)> We prove $O(n^{2})$ bounds. [click](https://evil.test) "
    "<b>bold</b> -unsubscribe_url- " + "word " * 120
)
HOSTILE_TLDR = (
    "Strong **results**. <script>alert(2)</script> [phish](https://evil.test) "
    "<iframe src=https://evil.test></iframe> ![i](https://evil.test/i.png) <https://evil.test>"
)


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.text: list[str] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name == "href":
                self.hrefs.append(value or "")
            if name == "src":
                self.srcs.append(value or "")
            if name.startswith("on"):
                self.handlers.append(name)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Collector:
    c = Collector()
    c.feed(html)
    return c


def one_paper_view(title: str = HOSTILE_TITLE, abstract: str = HOSTILE_ABSTRACT):
    p = paper(
        "2604.00001",
        title,
        abstract,
        ("cs.LG",),
        authors=("A One", "B Two", "C Three", "D Four", "E Five"),
    )
    return make_view([p], digest_ids=["2604.00001"], site_matched={"2604.00001": ("LLM",)})


def selection_of(view, include_summaries: bool = True) -> Selection:
    sub = SubscriberPrefs(1, "a@example.org", include_summaries=include_summaries)
    return select_all(view, [sub], SETTINGS)[1]


def feedback_hrefs(view, token: str = tags.FEEDBACK) -> set[str]:
    """The card's feedback links (the token stays a tag until the sender fills it in)."""
    base = f"https://digest.example.org/feedback/{token}"
    return {f"{base}/{e.paper.arxiv_id}/{d}" for e in view.pool[:1] for d in ("more", "fewer")}


def expected_hrefs(view) -> set[str]:
    p = view.pool[0].paper
    return {
        p.abs_url,
        p.pdf_url,
        p.html_url,
        f"https://digest.example.org/archive/{view.date.isoformat()}#{p.arxiv_id}",
        f"https://digest.example.org/archive/{view.date.isoformat()}?r={FEEDBACK_TOKEN}",
        "https://digest.example.org/archive",
        LINKS["unsubscribe_url"],
        LINKS["preferences_url"],
        *feedback_hrefs(view, FEEDBACK_TOKEN),
    }


def test_hostile_title_abstract_and_summary_stay_text() -> None:
    view = one_paper_view()
    renderer = DigestRenderer(SETTINGS)
    for include in (True, False):
        rendered = personalise(
            renderer.render(
                view, selection_of(view, include), {"2604.00001": summary(HOSTILE_TLDR)}
            ),
            LINK_SUBS,
        )
        doc = parse(rendered.html)
        assert set(doc.hrefs) == expected_hrefs(view)
        assert doc.srcs == []
        assert doc.handlers == []
        assert not {"script", "iframe", "img"} & set(doc.tags)
        text = "".join(doc.text)
        assert " ".join(latex_to_text(HOSTILE_TITLE).split()) in text
        assert "AM³Safety" in text and "(λ)" in text and "$" not in text
        assert rendered.text.count(LINKS["unsubscribe_url"]) == 1  # data cannot fake a placeholder
        assert ("Strong" in text) is include
        assert ("We prove" in text) is (not include)


def test_summary_markdown_is_kept_as_safe_html_without_links() -> None:
    view = one_paper_view("Fine title", "Fine abstract.")
    html = (
        DigestRenderer(SETTINGS)
        .render(view, selection_of(view), {"2604.00001": summary(HOSTILE_TLDR)})
        .html
    )
    doc = parse(html)
    assert "strong" in doc.tags
    assert not [h for h in doc.hrefs if "evil" in h]
    assert "<script>" not in html and "<iframe" not in html


@given(title=st.text(min_size=1, max_size=80), abstract=st.text(max_size=200))
@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_title_survives_rendering_as_text(title: str, abstract: str) -> None:
    view = one_paper_view(title, abstract)
    rendered = DigestRenderer(SETTINGS).render(view, selection_of(view), {})
    doc = parse(rendered.html)
    unfilled = {
        *feedback_hrefs(view),
        f"https://digest.example.org/archive/{view.date.isoformat()}?r={tags.FEEDBACK}",
    }
    assert set(doc.hrefs) <= expected_hrefs(view) | set(PLACEHOLDERS.values()) | unfilled
    assert not {"script", "iframe", "img", "object", "form"} & set(doc.tags)
    # shown as readers see untrusted text: one line, tag keys and the body's sentinels defused
    flat = " ".join(tags.one_line(latex_to_text(title)).split())
    if flat and "\x00" not in flat and "\r" not in title:
        assert flat in " ".join("".join(doc.text).split())
        assert flat in rendered.text


def test_text_part_has_the_same_content_and_placeholders() -> None:
    view = one_paper_view("A title", "Short abstract.")
    rendered = DigestRenderer(SETTINGS).render(
        view, selection_of(view), {"2604.00001": summary("It **works**.")}
    )
    text = rendered.text
    p = view.pool[0].paper
    for needle in (
        p.abs_url,
        p.pdf_url,
        p.html_url,
        "A title",
        "Why you got it: LLM",
        "A One, B Two, C Three et al.",
        "TL;DR: It **works**.",
        "1 Main Street",
        *PLACEHOLDERS.values(),
    ):
        assert needle in text
    assert rendered.subject == f"arXiv digest for {view.date.isoformat()}: 1 papers"
    filled = personalise(rendered, LINK_SUBS)
    assert LINKS["unsubscribe_url"] in filled.text and LINKS["unsubscribe_url"] in filled.html
    assert not any(ph in filled.html or ph in filled.text for ph in PLACEHOLDERS.values())


def test_links_must_need_no_escaping_and_be_http() -> None:
    """Links go raw into the HTML (SendGrid substitutes raw), so unsafe ones are refused."""
    view = one_paper_view("T", "A.")
    rendered = DigestRenderer(SETTINGS).render(view, selection_of(view), {})
    out = personalise(rendered, LINK_SUBS)
    assert f'href="{LINKS["preferences_url"]}"' in out.html
    with pytest.raises(ValueError, match="preferences_url"):
        link_substitutions({**LINKS, "preferences_url": 'https://x.test/p?a=1&b="2"'})
    with pytest.raises(ValueError, match="preferences_url"):
        link_substitutions({"unsubscribe_url": LINKS["unsubscribe_url"]})
    with pytest.raises(ValueError, match="http"):
        link_substitutions({**LINKS, "unsubscribe_url": "javascript:alert(1)"})
    # A token that happens to spell a tag keeps working but can no longer be expanded.
    tricky = "https://digest.example.org/unsubscribe/ab-t1p2-cd-HWO-e"
    subs = link_substitutions({**LINKS, "unsubscribe_url": tricky})
    assert not tags.keys_in(subs["-unsubscribe_url-"])
    assert urllib.parse.unquote(subs["-unsubscribe_url-"]) == tricky


def test_empty_note_renders_a_short_message() -> None:
    view = one_paper_view("T", "A.")
    rendered = DigestRenderer(SETTINGS).render(view, Selection(entries=()), {})
    assert "Nothing matched your interests" in rendered.text
    assert "Nothing matched your interests" in rendered.html
    assert rendered.subject.endswith(": 0 papers")


def test_snippet_cuts_at_a_word_and_authors_get_et_al() -> None:
    text = "alpha " * 100
    cut = snippet(text, 40)
    assert cut.endswith("…") and len(cut) <= 41 and cut[:-1].split()[-1] == "alpha"
    assert snippet("short\nline") == "short line"
    assert authors_line(("A", "B", "C", "D")) == "A, B, C, D"
    assert authors_line(("A", "B", "C", "D", "E")) == "A, B, C et al."


def test_subject_template_with_unknown_field_is_a_clear_error() -> None:
    bad = settings_for_tests(email={"subject_template": "Digest {when}"})
    view = one_paper_view("T", "A.")
    with pytest.raises(TemplateError, match="subject_template"):
        DigestRenderer(bad).render(view, selection_of(view), {})


def test_mjml_is_compiled_once_per_process_and_again_when_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = render_mod._mjml_to_html

    def counting(source: str) -> tuple[str, list[str]]:
        calls.append(1)
        return real(source)

    monkeypatch.setattr(render_mod, "_mjml_to_html", counting)
    src = render_mod.email_templates_dir()
    for name in ("digest.mjml", "digest.txt"):
        (tmp_path / name).write_text((src / name).read_text(encoding="utf-8"), encoding="utf-8")
    view = one_paper_view("T", "A.")
    sel = selection_of(view)
    for _ in range(3):
        renderer = DigestRenderer(SETTINGS, template_dir=tmp_path)
        for _ in range(5):
            renderer.render(view, sel, {})
    assert len(calls) == 1
    mjml = tmp_path / "digest.mjml"
    mjml.write_text(mjml.read_text().replace("Why you got it", "Matched"), encoding="utf-8")
    import os

    st_ = mjml.stat()
    os.utime(mjml, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000))
    assert "Matched" in DigestRenderer(SETTINGS, template_dir=tmp_path).render(view, sel, {}).html
    assert len(calls) == 2


def test_broken_mjml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "digest.mjml").write_text("<html>not mjml</html>", encoding="utf-8")
    (tmp_path / "digest.txt").write_text("", encoding="utf-8")
    view = one_paper_view("T", "A.")
    with pytest.raises(TemplateError, match="MJML"):
        DigestRenderer(SETTINGS, template_dir=tmp_path).render(view, selection_of(view), {})


def _reader(keywords: tuple[str, ...], sid: int = 7, **kw: object) -> SubscriberPrefs:
    return SubscriberPrefs(sid, f"r{sid}@example.org", keywords=keywords, **kw)  # type: ignore[arg-type]


def _personal(renderer: DigestRenderer, view, selection, summaries=None):  # type: ignore[no-untyped-def]
    body = renderer.shared(view, summaries or {}, selection.include_summaries)
    subs = {**body.substitutions(selection), **LINK_SUBS}
    return personalise(shared_content(body), subs)


def test_personalised_email_has_exactly_their_papers_in_order_with_their_keywords() -> None:
    papers = recorded_papers()[:12]
    view = make_view(papers)
    reader = _reader(("graph", "LLM", "reinforcement learning"), max_papers=4)
    selection = select_all(view, [reader], SETTINGS)[reader.id]
    assert len(selection.entries) == 4
    out = _personal(DigestRenderer(SETTINGS), view, selection)
    doc = parse(out.html)
    pool_abs = {p.abs_url for p in papers}
    shown = [h for h in doc.hrefs if h in pool_abs]
    expected = [e.paper.abs_url for e in selection.entries]
    # Each card links its abstract twice (title and "Abstract"), in the reader's order.
    assert list(dict.fromkeys(shown)) == expected and len(shown) == 2 * len(expected)
    text_titles = [
        line.split(". ", 1)[1]
        for line in out.text.splitlines()
        if line[:2] in {f"{n}." for n in range(1, 5)}
    ]
    assert text_titles == [" ".join(e.paper.title.split()) for e in selection.entries]
    for n, entry in enumerate(selection.entries, start=1):
        kws = selection.matched[entry.paper.arxiv_id]
        assert f"{n}. {' '.join(entry.paper.title.split())}" in out.text
        assert f"Why you got it: {', '.join(kws)}" in out.text
    assert "4 papers for you, picked from 12" in out.text and "4 papers for you" in out.html
    assert out.subject == f"arXiv digest for {view.date.isoformat()}: 4 papers"
    assert "-" + "cards-" not in out.html + out.text and not tags.keys_in(out.html + out.text)


EMPTY_OK = SETTINGS.model_copy(
    update={"delivery": SETTINGS.delivery.model_copy(update={"send_empty_note": True})}
)


def _hostile_day():  # type: ignore[no-untyped-def]
    """Ten recorded papers, one titled with tags; readers with hostile keywords, none, no
    match, and without summaries."""
    papers = recorded_papers()[:10]
    papers[2] = with_title(papers[2], HOSTILE_TITLE + " -cards- -h1p0- -tcards- -c1h- -more-")
    readers = [
        _reader(("graph", "LLM"), 1),
        _reader((), 2),
        _reader(("diffusion",), 3, include_summaries=False),
        _reader(("zzzz-nothing",), 4),
        _reader(("model", "-hwo-", "h1p0", "learning", "-more-"), 5),
    ]
    return papers, make_view(papers), readers


def test_shared_body_personalised_equals_the_template_rendered_for_that_reader() -> None:
    """The slicing loses nothing: byte-identical to rendering the template for one reader."""
    papers, view, readers = _hostile_day()
    summaries = {papers[0].arxiv_id: summary(HOSTILE_TLDR + " \\-cards\\- &#45;h2p0&#45;")}
    renderer = DigestRenderer(SETTINGS)
    for reader in readers:
        selection = select_all(view, [reader], EMPTY_OK)[reader.id]
        direct = personalise(renderer.render_direct(view, selection, summaries), LINK_SUBS)
        shared = _personal(renderer, view, selection, summaries)
        assert shared == direct, reader
    assert renderer.shared(view, summaries, True) is renderer.shared(view, summaries, True)


def test_the_senders_expansion_gives_the_bytes_sendgrids_order_gives() -> None:
    """``Expander`` (the frame cut once, only slot values scanned per reader) and
    ``personalise`` (every substitution, then every section) agree: hostile titles and
    keywords, hidden cards behind the "N more papers" link, the feedback key in the cards left
    for the provider or filled in (values that bring a substituted key)."""
    _, view, readers = _hostile_day()
    renderer = DigestRenderer(SETTINGS)
    cases = [(view, {}, select_all(view, [r], EMPTY_OK)[r.id]) for r in readers]
    budget_view, budget_summaries, budget_selection = _budget_day(TLDR_300 * 8)
    cases.append((budget_view, budget_summaries, budget_selection))
    hidden = 0
    for case_view, summaries, selection in cases:
        body = renderer.shared(case_view, summaries, selection.include_summaries)
        content = shared_content(body)
        fast = Expander.of(content)
        slots = body.substitutions(selection)
        hidden += bool(slots[tags.MORE])
        for subs in (
            slots,
            {**slots, **LINK_SUBS},
            with_feedback({**slots, **LINK_SUBS}, "7.sig"),
            {**slots, tags.FEEDBACK: "7.sig"},
        ):
            assert fast.personalise(subs) == personalise(content, subs), selection
    assert hidden == 1  # the budget day's reader has cards behind the link


def test_hostile_title_or_keyword_cannot_inject_another_card() -> None:
    papers = recorded_papers()[:6]
    for n, key in enumerate(["-cards-", "-h1p0-", "-t2p1-", "-hdisclaimer-", "-C3H-"]):
        papers[n] = with_title(papers[n], f"Evil {key} paper {n} -unsubscribe_url-")
    view = make_view(papers)
    reader = _reader(("evil", "h1p0", "-h2p0-", "-tcards-"), max_papers=1)
    selection = select_all(view, [reader], SETTINGS)[reader.id]
    assert len(selection.entries) == 1
    out = _personal(DigestRenderer(SETTINGS), view, selection)
    pool_abs = {p.abs_url for p in papers}
    shown = {h for h in parse(out.html).hrefs if h in pool_abs}
    assert shown == {selection.entries[0].paper.abs_url}
    assert sum(p.abs_url in out.text for p in papers) == 1
    assert "TL;DRs are written" not in out.html + out.text
    assert out.text.count(LINKS["unsubscribe_url"]) == 1
    title = " ".join(selection.entries[0].paper.title.split())
    assert title not in out.text  # shown defused: the hyphens of the key became U+2010
    assert tags.defuse(title) in out.text


def test_substitutions_of_a_reader_stay_small() -> None:
    """30 cards with keywords stay below SendGrid's 10,000 bytes per personalization, the
    reader's feedback token (as long as a real one for a 6-digit id) in every card included."""
    view = make_view(recorded_papers())
    reader = _reader(("learning", "model", "data", "neural", "graph"), max_papers=30)
    selection = select_all(view, [reader], SETTINGS)[reader.id]
    body = DigestRenderer(SETTINGS).shared(view, {}, True)
    token = "123456.ChKIof4UTnIx%2DUWdkKaGI41r%2DDo"
    subs = with_feedback({**body.substitutions(selection), **LINK_SUBS}, token)
    size = len(json.dumps(subs, ensure_ascii=False).encode())
    assert len(selection.entries) == 30 and size < 8500
    assert subs[tags.CARDS].count(token) == 60 and subs[tags.TEXT_CARDS].count(token) == 30
    assert all(not tags.keys_in(v) or k in (tags.CARDS, tags.TEXT_CARDS) for k, v in subs.items())


TLDR_300 = (
    "The authors propose **a sparse mixture of experts** that cuts training cost by 41.5% while "
    "matching dense baselines on *three* benchmarks; ablations show that routing, not capacity, "
    "explains the gain, and the method scales to 7B-parameter models without extra memory."
)


def _budget_day(tldr: str):  # type: ignore[no-untyped-def]
    """The recorded day, every paper with a TL;DR; a reader matching keywords in all of them."""
    view = make_view(recorded_papers())
    summaries = {p.paper.arxiv_id: summary(tldr) for p in view.pool}
    reader = _reader(("learning", "model", "data", "neural", "training"), max_papers=30)
    selection = select_all(view, [reader], SETTINGS)[reader.id]
    assert len(selection.entries) == 30
    assert all(selection.matched[e.paper.arxiv_id] for e in selection.entries)
    return view, summaries, selection


def _links_early_and_in_footer(html: str) -> None:
    raw = html.encode()
    for link in LINKS.values():
        first = raw.find(link.encode())
        assert 0 < first < 20_000, link
        assert raw.rfind(link.encode()) > len(raw) - 3_000, link


def test_thirty_cards_with_tldrs_and_keywords_fit_the_size_budget() -> None:
    view, summaries, selection = _budget_day(TLDR_300)
    out = _personal(DigestRenderer(SETTINGS), view, selection, summaries)
    size = len(out.html.encode())
    assert size <= 90_000, size
    assert "more papers in today" not in out.html  # all 30 cards fit: nothing was cut
    assert sum(e.paper.abs_url in out.html for e in selection.entries) == 30
    _links_early_and_in_footer(out.html)
    assert out.html.count("<!--[if mso") < 20  # Outlook's blocks frame the page, not each card


def test_cards_past_the_budget_become_one_link_to_the_web_archive() -> None:
    view, summaries, selection = _budget_day(TLDR_300 * 8)
    renderer = DigestRenderer(SETTINGS)
    out = _personal(renderer, view, selection, summaries)
    assert len(out.html.encode()) <= 90_000
    shown = [e for e in selection.entries if e.paper.abs_url in out.html]
    hidden = 30 - len(shown)
    assert 0 < hidden < 30 and shown == list(selection.entries[: len(shown)])
    archive = f"https://digest.example.org/archive/{view.date.isoformat()}"
    assert f'<a href="{archive}" style=font-weight:600>{hidden} more papers in today' in out.html
    assert f"{hidden} more papers in today's issue: {archive}" in out.text
    assert "30 papers for you" in out.html and out.subject.endswith(": 30 papers")
    _links_early_and_in_footer(out.html)
    direct = personalise(renderer.render_direct(view, selection, summaries), LINK_SUBS)
    assert direct == out
