"""Critique-GRPO on TRL: a short subclass at the same seam as iGRPO. The logic is in ``igrpo.core.critique``
(which answer, critique text, prompts) and ``igrpo.variants.critique_grpo.shaping`` (the refinement rows' loss).

TRL's ``num_generations`` is the mixed group (``num_initial + num_refinements``); in each group of rows the first
``num_initial`` are initial answers, the rest refinement rows. Generation is replaced for training batches at
``_generate_single_turn``: initial answers are sampled from q, scored, one is critiqued (choices gathered from every
process and made with one seeded RNG, so all processes agree), refinements are sampled from the refinement prompt,
and every completion is handed back to TRL as an answer to q. TRL then scores all rows, computes the advantages
(reward - mixed-group mean: ``scale_rewards`` of the variant, ``none`` by default) and old log-probs under q.
``_compute_loss`` runs TRL's loss with the refinement rows' advantages zeroed and adds their shaping term,
aggregated the algo's way.

Rollout table stages: ``initial``, ``critique`` and ``refinement`` (the refinement's prompt is the refinement prompt
it was sampled from; it is trained under the plain prompt).
"""

from __future__ import annotations


import torch

from igrpo.training.scoring import completion_text, global_rewards, mean, rewards_unrecorded, score
from igrpo.core.critique import (
    best_indices,
    critique_text,
    fill,
    pick_target,
    refinement_stats,
    row_positions,
)
from igrpo.variants.critique_grpo.shaping import aggregate, refinement_token_loss, shaping
from igrpo.training.distributed import gather_objects
from igrpo.core.metrics import frac_groups_zero_std
from igrpo.training.trainer import TrackedGRPOTrainer


