"""The scoring rule on small hand-made vectors: closest example, relative threshold, Rocchio's
negative pull, the per-reader classifier, pinned authors, categories and the cut."""

from __future__ import annotations

import numpy as np

from newsletter.config import RankingSettings
from newsletter.relevance.embed import normalise
from newsletter.relevance.score import Day, Reader, rank_readers

# Papers 0-3 lean on axis 0, 4-7 on axis 1, 8-11 on axis 2.
PAPERS = normalise(
    np.asarray(
        [[1.0, 0.1 * i, 0.0] for i in range(4)]
        + [[0.1 * i, 1.0, 0.0] for i in range(4)]
        + [[0.0, 0.1 * i, 1.0] for i in range(4)],
        dtype=np.float32,
    )
)
EXAMPLES = normalise(np.asarray([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
DAY = Day(PAPERS, EXAMPLES[:1], EXAMPLES, ["Axis zero", "Axis one", "Axis two"])


def picks(reader: Reader, **settings: object) -> list[int]:
    chosen = rank_readers(DAY, [reader], RankingSettings.model_validate(settings))[reader.id]
    return [p for p, _ in chosen]


def test_the_closest_example_counts_not_only_the_mean() -> None:
    got = rank_readers(DAY, [Reader(1, 8, positives=(0, 2))], RankingSettings())[1]
    assert {p for p, _ in got} <= {0, 1, 2, 3, 8, 9, 10, 11} and len(got) == 8
    assert {why for _, why in got} == {("close to: Axis zero",), ("close to: Axis two",)}


def test_threshold_is_relative_to_the_day_and_the_cut_is_the_maximum() -> None:
    assert sorted(picks(Reader(1, 10, interest=0))) == [0, 1, 2, 3]
    assert len(picks(Reader(1, 10, interest=0), relative_threshold=-3)) == 10
    assert len(picks(Reader(1, 2, interest=0))) == 2


def test_fewer_like_this_pulls_down_and_the_classifier_takes_over() -> None:
    both = Reader(1, 4, positives=(0, 1))
    assert set(picks(both, relative_threshold=-3)) & {4, 5, 6, 7}
    pushed = Reader(1, 4, positives=(0, 1), negatives=(1,))
    assert not set(picks(pushed, relative_threshold=-3)) & {4, 5, 6, 7}
    learned = Reader(1, 4, positives=(0, 0, 0), negatives=(1, 1, 2))
    assert set(picks(learned, relative_threshold=-3, classifier_min_examples=6)) == {0, 1, 2, 3}


def test_pinned_first_whatever_the_score_and_categories_filter_the_rest() -> None:
    allowed = np.asarray([i >= 2 for i in range(12)])
    reader = Reader(1, 3, interest=0, pinned=((9, "A. Author"),), allowed=allowed)
    got = rank_readers(DAY, [reader], RankingSettings())[1]
    assert got[0] == (9, ("favourite author: A. Author",))
    assert [p for p, _ in got[1:]] == [2, 3]
