"""iGRPO's trainer: Stage 1 (drafts, scoring, selection, prompt rewrite) runs inside TRL's
``_generate_and_score_completions``, then the rewritten rows go to TRL, whose normal generate -> score -> advantage
-> loss path runs Stage 2. So only refinements ever receive gradient, and every GRPO-family loss in TRL works.

The iGRPO logic itself lives in ``igrpo.core.drafts`` (pure functions); TRL's internals are reached through
``igrpo.training.seam``.
"""

from __future__ import annotations

import time

from igrpo.core.answers import answers_match, extract_final_answer
from igrpo.core.draft_budget import allocate_drafts, histogram, remember
from igrpo.core.drafts import condition_on_drafts, draft_health
from igrpo.core.metrics import (
    add_counts,
    correct_flags,
    first_of_each_group,
    frac_groups_zero_std,
    is_flat,
    refine_counts,
    refine_rates,
)
from igrpo.training.distributed import gather_objects, max_across_processes, mean_across_processes
from igrpo.core.metrics import combine_scores
from igrpo.training.scoring import completion_text, local_rows, reward_columns
from igrpo.errors import ConfigError
from igrpo.training.trainer import TrackedGRPOTrainer


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
        self._selection_rng = self.seeded_rng("selection_rng", selection_seed)
        # prompt_id -> (shown draft's final answer, its grade) or None (plain prompt): set by Stage 1 each step
        self._shown: dict[str, tuple[str | None, bool | None] | None] = {}
        # draft_budget=adaptive: prompt_id -> its last graded drafts (variant.draft_history of them)
        self._history: dict[str, list[bool]] = {}

    def extra_state(self) -> dict:
        state = super().extra_state()
        if self.variant.draft_budget == "adaptive":
            state["draft_history"] = self._history
        return state

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self._history = {pid: list(h) for pid, h in state.get("draft_history", {}).items()}

    def generate_and_score(self, inputs):
        if self.model.training:
            inputs = self._draft_and_rewrite(inputs)
        return super().generate_and_score(inputs)

    def _score_drafts(self, prompts: list[str], drafts: list[str], rows: list[dict], sampled_ids=None
                      ) -> tuple[list[float | None], list[bool | None]]:
        """The training reward, called directly (TRL's _calculate_rewards would log drafts as refinements), and
        each draft's grade (the accuracy reward's score; None when ungradeable). ``sampled_ids``: the drafts' token
        ids as sampled (end token included), which a length-based reward counts."""
        per_func = reward_columns(self, rows, prompts, drafts, sampled_ids)
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

    def _sample(self, unique: dict[str, dict], prompts_by_id: dict[str, str], counts: list[int],
                num_generations: int) -> dict[str, list]:
        """``counts[i]`` drafts of the i-th distinct prompt, generated in one call (``num_generations`` per prompt as
        TRL's generation expects: every count when they are equal, else 1 with each prompt repeated), scored and
        graded; flat lists in prompt order."""
        rows = [row for row, c in zip(unique.values(), counts) for _ in range(c)]
        if not rows:
            return {"rows": [], "prompts": [], "ids": [], "texts": [], "rewards": [], "grades": []}
        prompts = [prompts_by_id[row["prompt_id"]] for row in rows]
        prompt_ids, images, multimodal = self.tokenize_prompts(prompts)
        sampled, _ = self.generate_single_turn(prompt_ids, images, multimodal, num_generations)
        special = set(self.text_tokenizer.all_special_ids)
        ids = [[t for t in x if t not in special] for x in sampled]
        texts = self.processing_class.batch_decode(ids, skip_special_tokens=True)
        rewards, grades = self._score_drafts(prompts, texts, [{**row, "prompt": p} for row, p in zip(rows, prompts)],
                                             sampled)
        return {"rows": rows, "prompts": prompts, "ids": ids, "texts": texts, "rewards": rewards, "grades": grades}

    def _adaptive_drafts(self, unique: dict[str, dict], prompts_by_id: dict[str, str]) -> tuple[dict, list[int]]:
        """``draft_budget=adaptive`` (``igrpo.core.draft_budget``): the probe, then the rest of the step's N x P
        drafts shared out by each prompt's history; histories take every graded draft. Prompt-major lists, counts."""
        s, pids = self.variant, list(unique)
        k = s.draft_probe
        probe = self._sample(unique, prompts_by_id, [k] * len(pids), max(k, 1))  # k = 0: no drafts, no call
        for i, pid in enumerate(pids):
            self._history[pid] = remember(self._history.get(pid, []), probe["grades"][i * k:(i + 1) * k],
                                          s.draft_history)
        counts = allocate_drafts([self._history[pid] for pid in pids], s.num_drafts * len(pids),
                                 s.max_drafts_per_prompt, floor=k)
        more = [c - k for c in counts]
        extra = self._sample(unique, prompts_by_id, more, 1)
        merged: dict[str, list] = {key: [] for key in probe}
        start = 0
        for i, pid in enumerate(pids):
            mine = slice(start, start + more[i])
            self._history[pid] = remember(self._history[pid], extra["grades"][mine], s.draft_history)
            for key in merged:
                merged[key] += probe[key][i * k:(i + 1) * k] + extra[key][mine]
            start += more[i]
        return merged, counts

    def _draft_round(self, unique: dict[str, dict], prompts_by_id: dict[str, str], round_index: int) -> dict:
        s = self.variant
        start = time.perf_counter()
        if s.draft_budget == "adaptive":
            drafted, counts = self._adaptive_drafts(unique, prompts_by_id)
        else:
            counts = [s.num_drafts] * len(unique)
            drafted = self._sample(unique, prompts_by_id, counts, s.num_drafts)
        rows, prompts, completion_ids = drafted["rows"], drafted["prompts"], drafted["ids"]
        drafts, rewards, grades = drafted["texts"], drafted["rewards"], drafted["grades"]
        bounds = [sum(counts[:g]) for g in range(len(counts) + 1)]
        health = draft_health([drafts[bounds[g]:bounds[g + 1]] for g in range(len(counts)) if counts[g]])
        self._stop_if_all_empty(health)

        rewritten: dict[str, str] = {}  # this rank's prompts: each prompt's whole group is on this rank
        selected_flags: list[bool] = []
        best_rewards: list[float] = []
        prompt_tokens: list[int] = []  # of every Stage-2 prompt
        truncated = fell_back = no_room = 0
        for g, (pid, row) in enumerate(unique.items()):
            group = slice(bounds[g], bounds[g + 1])
            if counts[g] == 0:  # adaptive: no drafts for this prompt, so its plain prompt (as on_all_zero=plain)
                rewritten[pid], self._shown[pid] = row["prompt"], None
                prompt_tokens.append(self._count_tokens(row["prompt"]))
                continue
            g_rewards = rewards[group]
            cond = condition_on_drafts(s, self.refinement_template, row["problem"], row["prompt"], g_rewards,
                                       completion_ids[group], drafts[group], self.processing_class,
                                       rng=self._selection_rng, max_prompt_tokens=self.max_prompt_tokens)
            choice = cond.choice
            selected_flags.extend(i == choice for i in range(counts[g]))
            best_rewards.append(g_rewards[choice] if g_rewards[choice] is not None else 0.0)
            rewritten[pid] = cond.prompt
            self._shown[pid] = ((extract_final_answer(drafts[bounds[g] + choice]), grades[bounds[g] + choice])
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
        reward_groups = [rewards[bounds[g]:bounds[g + 1]] for g in range(len(counts)) if counts[g]]
        grade_groups = [grades[bounds[g]:bounds[g + 1]] for g in range(len(counts)) if counts[g]]
        drafted_groups = float(len(reward_groups))
        scored = [r for r in rewards if r is not None]
        stats = {
            "reward_mean": (sum(scored) / len(scored) if scored else 0.0, float(len(scored))),
            "best_reward_mean": (sum(best_rewards) / max(len(best_rewards), 1), drafted_groups),
            "frac_groups_zero_std": (_flat_frac(reward_groups), drafted_groups),
            # binary correct (the accuracy reward), as refine/frac_groups_zero_std_correct for Stage 2
            "frac_groups_zero_std_correct": (_flat_frac(grade_groups), drafted_groups),
            "mean_length": (sum(len(x) for x in completion_ids) / max(len(completion_ids), 1), groups),
            "seconds": (time.perf_counter() - start, 1.0),
            "truncated_frac": (truncated / groups, groups),  # selected drafts cut to fit (max_draft_tokens, budget)
        }
        # degenerate drafts: an empty one puts an empty <draft> in its refinement prompt
        stats["empty_frac"] = (health.empty / max(health.drafts, 1), float(health.drafts))
        stats["identical_groups_frac"] = (health.identical_groups / max(health.groups, 1), float(health.groups))
        if s.draft_content == "answer_section":
            stats["answer_section_fallback_frac"] = (fell_back / groups, groups)  # no </think>: the tail was kept
        if self.max_prompt_tokens is not None:
            stats["no_room_frac"] = (no_room / groups, groups)  # problem + template filled the budget: no draft
        equal = min(s.num_drafts, self.num_generations)  # both stages' zero-variance at one group size (first members)
        at_equal = [g[:equal] for g in grade_groups if len(g) >= equal]
        stats[f"frac_groups_zero_std_correct_at_{equal}"] = (_flat_frac(at_equal), float(len(at_equal)))
        if s.draft_budget == "adaptive":  # the rule's decisions: the share of prompts given k drafts, k = 0..cap
            for k, n in enumerate(histogram(counts, s.max_drafts_per_prompt)):
                stats[f"prompts_with_{k}_drafts"] = (n / groups, groups)
        for name, (value, weight) in stats.items():
            self.step_metrics("train")[f"{prefix}{name}"].append(mean_across_processes(value, weight))
        self.step_metrics("train")[f"{prefix}prompt_tokens_max"].append(float(max_across_processes(max(prompt_tokens))))
        recorder = self.rollout_recorder
        if recorder is not None and recorder.wants(self.state.global_step):
            recorder.add(self.state.global_step, "draft", [r["prompt_id"] for r in rows], prompts, drafts, rewards,
                         selected=selected_flags)
        return rewritten

    def _stop_if_all_empty(self, health) -> None:
        """Every draft of the step, on every process, came back empty: the refinement prompts would all carry an
        empty draft and Stage 2 would train on them. Stop in one line instead (most often a chat model run without
        its chat template, or stop tokens that end generation at once)."""
        parts = gather_objects((health.drafts, health.empty))
        drafts, empty = sum(d for d, _ in parts), sum(e for _, e in parts)
        if drafts and empty == drafts:
            raise ConfigError(
                f"Stage 1 drafts were all empty at step {self.state.global_step} ({empty} of {drafts}): every "
                "refinement prompt would carry an empty draft. Check the prompt format (an instruction model needs "
                "model.chat_template=true) and the stop tokens / generation.max_completion_length")

    def _count_tokens(self, prompt: str) -> int:
        """A prompt's length as TRL tokenizes string prompts for generation."""
        return len(self.processing_class(text=prompt)["input_ids"])

    def calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super().calculate_rewards(inputs, prompts, completions, completion_ids_list)
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
        texts = [completion_text(c) for c in completions]
        index = self._accuracy_index()
        if index is not None:  # TRL's gathered tensor: every process's rows, whole Stage-2 groups in order
            gathered = correct_flags([None if v != v else v for v in rewards_per_func[:, index].tolist()])
            mine = local_rows(gathered, self.accelerator.process_index, len(texts))
        else:  # no accuracy reward: exact match on each process, gathered
            mine = [answers_match(extract_final_answer(t), str(x["answer"])) for t, x in zip(texts, inputs)]
            gathered = [g for part in gather_objects(mine) for g in part]
        grades = [None if g is None else bool(g) for g in mine]
        shown = [self._shown.get(x["prompt_id"]) for x in inputs]
        keep = [i for i, sh in enumerate(shown) if sh is not None]
        counts = refine_counts([shown[i][0] for i in keep], [shown[i][1] for i in keep],
                               [extract_final_answer(texts[i]) for i in keep], [grades[i] for i in keep])
        metrics = self.step_metrics("train")
        for name, value in refine_rates(add_counts(gather_objects(counts))).items():
            metrics[f"refine/{name}"].append(value)
        g, equal = self.num_generations, min(self.num_generations, self.variant.num_drafts)
        metrics["refine/frac_groups_zero_std_correct"].append(frac_groups_zero_std(gathered, g))
        metrics[f"refine/frac_groups_zero_std_correct_at_{equal}"].append(
            frac_groups_zero_std(first_of_each_group(gathered, g, equal), equal))


def _flat_frac(groups: list[list]) -> float:
    """Fraction of ``groups`` with no learning signal (``igrpo.core.metrics.is_flat``; 0.0 when there are none)."""
    return sum(is_flat(g) for g in groups) / len(groups) if groups else 0.0
