"""The trainer every variant builds on: TRL's GRPO (through ``igrpo.training.seam``) plus what every run needs:
sample rollouts recorded for the MLflow rollout table, an entropy-bonus schedule, the spend per prompt logged
(``rollouts/generated_per_prompt``), per-step counters of our reward functions, and checkpoint state beyond
transformers' own (the schedule's state and each variant's seeded RNGs). Plain GRPO is this trainer as it is;
each other variant subclasses it in its own module (``igrpo.variants``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from igrpo.core.entropy import ScheduleState, coefficient, driven_by_trl, initial_state
from igrpo.core.metrics import combine_scores
from igrpo.training.scoring import completion_text, local_rows
from igrpo.training.seam import SeamTrainer


@dataclass
class RolloutRecorder:
    """Collects sample rollouts (the MLflow rollout table) every ``every`` steps, plus the first and last."""

    every: int
    last_step: int
    rows: list[dict] = field(default_factory=list)

    def wants(self, step: int) -> bool:
        return step == 0 or step == self.last_step - 1 or (self.every > 0 and step % self.every == 0)

    def add(self, step: int, stage: str, prompt_ids, prompts, completions, rewards, selected=None) -> None:
        for i, (pid, prompt, completion, reward) in enumerate(zip(prompt_ids, prompts, completions, rewards)):
            self.rows.append({
                "step": step,
                "prompt_id": pid,
                "stage": stage,
                "prompt": prompt,
                "completion": completion,
                "reward": reward,
                "selected": None if selected is None else bool(selected[i]),
            })


class TrackedGRPOTrainer(SeamTrainer):
    """GRPOTrainer that also records sample rollouts and applies an entropy-bonus schedule.
    Stage name ``grpo`` (plain group rollouts)."""

    completion_stage = "grpo"

    def __init__(self, *args, rollout_recorder: RolloutRecorder | None = None, entropy_schedule=None,
                 generated_per_prompt: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rollout_recorder = rollout_recorder
        self.generated_per_prompt = generated_per_prompt  # logged as rollouts/generated_per_prompt (every variant)
        self.entropy_schedule = entropy_schedule
        self._schedule_state = initial_state(entropy_schedule) if entropy_schedule is not None else ScheduleState()
        self._last_entropy: float | None = None
        self._rngs: dict[str, random.Random] = {}  # seeded RNGs of the variant, saved with each checkpoint
        # entropy=adaptive is TRL's own controller (GRPOConfig.use_adaptive_entropy, set by trainer_factory)
        self._entropy_by_trl = entropy_schedule is not None and driven_by_trl(entropy_schedule)
        if entropy_schedule is not None and entropy_schedule.name != "none" and not self._entropy_by_trl:
            # TRL fixes whether the bonus term exists at init; switch it on and drive the coefficient per step.
            self.enable_entropy_bonus()

    def training_step(self, model, inputs, num_items_in_batch):
        if self.generated_per_prompt is not None:  # the spend per prompt, trained or not (Variant.generated_per_prompt)
            self.step_metrics("train")["rollouts/generated_per_prompt"].append(float(self.generated_per_prompt))
        schedule = self.entropy_schedule
        if self._entropy_by_trl:
            # TRL moves entropy_coef after each optimizer step and logs the moved value; log instead the coefficient
            # this step applies (0 while the last measured entropy is above target), as for every other schedule.
            applied = self.entropy_coef if self.last_world_entropy <= self.args.entropy_target else 0.0
            logged = self.step_metrics("train")["entropy_coef"]
            before = len(logged)
            loss = super().training_step(model, inputs, num_items_in_batch)
            if len(logged) > before:
                logged[-1] = applied
            return loss
        if schedule is not None:
            self._schedule_state = coefficient(schedule, self.state.global_step, self._last_entropy,
                                               self._schedule_state)
            self.entropy_coef = self._schedule_state.coef
            if schedule.name == "none":  # TRL logs the coefficient only when the bonus is on
                self.step_metrics("train")["entropy_coef"].append(0.0)
        return super().training_step(model, inputs, num_items_in_batch)

    def log(self, logs, start_time=None):
        entropies = self.step_metrics("train").get("entropy") if self.model.training else None
        if entropies:
            self._last_entropy = sum(entropies) / len(entropies)
        super().log(logs, start_time)

    def seeded_rng(self, name: str, seed: int) -> random.Random:
        """A ``random.Random(seed)`` whose state is saved with checkpoints under ``name`` and restored on resume."""
        self._rngs[name] = random.Random(seed)
        return self._rngs[name]

    # --- checkpoint/resume (igrpo.training.checkpoints): our state beyond transformers' checkpoint ------------------------

    def extra_state(self) -> dict:
        """What a restarted trainer needs besides transformers' checkpoint, JSON-ready: the entropy schedule's
        state, the last observed entropy and the variant's seeded RNGs (``seeded_rng``)."""
        state = self._schedule_state
        return {"schedule": {"coef": state.coef, "triggered": state.triggered}, "last_entropy": self._last_entropy,
                **{name: rng.getstate() for name, rng in self._rngs.items()}}

    def load_extra_state(self, state: dict) -> None:
        """Restore what ``extra_state`` returned (read back from JSON)."""
        schedule = state.get("schedule")
        if schedule:
            self._schedule_state = ScheduleState(coef=schedule["coef"], triggered=schedule["triggered"])
            self.entropy_coef = schedule["coef"]
        self._last_entropy = state.get("last_entropy")
        for name, rng in self._rngs.items():
            saved = state.get(name)
            if saved is not None:  # JSON turned the state's tuples into lists
                rng.setstate((saved[0], tuple(saved[1]), saved[2]))

    def load_checkpoint_weights(self, checkpoint: str) -> None:
        """Only the weights of a transformers checkpoint (one of the last step: resuming training from it would
        run one step past ``max_steps``)."""
        self.load_weights_from(checkpoint)

    def calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super().calculate_rewards(inputs, prompts, completions, completion_ids_list)
        mode = "train" if self.model.training else "eval"
        for func in self.reward_funcs:  # per-step counters of our rewards (ungradeable, judge failures)
            drain = getattr(func, "drain_metrics", None)
            if drain is not None:
                for key, value in drain().items():
                    self.step_metrics(mode)[key].append(value)
        recorder = self.rollout_recorder
        if recorder is not None and self.model.training and recorder.wants(self.state.global_step):
            mine = local_rows(rewards_per_func, self.accelerator.process_index, len(prompts))
            per_func = [[None if v != v else v for v in col] for col in mine.T.tolist()]
            rewards = combine_scores(per_func, self.reward_weights.tolist())
            recorder.add(self.state.global_step, self.completion_stage, [x["prompt_id"] for x in inputs], prompts,
                         [completion_text(c) for c in completions], rewards)
        return rewards_per_func
