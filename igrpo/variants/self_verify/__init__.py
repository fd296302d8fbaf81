"""Self-Verification (Zhang et al. 2025, arXiv 2506.01369): the policy solves problems and grades its own recent
solutions with a Yes/No verdict, both trained with GRPO. The pure rules (verdicts, weights, the buffer) are
``igrpo.core.self_verify``, the TRL glue ``igrpo.variants.self_verify.trainer``; where the papers are silent
or disagree, their module docstrings say what was chosen.

Budget: ``rollout_budget`` completions per solve or verify prompt; ``verify_mode=replace`` (default) gives verify
prompts the places of solve prompts, so a step's completions equal GRPO's.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from igrpo.config.fields import choice, number
from igrpo.config.model import model_path
from igrpo.errors import ConfigError
from igrpo.variants import Variant, register
from igrpo.core.self_verify import (
    LAYOUTS,
    REWARD_WEIGHTS,
    SCALE_REWARDS,
    VERIFY_MODES,
    num_verify_groups,
    plain_verify_prompt,
    resolve_instruction,
    tiny_verify_prompt,
    verify_messages,
)


@dataclass
class VariantSelfVerify:
    """Self-Verification: the policy solves problems and grades its own recent solutions (Yes/No), both trained
    with GRPO."""

    name: str = MISSING
    verify_fraction: float = number(gt=0, lt=1)  # share of each step's prompts that are verify prompts (0.375: 3 of 8)
    # replace (verify prompts take solve prompts' places: GRPO's budget) | add
    verify_mode: str = choice(*VERIFY_MODES)
    allow_budget_mismatch: bool = MISSING  # permit verify_mode=add (more completions per step than GRPO)
    buffer_steps: int = number(ge=1)  # buffer entries older than this many steps are evicted (paper: 60 of 1-2k steps)
    buffer_max: int = number(ge=1)  # buffer cap (oldest entries dropped first)
    # fix_imbalance (released code) | inverse_frequency (the paper's weighting) | none
    verify_reward_weight: str = choice(*REWARD_WEIGHTS)
    verify_scale_rewards: str = choice(*SCALE_REWARDS)  # verify rows' advantages: batch (keeps the dynamic weight) | ...
    unparseable_reward: float = MISSING  # reward of a verify completion without a verdict line
    max_solution_tokens: int = number(gt=0)  # the graded solution is cut to its last this-many tokens
    instruction: str = MISSING  # the verification request (layout=turns): paper | literal text
    # the verify prompt: tiny (the embedded model's "Q:..\nA:..\nVerify:", which its warm start knows) | turns
    # (the paper's three turns: problem, solution, the instruction; through the chat template when there is one)
    layout: str = choice(*LAYOUTS)


@register
class SelfVerify(Variant):
    name = "self_verify"
    schema = VariantSelfVerify
    no_dynamic_sampling = ("its verify groups take solve groups' places from a buffer of earlier solutions, so a "
                           "resampled round would draw new verify groups in the middle of a step")

    def check_rules(self, cfg) -> None:
        v = cfg.variant
        prompts = cfg.train.prompts_per_step
        k = num_verify_groups(prompts, v.verify_fraction)
        if k < 1 or (v.verify_mode == "replace" and k >= prompts):
            raise ConfigError(f"variant.verify_fraction={v.verify_fraction} gives {k} verify prompts of "
                              f"train.prompts_per_step={prompts}; it must give at least one verify and one solve "
                              "prompt")
        resolve_instruction(v.instruction)
        if v.verify_mode == "add" and not v.allow_budget_mismatch:
            raise ConfigError(f"budget mismatch: variant.verify_mode=add trains {k} extra verify prompts per step on "
                              f"top of train.prompts_per_step={prompts} (more completions per step than GRPO); use "
                              "verify_mode=replace, or set variant.allow_budget_mismatch=true")
        if model_path(cfg.model) is not None and v.layout == "tiny":
            raise ConfigError(f"variant.layout=tiny is the embedded tiny model's verify prompt, not valid with a real "
                              f"model (model.path={model_path(cfg.model)}); set variant.layout=turns (the paper's three "
                              "turns)")

    def make_trainer(self, cfg, task, tokenizer, common: dict):
        from igrpo.variants.self_verify.trainer import SelfVerifyTrainer, wrap_rewards

        v = cfg.variant
        funcs, weights = wrap_rewards(common["reward_funcs"], list(common["args"].reward_weights), v.unparseable_reward)
        common["args"].reward_weights = weights
        return SelfVerifyTrainer(variant=v, verify_prompt=verify_prompt_builder(cfg, task, tokenizer),
                                 selection_seed=cfg.seed, **{**common, "reward_funcs": funcs})


def verify_prompt_builder(cfg, task, tokenizer):
    """``build(problem, solution) -> prompt``: with ``variant.layout=turns`` the three verification turns, through the
    model's chat template when its prompts use one (``model.chat_template``), else as labelled plain text; with
    ``layout=tiny`` the embedded model's compact layout. The solution is cut to its last ``variant.max_solution_tokens``
    tokens."""
    v = cfg.variant
    chat = bool(task.chat_prefix or task.chat_suffix)
    system = cfg.model.get("system_prompt") if chat else None
    instruction = resolve_instruction(v.instruction)
    special = set(tokenizer.all_special_ids)
    adds_bos = tokenizer.bos_token_id is not None and tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]

    def build(problem: str, solution: str) -> str:
        ids = [t for t in tokenizer(solution, add_special_tokens=False)["input_ids"] if t not in special]
        cut = tokenizer.decode(ids[-v.max_solution_tokens:], skip_special_tokens=True)
        if v.layout == "tiny":
            return tiny_verify_prompt(problem, cut)
        user = task.prompt_template.replace("{problem}", problem)
        if not chat:
            return plain_verify_prompt(user, cut, instruction)
        text = tokenizer.apply_chat_template(verify_messages(user, cut, instruction, system), tokenize=False,
                                             add_generation_prompt=True)
        bos = tokenizer.bos_token
        # TRL tokenizes string prompts with the tokenizer's own BOS: one rendered by the template would double it
        return text[len(bos):] if adds_bos and bos and text.startswith(bos) else text

    return build
