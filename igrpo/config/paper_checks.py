"""Checks of the paper-scale recipe fields, and refusals of the embedded tiny model's settings where they make no
sense. Each failure is one ConfigError line naming the value and the way out (``igrpo.config.validate`` calls ``check``
before anything is built or written).

The tiny model's defaults (conf/variant/igrpo.yaml, conf/reward/judge/tiny.yaml) are tuned for a ~1M-parameter
character-level model on arithmetic. On a real model they silently produce a different experiment: the ``tiny``
refinement template is a format only the tiny model was warm-started on; a 16-token draft cap turns an R1 draft
into ``is $\\boxed{3}$.``, an answer hint rather than a draft; and the embedded judge was trained on arithmetic
candidates and reads their last 48 characters. So they are refused there, naming the preset that holds the
paper's settings (conf/experiment/). "Real" is decided by the config alone, without loading anything: a model given
by ``model.path`` (a hub id or a directory), as opposed to the embedded model built in-project. A draft cap is refused
only where it cuts drafts (under both 256 and ``generation.max_completion_length``): a tiny HF-format test model with
16-token completions and a 16-token cap keeps every draft whole.
"""

from __future__ import annotations

from igrpo.config import model_path
from igrpo.core.drafts import DRAFT_CONTENTS
from igrpo.errors import ConfigError, choice_error

ATTENTION = ("sdpa", "flash_attention_2", "eager")
MIN_REAL_DRAFT_TOKENS = 256  # under this a real model's draft is an answer hint, not a draft (the tiny model: 16)


def check(cfg, processes: int = 1) -> None:
    """Every check of this module, for a run over ``processes`` processes."""
    refuse_tiny_settings(cfg)
    check_recipe(cfg)
    check_batch(cfg, processes)


def refuse_tiny_settings(cfg) -> None:
    """The embedded tiny model's settings on a real model (or with a real task) are refused in one line."""
    real = model_path(cfg.model) is not None
    v = cfg.variant
    if real and v.name == "igrpo":
        if v.template == "tiny":
            raise ConfigError(f"variant.template=tiny is the embedded tiny model's refinement format, not valid with "
                              f"a real model (model.path={model_path(cfg.model)}); use experiment=paper (its refinement settings for real "
                              "models) or set variant.template=paper")
        # a cap at or above the completion cap cuts nothing (every draft enters whole): only a cap that cuts is refused
        if v.max_draft_tokens < min(MIN_REAL_DRAFT_TOKENS, cfg.generation.max_completion_length):
            raise ConfigError(f"variant.max_draft_tokens={v.max_draft_tokens} is the embedded tiny model's draft cap "
                              f"(a real model's draft cut to {v.max_draft_tokens} tokens is an answer hint, not a "
                              f"draft); with a real model (model.path={model_path(cfg.model)}) use experiment=paper or set "
                              f"variant.max_draft_tokens >= {MIN_REAL_DRAFT_TOKENS}")
    if real and v.name == "critique_grpo" and v.template == "tiny":
        raise ConfigError(f"variant.template=tiny is the embedded tiny model's critique-refinement format, not valid "
                          f"with a real model (model.path={model_path(cfg.model)}); set variant.template=paper")
    if real and v.name == "self_verify" and v.layout == "tiny":
        raise ConfigError(f"variant.layout=tiny is the embedded tiny model's verify prompt, not valid with a real "
                          f"model (model.path={model_path(cfg.model)}); set variant.layout=turns (the paper's three turns)")
    if cfg.reward.name == "judge" and cfg.reward.judge.backend == "tiny" and cfg.task.name != "arith":
        raise ConfigError(f"reward.judge.backend=tiny is the embedded judge of the arithmetic task (trained on its "
                          f"answers only), not valid with task={cfg.task.name}; use experiment=paper_judge (a real "
                          "judge, reward/judge=hf) or reward/judge=hf|http")


def check_recipe(cfg) -> None:
    """The recipe fields of issue #11: LR floor, gradient accumulation, prompt budget, attention, draft content."""
    a, t = cfg.algo, cfg.train
    if not 0 <= a.min_lr_rate < 1:
        raise ConfigError(f"algo.min_lr_rate={a.min_lr_rate} is not valid; it must be in [0, 1) (a fraction of the "
                          "peak learning rate)")
    if a.lr_scheduler_type in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        raise ConfigError(f"algo.lr_scheduler_type={a.lr_scheduler_type} is set for you: use "
                          "algo.lr_scheduler_type=cosine with algo.min_lr_rate=<floor>")
    if a.min_lr_rate > 0 and a.lr_scheduler_type != "cosine":
        raise ConfigError(f"algo.min_lr_rate={a.min_lr_rate} applies to algo.lr_scheduler_type=cosine only (got "
                          f"{a.lr_scheduler_type}); set algo.min_lr_rate=0 or use the cosine schedule")
    if t.gradient_accumulation_steps < 1:
        raise ConfigError(f"train.gradient_accumulation_steps={t.gradient_accumulation_steps} is not valid; it "
                          "must be an integer >= 1")
    if t.max_prompt_tokens is not None and t.max_prompt_tokens <= 0:
        raise ConfigError(f"train.max_prompt_tokens={t.max_prompt_tokens} is not valid; it must be > 0, or null "
                          "(no prompt cap)")
    attention = cfg.model.get("attn_implementation")
    if attention is not None:
        if attention not in ATTENTION:
            raise choice_error("model.attn_implementation", attention, ATTENTION)
        if attention == "flash_attention_2" and cfg.device != "cuda":
            raise ConfigError("model.attn_implementation=flash_attention_2 needs device=cuda; use "
                              "model.attn_implementation=sdpa on CPU")
    if cfg.variant.name == "igrpo" and "draft_content" in cfg.variant:
        if cfg.variant.draft_content not in DRAFT_CONTENTS:
            raise choice_error("variant.draft_content", cfg.variant.draft_content, DRAFT_CONTENTS)


def check_batch(cfg, processes: int) -> None:
    """Each process must hold whole groups (every copy of a prompt on one rank, so each prompt is drafted once and
    every rank drafts for as many prompts), and each process's completions must split into the micro-batches."""
    prompts, k = cfg.train.prompts_per_step, cfg.train.gradient_accumulation_steps
    if prompts <= 0 or k < 1:
        return  # refused by the range checks
    if prompts % processes:
        raise ConfigError(f"train.prompts_per_step={prompts} is not valid with {processes} processes: every "
                          f"prompt's completions must sit on one process (so its drafts are drawn once); use a "
                          f"multiple of {processes}")
    group = cfg.variant.num_refinements if cfg.variant.name == "igrpo" else cfg.rollout_budget
    per_process = prompts * group // processes
    if per_process % k:
        raise ConfigError(f"train.gradient_accumulation_steps={k} does not divide the {per_process} completions "
                          f"each process trains on per step (train.prompts_per_step={prompts} x {group} / "
                          f"{processes} processes); choose a divisor")
