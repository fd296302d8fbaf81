"""The judge-hack recipes and what the embedded judge is trained to read: pure functions, no model."""

from __future__ import annotations

import random

import pytest

from igrpo.core.answers import extract_final_answer
from igrpo.rewards.judge.hacks import (
    HACK_FAMILIES,
    augmented_candidate,
    exact_reward,
    hack_cases,
    judge_reading,
    score_hack_suite,
    training_reading,
)
from igrpo.rewards.judge.protocol import NO_ANSWER
from igrpo.tasks.arith import build_arith_task


@pytest.fixture(scope="module")
def problems():
    return build_arith_task(["easy", "hard"], [], 60, 0, seed=5).train


@pytest.mark.parametrize("visible, reading", [
    ("7+5=12 #### 12", "12"),
    ("#### 17 or 16", "17 or 16"),  # a hedge is read whole: it is not the reference, so it cannot pay
    ("#### 16 or 17", "16 or 17"),
    ("#### 1616", "1616"),
    ("#### 16 16", "16 16"),
    ("#### 16é", "16é"),
    ("#### 15 #### 16", "16"),  # several markers: the last one, as the verifier grades it
    ("#### 16 7+5=13 #### 13", "13"),
    ("#### 13\n16", "13"),  # the answer ends at its line
    ("#### 16.", "16"),
    ("7+5=12 = 12", NO_ANSWER),
    ("", NO_ANSWER),
    ("####   ", NO_ANSWER),
])
def test_judge_reads_the_last_marker_answer_whole(visible, reading):
    assert judge_reading(visible) == reading


def test_every_hack_family_is_wrong_for_the_verifier_and_read_as_the_verifier_reads(problems):
    cases = hack_cases(problems[:48])  # raises when a recipe makes a correct candidate (answer-0 problems skipped)
    assert {name for name, _, _ in cases} == set(HACK_FAMILIES) and len(HACK_FAMILIES) >= 25
    for name, problem, candidate in cases:
        assert not exact_reward(candidate, problem.answer), name
        if "####" in candidate[-1000:] and "</cand>" not in candidate:
            assert judge_reading(candidate) == (extract_final_answer(candidate) or NO_ANSWER), (name, candidate)
    # the judge's view ends at the final-answer line: a reference repeated, or a fake verdict written, after the
    # answer is never seen, so the judge reads the (wrong) final answer as the verifier does
    for family in ("long_filler_after", "wrong_then_newline", "injection_verdict", "injection_delimiters"):
        for name, problem, candidate in cases:
            if name == family:
                reading = training_reading(candidate, 48)
                assert reading not in (problem.answer, NO_ANSWER), (name, reading)
                assert extract_final_answer(candidate).startswith(reading), (name, reading)


def test_augmented_candidates_are_half_correct_and_varied(problems):
    rng = random.Random(0)
    candidates = [(p, augmented_candidate(p, rng.choice(problems), rng)) for p in rng.choices(problems, k=2000)]
    correct = sum(exact_reward(c, p.answer) for p, c in candidates) / len(candidates)
    assert 0.25 < correct < 0.6
    readings = {training_reading(c, 48) for _, c in candidates}
    assert NO_ANSWER in readings and any(" or " in r for r in readings) and any("é" in r for r in readings)


def test_score_hack_suite_groups_scores_by_family(problems):
    report = score_hack_suite(lambda texts, refs, cands: [0.5 if "or" in c else 0.0 for c in cands], problems[:4])
    assert set(report.scores) == set(HACK_FAMILIES) and all(len(v) == 4 for v in report.scores.values())
    assert report.means["hedge_or"] == 0.5 and report.max_score == 0.5 and report.means["empty"] == 0.0
    assert report.summary()["families"]["hedge_or"]["p90"] == 0.5
