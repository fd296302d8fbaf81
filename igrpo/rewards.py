"""Reward callables, keyed by name (the ``reward`` config group).

A reward is a plain TRL reward callable: ``f(prompts, completions, answer, **columns) -> list[float | None]``.
The *same* object ranks Stage-1 drafts and scores Stage-2 refinements (the paper uses the training reward
in both roles). ``None`` marks an ungradeable example (no usable reference answer): TRL excludes it from
the group baseline and gives it zero advantage, and we count it instead of scoring it 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from igrpo.answers import answers_match, extract_final_answer, is_gradeable
from igrpo.errors import choice_error

REWARDS = ("binary",)


class AccuracyReward:
    """1.0 when the extracted final answer equals the reference exactly (after normalisation), else 0.0."""

    __name__ = "accuracy"

    def __init__(self) -> None:
        self.skipped_ungradeable = 0  # running count, logged as reward/ungradeable

    def __call__(self, prompts: Sequence[str], completions: Sequence, answer: Sequence[str], **_) -> list[float | None]:
        scores: list[float | None] = []
        for completion, gold in zip(completions, answer, strict=True):
            if not is_gradeable(gold):
                self.skipped_ungradeable += 1
                scores.append(None)
                continue
            text = completion if isinstance(completion, str) else completion[-1]["content"]
            scores.append(1.0 if answers_match(extract_final_answer(text), gold) else 0.0)
        return scores


class FormatReward:
    """1.0 when a final answer can be extracted at all (the completion follows the answer format)."""

    __name__ = "format"

    def __call__(self, prompts: Sequence[str], completions: Sequence, **_) -> list[float]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        return [1.0 if extract_final_answer(t) is not None else 0.0 for t in texts]


def build_reward_funcs(reward_cfg) -> tuple[list[Callable], list[float]]:
    """Reward callables and their weights for a ``reward`` config."""
    if reward_cfg.name == "binary":
        funcs: list[Callable] = [AccuracyReward()]
        weights = [1.0]
        if reward_cfg.format_weight > 0:
            funcs.append(FormatReward())
            weights.append(float(reward_cfg.format_weight))
        return funcs, weights
    raise choice_error("reward", reward_cfg.name, REWARDS)


def combine_scores(per_func: Sequence[Sequence[float | None]], weights: Sequence[float]) -> list[float | None]:
    """Weighted sum per completion; None when every function declined to score it (as TRL does)."""
    combined: list[float | None] = []
    for values in zip(*per_func, strict=True):
        if all(v is None for v in values):
            combined.append(None)
        else:
            combined.append(sum(w * v for w, v in zip(weights, values, strict=True) if v is not None))
    return combined
