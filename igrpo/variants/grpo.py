"""Plain GRPO: ``rollout_budget`` completions per prompt from the plain prompt, all trained on (TRL's GRPO with our
rollout recording and entropy schedules, ``igrpo.training.trainer.TrackedGRPOTrainer``)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from igrpo.variants import Variant, register


@dataclass
class VariantGRPO:
    """Plain GRPO: rollout_budget completions per prompt, all trained on."""

    name: str = MISSING


@register
class GRPO(Variant):
    name = "grpo"
    schema = VariantGRPO
