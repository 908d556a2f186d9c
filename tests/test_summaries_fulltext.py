"""Full-text summaries: a real PDF made in the test, its text extracted locally with pypdf."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from fpdf import FPDF
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.db import make_engine
from newsletter.domain import Paper
from newsletter.models import SummaryRow
from newsletter.summaries import summarise_papers
from newsletter.summaries.fulltext import PdfTextError, pdf_text
from tests.fixtures_summaries import (  # noqa: F401  (fixture)
    ENV,
    FakeOpenAI,
    ai_section,
    fake_openai_fixture,
    make_paper,
)

MARKER = "FULLTEXT-MARKER"


def make_pdf(pages: int = 3) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for page in range(1, pages + 1):
        pdf.add_page()
        text = f"{MARKER} page {page}. " + " ".join(
            f"Sentence {i} of page {page} describes the experiments." for i in range(40)
        )
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


@pytest.fixture
def engine(sqlite_url: str) -> Engine:
    return make_engine(sqlite_url)


@pytest.fixture
def fulltext_settings(make_settings: Callable[..., Settings], fake_openai: FakeOpenAI) -> Settings:
    return make_settings(
        ai_summary=ai_section(fake_openai.base_url, source="fulltext", max_input_chars=900)
    )


def test_pdf_text_reads_a_real_pdf_up_to_the_limit() -> None:
    text = pdf_text(make_pdf(), 900)
    assert text.startswith(f"{MARKER} page 1.") and len(text) == 900
    assert "page 3" in pdf_text(make_pdf(), 100_000)


def test_pdf_text_refuses_what_is_not_a_pdf() -> None:
    with pytest.raises(PdfTextError, match="cannot read the PDF"):
        pdf_text(b"<html>not a pdf</html>", 900)


def test_fulltext_sends_the_pdfs_first_characters_and_caches_them(
    engine: Engine, fulltext_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    fetched: list[str] = []
    pdf = make_pdf()

    def fetch(paper: Paper) -> bytes:
        fetched.append(paper.versioned_id)
        return pdf

    paper = make_paper(1)
    run = summarise_papers(engine, fulltext_settings, [paper], environ=ENV, pdf_fetcher=fetch)
    assert run.summaries and fetched == [paper.versioned_id]
    user = fake_openai.bodies[0]["messages"][1]["content"]
    body = user.split("BEGIN PAPER (full text)\n", 1)[1].rsplit("\nEND PAPER", 1)[0]
    assert body == pdf_text(pdf, 900)
    assert paper.abstract not in user
    with Session(engine) as session:
        assert session.exec(select(SummaryRow.source)).all() == ["fulltext"]

    again = summarise_papers(engine, fulltext_settings, [paper], environ=ENV, pdf_fetcher=fetch)
    assert again.calls == 0 and fetched == [paper.versioned_id]  # no second download either


def test_a_pdf_that_cannot_be_had_falls_back_to_the_abstract(
    engine: Engine,
    fulltext_settings: Settings,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def fetch(paper: Paper) -> bytes:
        if paper.arxiv_id.endswith("2"):
            raise ConnectionError("arXiv said 503")
        return b"%PDF-1.4 garbage"

    papers = [make_paper(1), make_paper(2)]
    kwargs: dict[str, Any] = {"environ": ENV, "pdf_fetcher": fetch}
    with caplog.at_level(logging.WARNING, logger="newsletter.summaries"):
        run = summarise_papers(engine, fulltext_settings, papers, **kwargs)
    assert len(run.summaries) == 2 and run.failures == {}
    prompts = [b["messages"][1]["content"] for b in fake_openai.bodies]
    assert all("BEGIN PAPER (abstract)" in p for p in prompts)
    assert any("arXiv said 503" in r.getMessage() for r in caplog.records)
    assert summarise_papers(engine, fulltext_settings, papers, **kwargs).calls == 0


def test_fulltext_without_a_fetcher_uses_abstracts_and_says_so(
    engine: Engine,
    fulltext_settings: Settings,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="newsletter.summaries"):
        run = summarise_papers(engine, fulltext_settings, [make_paper(1)], environ=ENV)
    assert run.summaries
    assert "BEGIN PAPER (abstract)" in fake_openai.bodies[0]["messages"][1]["content"]
    assert ["no PDF fetcher" in r.getMessage() for r in caplog.records] == [True]
