"""TRL glue: GRPO is TRL's ``GRPOTrainer``; iGRPO is a short subclass that runs Stage 1 (drafts,
scoring, selection, prompt rewrite) inside ``_generate_and_score_completions`` and then hands the
rewritten rows to TRL, whose normal generate -> score -> advantage -> loss path runs Stage 2. So only
refinements ever receive gradient, and every GRPO-family loss in TRL works under either wrapper.

The iGRPO logic itself lives in ``igrpo.core.drafts`` (pure functions); this module is the one seam with
TRL's internals, pinned to one exact TRL version (see pyproject.toml).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from trl import GRPOTrainer

from igrpo.core.answers import answers_match, extract_final_answer
from igrpo.training.distributed import gather_objects, max_across_processes, mean_across_processes
from igrpo.core.drafts import condition_on_drafts
from igrpo.core.entropy import ScheduleState, coefficient, driven_by_trl, initial_state
from igrpo.core.metrics import (
    add_counts,
    correct_flags,
    first_of_each_group,
    frac_groups_zero_std,
    refine_counts,
    refine_rates,
)
from igrpo.rewards import combine_scores


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


def _text(completion) -> str:
    return completion if isinstance(completion, str) else completion[-1]["content"]


def _local_rows(gathered, process_index: int, count: int):
    """This process's rows of TRL's gathered reward tensor (gathered in process order)."""
    return gathered[process_index * count:(process_index + 1) * count]


class TrackedGRPOTrainer(GRPOTrainer):
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
        # entropy=adaptive is TRL's own controller (GRPOConfig.use_adaptive_entropy, set by trainer_factory)
        self._entropy_by_trl = entropy_schedule is not None and driven_by_trl(entropy_schedule)
        if entropy_schedule is not None and entropy_schedule.name != "none" and not self._entropy_by_trl:
            # TRL fixes whether the bonus term exists at init; switch it on and drive the coefficient per step.
            self._entropy_bonus_enabled = True

    def training_step(self, model, inputs, num_items_in_batch):
        if self.generated_per_prompt is not None:  # the spend per prompt, trained or not (igrpo.variants.budget)
            self._metrics["train"]["rollouts/generated_per_prompt"].append(float(self.generated_per_prompt))
        schedule = self.entropy_schedule
        if self._entropy_by_trl:
            # TRL moves entropy_coef after each optimizer step and logs the moved value; log instead the coefficient
            # this step applies (0 while the last measured entropy is above target), as for every other schedule.
            applied = self.entropy_coef if self._last_world_entropy <= self.args.entropy_target else 0.0
            logged = self._metrics["train"]["entropy_coef"]
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
                self._metrics["train"]["entropy_coef"].append(0.0)
        return super().training_step(model, inputs, num_items_in_batch)

    def log(self, logs, start_time=None):
        entropies = self._metrics["train"].get("entropy") if self.model.training else None
        if entropies:
            self._last_entropy = sum(entropies) / len(entropies)
        super().log(logs, start_time)

    # --- checkpoint/resume (igrpo.training.checkpoints): our state beyond transformers' checkpoint ------------------------

    def extra_state(self) -> dict:
        """What a restarted trainer needs besides transformers' checkpoint, JSON-ready: the entropy schedule's
        state and the last observed entropy (IGRPOTrainer adds its draft-selection RNG)."""
        state = self._schedule_state
        return {"schedule": {"coef": state.coef, "triggered": state.triggered}, "last_entropy": self._last_entropy}

    def load_extra_state(self, state: dict) -> None:
        """Restore what ``extra_state`` returned (read back from JSON)."""
        schedule = state.get("schedule")
        if schedule:
            self._schedule_state = ScheduleState(coef=schedule["coef"], triggered=schedule["triggered"])
            self.entropy_coef = schedule["coef"]
        self._last_entropy = state.get("last_entropy")

    def load_checkpoint_weights(self, checkpoint: str) -> None:
        """Only the weights of a transformers checkpoint (one of the last step: resuming training from it would
        run one step past ``max_steps``)."""
        self._load_from_checkpoint(checkpoint)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        mode = "train" if self.model.training else "eval"
        for func in self.reward_funcs:  # per-step counters of our rewards (ungradeable, judge failures)
            drain = getattr(func, "drain_metrics", None)
            if drain is not None:
                for key, value in drain().items():
                    self._metrics[mode][key].append(value)
        recorder = self.rollout_recorder
        if recorder is not None and self.model.training and recorder.wants(self.state.global_step):
            mine = _local_rows(rewards_per_func, self.accelerator.process_index, len(prompts))
            per_func = [[None if v != v else v for v in col] for col in mine.T.tolist()]
            rewards = combine_scores(per_func, self.reward_weights.tolist())
            recorder.add(self.state.global_step, self.completion_stage, [x["prompt_id"] for x in inputs], prompts,
                         [_text(c) for c in completions], rewards)
        return rewards_per_func


class IGRPOTrainer(TrackedGRPOTrainer):
    """iGRPO: N drafts per prompt (no gradient) -> select -> draft-conditioned prompt -> G refinements.

    TRL's ``num_generations`` is G (refinements); the N drafts are generated here. Stage-1 metrics
    are logged as ``draft/*``; Stage-2 metrics are TRL's own (``reward``, ``frac_reward_zero_std``...).

    Refinement diagnostics (``refine/*``, ``_log_refinement_metrics``): copy and fix rates of the refinements
    against the shown draft, and binary-correct zero-variance of both stages with one definition.
    """

    completion_stage = "refinement"

    def __init__(self, *args, variant, refinement_template: str, selection_seed: int,
                 max_prompt_tokens: int | None = None, **kwargs):
        """``variant``: the ``igrpo`` variant node (igrpo.config.VariantIGRPO), read as it is: no copy of its
        fields, so its defaults live in conf/variant/igrpo.yaml only. ``refinement_template``: the variant's
        template resolved for the task (``igrpo.tasks.prompts.refinement_template``). ``max_prompt_tokens``: the
        prompt budget (``train.max_prompt_tokens``) each Stage-2 prompt is fitted to by cutting its draft."""
        super().__init__(*args, **kwargs)
        self.variant = variant
        self.refinement_template = refinement_template
        self.max_prompt_tokens = max_prompt_tokens
        self._selection_rng = random.Random(selection_seed)
        # prompt_id -> (shown draft's final answer, its grade) or None (plain prompt): set by Stage 1 each step
        self._shown: dict[str, tuple[str | None, bool | None] | None] = {}

    def extra_state(self) -> dict:
        return {**super().extra_state(), "selection_rng": self._selection_rng.getstate()}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        rng = state.get("selection_rng")
        if rng is not None:  # JSON turned the state's tuples into lists
            self._selection_rng.setstate((rng[0], tuple(rng[1]), rng[2]))

    def _generate_and_score_completions(self, inputs):
        if self.model.training:
            inputs = self._draft_and_rewrite(inputs)
        return super()._generate_and_score_completions(inputs)

    def _score_drafts(self, prompts: list[str], drafts: list[str], rows: list[dict]
                      ) -> tuple[list[float | None], list[bool | None]]:
        """The training reward, called directly (TRL's _calculate_rewards would log drafts as refinements), and
        each draft's grade (the accuracy reward's score; None when ungradeable)."""
        columns = {key: [row[key] for row in rows] for key in rows[0] if key != "prompt"}
        per_func = [func(prompts=prompts, completions=drafts, trainer_state=self.state, **columns)
                    for func in self.reward_funcs]
        return combine_scores(per_func, self.reward_weights.tolist()), self._grades(per_func, drafts, rows)

    def _accuracy_index(self) -> int | None:
        names = list(self.reward_func_names)
        return names.index("accuracy") if "accuracy" in names else None

    def _grades(self, per_func, texts: list[str], rows: list[dict]) -> list[bool | None]:
        """Binary correctness: the accuracy reward's column when the run has one, else exact answer match."""
        index = self._accuracy_index()
        if index is not None:
            return [None if c is None else bool(c) for c in correct_flags(list(per_func[index]))]
        return [answers_match(extract_final_answer(t), str(row["answer"])) for t, row in zip(texts, rows)]

    def _draft_and_rewrite(self, inputs: list[dict]) -> list[dict]:
        """Stage 1 (``rounds`` times): draw N drafts per distinct prompt, score, select, rewrite the prompt.
        Each prompt's drafts are drawn and selected once, and every copy of that prompt in the batch gets
        the same selected draft."""
        unique: dict[str, dict] = {}
        for row in inputs:
            unique.setdefault(row["prompt_id"], row)
        prompts = {pid: row["prompt"] for pid, row in unique.items()}
        self._shown = {}  # this step's shown drafts (the last round's)
        for round_index in range(self.variant.rounds):
            prompts = self._draft_round(unique, prompts, round_index)
        return [{**row, "plain_prompt": row["prompt"], "prompt": prompts[row["prompt_id"]]} for row in inputs]

    def _draft_round(self, unique: dict[str, dict], prompts_by_id: dict[str, str], round_index: int) -> dict:
        s = self.variant
        n = s.num_drafts
        start = time.perf_counter()
        rows = [row for row in unique.values() for _ in range(n)]
        prompts = [prompts_by_id[row["prompt_id"]] for row in rows]
        prompt_ids, images, multimodal = self._tokenize_prompts(prompts)
        completion_ids, _ = self._generate_single_turn(prompt_ids, images, multimodal, n)
        special = set(self._tokenizer.all_special_ids)
        completion_ids = [[t for t in ids if t not in special] for ids in completion_ids]
        drafts = self.processing_class.batch_decode(completion_ids, skip_special_tokens=True)
        rewards, grades = self._score_drafts(prompts, drafts, [{**row, "prompt": p} for row, p in zip(rows, prompts)])

        rewritten: dict[str, str] = {}  # this rank's prompts: each prompt's whole group is on this rank
        selected_flags: list[bool] = []
        best_rewards: list[float] = []
        prompt_tokens: list[int] = []  # of every Stage-2 prompt
        truncated = fell_back = no_room = 0
        for g, (pid, row) in enumerate(unique.items()):
            group = slice(g * n, (g + 1) * n)
            g_rewards = rewards[group]
            cond = condition_on_drafts(s, self.refinement_template, row["problem"], row["prompt"], g_rewards,
                                       completion_ids[group], drafts[group], self.processing_class,
                                       rng=self._selection_rng, max_prompt_tokens=self.max_prompt_tokens)
            choice = cond.choice
            selected_flags.extend(i == choice for i in range(n))
            best_rewards.append(g_rewards[choice] if g_rewards[choice] is not None else 0.0)
            rewritten[pid] = cond.prompt
            self._shown[pid] = ((extract_final_answer(drafts[g * n + choice]), grades[g * n + choice])
                                if cond.shown else None)
            if cond.fitted is None:  # on_all_zero=plain
                prompt_tokens.append(self._count_tokens(row["prompt"]))
                continue
            fitted = cond.fitted
            prompt_tokens.append(fitted.prompt_tokens if fitted.prompt is not None else self._count_tokens(row["prompt"]))
            truncated += fitted.truncated
            fell_back += cond.answer_missing
            no_room += fitted.prompt is None

        # Round 1 drafts come from the plain prompt; later rounds are logged under draft/round_<k>/.
        # Each value is averaged over all ranks, weighted by the groups each rank drafted.
        prefix = "draft/" if round_index == 0 else f"draft/round_{round_index + 1}/"
        groups = float(len(unique))
        scored = [r for r in rewards if r is not None]
        stats = {
            "reward_mean": (sum(scored) / len(scored) if scored else 0.0, float(len(scored))),
            "best_reward_mean": (sum(best_rewards) / len(best_rewards), groups),
            "frac_groups_zero_std": (frac_groups_zero_std(rewards, n), groups),
            # binary correct (the accuracy reward), as refine/frac_groups_zero_std_correct for Stage 2
            "frac_groups_zero_std_correct": (frac_groups_zero_std(grades, n), groups),
            "mean_length": (sum(len(x) for x in completion_ids) / len(completion_ids), groups),
            "seconds": (time.perf_counter() - start, 1.0),
            "truncated_frac": (truncated / groups, groups),  # selected drafts cut to fit (max_draft_tokens, budget)
        }
        if s.draft_content == "answer_section":
            stats["answer_section_fallback_frac"] = (fell_back / groups, groups)  # no </think>: the tail was kept
        if self.max_prompt_tokens is not None:
            stats["no_room_frac"] = (no_room / groups, groups)  # problem + template filled the budget: no draft
        equal = min(n, self.num_generations)  # both stages' zero-variance at one group size (first members)
        stats[f"frac_groups_zero_std_correct_at_{equal}"] = (
            frac_groups_zero_std(first_of_each_group(grades, n, equal), equal), groups)
        for name, (value, weight) in stats.items():
            self._metrics["train"][f"{prefix}{name}"].append(mean_across_processes(value, weight))
        self._metrics["train"][f"{prefix}prompt_tokens_max"].append(float(max_across_processes(max(prompt_tokens))))
        recorder = self.rollout_recorder
        if recorder is not None and recorder.wants(self.state.global_step):
            recorder.add(self.state.global_step, "draft", [r["prompt_id"] for r in rows], prompts, drafts, rewards,
                         selected=selected_flags)
        return rewritten

    def _count_tokens(self, prompt: str) -> int:
        """A prompt's length as TRL tokenizes string prompts for generation."""
        return len(self.processing_class(text=prompt)["input_ids"])

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.model.training:
            self._log_refinement_metrics(inputs, completions, rewards_per_func)
        return rewards_per_func

    def _log_refinement_metrics(self, inputs, completions, rewards_per_func) -> None:
        """``refine/*`` for this step's refinements (every process calls it: it gathers).

        * ``refine/copy_rate``, ``refine/copy_rate_shown_correct``, ``refine/copy_rate_shown_wrong``,
          ``refine/fix_rate``, ``refine/keep_rate`` (``igrpo.core.metrics.refine_rates``), over refinements conditioned
          on a shown draft; a rate with nothing to count this step is not logged (never 0).
        * ``refine/frac_groups_zero_std_correct``: Stage-2 groups (size G) whose refinements are all right or all
          wrong, the definition of ``draft/frac_groups_zero_std_correct`` (size N); both also at the smaller
          size ``_at_<min(N, G)>`` (the first members of each group), so group size alone cannot make them
          differ.
        """
        texts = [_text(c) for c in completions]
        index = self._accuracy_index()
        if index is not None:  # TRL's gathered tensor: every process's rows, whole Stage-2 groups in order
            gathered = correct_flags([None if v != v else v for v in rewards_per_func[:, index].tolist()])
            mine = _local_rows(gathered, self.accelerator.process_index, len(texts))
        else:  # no accuracy reward: exact match on each process, gathered
            mine = [answers_match(extract_final_answer(t), str(x["answer"])) for t, x in zip(texts, inputs)]
            gathered = [g for part in gather_objects(mine) for g in part]
        grades = [None if g is None else bool(g) for g in mine]
        shown = [self._shown.get(x["prompt_id"]) for x in inputs]
        keep = [i for i, sh in enumerate(shown) if sh is not None]
        counts = refine_counts([shown[i][0] for i in keep], [shown[i][1] for i in keep],
                               [extract_final_answer(texts[i]) for i in keep], [grades[i] for i in keep])
        metrics = self._metrics["train"]
        for name, value in refine_rates(add_counts(gather_objects(counts))).items():
            metrics[f"refine/{name}"].append(value)
        g, equal = self.num_generations, min(self.num_generations, self.variant.num_drafts)
        metrics["refine/frac_groups_zero_std_correct"].append(frac_groups_zero_std(gathered, g))
        metrics[f"refine/frac_groups_zero_std_correct_at_{equal}"].append(
            frac_groups_zero_std(first_of_each_group(gathered, g, equal), equal))
