"""Vectors in the database: each paper version's WordLlama vector is computed once and kept
in ``paper_vectors``; a reader's interests vector is kept on their profile row until the
interests change."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlmodel import Session, col, select

from newsletter.relevance.embed import DIM, WORDLLAMA, embed_wordllama, paper_text
from newsletter.relevance.models import PaperVector, SubscriberProfile


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def paper_vectors(session: Session, papers: Sequence[tuple[str, int, str, str]]) -> np.ndarray:
    """Vectors of (arxiv_id, version, title, abstract), in order; missing or stale ones
    (another version) are embedded in one batch and stored."""
    out = np.zeros((len(papers), DIM), dtype=np.float32)
    if not papers:
        return out
    ids = list(dict.fromkeys(p[0] for p in papers))
    cached = {
        row.arxiv_id: row
        for start in range(0, len(ids), 900)
        for row in session.exec(
            select(PaperVector).where(
                col(PaperVector.arxiv_id).in_(ids[start : start + 900]),
                PaperVector.model == WORDLLAMA,
            )
        )
    }
    todo: list[int] = []
    for i, (arxiv_id, version, _, _) in enumerate(papers):
        row = cached.get(arxiv_id)
        if row is not None and row.version == version:
            out[i] = from_bytes(row.vector)
        else:
            todo.append(i)
    if todo:
        fresh = embed_wordllama([paper_text(papers[i][2], papers[i][3]) for i in todo])
        for i, vector in zip(todo, fresh, strict=True):
            out[i] = vector
            arxiv_id, version = papers[i][0], papers[i][1]
            row = cached.get(arxiv_id) or PaperVector(
                arxiv_id=arxiv_id, model=WORDLLAMA, vector=b""
            )
            row.version, row.vector = version, to_bytes(vector)
            cached[arxiv_id] = row
            session.add(row)
        session.flush()
    return out


def interest_vectors(session: Session, profiles: Sequence[SubscriberProfile]) -> np.ndarray:
    """The interests' vectors of these profiles (all with interests), cached on the rows."""
    out = np.zeros((len(profiles), DIM), dtype=np.float32)
    todo: list[int] = []
    for i, p in enumerate(profiles):
        if p.vector is not None and p.vector_model == WORDLLAMA:
            out[i] = from_bytes(p.vector)
        else:
            todo.append(i)
    if todo:
        fresh = embed_wordllama([profiles[i].interests for i in todo])
        for i, vector in zip(todo, fresh, strict=True):
            out[i] = vector
            profiles[i].vector, profiles[i].vector_model = to_bytes(vector), WORDLLAMA
            session.add(profiles[i])
        session.flush()
    return out
