"""Answer extraction and normalisation, class by class: percent words, thousands separators, "the answer is"
sentences, several boxes, and the agreement script (python -m igrpo.rewards.verify.agreement).

Most checks are pure functions or the verifier's fast path (no worker process); a few go through math_verify in
the worker pool, the way the binary reward grades.
"""

from __future__ import annotations

import json
import time
from itertools import product

import pytest

from igrpo.core.answers import answers_match, extract_final_answer, final_boxed, normalize_answer
from igrpo.rewards.verify import MathVerifier
from igrpo.rewards.verify.agreement import main as agreement_main
from igrpo.rewards.verify.agreement import read_cases
from igrpo.rewards.verify.normalize import clean_answer, fast_decision

BUDGET_S = 2.0


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(time_budget_s=BUDGET_S) as v:
        v.start()
        yield v


def same_after_cleaning(a: str, b: str) -> bool | None:
    return fast_decision(clean_answer(a), clean_answer(b))


# ---- percent: every spelling of a percentage is cleaned the same way on both sides ----

VALUES = ["28", "$28$", "12.5"]
PERCENT_SPELLINGS = ["V\\%", "V%", "V %", "V percent", "V Percent", "V pct", "V pct.", "V per cent", "V percentage",
                     "V\\text{ percent}", "V \\mbox{pct}", "V\\text{\\%}"]


@pytest.mark.parametrize("value, spelling_a, spelling_b",
                         [(v, a, b) for v, a, b in product(VALUES, PERCENT_SPELLINGS, PERCENT_SPELLINGS) if a < b])
def test_every_percent_spelling_is_the_same_percentage(value, spelling_a, spelling_b):
    a, b = spelling_a.replace("V", value), spelling_b.replace("V", value)
    assert same_after_cleaning(a, b) is True
    assert same_after_cleaning(a, value.strip("$")) is True  # a percentage is graded as its number, as before


@pytest.mark.parametrize("spelling", PERCENT_SPELLINGS)
def test_a_percentage_is_not_another_number(spelling):
    assert same_after_cleaning(spelling.replace("V", "28"), "29") is False
    assert same_after_cleaning(spelling.replace("V", "28"), "0.28") is False  # 28% is graded as 28, never as 0.28


@pytest.mark.parametrize("text", ["percentage", "\\text{percent}", "28 pcts", "28 percenter", "x + pct"])
def test_percent_words_stay_when_they_do_not_follow_a_value(text):
    assert clean_answer(text) == text


@pytest.mark.parametrize("prediction", ["28 percent", "28 pct", "$28$ percent", "$\\boxed{28 percent}",
                                        "$\\boxed{28 pct}", "$\\boxed{28 percentage}", "$\\boxed{28}$ pct"])
def test_percent_words_against_a_latex_percentage_through_the_verifier(verifier, prediction):
    assert verifier.equivalent(prediction, "$28\\%$")
    assert verifier.equivalent("$28\\%$", prediction)
    assert not verifier.equivalent(prediction, "$27\\%$")


def test_percent_words_in_a_completion_are_read_by_the_reward_extraction(verifier):
    answer = extract_final_answer("So the share is \\boxed{28 percent}.")
    assert answer == "28 percent" and verifier.equivalent(answer, "28\\%")


# ---- thousands separators ----

@pytest.mark.parametrize("grouped, plain", [
    ("11,\\! 111,\\! 111,\\! 100", "11111111100"),
    ("32,\\! 349", "32349"),
    ("32,\\!349", "32349"),
    ("32, \\! 349", "32349"),
    ("-1,\\! 234.5", "-1234.5"),
    ("1,\\!000,\\!000", "1000000"),
    ("1{,}000", "1000"),
    ("1,234,567", "1234567"),
    ("$16,\\!386.20$", "16386.20"),
])
def test_grouped_thousands_are_one_number(grouped, plain):
    assert clean_answer(grouped) == plain
    assert same_after_cleaning(grouped, plain) is True


@pytest.mark.parametrize("text", ["32, 349", "2,5", "2, \\!5", "1,\\!2345", "1,22", "0,111", "12,34,567"])
def test_what_is_not_grouped_in_thousands_keeps_its_comma(text):
    assert "," in clean_answer(text)  # a list, a decimal comma or a malformed group: math_verify decides


@pytest.mark.parametrize("text, plain", [("11,\\! 111,\\! 111,\\! 100", "11111111100"), ("32,\\! 349", "32349")])
def test_spaced_thousands_in_a_box_through_the_verifier(verifier, text, plain):
    assert verifier.equivalent(f"$\\boxed{{{text}}}$", plain)
    assert verifier.equivalent(plain, f"\\boxed{{{text}}}")


