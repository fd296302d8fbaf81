"""Value checks that the typed schemas cannot express. Each failure is a ConfigError with one line
naming the bad value and what is allowed. Runs before anything is written (no MLflow run, no files)."""

from __future__ import annotations

import os

from igrpo.drafts import ALL_ZERO_POLICIES, SELECTION_RULES, TIE_BREAKS, TRUNCATION_SIDES, check_budget, resolve_template
from igrpo.entropy import check_schedule
from igrpo.errors import ConfigError, choice_error
from igrpo.rewards import REWARDS
from igrpo.tasks.arith import LEVELS
from igrpo.tasks.registry import TASKS

VARIANTS = ("grpo", "igrpo")
LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "bnpo")
SCALE_REWARDS = ("group", "batch", "none")
IMPORTANCE_LEVELS = ("token", "sequence")
GENERATION_BACKENDS = ("hf",)
DEVICES = ("cpu", "cuda")
DTYPES = ("float32", "bfloat16", "float16")


def _choice(field: str, value, choices) -> None:
    if value not in choices:
        raise choice_error(field, value, choices)


def _positive(field: str, value, strict: bool = True) -> None:
    if value is None or (value <= 0 if strict else value < 0):
        bound = "> 0" if strict else ">= 0"
        raise ConfigError(f"{field}={value} is not valid; it must be {bound}")


def validate(cfg) -> None:
    """Raise ConfigError on the first invalid value."""
    from igrpo.models.loading import looks_like_local_path

    _choice("variant", cfg.variant.name, VARIANTS)
    if cfg.variant.name == "igrpo":
        v = cfg.variant
        check_budget(cfg.rollout_budget, v.num_drafts, v.num_refinements, v.allow_budget_mismatch, v.rounds)
        _choice("variant.selection", v.selection, SELECTION_RULES)
        _choice("variant.tie_break", v.tie_break, TIE_BREAKS)
        _choice("variant.on_all_zero", v.on_all_zero, ALL_ZERO_POLICIES)
        _choice("variant.draft_truncation", v.draft_truncation, TRUNCATION_SIDES)
        _positive("variant.max_draft_tokens", v.max_draft_tokens)
        resolve_template(v.template)
    if cfg.rollout_budget < 2:
        raise ConfigError(f"rollout_budget={cfg.rollout_budget} is not valid; it must be >= 2")

    a = cfg.algo
    _choice("algo.loss_type", a.loss_type, LOSS_TYPES)
    _choice("algo.scale_rewards", a.scale_rewards, SCALE_REWARDS)
    _choice("algo.importance_sampling_level", a.importance_sampling_level, IMPORTANCE_LEVELS)
    _positive("algo.learning_rate", a.learning_rate)
    _positive("algo.epsilon", a.epsilon, strict=False)
    _positive("algo.epsilon_high", a.epsilon_high, strict=False)
    _positive("algo.beta", a.beta, strict=False)
    _positive("algo.max_grad_norm", a.max_grad_norm)
    _positive("algo.num_iterations", a.num_iterations)
    if not 0 <= a.warmup_ratio < 1:
        raise ConfigError(f"algo.warmup_ratio={a.warmup_ratio} is not valid; it must be in [0, 1)")

    _choice("reward", cfg.reward.name, REWARDS)
    _positive("reward.format_weight", cfg.reward.format_weight, strict=False)
    check_schedule(cfg.entropy)
    _choice("generation", cfg.generation.name, GENERATION_BACKENDS)
    _positive("generation.temperature", cfg.generation.temperature)
    _positive("generation.max_completion_length", cfg.generation.max_completion_length)
    if not 0 < cfg.generation.top_p <= 1:
        raise ConfigError(f"generation.top_p={cfg.generation.top_p} is not valid; it must be in (0, 1]")

    _choice("task", cfg.task.name, TASKS)
    if not cfg.task.eval_suites:
        raise ConfigError("task.eval_suites=[] is not valid; name at least one suite")
    for level in [*cfg.task.train_levels, *cfg.task.eval_suites]:
        _choice("task level", level, LEVELS)
    _positive("task.train_size", cfg.task.train_size)
    _positive("task.eval_size", cfg.task.eval_size)

    _positive("train.steps", cfg.train.steps)
    _positive("train.prompts_per_step", cfg.train.prompts_per_step)
    _positive("eval.samples_per_problem", cfg.eval.samples_per_problem)
    _positive("eval.temperature", cfg.eval.temperature)
    _positive("eval.every_steps", cfg.eval.every_steps, strict=False)
    _positive("tracking.rollout_log_every", cfg.tracking.rollout_log_every, strict=False)

    objectives = objective_choices(cfg)
    if cfg.objective not in objectives:
        raise choice_error("objective", cfg.objective, objectives)

    _choice("device", cfg.device, DEVICES)
    _choice("model.dtype", cfg.model.dtype, DTYPES)
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device=cuda is not valid here: no CUDA device is visible; use device=cpu")
    path = cfg.model.path
    if path is not None and looks_like_local_path(path) and not os.path.isdir(os.path.expanduser(path)):
        raise ConfigError(f"model.path={path!r} does not exist; give an existing model directory or a hub id")


def objective_choices(cfg) -> list[str]:
    """The final metrics a run logs, any of which a sweeper can optimise."""
    k = cfg.eval.samples_per_problem
    metrics = [f"avg_at_{k}"] + (["greedy"] if cfg.eval.greedy else [])
    suites = [*cfg.task.eval_suites, "mean"]
    return [f"{prefix}/{suite}/{m}" for prefix in ("eval", "eval_gain") for suite in suites for m in metrics]
