import random

from igrpo.core.answers import extract_final_answer
from igrpo.tasks.arith import LEVELS, build_arith_task, corrupt_solution, make_problem


def _evaluate_chain(text: str) -> int:
    # independent check of the reference answer: parse the chain left to right without eval()
    total, number, op = 0, "", "+"
    for ch in text + "+":
        if ch.isdigit():
            number += ch
        else:
            total = total + int(number) if op == "+" else total - int(number)
            number, op = "", ch
    return total


def test_reference_answers_are_correct_and_extractable():
    task = build_arith_task(["easy", "hard"], ["easy", "hard"], 300, 50, seed=0)
    for p in task.train + task.eval_suites["hard"]:
        assert int(p.answer) == _evaluate_chain(p.problem) >= 0
        assert extract_final_answer(p.solution) == p.answer


def test_levels_have_their_number_of_terms():
    rng = random.Random(0)
    for level, terms in LEVELS.items():
        p = make_problem(rng, level)
        assert sum(ch in "+-" for ch in p.problem) == terms - 1


def test_train_and_eval_are_disjoint_and_seeded():
    a = build_arith_task(["easy", "hard"], ["easy", "hard"], 2000, 100, seed=0)
    b = build_arith_task(["easy", "hard"], ["easy", "hard"], 500, 100, seed=0)
    held_out = {p.problem for suite in a.eval_suites.values() for p in suite}
    assert not held_out & {p.problem for p in a.train}
    # eval suites do not depend on the train size
    assert [p.problem for p in a.eval_suites["hard"]] == [p.problem for p in b.eval_suites["hard"]]
    c = build_arith_task(["easy", "hard"], ["easy", "hard"], 2000, 100, seed=1)
    assert [p.problem for p in a.eval_suites["hard"]] != [p.problem for p in c.eval_suites["hard"]]


def test_corrupted_draft_is_wrong_but_well_formed():
    task = build_arith_task(["hard"], ["easy"], 100, 10, seed=0)
    rng = random.Random(0)
    for p in task.train:
        bad = corrupt_solution(p.solution, rng)
        assert bad != p.solution
        assert extract_final_answer(bad) is not None