def test_spaced_thousands_without_the_negative_space_are_a_list(verifier):
    assert not verifier.equivalent("32, 349", "32349")
    assert verifier.equivalent("32, 349", "349, 32")


def test_a_leading_zero_group_is_a_decimal_comma_as_math_verify_reads_it(verifier):
    # "0,111" is no thousands grouping (the project read it as 111 before); math_verify reads it as 0.111
    assert verifier.equivalent("0,111", "0.111")
    assert not verifier.equivalent("0,111", "111")


@pytest.mark.parametrize("a, b, equal", [
    ("1,000", "1000", True), ("12,345,678", "12345678", True), ("-1,234.50", "-1234.5", True),
    ("1, 6", "16", False), ("1,6", "16", False), ("2,5", "25", False), ("0,111", "111", False),
    ("17, 16", "16", False),
])
def test_exact_normalisation_drops_a_comma_only_between_thousands(a, b, equal):
    assert (normalize_answer(a) == normalize_answer(b)) is equal
    assert answers_match(a, b) is equal


# ---- "the answer is ..." runs to the end of its sentence ----

@pytest.mark.parametrize("text, expected", [
    ("The final answer is 7.78.", "7.78"),
    ("Final Answer: The final answer is 7.78. I hope it is correct.", "7.78"),
    ("The answer is 3.14", "3.14"),
    ("The answer is 3.14.\nMore text.", "3.14"),
    ("the answer is 0.5. Then", "0.5"),
    ("The answer is .75.", ".75"),
    ("The answer is 12,000,023. I hope it is correct.", "12,000,023"),
    ("The answer is $\\frac{10\\sqrt{10}}{3}$.", "\\frac{10\\sqrt{10}}{3}"),
    ("The answer is \\frac{10\\sqrt{10}}{3}.", "\\frac{10\\sqrt{10}}{3}"),
    ("The answer is $\\frac{10\\sqrt{10.5}}{27}$. I hope it is correct.", "\\frac{10\\sqrt{10.5}}{27}"),
    ("The answer is \\frac{10\\sqrt{10.5}}{27}. I hope", "\\frac{10\\sqrt{10.5}}{27}"),
    ("The answer is $3.5 \\cdot 10^{2.5}$.", "3.5 \\cdot 10^{2.5}"),
    ("The final answer is \\((-6, 10)\\). I hope it is correct.", "(-6, 10)"),
    ("The final answer is \\[x = 2.5\\]. Done.", "x = 2.5"),
    ("The final answer is $28 \\%$. I hope it is correct.", "28 \\%"),
    ("The answer is $x = 3.$", "x = 3"),
    ("The answer is $5. She paid $3 more.", "5"),  # a dollar sign, not math
    ("The answer is \\$5.50. Thanks.", "\\$5.50"),
    ("the answer is 12.", "12"),
    ("The answer is: -3", "-3"),
    ("the answer is 1/3.", "1/3"),
    ("the answer is 5!", "5!"),
    ("the answer isn't 4; the answer is 5.", "5"),
    ("First the answer is 3. Later: the answer is 4.5.", "4.5"),
    ("the answer is 143. But wait, it is not.", "143"),
    ("the answer is", None),
])
def test_the_answer_is_reads_to_the_end_of_the_sentence(text, expected):
    assert extract_final_answer(text) == expected


def test_a_decimal_answer_sentence_is_graded_right(verifier):
    assert verifier.equivalent(extract_final_answer("So Anna pays $7.78. The final answer is 7.78."), "7.78")
    assert not verifier.equivalent(extract_final_answer("The final answer is 7.78."), "7")


# ---- several boxes ----

