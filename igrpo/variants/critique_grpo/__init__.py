"""Critique-GRPO (Zhang et al. 2025, arXiv 2506.03106): initial answers plus critique-guided refinements in one
mixed group, all trained under the plain question. The pure rules are ``igrpo.core.critique``, the
refinement rows' loss ``igrpo.variants.critique_grpo.shaping``, the TRL glue ``igrpo.variants.critique_grpo.trainer``;
where the papers are silent or disagree, their module docstrings say what was chosen.

Budget: ``num_initial`` answers + refinements (+ generated critiques under ``critique=self_cot``; ``refine_from=all``
refines every initial answer) per prompt per step, matched to ``rollout_budget`` unless ``allow_budget_mismatch``;
TRL trains on the mixed group of ``num_initial + num_refinements``.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from igrpo.config.fields import choice, number
from igrpo.config.model import model_path
from igrpo.errors import ConfigError
from igrpo.variants import Variant, register
from igrpo.core.critique import (
    CRITIQUES,
    REFINE_FROM,
    SCALE_REWARDS,
    TARGETS,
    resolve_refine_template,
    self_critique_template,
)


@dataclass
class VariantCritiqueGRPO:
    """Critique-GRPO: initial answers + critique-guided refinements in one mixed group, all trained under the plain
    prompt."""

    name: str = MISSING
    num_initial: int = number(ge=1)  # answers sampled from the plain prompt per prompt (default 7 = budget - 1)
    num_refinements: int = number(ge=1)  # refinements per prompt, trained as if answered from the plain prompt (1)
    # generated per prompt (initial + refinements, + critiques under self_cot) must equal rollout_budget ...
    allow_budget_mismatch: bool = MISSING  # ... unless this is true (refine_from=all and self_cot need it)
    # indicative_gt (released code) | indicative (no ground truth) | self_cot (the policy's own critique)
    critique: str = choice(*CRITIQUES)
    critique_target: str = choice(*TARGETS)  # random_incorrect (a random wrong answer, else a right one) | random | first
    refine_from: str = choice(*REFINE_FROM)  # one (critique one answer) | all (released code: refine every answer)
    # gamma of the refinement rows' shaping f(p) = p / (p + gamma) (paper and code: 0.1)
    shaping_gamma: float = number(gt=0, why="(f(p) = p / (p + gamma))")
    # none (paper and code: reward - mixed-group mean) | group | batch (divide by std)
    scale_rewards: str = choice(*SCALE_REWARDS)
    template: str = MISSING  # tiny | paper | literal text with {problem}, {solution} and {critique}
    max_solution_tokens: int = number(gt=0)  # the critiqued answer is cut to its last this-many tokens in the prompt


@register
class CritiqueGRPO(Variant):
    name = "critique_grpo"
    schema = VariantCritiqueGRPO
    shown_solution_cap = "max_solution_tokens"

    def group_size(self, cfg) -> int:
        return cfg.variant.num_initial + cfg.variant.num_refinements

    def generated_per_prompt(self, cfg) -> int:
        v = cfg.variant
        critiqued = v.num_initial if v.refine_from == "all" else 1
        refinements = v.num_initial if v.refine_from == "all" else v.num_refinements
        return v.num_initial + refinements + (critiqued if v.critique == "self_cot" else 0)

    def check_rules(self, cfg) -> None:
        v = cfg.variant
        resolve_refine_template(v.template)
        if v.refine_from == "all" and v.num_refinements > v.num_initial:
            raise ConfigError(f"variant.num_refinements={v.num_refinements} is not valid with variant.refine_from=all: "
                              f"it keeps the best refinements of the {v.num_initial} initial answers; use <= num_initial")
        spent = self.generated_per_prompt(cfg)
        if spent != cfg.rollout_budget and not v.allow_budget_mismatch:
            extra = " + critiques" if v.critique == "self_cot" else ""
            raise ConfigError(
                f"budget mismatch: critique_grpo generates {spent} completions per prompt (initial + refinements"
                f"{extra}, refine_from={v.refine_from}) != rollout_budget={cfg.rollout_budget}; change "
                "variant.num_initial, or set variant.allow_budget_mismatch=true")
        if model_path(cfg.model) is not None and v.template == "tiny":
            raise ConfigError(f"variant.template=tiny is the embedded tiny model's critique-refinement format, not "
                              f"valid with a real model (model.path={model_path(cfg.model)}); set variant.template=paper")

    def make_trainer(self, cfg, task, tokenizer, common: dict):
        from igrpo.variants.critique_grpo.trainer import CritiqueGRPOTrainer

        v = cfg.variant
        return CritiqueGRPOTrainer(variant=v, refine_template=task.frame(resolve_refine_template(v.template)),
                                   critique_template=task.frame(self_critique_template(v.template)),
                                   selection_seed=cfg.seed, **common)
