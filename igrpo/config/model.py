"""Schemas of the ``model`` group: the embedded tiny model and any Hugging Face causal LM."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING


@dataclass
class ModelCommon:
    name: str = MISSING  # label used in run names and tags
    dtype: str = MISSING  # float32 | bfloat16 | float16; the half types need device=cuda
    cache_dir: str | None = MISSING  # where built models (policy, tiny judge) are cached; None = .cache/igrpo


@dataclass
class ModelTiny(ModelCommon):
    """The embedded ~1M-parameter Llama with a character tokenizer, built and warm-started in-project."""

    hidden_size: int = MISSING  # width of the Llama blocks
    num_layers: int = MISSING  # transformer blocks
    num_heads: int = MISSING  # attention heads (no grouped-query attention)
    intermediate_size: int = MISSING  # MLP width
    max_positions: int = MISSING  # longest prompt + completion, in characters
    # warm start: a short supervised phase so the base is partially correct
    warmstart_steps: int = MISSING  # hard cap on supervised steps
    warmstart_target_accuracy: float = MISSING  # stop early once greedy dev accuracy reaches this
    warmstart_eval_every: int = MISSING  # steps between dev-accuracy checks
    warmstart_first_check: int = MISSING  # no dev checks before this step
    warmstart_batch_size: int = MISSING
    warmstart_lr: float = MISSING
    # auxiliary prompt formats made in-distribution (igrpo.models.warmstart.FORMATS): refine | critique | verify;
    # one base for every variant, so each method's own prompt is known to it
    warmstart_formats: list[str] = MISSING
    warmstart_format_fraction: float = MISSING  # share of batches in an auxiliary format (split equally among them)
    warmstart_corrupt_fraction: float = MISSING  # share of shown drafts / critiqued answers that are corrupted
    warmstart_pool_size: int = MISSING  # distinct training problems drawn for the warm start
    # the base's own seed (initial weights, warm-start batches, dev draw): vary it with the run seed to count the
    # base's variance in a seed interval (experiments' specs say when they do); 0 = the default base
    warmstart_seed: int = MISSING
    # drafts in warm-start prompts are cut to their last N characters; null = whole drafts (iGRPO as the paper defines it)
    warmstart_max_draft_tokens: Optional[int] = MISSING
    # arithmetic levels the warm start teaches (one base for every task level: a task's harder levels are harder
    # for the same base); its dev accuracy is measured on their mix
    warmstart_levels: list[str] = MISSING


@dataclass
class ModelHF(ModelCommon):
    """Any Hugging Face causal LM by hub id or local directory (the paper's base models included)."""

    path: str = MISSING  # HF hub id or local directory
    chat_template: bool = MISSING  # wrap every prompt (plain, draft-conditioned, eval) in the tokenizer's template
    system_prompt: str | None = MISSING  # system message when chat_template is true; None = no system turn
    prompt_template: str | None = MISSING  # user message with {problem}; None = the task's own
    attn_implementation: str = MISSING  # transformers attention kernel: sdpa | flash_attention_2 (needs flash-attn) | eager
