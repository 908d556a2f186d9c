"""Text models: WordLlama (static token embeddings shipped inside the wheel, nothing
downloaded) and tf-idf (scikit-learn, fitted on the day's papers). Rows are L2-normalised,
so a dot product is a cosine similarity.

``blend`` puts both side by side, each scaled by sqrt(1/2): the dot product of two blended
rows is the mean of the two cosines.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import sparse

ModelName = Literal["wordllama", "tfidf", "blend"]
WORDLLAMA = "wordllama-l2_supercat-256"
DIM = 256
Matrix = Any  # numpy float32 array or scipy CSR matrix, rows L2-normalised


@functools.lru_cache(maxsize=1)
def _wordllama() -> Any:
    """The packaged l2_supercat weights and tokenizer: ``cache_dir`` is the package itself,
    where the wheel puts ``tokenizers/`` (the weights are found beside the code), and
    downloads are disabled, so a missing file fails loudly instead of reaching the network."""
    import wordllama

    package = Path(wordllama.__file__).parent
    return wordllama.WordLlama.load(
        config="l2_supercat", dim=DIM, cache_dir=package, disable_download=True
    )


def paper_text(title: str, abstract: str) -> str:
    return f"{title}. {abstract}"


def embed_wordllama(texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    out = _wordllama().embed(list(texts), norm=True, batch_size=batch_size)
    return np.ascontiguousarray(out, dtype=np.float32)


class TfidfSpace:
    """tf-idf fitted on one day's papers (plus the readers' texts), sublinear tf, English
    stop words; texts are then projected into it."""

    def __init__(self, corpus: Sequence[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self._vec = TfidfVectorizer(
            sublinear_tf=True, stop_words="english", min_df=1, max_df=0.5, dtype=np.float32
        )
        self._vec.fit(list(corpus) or ["empty"])

    def embed(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.csr_matrix(self._vec.transform(list(texts)), dtype=np.float32)


def blend(dense: np.ndarray, sparse_rows: sparse.csr_matrix) -> sparse.csr_matrix:
    w = math.sqrt(0.5)
    return sparse.hstack(
        [sparse.csr_matrix(dense * w), sparse_rows * w], format="csr", dtype=np.float32
    )


def dot(a: Matrix, b: Matrix) -> np.ndarray:
    """a @ b.T as a dense float32 array, whatever mix of dense and sparse rows."""
    out = a @ b.T
    if sparse.issparse(out):
        out = out.toarray()
    return np.asarray(out, dtype=np.float32)


def rows(m: Matrix, index: np.ndarray) -> Matrix:
    return m[index]


def normalise(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (m / norms).astype(np.float32)
