"""Schemas of the ``variant`` group (how rollouts are produced and which are trained on) and ``algo``
(the GRPO-family objective)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class VariantGRPO:
    """Plain GRPO: rollout_budget completions per prompt, all trained on."""

    name: str = MISSING


@dataclass
class VariantIGRPO:
    """iGRPO: Stage 1 drafts (no gradient) -> selected draft -> Stage 2 refinements (trained)."""

    name: str = MISSING
    num_drafts: int = MISSING  # N
    num_refinements: int = MISSING  # G; N x rounds + G = rollout_budget unless allow_budget_mismatch
    rounds: int = MISSING  # draft rounds before the trained refinements (1 = the paper)
    allow_budget_mismatch: bool = MISSING  # permit N x rounds + G != rollout_budget (an unmatched comparison)
    selection: str = MISSING  # best | worst | random | first
    tie_break: str = MISSING  # first | shortest: which of equally rewarded drafts is taken
    on_all_zero: str = MISSING  # keep (append the best anyway) | plain (use the plain prompt)
    max_draft_tokens: int = MISSING  # drafts longer than this are cut before entering the prompt
    draft_truncation: str = MISSING  # tail (keep the end, where the answer is) | head
    template: str = MISSING  # named template (igrpo.drafts.TEMPLATES) or literal text with {draft}


@dataclass
class Algo:
    """The GRPO-family objective; every option uses every field (they differ in values)."""

    name: str = MISSING
    loss_type: str = MISSING  # TRL loss aggregation: grpo | dapo | dr_grpo | bnpo
    scale_rewards: str = MISSING  # advantage scaling: group | batch | none
    importance_sampling_level: str = MISSING  # token | sequence (GSPO)
    epsilon: float = MISSING  # lower clip
    epsilon_high: float = MISSING  # upper clip
    beta: float = MISSING  # KL coefficient to the reference policy (paper: 0)
    mask_truncated_completions: bool = MISSING  # drop completions that hit the length cap from the loss
    learning_rate: float = MISSING
    lr_scheduler_type: str = MISSING  # any transformers scheduler name
    warmup_ratio: float = MISSING
    weight_decay: float = MISSING
    max_grad_norm: float = MISSING
    num_iterations: int = MISSING  # policy updates per generation batch (mu)
