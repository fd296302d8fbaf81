"""Self-Verification on TRL: a short subclass at the same seam as iGRPO. The logic is in
``igrpo.core.self_verify`` (verdicts, buffer, verify reward and advantages).

Each training batch: after the buffer drops old entries, the last ``round(verify_fraction x prompts)`` groups of the
step (``verify_mode=replace``; ``add`` appends them) become verify groups: every row of such a group grades one
buffer entry (one draw per group from a seeded RNG). Rows carry ``kind`` (``solve`` / ``verify``), the entry's
correctness and its dynamic weight; the training rewards score solve rows only (``SolveOnly``) and
``VerifyReward`` scores verify rows, so TRL computes every reward, the advantages and the loss as usual. Verify rows'
advantages are then recomputed with ``verify_scale_rewards`` (batch by default). Every scored solve completion of
the step enters the buffer afterwards, gathered from all processes in process order, so every rank holds the same
buffer and draws the same entries.

Rollout table stages: ``solve`` and ``verify``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from igrpo.training.scoring import completion_text, global_rewards, mean, rewards_unrecorded
from igrpo.core.self_verify import (
    VerifyBuffer,
    entries_from_groups,
    group_advantages,
    num_verify_groups,
    parse_verdict,
    verify_reward,
    verify_weight,
)
from igrpo.training.distributed import gather_objects
from igrpo.errors import ConfigError
from igrpo.core.metrics import frac_groups_zero_std
from igrpo.training.trainer import TrackedGRPOTrainer


class SolveOnly:
    """A training reward callable restricted to solve rows (``None``, i.e. not scored, for verify rows)."""

    def __init__(self, func):
        self.func = func
        self.__name__ = getattr(func, "__name__", type(func).__name__)  # TRL's metric name: unchanged

    def __call__(self, prompts, completions, kind, **columns):
        solve = [i for i, k in enumerate(kind) if k == "solve"]
        out: list[float | None] = [None] * len(prompts)
        if solve:
            n = len(prompts)
            subset = {key: [value[i] for i in solve] if isinstance(value, list) and len(value) == n else value
                      for key, value in columns.items()}
            scores = self.func(prompts=[prompts[i] for i in solve], completions=[completions[i] for i in solve],
                               kind=["solve"] * len(solve), **subset)
            for i, value in zip(solve, scores, strict=True):
                out[i] = value
        return out

    def drain_metrics(self) -> dict:
        drain = getattr(self.func, "drain_metrics", None)
        return drain() if drain is not None else {}


class VerifyReward:
    """The verify rows' reward: the entry's weight when the last verdict matches its correctness, 0 when not,
    ``unparseable_reward`` without a verdict; ``None`` (not scored) for solve rows."""

    __name__ = "verify"

    def __init__(self, unparseable_reward: float):
        self.unparseable_reward = unparseable_reward

    def __call__(self, prompts, completions, kind, verify_label, verify_weight, **_):
        return [None if k != "verify" else verify_reward(parse_verdict(completion_text(c)), bool(label), float(w),
                                                          self.unparseable_reward)
                for c, k, label, w in zip(completions, kind, verify_label, verify_weight, strict=True)]


def wrap_rewards(funcs: list, weights: list[float], unparseable_reward: float) -> tuple[list, list[float]]:
    """The variant's reward callables and weights: the configured ones on solve rows, plus the verify reward."""
    return [SolveOnly(f) for f in funcs] + [VerifyReward(unparseable_reward)], [*weights, 1.0]


