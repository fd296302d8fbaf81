"""A fifth method defined outside the library, as a user would add one: its schema (with a field rule), its
budget, and a trainer subclass with a metric of its own. Loaded by ``IGRPO_VARIANT_MODULES=tests.toy_variant``;
its config option is given in code (``option``), so no YAML is added to conf/ either."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from igrpo.config.fields import number
from igrpo.variants import Variant, register


@dataclass
class HalfGroupSchema:
    """GRPO that trains on a fraction of the rollout budget per prompt (and generates only that)."""

    name: str = MISSING
    group_fraction: float = number(gt=0, le=1)


@register
class HalfGroup(Variant):
    name = "half_group"
    schema = HalfGroupSchema
    option = {"group_fraction": 0.5}

    def group_size(self, cfg) -> int:
        return max(2, int(cfg.rollout_budget * cfg.variant.group_fraction))

    def make_trainer(self, cfg, task, tokenizer, common: dict):
        from igrpo.training.trainer import TrackedGRPOTrainer

        class HalfGroupTrainer(TrackedGRPOTrainer):
            def calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
                self.step_metrics("train")["half_group/groups"].append(float(len(prompts) // self.num_generations))
                return super().calculate_rewards(inputs, prompts, completions, completion_ids_list)

        return HalfGroupTrainer(**common)
