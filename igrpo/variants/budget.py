"""The matched rollout budget across every variant, and the value checks of the two baseline variants.

``generated_per_prompt(cfg)`` is what each run logs as ``rollouts/generated_per_prompt``: completions generated
per prompt per step (trained or not). At the default budget (8) every variant spends 8: GRPO 8 trained; iGRPO
N x rounds drafts + G refinements; Critique-GRPO initial answers + refinements (+ generated critiques under
``critique=self_cot``; ``refine_from=all`` refines every initial answer); Self-Verification 8 per solve or verify
prompt (``verify_mode=replace`` keeps the prompts per step, so the step's completions equal GRPO's).

Light imports only (``igrpo.config.validate`` calls ``check_baseline_variant``).
"""

from __future__ import annotations

from igrpo.variants import BASELINE_VARIANTS
from igrpo.variants.critique_grpo.rules import check_critique_settings
from igrpo.variants.self_verify.rules import (
    LAYOUTS,
    REWARD_WEIGHTS,
    SCALE_REWARDS,
    VERIFY_MODES,
    num_verify_groups,
    resolve_instruction,
)
from igrpo.errors import ConfigError, choice_error


def group_size(cfg) -> int:
    """Completions per prompt that TRL trains on as one group (its ``num_generations``)."""
    v = cfg.variant
    if v.name == "critique_grpo":
        return v.num_initial + v.num_refinements
    if v.name == "igrpo":
        return v.num_refinements
    return cfg.rollout_budget


def generated_per_prompt(cfg) -> int:
    """Completions generated per prompt per step, trained or not (see the module docstring)."""
    v = cfg.variant
    if v.name == "igrpo":
        return v.num_drafts * v.rounds + v.num_refinements
    if v.name == "critique_grpo":
        critiqued = v.num_initial if v.refine_from == "all" else 1
        refinements = v.num_initial if v.refine_from == "all" else v.num_refinements
        return v.num_initial + refinements + (critiqued if v.critique == "self_cot" else 0)
    return cfg.rollout_budget


def check_baseline_variant(cfg) -> None:
    """One-line ConfigError for a bad value of ``variant=critique_grpo`` or ``variant=self_verify``; nothing for
    other variants."""
    v = cfg.variant
    if v.name not in BASELINE_VARIANTS:
        return
    if v.max_solution_tokens <= 0:
        raise ConfigError(f"variant.max_solution_tokens={v.max_solution_tokens} is not valid; it must be > 0")
    if v.name == "critique_grpo":
        _check_critique(cfg)
    else:
        _check_self_verify(cfg)


def _check_critique(cfg) -> None:
    v = cfg.variant
    check_critique_settings(v.critique, v.critique_target, v.refine_from, v.scale_rewards, v.shaping_gamma, v.template)
    if v.num_initial < 1:
        raise ConfigError(f"variant.num_initial={v.num_initial} is not valid; it must be >= 1")
    if v.num_refinements < 1:
        raise ConfigError(f"variant.num_refinements={v.num_refinements} is not valid; it must be >= 1")
    if v.refine_from == "all" and v.num_refinements > v.num_initial:
        raise ConfigError(f"variant.num_refinements={v.num_refinements} is not valid with variant.refine_from=all: "
                          f"it keeps the best refinements of the {v.num_initial} initial answers; use <= num_initial")
    spent = generated_per_prompt(cfg)
    if spent != cfg.rollout_budget and not v.allow_budget_mismatch:
        extra = " + critiques" if v.critique == "self_cot" else ""
        raise ConfigError(
            f"budget mismatch: critique_grpo generates {spent} completions per prompt (initial + refinements{extra}, "
            f"refine_from={v.refine_from}) != rollout_budget={cfg.rollout_budget}; change variant.num_initial, or "
            "set variant.allow_budget_mismatch=true")


def _check_self_verify(cfg) -> None:
    v = cfg.variant
    for field, value, choices in (("verify_mode", v.verify_mode, VERIFY_MODES),
                                  ("verify_reward_weight", v.verify_reward_weight, REWARD_WEIGHTS),
                                  ("verify_scale_rewards", v.verify_scale_rewards, SCALE_REWARDS),
                                  ("layout", v.layout, LAYOUTS)):
        if value not in choices:
            raise choice_error(f"variant.{field}", value, choices)
    if not 0 < v.verify_fraction < 1:
        raise ConfigError(f"variant.verify_fraction={v.verify_fraction} is not valid; it must be in (0, 1)")
    prompts = cfg.train.prompts_per_step
    k = num_verify_groups(prompts, v.verify_fraction)
    if k < 1 or (v.verify_mode == "replace" and k >= prompts):
        raise ConfigError(f"variant.verify_fraction={v.verify_fraction} gives {k} verify prompts of "
                          f"train.prompts_per_step={prompts}; it must give at least one verify and one solve prompt")
    if v.buffer_steps < 1 or v.buffer_max < 1:
        raise ConfigError(f"variant.buffer_steps={v.buffer_steps} / variant.buffer_max={v.buffer_max} are not "
                          "valid; both must be >= 1")
    if v.unparseable_reward != v.unparseable_reward or abs(v.unparseable_reward) == float("inf"):
        raise ConfigError(f"variant.unparseable_reward={v.unparseable_reward} is not valid; give a finite number")
    resolve_instruction(v.instruction)
    if v.verify_mode == "add" and not v.allow_budget_mismatch:
        raise ConfigError(f"budget mismatch: variant.verify_mode=add trains {k} extra verify prompts per step on top "
                          f"of train.prompts_per_step={prompts} (more completions per step than GRPO); use "
                          "verify_mode=replace, or set variant.allow_budget_mismatch=true")
