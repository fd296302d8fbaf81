"""Reward callables, keyed by name (the ``reward`` config group).

A reward is a plain TRL reward callable: ``f(prompts, completions, answer, **columns) -> list[float | None]``.
The *same* objects rank Stage-1 drafts and score Stage-2 refinements (the paper uses the training reward in
both roles). ``None`` marks an ungradeable example (no usable reference answer): TRL excludes it from the
group baseline and gives it zero advantage, and we count it instead of scoring it 0.

- ``binary``: 1 when the extracted final answer is equivalent to the reference (``math_verify`` through
  ``igrpo.rewards.verify``, or exact normalised text), plus an optional weighted format reward.
- ``judge``: a generative judge's score in [0, 1] (``igrpo.rewards.judge``). Accuracy is still computed with weight 0,
  so ``reward/accuracy`` is logged for every run and judge and checker can be compared step by step.

Rewards with counters expose ``drain_metrics()``; the trainer logs and resets them every step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from igrpo.core.answers import answers_match, extract_final_answer, is_gradeable
from igrpo.core.metrics import combine_scores  # noqa: F401  (re-exported: reward callers combine with it)
from igrpo.errors import choice_error
from igrpo.rewards.judge.protocol import build_judge_prompt, resolve_template

REWARDS = ("binary", "judge")
VERIFIERS = ("math_verify", "exact")


def completion_text(completion) -> str:
    return completion if isinstance(completion, str) else completion[-1]["content"]


class AccuracyReward:
    """1.0 when the extracted final answer is equivalent to the reference, else 0.0; None when ungradeable."""

    __name__ = "accuracy"

    def __init__(self, verifier=None) -> None:
        self.verifier = verifier  # igrpo.rewards.verify.MathVerifier, or None for exact normalised match
        self.ungradeable = 0  # reference answers skipped this step (logged as reward/ungradeable)

    def _gradeable(self, gold) -> bool:
        if self.verifier is None:
            return is_gradeable(gold)
        return gold is not None and self.verifier.gold_is_gradeable(str(gold))

    def _match(self, predicted: str | None, gold: str) -> bool:
        if self.verifier is None:
            return answers_match(predicted, gold)
        return self.verifier.equivalent(predicted, str(gold))

    def __call__(self, prompts: Sequence[str], completions: Sequence, answer: Sequence[str], **_) -> list[float | None]:
        scores: list[float | None] = []
        for completion, gold in zip(completions, answer, strict=True):
            if not self._gradeable(gold):
                self.ungradeable += 1
                scores.append(None)
                continue
            scores.append(1.0 if self._match(extract_final_answer(completion_text(completion)), gold) else 0.0)
        return scores

    def drain_metrics(self) -> dict[str, float]:
        out = {"reward/ungradeable": float(self.ungradeable)}
        self.ungradeable = 0
        return out


class FormatReward:
    """1.0 when a final answer can be extracted at all (the completion follows the answer format)."""

    __name__ = "format"

    def __call__(self, prompts: Sequence[str], completions: Sequence, **_) -> list[float]:
        return [1.0 if extract_final_answer(completion_text(c)) is not None else 0.0 for c in completions]


class JudgeReward:
    """A generative judge's score in [0, 1] for (problem, reference answer if configured, candidate).

    Unreadable judge output gets ``fallback_score`` and is counted (``reward/judge_parse_failures``); so are
    requests that failed after retries (``reward/judge_request_failures``). The step always finishes."""

    __name__ = "judge"

    def __init__(self, backend, template: str, use_reference: bool, max_candidate_chars: int, fallback_score: float,
                 verdict: str = "word"):
        self.backend = backend
        # In answer mode the reference is what gets scored, so it must never appear in the prompt.
        self.use_reference = use_reference or verdict == "answer"
        self.template = resolve_template(template, use_reference and verdict == "word")
        self.max_candidate_chars = max_candidate_chars
        self.fallback_score = fallback_score
        self.parse_failures = 0
        self.request_failures = 0

    def __call__(self, prompts: Sequence[str], completions: Sequence, answer: Sequence[str],
                 problem: Sequence[str] | None = None, **_) -> list[float | None]:
        problems = list(problem) if problem is not None else list(prompts)  # plain problem text when available
        texts = [completion_text(c) for c in completions]
        scores: list[float | None] = [None] * len(texts)
        todo = [i for i, gold in enumerate(answer) if not self.use_reference or is_gradeable(gold)]
        references = [str(answer[i]) if self.use_reference else None for i in todo]
        judge_prompts = [build_judge_prompt(self.template, problems[i], ref, texts[i], self.max_candidate_chars)
                         for i, ref in zip(todo, references)]  # answer-mode templates have no {reference}
        keys = [(problems[i], ref, texts[i]) for i, ref in zip(todo, references)]
        for i, verdict in zip(todo, self.backend.score(judge_prompts, references, keys)):
            if verdict.score is None:
                if verdict.source == "request_failed":
                    self.request_failures += 1
                else:
                    self.parse_failures += 1
                scores[i] = self.fallback_score
            else:
                scores[i] = min(1.0, max(0.0, float(verdict.score)))
        return scores

    def drain_metrics(self) -> dict[str, float]:
        out = {"reward/judge_parse_failures": float(self.parse_failures),
               "reward/judge_request_failures": float(self.request_failures)}
        self.parse_failures = self.request_failures = 0
        return out


def build_reward_funcs(reward_cfg, judge_backend=None) -> tuple[list[Callable], list[float]]:
    """Reward callables and their weights for a ``reward`` config (``judge_backend`` for reward=judge)."""
    if reward_cfg.verifier not in VERIFIERS:
        raise choice_error("reward.verifier", reward_cfg.verifier, VERIFIERS)
    verifier = None
    if reward_cfg.verifier == "math_verify":
        from igrpo.rewards.verify import MathVerifier

        verifier = MathVerifier(time_budget_s=reward_cfg.verify_time_budget_s, workers=reward_cfg.verify_workers)
    accuracy = AccuracyReward(verifier)
    if reward_cfg.name == "binary":
        funcs: list[Callable] = [accuracy]
        weights = [1.0]
    elif reward_cfg.name == "judge":
        if judge_backend is None:
            raise ValueError("reward=judge needs a judge backend (igrpo.rewards.judge.build_judge)")
        j = reward_cfg.judge
        funcs = [JudgeReward(judge_backend, j.template, j.use_reference, j.max_candidate_chars, j.fallback_score,
                             verdict=j.verdict), accuracy]
        weights = [1.0, 0.0]  # accuracy is logged for comparison, not trained on
    else:
        raise choice_error("reward", reward_cfg.name, REWARDS)
    if reward_cfg.format_weight > 0:
        funcs.append(FormatReward())
        weights.append(float(reward_cfg.format_weight))
    return funcs, weights
