"""Schemas of the ``reward`` group and its nested ``reward/judge`` group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from igrpo.config.fields import check_option, choice, number
from igrpo.errors import ConfigError
from igrpo.rewards import REWARDS, VERIFIERS
from igrpo.rewards.judge import BACKENDS
from igrpo.rewards.judge.protocol import VERDICT_MODES


def judge_model_ref(cfg) -> str | None:
    """The judge model a run loads: ``reward.judge.model`` of an hf judge, or of a tiny judge built before (its
    directory); None when no judge model is loaded (no judge, the http judge, the tiny judge built here)."""
    if cfg.reward.name != "judge" or cfg.reward.judge.backend == "http":
        return None
    return cfg.reward.judge.get("model")


def check_judge_here(cfg) -> None:
    """The judge model is usable on this machine (``igrpo.config.model.check_model_here``)."""
    from igrpo.config.model import check_model_here

    check_model_here("reward.judge.model", judge_model_ref(cfg))


@dataclass
class JudgeCommon:
    """What every judge backend shares: the prompt, how its output becomes a score, the fallback."""

    backend: str = choice(*BACKENDS)  # the option of the reward/judge group
    template: str = MISSING  # judge prompt: tiny | paper | literal text with {problem} {reference} {candidate}
    verdict: str = choice(*VERDICT_MODES)  # answer: P(judge restates the reference) | word: P(correct word)
    use_reference: bool = MISSING  # word mode: show the judge the reference
    correct: str = MISSING  # word mode: the verdict word for a correct candidate
    incorrect: str = MISSING  # word mode: the verdict word for a wrong candidate
    max_candidate_chars: int = number(gt=0)  # the judge sees the candidate's last N characters
    fallback_score: float = number(ge=0, le=1)  # score for unreadable judge output or failed requests (counted)


@dataclass
class JudgeTiny(JudgeCommon):
    """The embedded tiny judge, built in-project on first use (or a built directory in ``model``)."""

    model: str | None = MISSING  # None = build the embedded judge; else a directory of a built one
    batch_size: int = number(gt=0)  # prompts per forward pass
    hidden_size: int = MISSING
    num_layers: int = MISSING
    num_heads: int = MISSING
    intermediate_size: int = MISSING
    build_steps: int = MISSING  # cap on supervised steps
    build_batch_size: int = MISSING
    build_lr: float = MISSING
    build_target_auroc: float = MISSING  # stop once dev AUROC reaches this (checked every build_eval_every)
    build_eval_every: int = MISSING
    build_pool_size: int = MISSING  # distinct training problems for judge candidates
    build_heldout_size: int = MISSING  # held-out candidates (eval-suite problems) for the reported AUROC
    build_augment_fraction: float = number(ge=0, le=1)  # share of training candidates that are hack-style (igrpo.rewards.judge.hacks)
    build_target_hack_score: float = number(ge=0, le=1)  # stop only once every hack family's dev mean score is at most this
    build_target_hack_max: float = number(ge=0, le=1)  # ... and no single dev hack candidate scores above this
    build_hack_problems: int = number(gt=0)  # held-out problems the hack suite is measured on at build


@dataclass
class JudgeHF(JudgeCommon):
    """Any local or hub causal LM as the judge."""

    model: str = MISSING  # hub id or directory
    batch_size: int = number(gt=0)  # prompts per forward pass
    max_candidate_tokens: int = number(ge=0)  # the candidate's last N tokens of the judge's tokenizer (0 = no token cap)


@dataclass
class JudgeHTTP(JudgeCommon):
    """An OpenAI-compatible completions endpoint (with logprobs) as the judge."""

    url: str | None = MISSING  # base URL, e.g. http://127.0.0.1:8000/v1 (required)
    api_model: str = MISSING  # the model name sent with each request
    concurrency: int = number(gt=0)  # requests in flight
    timeout_s: float = number(gt=0)  # per request
    max_retries: int = number(ge=0)  # retries on errors, timeouts, 429/5xx (exponential backoff)
    backoff_s: float = number(ge=0)  # first retry delay
    cache_size: int = number(gt=0)  # verdicts cached by (problem, reference, candidate)

    @staticmethod
    def check(j, cfg) -> None:
        if not j.url:
            raise ConfigError("reward.judge.url is required for reward.judge.backend=http "
                              "(e.g. reward.judge.url=http://127.0.0.1:8000/v1)")


@dataclass
class RewardBinary:
    """1 if the extracted final answer is equivalent to the reference, else 0 (+ optional format reward)."""

    name: str = choice(*REWARDS)
    format_weight: float = number(ge=0)  # weight of an optional format reward (0 = none)
    verifier: str = choice(*VERIFIERS)  # math_verify (symbolic, time-limited) | exact (text)
    verify_time_budget_s: float = number(gt=0)  # math_verify: per-call limit, enforced in a killable worker
    verify_workers: int = number(gt=0)  # math_verify: worker processes in the pool (the budget covers waiting for one)


@dataclass
class RewardJudge(RewardBinary):
    """A generative judge's score in [0, 1]; accuracy (the verifier) is still logged at weight 0."""

    judge: Any = MISSING  # one of JudgeTiny | JudgeHF | JudgeHTTP (the reward/judge group)

    @staticmethod
    def check(r, cfg) -> None:
        check_option(r.judge, "reward.judge", cfg)
        if r.judge.backend == "tiny" and cfg.task.name != "arith":
            raise ConfigError(f"reward.judge.backend=tiny is the embedded judge of the arithmetic task (trained on "
                              f"its answers only), not valid with task={cfg.task.name}; use experiment=paper_judge (a "
                              "real judge, reward/judge=hf) or reward/judge=hf|http")
