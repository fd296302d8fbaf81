"""Answer extraction on real data's forms (issue #12): brace-less \\boxed, \\fbox, nested braces, several boxes."""

import pytest

from igrpo.core.answers import boxes, extract_final_answer, final_boxed


@pytest.mark.parametrize("text, expected", [
    ("$\\boxed 2$", "2"),
    ("so the answer is \\boxed 9$.", "9"),
    ("\\boxed 12\nmore text", "12"),
    ("\\fbox{5}", "5"),
    ("$\\boxed {4}$", "4"),
    ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{1}{\\sqrt{2}}"),
    ("\\boxed{(1, \\{2\\})}", "(1, \\{2\\})"),
    # several boxes: the one of the sentence that names the answer, not a check written after it
    ("First we try $\\boxed{3}$, which fails. So the final answer is $\\boxed{7}$. Check: $\\boxed{3}$ fails.", "7"),
    ("The answer is $\\boxed{2}$ or $\\boxed{-2}$.", "2, -2"),
    # no sentence names the answer: the last box
    ("first \\boxed{3} then final \\boxed 7", "7"),
    ("First \\boxed{3} is wrong; so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
    ("put it within \\boxed{} please", None),
    ("\\boxedx and \\boxed{", None),
])
def test_final_boxed(text, expected):
    assert final_boxed(text) == expected
    assert extract_final_answer(text) == expected


def test_boxes_lists_every_readable_box_in_order():
    assert [c for _, c in boxes("\\boxed 1$ and \\fbox{2} and \\boxed{3}")] == ["1", "2", "3"]


def test_hash_answers_still_win_over_boxes():
    assert extract_final_answer("\\boxed{3} #### 4") == "4"
