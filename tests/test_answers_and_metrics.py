import pytest

from igrpo.core.answers import answers_match, extract_final_answer, is_gradeable, normalize_answer
from igrpo.core.metrics import avg_at_k, frac_groups_zero_std, mean_ignoring_none


@pytest.mark.parametrize(
    "text, expected",
    [
        ("12+30=42 #### 42", "42"),
        ("#### 7\nthen #### 8", "8"),  # the last answer wins
        ("so \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"),
        ("the answer is 12.", "12"),
        ("The answer is: -3", "-3"),
        ("no answer here", None),
        ("", None),
        ("#### ", None),
        ("\\boxed{unclosed", None),
    ],
)
def test_extract_final_answer(text, expected):
    assert extract_final_answer(text) == expected


def test_extraction_of_huge_completion_is_bounded():
    text = "1" * 200_000 + " #### 5"
    assert extract_final_answer(text) == "5"


@pytest.mark.parametrize("a, b", [("1,000", "1000"), ("+5", "5"), ("2.50", "2.5"), (" 7 ", "7"), ("3.", "3")])
def test_normalisation_equates(a, b):
    assert normalize_answer(a) == normalize_answer(b)


def test_answers_match():
    assert answers_match("42", "42")
    assert not answers_match("41", "42")
    assert not answers_match(None, "42")


def test_gradeable():
    assert is_gradeable("3")
    assert not is_gradeable("")
    assert not is_gradeable(None)
    assert not is_gradeable("  ")


class TestAvgAtK:
    def test_mean_of_per_problem_rates(self):
        assert avg_at_k([[True, False], [True, True]]) == pytest.approx(0.75)

    def test_all_wrong(self):
        assert avg_at_k([[False] * 4]) == 0.0

    def test_ragged_is_error(self):
        with pytest.raises(ValueError):
            avg_at_k([[True], [True, False]])

    def test_empty_is_error(self):
        with pytest.raises(ValueError):
            avg_at_k([])


def test_frac_groups_zero_std():
    assert frac_groups_zero_std([1, 1, 0, 1, 0, 0], 2) == pytest.approx(2 / 3)
    assert frac_groups_zero_std([None, 1, 0, 1], 2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        frac_groups_zero_std([1, 0, 1], 2)


def test_mean_ignoring_none():
    assert mean_ignoring_none([1.0, None, 0.0]) == 0.5
    assert mean_ignoring_none([None]) is None