class CritiqueGRPOTrainer(TrackedGRPOTrainer):
    completion_stage = "initial"

    def __init__(self, *args, variant, refine_template: str, critique_template: str, selection_seed: int, **kwargs):
        """``variant``: the ``critique_grpo`` node (igrpo.config.VariantCritiqueGRPO), read as it is.
        ``refine_template`` / ``critique_template``: the named templates resolved and framed for the task."""
        super().__init__(*args, **kwargs)
        self.variant = variant
        self.refine_template = refine_template
        self.critique_template = critique_template
        self._target_rng = self.seeded_rng("target_rng", selection_seed)
        self.scale_rewards = variant.scale_rewards  # TRL's advantage scaling for the mixed group
        self._pending_rows: list[dict] | None = None  # the training batch whose generation we take over
        self._row_info: list[dict] = []  # per local row: refinement?, source_correct, prompt it was sampled from
        self._capture: dict | None = None

    # --- generation ---------------------------------------------------------------------------------------------

    def generate_and_score(self, inputs):
        if not self.model.training:
            return super().generate_and_score(inputs)
        self._pending_rows = inputs
        try:
            output = super().generate_and_score(inputs)
        finally:
            self._pending_rows = None
        device = output["advantages"].device
        refinement = torch.tensor([info["refinement"] for info in self._row_info], dtype=torch.bool, device=device)
        output["refinement_rows"] = refinement
        if "importance_sampling_ratio" in output:  # vLLM's correction: weight 1 on refinement rows
            ratio = output["importance_sampling_ratio"]
            output["importance_sampling_ratio"] = torch.where(refinement.unsqueeze(1), torch.ones_like(ratio), ratio)
        return output

    def generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        rows, self._pending_rows = self._pending_rows, None
        if rows is None:  # evaluation, or our own calls below
            return super().generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)
        v, group = self.variant, self.num_generations
        offset = self.accelerator.process_index * len(rows)
        is_refinement = row_positions(len(rows), offset, group, v.num_initial)
        initial = [i for i, r in enumerate(is_refinement) if not r]
        ids_initial, lp_initial = self._sample([prompt_ids[i] for i in initial], v.num_initial)
        texts = self.processing_class.batch_decode(ids_initial, skip_special_tokens=True)
        rewards, correct = score(self, [rows[i] for i in initial], [rows[i]["prompt"] for i in initial], texts)

        # Every process sees every initial answer, so the choice of what to critique is made once, identically.
        local = [{"index": offset + i, "ids": ids, "text": t, "reward": r, "correct": c}
                 for i, ids, t, r, c in zip(initial, ids_initial, texts, rewards, correct)]
        answers = {a["index"]: a for rank in gather_objects(local) for a in rank}
        groups = sorted({index // group for index in answers})
        targets = {g: pick_target([answers[g * group + k]["correct"] for k in range(v.num_initial)],
                                  v.critique_target, self._target_rng) for g in groups}

        refinement = [i for i, r in enumerate(is_refinement) if r]
        row_of: dict[int, dict] = {}  # group -> its row (every row of a group holds the same prompt)
        for i in refinement:
            row_of.setdefault((offset + i) // group, rows[i])
        local_groups = sorted(row_of)
        sources = {g: list(range(v.num_initial)) if v.refine_from == "all" else [targets[g]] for g in local_groups}
        critiques = self._critiques(local_groups, sources, answers, row_of)
        prompts, keys = [], []
        for g in local_groups:
            for k in sources[g]:
                answer = answers[g * group + k]
                prompts.append(fill(self.refine_template, row_of[g]["problem"], self._cut(answer["ids"]),
                                    critiques[(g, k)]))
                keys.append((g, k))
        per_prompt = v.num_refinements if v.refine_from == "one" else 1
        repeated = [p for p in prompts for _ in range(per_prompt)]  # TRL's convention: a prompt per sample
        ids_refined, lp_refined = self._sample(self.tokenize_prompts(repeated)[0] if repeated else [], per_prompt)

        chosen = self._choose_refinements(local_groups, keys, prompts, ids_refined, lp_refined, row_of, per_prompt)
        completion_ids, logprobs, self._row_info = [], [], []
        lp_initial = lp_initial or [None] * len(initial)
        it_initial = iter(zip(initial, ids_initial, lp_initial, correct))
        for i, is_ref in enumerate(is_refinement):
            if not is_ref:
                _, ids, lp, c = next(it_initial)
                completion_ids.append(ids)
                logprobs.append(lp)
                self._row_info.append({"refinement": False, "source_correct": c, "sampled_from": rows[i]["prompt"]})
            else:
                g = (offset + i) // group
                ids, lp, source_k, prompt = chosen[g].pop(0)
                completion_ids.append(ids)
                logprobs.append(lp)
                self._row_info.append({"refinement": True, "source_correct": answers[g * group + source_k]["correct"],
                                       "sampled_from": prompt})
        return completion_ids, (None if any(lp is None for lp in logprobs) else logprobs)

    def _sample(self, prompt_ids: list, per_prompt: int):
        """TRL's own single-turn generation (HF or vLLM, weights synced); nothing to do for no prompts."""
        if not prompt_ids:
            return [], None
        return super().generate_single_turn(prompt_ids, None, {}, per_prompt)

    def _cut(self, ids: list[int]) -> str:
        """The critiqued answer as it enters the refinement prompt: special tokens dropped, its last tokens kept."""
        special = set(self.text_tokenizer.all_special_ids)
        kept = [t for t in ids if t not in special][-self.variant.max_solution_tokens:]
        return self.processing_class.decode(kept, skip_special_tokens=True)

    def _critiques(self, groups: list[int], sources: dict, answers: dict, row_of: dict) -> dict:
        """(group, initial index) -> critique text: rule-based, or written by the policy (``self_cot``)."""
        v, group = self.variant, self.num_generations
        keys = [(g, k) for g in groups for k in sources[g]]
        if v.critique != "self_cot":
            return {(g, k): critique_text(v.critique, answers[g * group + k]["correct"] is True,
                                          str(row_of[g]["answer"])) for g, k in keys}
        prompts = [fill(self.critique_template, row_of[g]["problem"], self._cut(answers[g * group + k]["ids"]))
                   for g, k in keys]
        ids, _ = self._sample(self.tokenize_prompts(prompts)[0] if prompts else [], 1)
        texts = self.processing_class.batch_decode(ids, skip_special_tokens=True)
        self._record("critique", [row_of[g]["prompt_id"] for g, _ in keys], prompts, texts)
        return dict(zip(keys, texts))

    def _choose_refinements(self, groups, keys, prompts, ids, logprobs, row_of, per_prompt) -> dict:
        """group -> [(ids, logprobs, source index, refinement prompt)] for its refinement rows. ``refine_from=one``:
        the refinements of the one critiqued answer; ``all``: the best of the refinements of every answer."""
        v = self.variant
        logprobs = logprobs or [None] * len(ids)
        expanded = [(key, prompt) for key, prompt in zip(keys, prompts) for _ in range(per_prompt)]
        by_group: dict[int, list] = {g: [] for g in groups}
        for (key, prompt), row_ids, lp in zip(expanded, ids, logprobs):
            by_group[key[0]].append((row_ids, lp, key[1], prompt))
        if v.refine_from == "one":
            return by_group
        for g in groups:  # score every refinement, keep the best num_refinements
            candidates = by_group[g]
            texts = self.processing_class.batch_decode([c[0] for c in candidates], skip_special_tokens=True)
            rewards, _ = score(self, [row_of[g]] * len(candidates), [row_of[g]["prompt"]] * len(candidates), texts)
            by_group[g] = [candidates[i] for i in best_indices(rewards, v.num_refinements)]
        return by_group

    # --- scoring, metrics and the rollout table -----------------------------------------------------------------

    def calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        recorder = self.rollout_recorder  # rows are recorded per stage below, not by TRL's path
        rewards_per_func = rewards_unrecorded(self, super().calculate_rewards, inputs, prompts, completions,
                                              completion_ids_list)
        if not self.model.training or not self._row_info:
            return rewards_per_func
        infos = [info for rank in gather_objects(self._row_info) for info in rank]
        rewards, correct = global_rewards(self, rewards_per_func)
        refined = [info["refinement"] for info in infos]
        group, n0 = self.num_generations, self.variant.num_initial
        initial_rewards = [r for r, f in zip(rewards, refined) if not f]
        stats = refinement_stats([info["source_correct"] for info in infos if info["refinement"]],
                                 [c for c, f in zip(correct, refined) if f])
        metrics = {
            "critique/initial_reward_mean": mean(initial_rewards),
            "critique/refinement_reward_mean": mean([r for r, f in zip(rewards, refined) if f]),
            "critique/refinement_fixed_frac": stats["fixed_frac"],
            "critique/refinement_broken_frac": stats["broken_frac"],
            "critique/frac_groups_zero_std": frac_groups_zero_std(rewards, group),
            "critique/initial_frac_groups_zero_std": frac_groups_zero_std(initial_rewards, n0),
        }
        for name, value in metrics.items():
            if value is not None:
                self.step_metrics("train")[name].append(float(value))
        if recorder is not None and recorder.wants(self.state.global_step):
            start = self.accelerator.process_index * len(prompts)
            for stage in ("initial", "refinement"):
                rows = [i for i, info in enumerate(self._row_info) if info["refinement"] == (stage == "refinement")]
                self._record(stage, [inputs[i]["prompt_id"] for i in rows],
                             [self._row_info[i]["sampled_from"] for i in rows],
                             [completion_text(completions[i]) for i in rows], [rewards[start + i] for i in rows])
        return rewards_per_func

    def _record(self, stage: str, prompt_ids, prompts, completions, rewards=None) -> None:
        recorder = self.rollout_recorder
        if recorder is not None and self.model.training and recorder.wants(self.state.global_step):
            recorder.add(self.state.global_step, stage, prompt_ids, prompts, completions,
                         rewards if rewards is not None else [None] * len(prompts))

    # --- loss ---------------------------------------------------------------------------------------------------

    def token_logps_and_entropies(self, *args, **kwargs):
        out = super().token_logps_and_entropies(*args, **kwargs)
        if self._capture is not None and kwargs.get("compute_entropy"):  # the loss's own forward pass
            self._capture["logps"] = out[0]
        return out

    def policy_loss(self, model, inputs):
        refinement = inputs.get("refinement_rows")
        if refinement is None or not bool(refinement.any()):
            return super().policy_loss(model, inputs)
        advantages = inputs["advantages"]
        keep = (~refinement).to(advantages.dtype)
        self._capture = {}
        try:  # initial rows: TRL's own loss (and KL / entropy terms for every row) with refinement advantages 0
            loss = super().policy_loss(model, {**inputs, "advantages": advantages * keep})
            logps = self._capture["logps"]
        finally:
            self._capture = None
        mask = inputs["completion_mask"]
        if "tool_mask" in inputs:
            mask = mask * inputs["tool_mask"]
        # zero on initial rows, but aggregated over the whole batch's mask (bnpo divides by all its tokens)
        per_token = refinement_token_loss(logps, advantages * (1 - keep), self.variant.shaping_gamma)
        per_token = per_token * refinement.unsqueeze(1).to(per_token.dtype)
        training = self.model.training
        loss = loss + aggregate(per_token, mask, self.loss_type, max_completion_length=self.max_completion_length,
                                num_items_in_batch=inputs["num_items_in_batch"],
                                num_processes=self.accelerator.num_processes,
                                accumulation_steps=self.current_gradient_accumulation_steps,
                                steps_per_generation=self.args.steps_per_generation, training=training)
        with torch.no_grad():
            f = shaping(torch.exp(logps), self.variant.shaping_gamma)
            refined = mask * refinement.unsqueeze(1).to(mask.dtype)
            local = torch.stack([(f * refined).sum(), refined.sum().to(f.dtype)])
            total = self.accelerator.reduce(local, reduction="sum")
            if total[1] > 0:
                self.step_metrics("train" if training else "eval")["critique/shaping_mean"].append(
                    (total[0] / total[1]).item())
        return loss
