import pytest

from newsletter.matching import matcher, term_in_text


@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        ("LLM", "LLMs are big", True),
        ("LLM", "an LLM-based agent", True),
        ("RL", "a world model", False),
        ("RL", "offline RL works", True),
        ("RL", "RLHF pipelines", False),
        ("review", "the reviewer said", False),
        ("large language model", "Large Language Models (LLMs)", True),
        ("fine-tuning", "fine tuning recipes", True),
    ],
)
def test_word_mode(term: str, text: str, expected: bool) -> None:
    assert term_in_text(term, text, "word") is expected


def test_substring_mode_is_the_old_rule() -> None:
    assert term_in_text("RL", "a world model", "substring")
    assert matcher(["RL", "world", "xyz"], "substring").find("World model") == ("RL", "world")
