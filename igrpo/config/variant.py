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
    # what of the selected draft enters the prompt: full (the whole completion) | answer_section (a reasoning
    # model's text after its last </think>, think tags stripped; the tail when there is none, counted)
    draft_content: str = MISSING
    template: str = MISSING  # named template (igrpo.core.drafts.TEMPLATES) or literal text with {draft}


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
    min_lr_rate: float = MISSING  # cosine: the LR decays to this fraction of the peak (paper: 0.1); 0 = to zero
    warmup_ratio: float = MISSING
    weight_decay: float = MISSING
    max_grad_norm: float = MISSING
    num_iterations: int = MISSING  # policy updates per generation batch (mu)


@dataclass
class VariantCritiqueGRPO:
    """Critique-GRPO (arXiv 2506.03106; igrpo.variants.critique_grpo.rules): initial answers + critique-guided refinements in
    one mixed group, all trained under the plain prompt. Where the papers are silent or disagree: see the module
    docstrings of igrpo.variants.critique_grpo.rules and igrpo.variants.critique_grpo.shaping."""

    name: str = MISSING
    num_initial: int = MISSING  # answers sampled from the plain prompt per prompt (default 7 = budget - 1)
    num_refinements: int = MISSING  # refinements per prompt, trained as if answered from the plain prompt (1)
    # generated per prompt (initial + refinements, + critiques under self_cot) must equal rollout_budget ...
    allow_budget_mismatch: bool = MISSING  # ... unless this is true (refine_from=all and self_cot need it)
    critique: str = MISSING  # indicative_gt (released code) | indicative (no ground truth) | self_cot (policy's own)
    critique_target: str = MISSING  # random_incorrect (a random wrong answer, else a random right one) | random | first
    refine_from: str = MISSING  # one (critique one answer) | all (released code: refine every answer, keep the best)
    shaping_gamma: float = MISSING  # gamma of the refinement rows' shaping f(p) = p / (p + gamma) (paper and code: 0.1)
    scale_rewards: str = MISSING  # none (paper and code: reward - mixed-group mean) | group | batch (divide by std)
    template: str = MISSING  # tiny | paper | literal text with {problem}, {solution} and {critique}
    max_solution_tokens: int = MISSING  # the critiqued answer is cut to its last this-many tokens in the prompt


@dataclass
class VariantSelfVerify:
    """Self-Verification (arXiv 2506.01369; igrpo.variants.self_verify.rules): the policy solves problems and grades its
    own recent solutions (Yes/No), both trained with GRPO. Where the papers are silent or disagree: see the
    module docstring of igrpo.variants.self_verify.rules."""

    name: str = MISSING
    verify_fraction: float = MISSING  # share of each step's prompts that are verify prompts (0.375: 3 of 8)
    verify_mode: str = MISSING  # replace (verify prompts take solve prompts' places: GRPO's budget) | add
    allow_budget_mismatch: bool = MISSING  # permit verify_mode=add (more completions per step than GRPO)
    buffer_steps: int = MISSING  # buffer entries older than this many steps are evicted (paper: 60 of 1-2k steps)
    buffer_max: int = MISSING  # buffer cap (oldest entries dropped first)
    verify_reward_weight: str = MISSING  # fix_imbalance (released code) | inverse_frequency (BASELINES) | none
    verify_scale_rewards: str = MISSING  # verify rows' advantages: batch (keeps the dynamic weight) | group | none
    unparseable_reward: float = MISSING  # reward of a verify completion without a verdict line
    max_solution_tokens: int = MISSING  # the graded solution is cut to its last this-many tokens in the verify prompt
    instruction: str = MISSING  # the verification request (layout=turns): paper | literal text
    # the verify prompt: tiny (the embedded model's "Q:..\nA:..\nVerify:", which its warm start knows) | turns
    # (the paper's three turns: problem, solution, the instruction; through the chat template when there is one)
    layout: str = MISSING
