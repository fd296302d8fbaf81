"""reward=binary on real math answers (math_verify through igrpo.rewards.verify), called from worker threads too."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from omegaconf import OmegaConf

from igrpo.rewards import AccuracyReward, FormatReward, build_reward_funcs, combine_scores


def binary(verifier: str = "math_verify", format_weight: float = 0.0):
    cfg = OmegaConf.create({"name": "binary", "format_weight": format_weight, "verifier": verifier,
                            "verify_time_budget_s": 2.0, "verify_workers": 2})
    return build_reward_funcs(cfg)


def test_binary_reward_uses_symbolic_equivalence():
    (accuracy,), weights = binary()
    completions = ["so x = \\boxed{\\frac{1}{2}}", "#### 0.5", "the answer is 1/3.", "\\boxed{\\{2, 1\\}}", "no answer"]
    answers = ["0.5", "\\frac{1}{2}", "0.5", "\\{1,2\\}", "7"]
    assert accuracy(prompts=[""] * 5, completions=completions, answer=answers) == [1.0, 1.0, 0.0, 1.0, 0.0]
    assert weights == [1.0]


def test_exact_verifier_is_plain_text_match():
    (accuracy,), _ = binary(verifier="exact")
    assert accuracy(prompts=["", ""], completions=["#### 0.50", "\\boxed{\\frac{1}{2}}"], answer=["0.5", "0.5"]) == [
        1.0, 0.0]


def test_ungradeable_references_are_skipped_and_counted():
    (accuracy,), _ = binary()
    assert accuracy(prompts=["", ""], completions=["#### 3", "#### 3"], answer=["3", "  "]) == [1.0, None]
    assert accuracy.drain_metrics() == {"reward/ungradeable": 1.0}
    assert accuracy.drain_metrics() == {"reward/ungradeable": 0.0}


def test_format_reward_is_weighted_and_combined():
    funcs, weights = binary(format_weight=0.5)
    assert isinstance(funcs[0], AccuracyReward) and isinstance(funcs[1], FormatReward) and weights == [1.0, 0.5]
    per_func = [f(prompts=["", ""], completions=["#### 4", "#### 5"], answer=["4", "4"]) for f in funcs]
    assert combine_scores(per_func, weights) == [1.5, 0.5]


@pytest.mark.parametrize("completion", [
    "\\boxed{" + "9" * 100_000 + "}",
    "\\boxed{10^{10^{10}}}",
    "\\boxed{" + "{" * 3000 + "1" + "}" * 3000 + "}",
    "x" * 100_000 + " #### 2^{999999999}",
])
def test_pathological_completions_never_hang_a_step(completion):
    """Called from a worker thread (as async reward loops do): returns within the time budget."""
    (accuracy,), _ = binary()
    start = time.perf_counter()
    with ThreadPoolExecutor(1) as pool:
        scores = pool.submit(accuracy, prompts=[""], completions=[completion], answer=["2"]).result(timeout=10)
    assert scores == [0.0]
    assert time.perf_counter() - start < 2.0 + 1.0
