"""Schema of the ``algo`` group: the GRPO-family objective (every option uses every field; they differ in values)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from igrpo.config.fields import choice, flag, number
from igrpo.errors import ConfigError

LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "bnpo")
SCALE_REWARDS = ("group", "batch", "none")
IMPORTANCE_LEVELS = ("token", "sequence")


@dataclass
class Algo:
    """The GRPO-family objective, as TRL's GRPOConfig names it."""

    name: str = MISSING
    loss_type: str = choice(*LOSS_TYPES)  # TRL loss aggregation
    scale_rewards: str = choice(*SCALE_REWARDS)  # advantage scaling
    importance_sampling_level: str = choice(*IMPORTANCE_LEVELS)  # token | sequence (GSPO)
    epsilon: float = number(ge=0)  # lower clip
    epsilon_high: float = number(ge=0)  # upper clip
    beta: float = number(ge=0)  # KL coefficient to the reference policy (paper: 0)
    mask_truncated_completions: bool = MISSING  # drop completions that hit the length cap from the loss
    learning_rate: float = number(gt=0)
    lr_scheduler_type: str = MISSING  # any transformers scheduler name
    min_lr_rate: float = number(ge=0, lt=1, why="(a fraction of the peak learning rate)")  # cosine floor (paper: 0.1)
    warmup_ratio: float = number(ge=0, lt=1)
    weight_decay: float = MISSING
    max_grad_norm: float = number(gt=0)
    num_iterations: int = number(gt=0)  # policy updates per generation batch (mu)
    # DAPO's dynamic sampling (igrpo.core.dapo): groups whose rewards are all equal are dropped and more prompts
    # sampled until the batch is full or max_resample_rounds extra rounds were sampled (then flat groups fill it)
    dynamic_sampling: bool = flag(neutral=False)
    max_resample_rounds: int = number(ge=1, needs=("dynamic_sampling", True))
    # DAPO's overlong reward shaping: added to the reward, 0 up to (cap - overlong_buffer) tokens, then linear down
    # to -overlong_penalty at the completion cap (generation.max_completion_length)
    overlong_shaping: bool = flag(neutral=False)
    overlong_buffer: int = number(gt=0, needs=("overlong_shaping", True))  # L_cache, in tokens
    overlong_penalty: float = number(gt=0, needs=("overlong_shaping", True))  # the penalty at the cap (DAPO: 1)

    @staticmethod
    def check(a, cfg) -> None:
        """The learning-rate floor belongs to the cosine schedule, which sets transformers' own name for it; the
        overlong buffer lies inside the completion cap."""
        if a.lr_scheduler_type in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
            raise ConfigError(f"algo.lr_scheduler_type={a.lr_scheduler_type} is set for you: use "
                              "algo.lr_scheduler_type=cosine with algo.min_lr_rate=<floor>")
        if a.min_lr_rate > 0 and a.lr_scheduler_type != "cosine":
            raise ConfigError(f"algo.min_lr_rate={a.min_lr_rate} applies to algo.lr_scheduler_type=cosine only (got "
                              f"{a.lr_scheduler_type}); set algo.min_lr_rate=0 or use the cosine schedule")
        cap = cfg.generation.max_completion_length
        if a.overlong_shaping and a.overlong_buffer >= cap:
            raise ConfigError(f"algo.overlong_buffer={a.overlong_buffer} is not valid with "
                              f"generation.max_completion_length={cap}: the buffer must be shorter than the cap "
                              f"(DAPO: a fifth of it); use algo.overlong_buffer<={cap - 1}")