@pytest.mark.parametrize("text, expected", [
    ("\\boxed{1},\\boxed{2},\\boxed{3}", "1, 2, 3"),
    ("\\boxed{1} and \\boxed{2} and \\boxed{3}", "1, 2, 3"),
    ("$\\boxed{1}$, $\\boxed{2}$, and $\\boxed{3}$", "1, 2, 3"),
    ("\\boxed{1}\\boxed{2}", "1, 2"),
    ("\\boxed{1}; \\boxed{2}", "1, 2"),
    ("The answer is $\\boxed{2}$ or $\\boxed{-2}$.", "2, -2"),
    ("$x = \\boxed{1}$ or $x = \\boxed{2}$", "1, 2"),
    ("\\( y_1 = \\boxed{2x} \\) and \\( y_2 = \\boxed{3x} \\)", "2x, 3x"),
    ("$$\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}$$", "(2, 2), (6, 2)"),
    ("\\[\n\\boxed{(1, 2)}, \\boxed{(2, 1)}\n\\]", "(1, 2), (2, 1)"),
    ("\\boxed{3}, \\boxed{3}", "3"),  # the same answer twice is one answer
    # boxes that are not joined: the rules for one box apply
    ("first \\boxed{3} then final \\boxed 7", "7"),
    ("\\boxed{1} no no no \\boxed{2}", "2"),
    ("\\boxed{1}. So \\boxed{2}", "2"),
    ("\\boxed{1}\n\n\\boxed{2}", "2"),
    ("First \\boxed{3} is wrong; so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
    ("First we try $\\boxed{3}$, which fails. So the final answer is $\\boxed{7}$. Check: $\\boxed{3}$ fails.", "7"),
    ("So the final answer is $\\boxed{7}$ or $\\boxed{8}$. Check: $\\boxed{3}$ and $\\boxed{4}$ fail.", "7, 8"),
])
def test_boxes_joined_by_a_separator_are_one_list_answer(text, expected):
    assert final_boxed(text) == expected
    assert extract_final_answer(text) == expected


def test_a_multi_answer_question_gets_the_set(verifier):
    for text in ["\\boxed{1},\\boxed{2},\\boxed{3}", "\\boxed{3} and \\boxed{1} and \\boxed{2}"]:
        assert verifier.equivalent(extract_final_answer(text), "\\{1, 2, 3\\}")
        assert verifier.equivalent(extract_final_answer(text), "1, 2, 3")
        assert not verifier.equivalent(extract_final_answer(text), "3")


@pytest.mark.parametrize("hedge", ["\\boxed{17} or \\boxed{16}", "\\boxed{16} or \\boxed{17}",
                                   "\\boxed{17}, \\boxed{16}", "$\\boxed{1}$ and $\\boxed{6}$"])
def test_a_hedge_in_several_boxes_earns_nothing_on_a_single_answer_question(verifier, hedge):
    answer = extract_final_answer(hedge)
    assert not verifier.equivalent(answer, "16")
    assert not answers_match(answer, "16")


@pytest.mark.parametrize("unit, expected", [("\\boxed{1},", "1"), ("\\boxed{1} x ", "1"), ("\\boxed{1}. ", "1"),
                                            ("The answer is \\boxed{1}. ", "1")])
def test_thousands_of_boxes_are_read_in_linear_time(unit, expected):
    text = unit * 6000  # the extraction reads the last 20,000 characters: ~2,000 boxes
    start = time.perf_counter()
    assert extract_final_answer(text) == expected
    assert time.perf_counter() - start < 0.5  # ~10 ms; the quadratic sentence search took 2 s and more


# ---- the agreement script ----

def test_read_cases_accepts_the_documented_format_and_names_a_bad_line():
    lines = ['{"gold": "1", "prediction": "1.0", "expected": true, "id": "a", "answer_only": true}', "",
             '{"gold": "2", "prediction": "3", "expected": 0, "same_settings": true}']
    cases = read_cases(lines)
    assert [(c.name, c.expected, c.answer_only) for c in cases] == [("a", True, True), ("line 3", False, None)]
    assert cases[1].flags == {"same_settings": True}
    for bad in ['{"gold": "1", "prediction": "1"}', '{"gold": 1, "prediction": "1", "expected": true}',
                '["gold"]', "not json", '{"gold": "1", "prediction": "1", "expected": true, "answer_only": "yes"}']:
        with pytest.raises(ValueError, match="line 2"):
            read_cases(['{"gold": "1", "prediction": "1", "expected": true}', bad])


def test_agreement_script_counts_false_positives_and_negatives(tmp_path, capsys):
    cases = [
        {"gold": "42", "prediction": "42", "expected": True, "answer_only": True},  # agrees
        {"gold": "42", "prediction": "43", "expected": True, "answer_only": True, "id": "fn"},  # false negative
        {"gold": "42", "prediction": "42.0", "expected": False, "id": "fp"},  # false positive
        {"gold": "28\\%", "prediction": "The answer is 28 percent.", "expected": True, "id": "needs-extract"},
    ]
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in cases) + "\n")
    assert agreement_main([str(path), "--list"]) == 0
    out = capsys.readouterr().out
    assert "all: 4 cases, agreement 1/4 (25.0%), false positives 1, false negatives 2" in out
    assert "answer-only: 2 cases, agreement 1/2 (50.0%), false positives 0, false negatives 1" in out
    assert "FN fn [answer-only]" in out and "FP fp" in out
    assert agreement_main([str(path), "--extract", "--only", "answer_only"]) == 0
    assert "only answer_only: 2 cases, agreement 1/2" in capsys.readouterr().out
    assert agreement_main([str(path), "--extract"]) == 0
    assert "all: 4 cases, agreement 2/4" in capsys.readouterr().out  # the sentence's answer is found


def test_agreement_script_rejects_a_bad_file(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"gold": "1"}\n')
    assert agreement_main([str(path)]) == 2
    assert "line 1" in capsys.readouterr().err
