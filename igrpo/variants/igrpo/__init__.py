"""iGRPO: each step samples N drafts per prompt (no gradient), scores them with the training reward, puts the
selected draft into the prompt through a refinement template, samples G refinements of that prompt and trains on
the refinements only. The pure rules (selection, truncation, template, budget) are ``igrpo.core.drafts``; the
trainer is ``igrpo.variants.igrpo.trainer``.

Budget: N x rounds + G completions per prompt per step, matched to GRPO's ``rollout_budget`` unless
``allow_budget_mismatch``; TRL trains on the G refinements as one group. ``draft_budget=adaptive`` shares the step's
N x P drafts out unevenly among its P prompts (``igrpo.core.draft_budget``): the total, and so the spend, is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING, OmegaConf

from igrpo.config.checks import check_format_placeholders
from igrpo.config.fields import choice, number
from igrpo.config.model import model_path
from igrpo.core.draft_budget import DRAFT_BUDGETS
from igrpo.core.drafts import (
    ALL_ZERO_POLICIES,
    DRAFT_CONTENTS,
    SELECTION_RULES,
    TIE_BREAKS,
    TRUNCATION_SIDES,
    check_budget,
    resolve_template,
)
from igrpo.errors import ConfigError
from igrpo.variants import Variant, register

MIN_REAL_DRAFT_TOKENS = 256  # under this a real model's draft is an answer hint, not a draft (the tiny model: 16)


@dataclass
class VariantIGRPO:
    """iGRPO: Stage 1 drafts (no gradient) -> selected draft -> Stage 2 refinements (trained)."""

    name: str = MISSING
    num_drafts: int = MISSING  # N
    num_refinements: int = MISSING  # G; N x rounds + G = rollout_budget unless allow_budget_mismatch
    rounds: int = MISSING  # draft rounds before the trained refinements (1 = the paper)
    allow_budget_mismatch: bool = MISSING  # permit N x rounds + G != rollout_budget (an unmatched comparison)
    selection: str = choice(*SELECTION_RULES)  # which draft is shown
    tie_break: str = choice(*TIE_BREAKS)  # which of equally rewarded drafts is taken
    on_all_zero: str = choice(*ALL_ZERO_POLICIES)  # keep (append the best anyway) | plain (use the plain prompt)
    max_draft_tokens: int = number(gt=0)  # drafts longer than this are cut before entering the prompt
    draft_truncation: str = choice(*TRUNCATION_SIDES)  # tail (keep the end, where the answer is) | head
    # what of the selected draft enters the prompt: full (the whole completion) | answer_section (a reasoning
    # model's text after its last </think>, think tags stripped; the tail when there is none, counted)
    draft_content: str = choice(*DRAFT_CONTENTS)
    template: str = MISSING  # named template (igrpo.core.drafts.TEMPLATES) or literal text with {draft}
    # fixed (N drafts per prompt, the paper) | adaptive (the step's N x P drafts go to the prompts whose drafts are
    # uncertain: igrpo.core.draft_budget); the fields below apply to adaptive only
    draft_budget: str = choice(*DRAFT_BUDGETS, neutral="fixed")
    draft_probe: int = number(ge=0, needs=("draft_budget", "adaptive"))  # drafts every prompt gets first
    max_drafts_per_prompt: int = number(ge=1, needs=("draft_budget", "adaptive"))
    draft_history: int = number(ge=1, needs=("draft_budget", "adaptive"))  # graded drafts remembered per prompt


@register
class IGRPO(Variant):
    name = "igrpo"
    schema = VariantIGRPO
    shown_solution_cap = "max_draft_tokens"
    draft_conditioned = True

    def group_size(self, cfg) -> int:
        return cfg.variant.num_refinements

    def generated_per_prompt(self, cfg) -> int:
        v = cfg.variant
        return v.num_drafts * v.rounds + v.num_refinements

    def check(self, cfg) -> None:
        v = cfg.variant
        _check_derived_refinements(cfg)  # before the field rules: a derived G below 2 is num_drafts' fault
        check_budget(cfg.rollout_budget, v.num_drafts, v.num_refinements, v.allow_budget_mismatch, v.rounds)
        super().check(cfg)
        check_format_placeholders("variant.template", resolve_template(v.template), ("draft", "problem", "prompt"))
        _check_draft_budget(v)
        _refuse_tiny_settings_on_real_models(cfg)

    def make_trainer(self, cfg, task, tokenizer, common: dict):
        from igrpo.tasks.prompts import refinement_template
        from igrpo.variants.igrpo.trainer import IGRPOTrainer

        return IGRPOTrainer(variant=cfg.variant, refinement_template=refinement_template(task, cfg.variant.template),
                            selection_seed=cfg.seed, max_prompt_tokens=cfg.train.max_prompt_tokens, **common)


def _check_derived_refinements(cfg) -> None:
    """When G is derived (N x rounds + G = rollout_budget), a G below 2 is the fault of what the user set."""
    v = cfg.variant
    if not OmegaConf.is_interpolation(v, "num_refinements") or v.allow_budget_mismatch:
        return
    left = cfg.rollout_budget - v.num_drafts * v.rounds
    if left < 2:
        most = (cfg.rollout_budget - 2) // max(v.rounds, 1)
        raise ConfigError(f"variant.num_drafts={v.num_drafts} is not valid with rollout_budget={cfg.rollout_budget} "
                          f"and variant.rounds={v.rounds}: it leaves {left} refinements (rollout_budget - num_drafts x "
                          f"rounds) and iGRPO needs at least 2; use variant.num_drafts<={most} or raise rollout_budget")


def _check_draft_budget(v) -> None:
    """The adaptive budget shares one round's N x P drafts: the probe fits in N, the cap holds N."""
    if v.draft_budget != "adaptive":
        return
    if v.rounds != 1:
        raise ConfigError(f"variant.draft_budget=adaptive is not valid with variant.rounds={v.rounds}; it shares out "
                          "one round of drafts: use variant.rounds=1 or variant.draft_budget=fixed")
    if v.draft_probe > v.num_drafts:
        raise ConfigError(f"variant.draft_probe={v.draft_probe} is not valid with variant.num_drafts={v.num_drafts}: "
                          f"the probe is part of the N drafts per prompt; use variant.draft_probe<={v.num_drafts}")
    if v.max_drafts_per_prompt < v.num_drafts:
        raise ConfigError(f"variant.max_drafts_per_prompt={v.max_drafts_per_prompt} is not valid with "
                          f"variant.num_drafts={v.num_drafts}: the cap must hold the even share; use "
                          f"variant.max_drafts_per_prompt>={v.num_drafts}")


def _refuse_tiny_settings_on_real_models(cfg) -> None:
    """The embedded tiny model's refinement format and draft cap make no sense on a real model: the ``tiny``
    template is a format only the tiny model was warm-started on, and a draft cut to a few tokens is an answer
    hint, not a draft. A cap at or above the completion cap cuts nothing and is allowed."""
    path, v = model_path(cfg.model), cfg.variant
    if path is None:
        return
    if v.template == "tiny":
        raise ConfigError(f"variant.template=tiny is the embedded tiny model's refinement format, not valid with "
                          f"a real model (model.path={path}); use experiment=paper (its refinement settings for real "
                          "models) or set variant.template=paper")
    if v.max_draft_tokens < min(MIN_REAL_DRAFT_TOKENS, cfg.generation.max_completion_length):
        raise ConfigError(f"variant.max_draft_tokens={v.max_draft_tokens} is the embedded tiny model's draft cap "
                          f"(a real model's draft cut to {v.max_draft_tokens} tokens is an answer hint, not a "
                          f"draft); with a real model (model.path={path}) use experiment=paper or set "
                          f"variant.max_draft_tokens >= {MIN_REAL_DRAFT_TOKENS}")