class SelfVerifyTrainer(TrackedGRPOTrainer):
    completion_stage = "solve"

    def __init__(self, *args, variant, verify_prompt: Callable[[str, str], str], selection_seed: int, **kwargs):
        """``variant``: the ``self_verify`` node (igrpo.config.VariantSelfVerify), read as it is.
        ``verify_prompt(problem, solution)``: the verify prompt, framed for the model (``igrpo.variants.self_verify.verify_prompt_builder``)."""
        super().__init__(*args, **kwargs)
        self.variant = variant
        self.verify_prompt = verify_prompt
        self.buffer = VerifyBuffer(variant.buffer_steps, variant.buffer_max)
        self._draw_rng = self.seeded_rng("draw_rng", selection_seed)
        self._verify_advantages: dict[int, float] = {}  # global row -> recomputed advantage, this step
        self._new_entries: list = []

    def extra_state(self) -> dict:
        return {**super().extra_state(), "buffer": self.buffer.state()}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self.buffer.load_state(state.get("buffer", []))

    def generate_and_score(self, inputs):
        if not self.model.training:
            return super().generate_and_score(inputs)
        inputs = self._with_verify_rows(inputs)
        output = super().generate_and_score(inputs)
        offset = self.accelerator.process_index * len(inputs)
        output["advantages"] = replace_rows(output["advantages"], self._verify_advantages, offset)
        self.buffer.add(self._new_entries)  # usable from the next step on
        self._verify_advantages, self._new_entries = {}, []
        return output

    def _with_verify_rows(self, inputs: list[dict]) -> list[dict]:
        """The batch with its verify groups: every row gets ``kind``, ``verify_label`` and ``verify_weight``."""
        v, group = self.variant, self.num_generations
        self.buffer.evict(self.state.global_step)
        self.step_metrics("train")["buffer/size"].append(float(len(self.buffer)))
        self.step_metrics("train")["buffer/correct_frac"].append(self.buffer.correct_frac())
        processes, rank = self.accelerator.num_processes, self.accelerator.process_index
        groups = len(inputs) * processes // group
        k = num_verify_groups(groups, v.verify_fraction)
        entries = self.buffer.sample(self._draw_rng, k)  # the same draws on every process
        rows = [{**row, "kind": "solve", "verify_label": None, "verify_weight": None} for row in inputs]
        if not entries:  # empty buffer (the first step): solve only
            return rows
        if v.verify_mode == "add":
            if k % processes or len(inputs) % group:
                raise ConfigError(f"variant.verify_mode=add needs whole groups on every process and the {k} verify "
                                  f"prompts per step to split evenly over {processes} processes")
            share = k // processes
            return rows + [self._verify_row(inputs[0], e) for e in entries[rank * share:(rank + 1) * share]
                           for _ in range(group)]
        offset = rank * len(inputs)
        first = groups - k
        return [self._verify_row(row, entries[(offset + i) // group - first]) if (offset + i) // group >= first
                else row for i, row in enumerate(rows)]

    def _verify_row(self, row: dict, entry) -> dict:
        weight = verify_weight(entry.correct, entry.g_correct, entry.g_incorrect, self.variant.verify_reward_weight)
        return {**row, "prompt": self.verify_prompt(entry.problem, entry.solution),
                "prompt_id": f"verify:{entry.prompt_id}",
                "problem": entry.problem, "answer": entry.reference, "kind": "verify", "verify_label": entry.correct,
                "verify_weight": weight}

    def calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        recorder = self.rollout_recorder  # rows are recorded per stage below, not by TRL's path
        rewards_per_func = rewards_unrecorded(self, super().calculate_rewards, inputs, prompts, completions,
                                              completion_ids_list)
        if not self.model.training:
            return rewards_per_func
        local = [{"kind": row["kind"], "prompt_id": row["prompt_id"], "problem": row["problem"],
                  "reference": row["answer"], "completion": completion_text(c), "label": row["verify_label"]}
                 for row, c in zip(inputs, completions, strict=True)]
        rows = [r for rank in gather_objects(local) for r in rank]
        rewards, correct = global_rewards(self, rewards_per_func)
        group, v = self.num_generations, self.variant
        solve = [i for i, r in enumerate(rows) if r["kind"] == "solve"]
        verify = [i for i, r in enumerate(rows) if r["kind"] == "verify"]
        self._new_entries = entries_from_groups([rows[i] for i in solve], [correct[i] for i in solve], group,
                                                self.state.global_step)
        metrics = {"verify/solve_frac_groups_zero_std": frac_groups_zero_std([rewards[i] for i in solve], group)}
        if verify:
            verdicts = [parse_verdict(rows[i]["completion"]) for i in verify]
            labels = [rows[i]["label"] for i in verify]
            metrics.update({
                "verify/accuracy": sum(d is not None and d == lab for d, lab in zip(verdicts, labels)) / len(verify),
                "verify/yes_rate": sum(d is True for d in verdicts) / len(verify),
                "verify/unparseable_frac": sum(d is None for d in verdicts) / len(verify),
                "verify/label_correct_frac": sum(bool(lab) for lab in labels) / len(verify),
                "verify/reward_mean": mean([rewards[i] for i in verify]),
                "verify/frac_groups_zero_std": frac_groups_zero_std([rewards[i] for i in verify], group),
                "verify/rows_frac": len(verify) / len(rows),
            })
            advantages = group_advantages([rewards[i] for i in verify], group, v.verify_scale_rewards)
            self._verify_advantages = dict(zip(verify, advantages))
        for name, value in metrics.items():
            if value is not None:
                self.step_metrics("train")[name].append(float(value))
        if recorder is not None and recorder.wants(self.state.global_step):
            start = self.accelerator.process_index * len(prompts)
            for stage in ("solve", "verify"):
                mine = [i for i, row in enumerate(inputs) if row["kind"] == stage]
                recorder.add(self.state.global_step, stage, [inputs[i]["prompt_id"] for i in mine],
                             [prompts[i] for i in mine], [completion_text(completions[i]) for i in mine],
                             [rewards[start + i] for i in mine])
        return rewards_per_func


def replace_rows(advantages: torch.Tensor, replacements: dict[int, float], offset: int) -> torch.Tensor:
    """``advantages`` of one process with the rows in ``replacements`` (global row -> value) replaced."""
    out = advantages.clone()
    for i in range(out.shape[0]):
        if offset + i in replacements:
            out[i] = replacements[offset + i]
    return out
