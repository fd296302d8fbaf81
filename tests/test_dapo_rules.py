"""The pure rules of DAPO's dynamic sampling and overlong shaping (``igrpo.core.dapo``) and of iGRPO's adaptive
draft budget (``igrpo.core.draft_budget``), on constructed inputs with known answers."""

from __future__ import annotations

import pytest

from igrpo.core.dapo import informative_groups, needs_another_round, overlong_penalty, plan_batch
from igrpo.core.draft_budget import allocate_drafts, histogram, remember, uncertainty
from igrpo.core.metrics import frac_groups_zero_std


# --- dynamic sampling -----------------------------------------------------------------------------------------

def test_flat_groups_are_the_ones_frac_groups_zero_std_counts():
    rewards = [1, 1, 1, 1, 0, 1, 0, 0, 0.5, 0.5, None, 0.5, None, None, None, 1, 0.2, 0.2, 0.2, 0.3]
    flags = informative_groups(rewards, 4)
    assert flags == [False, True, False, False, True]
    assert frac_groups_zero_std(rewards, 4) == flags.count(False) / len(flags)
    with pytest.raises(ValueError):
        informative_groups([1, 0, 1], 2)


def test_batch_takes_informative_groups_in_sampling_order_and_tops_up_with_flat_ones():
    # round 0: groups 1 and 3 informative; round 1: group 0 informative; batch of 4
    rounds = [[False, True, False, True], [True, False, False, False]]
    full = plan_batch(rounds, 3)
    assert full.picks == ((0, 1), (0, 3), (1, 0)) and full.full and full.informative == 3
    short = plan_batch(rounds, 4)  # only 3 informative: one flat group (the first one sampled) fills the batch
    assert short.picks == ((0, 0), (0, 1), (0, 3), (1, 0)) and short.filled == 1 and not short.full
    assert plan_batch([[True, True]], 2).picks == ((0, 0), (0, 1))
    with pytest.raises(ValueError):
        plan_batch([[True]], 2)


def test_rounds_stop_when_the_batch_is_full_or_at_the_cap():
    assert needs_another_round(2, 4, 0, 3)
    assert not needs_another_round(4, 4, 0, 3)
    assert not needs_another_round(1, 4, 3, 3)


# --- overlong shaping ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("length", "penalty"), [(0, 0.0), (10, 0.0), (16, 0.0), (17, -0.25), (18, -0.5),
                                                 (19, -0.75), (20, -1.0), (25, -1.0)])
def test_overlong_penalty_is_zero_before_the_buffer_and_linear_to_minus_one_at_the_cap(length, penalty):
    assert overlong_penalty(length, max_length=20, buffer=4) == pytest.approx(penalty)


def test_overlong_penalty_scales_with_the_factor_and_checks_the_buffer():
    assert overlong_penalty(4096 + 1024, max_length=4096 + 2048, buffer=2048, factor=0.5) == pytest.approx(-0.25)
    for bad in (0, 21):
        with pytest.raises(ValueError):
            overlong_penalty(5, max_length=20, buffer=bad)


# --- adaptive draft budget -----------------------------------------------------------------------------------

ALWAYS, NEVER, UNCERTAIN, UNSEEN = [True] * 4, [False] * 4, [True, False, True, False], []


def test_uncertainty_is_zero_for_settled_prompts_and_largest_for_unseen_or_even_ones():
    assert uncertainty(ALWAYS) == uncertainty(NEVER) == 0.0
    assert uncertainty(UNCERTAIN) == uncertainty(UNSEEN) == 0.25
    assert 0 < uncertainty([True, False, False, False]) < 0.25


def test_drafts_go_to_uncertain_prompts_and_the_total_is_kept():
    histories = [ALWAYS, NEVER, UNCERTAIN, UNSEEN]  # N = 4 drafts x 4 prompts = 16
    assert allocate_drafts(histories, total=16, cap=8) == [0, 0, 8, 8]
    assert allocate_drafts(histories, total=16, cap=8, floor=2) == [2, 2, 6, 6]  # the probe, then the rest
    # one uncertain prompt at its cap: the rest is spread evenly over the settled ones (the spend never changes)
    assert allocate_drafts([ALWAYS, NEVER, ALWAYS, UNCERTAIN], total=16, cap=8) == [3, 3, 2, 8]
    # everybody settled: an even spread, i.e. the fixed budget
    assert allocate_drafts([ALWAYS, NEVER, ALWAYS, NEVER], total=16, cap=8) == [4, 4, 4, 4]


def test_more_uncertain_prompts_get_more_drafts():
    lean = [True, False, False, False]  # p = 0.25: weight 0.1875 against 0.25
    counts = allocate_drafts([UNCERTAIN, lean, ALWAYS], total=12, cap=12)
    assert counts[0] > counts[1] > counts[2] == 0 and sum(counts) == 12


def test_allocation_refuses_impossible_totals():
    for total, cap, floor in ((17, 4, 0), (3, 4, 1)):
        with pytest.raises(ValueError):
            allocate_drafts([UNSEEN] * 4, total=total, cap=cap, floor=floor)


def test_history_keeps_the_last_graded_outcomes_and_the_histogram_counts_prompts():
    assert remember([True, True], [False, None, True], window=3) == [True, False, True]
    assert histogram([0, 0, 8, 8, 4], cap=8) == [2, 0, 0, 0, 1, 0, 0, 0, 2]


# --- the overlong penalty as a reward function -----------------------------------------------------------------

def test_overlong_reward_counts_sampled_ids_or_retokenizes_text():
    from igrpo.rewards.overlong import OverlongPenalty

    penalty = OverlongPenalty(max_length=20, buffer=4, factor=1.0,
                              tokenizer=lambda text, add_special_tokens: {"input_ids": list(text)})
    ids = [[1] * 16, [1] * 18, [1] * 20]
    assert penalty(["q"] * 3, ["x"] * 3, completion_ids=ids) == [0.0, -0.5, -1.0]
    assert penalty(["q"] * 2, ["a" * 10, "a" * 19]) == [0.0, -0.75]  # no ids (the baselines' own scoring): text
