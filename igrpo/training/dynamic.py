"""DAPO's dynamic sampling on TRL's seam (``algo.dynamic_sampling``; TRL 1.16 has none). The decision of which
groups form the batch is ``igrpo.core.dapo``; this module runs the rounds and merges TRL's tensors.

``fill_batch`` (the trainer's ``fill_batch`` hook when dynamic sampling is on) runs the variant's whole rollout
(``generate_and_score``: iGRPO's drafts and refinements, Critique-GRPO's initial answers, critiques and refinements)
on TRL's batch, reads each group's training reward (captured by ``TrackedGRPOTrainer.calculate_rewards``), and
while some process lacks informative groups and fewer than ``algo.max_resample_rounds`` extra rounds ran, samples
as many new prompts as the batch holds and runs the rollout on them too. The batch is then the first informative
groups in sampling order, topped up with flat groups when the cap was reached (``igrpo.core.dapo.plan_batch``).

* New prompts come from the training set, drawn with a seeded RNG saved with checkpoints (``resample_rng``), none
  already in this step; TRL's own sampler is untouched, so the next step's batch is the one it would have been.
* Every process runs the same number of rounds (collectives inside generation and scoring); each draws its own
  slice of one shared draw, and keeps its own groups (each process holds whole groups).
* A dropped group's completions were generated and count in the spend (``rollouts/*``), iGRPO's drafts of that
  prompt included: they are spent and discarded with their refinement group, never trained on. TRL's own per-round
  metrics (``reward``, ``frac_reward_zero_std``, ``completions/*``, iGRPO's ``draft/*``...) are logged for every
  round, so they describe all that was generated, not only the trained batch.
"""

from __future__ import annotations

import torch

from igrpo.core.dapo import informative_groups, needs_another_round, plan_batch
from igrpo.training.distributed import gather_objects, max_across_processes

LEFT_PADDED = ("prompt_ids", "prompt_mask")  # everything else per token is right-padded (completion side)
PAD_WITH_TOKEN = ("prompt_ids", "completion_ids")


def fill_batch(trainer, inputs: list[dict], max_rounds: int, rng) -> dict:
    """TRL's training batch for ``inputs`` with zero-variance groups replaced (see the module docstring); logs
    ``dynamic_sampling/*`` and returns how many rounds ran as ``trainer.sampled_rounds``."""
    group = trainer.num_generations
    needed = len(inputs) // group
    outputs, flags = [], []

    def one_round(rows: list[dict]) -> None:
        trainer.last_row_rewards = None
        outputs.append(trainer.generate_and_score(rows))
        if trainer.last_row_rewards is None:
            raise RuntimeError("dynamic sampling found no rewards for the round (TrackedGRPOTrainer.calculate_rewards "
                               "was not called)")
        flags.append(informative_groups(trainer.last_row_rewards, group))

    one_round(inputs)
    used = {pid for rank in gather_objects([row["prompt_id"] for row in inputs]) for pid in rank}
    extra = 0
    while _more(needed, flags, extra, max_rounds):
        one_round(_draw(trainer, needed, group, used, rng))
        extra += 1
    plan = plan_batch(flags, needed)
    batch = merge_groups(outputs, plan.picks, group, trainer.text_tokenizer.pad_token_id)
    mask = batch["completion_mask"] if "tool_mask" not in batch else batch["completion_mask"] * batch["tool_mask"]
    batch["num_items_in_batch"] = trainer.accelerator.gather(mask.sum()).sum()

    sampled = sum(len(f) for f in flags)
    counts = gather_objects((sampled, sum(sum(f) for f in flags), plan.filled, needed))
    total = [sum(c[i] for c in counts) for i in range(4)]
    metrics = trainer.step_metrics("train")
    metrics["dynamic_sampling/extra_rounds"].append(float(extra))
    metrics["dynamic_sampling/kept_frac"].append(total[1] / total[0])  # informative among all groups sampled
    metrics["dynamic_sampling/filled_frac"].append(total[2] / total[3])  # flat groups in the batch (cap reached)
    trainer.sampled_rounds = 1 + extra
    return batch


def _more(needed: int, flags: list[list[bool]], extra: int, max_rounds: int) -> bool:
    """Another round, decided alike on every process: while any process lacks informative groups."""
    lacking = max_across_processes(needed - min(needed, sum(sum(f) for f in flags)))
    return needs_another_round(needed - int(lacking), needed, extra, max_rounds)


def _draw(trainer, needed: int, group: int, used: set, rng) -> list[dict]:
    """``needed`` new prompts for this process, each repeated ``group`` times as TRL's sampler lays rows out: one
    shared draw of ``needed`` x processes prompts not yet in this step (every process's RNG is in the same state),
    this process's slice of it."""
    dataset = trainer.train_dataset
    ids = dataset["prompt_id"]
    world, rank = trainer.accelerator.num_processes, trainer.accelerator.process_index
    want = needed * world
    fresh = [i for i, pid in enumerate(ids) if pid not in used]
    picks = rng.sample(fresh, want) if len(fresh) >= want else rng.choices(range(len(ids)), k=want)
    used.update(ids[i] for i in picks)
    return [dataset[i] for i in picks[rank * needed:(rank + 1) * needed] for _ in range(group)]


def merge_groups(outputs: list[dict], picks, group: int, pad_token_id: int) -> dict:
    """The rows of the picked ``(round, group)`` groups of TRL's per-round outputs, as one output: per-row tensors
    concatenated (prompt side left-padded, completion side right-padded to the widest round), per-row lists joined.
    ``num_items_in_batch`` is left to the caller (it is a count over every process)."""
    merged: dict = {}
    for key in outputs[0]:
        if key == "num_items_in_batch":
            continue
        parts = []
        for r, g in picks:
            value = outputs[r][key]
            rows = outputs[r]["advantages"].shape[0]
            if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == rows:
                parts.append(value[g * group:(g + 1) * group])
            elif isinstance(value, list) and len(value) == rows:
                parts.append(value[g * group:(g + 1) * group])
            else:
                raise ValueError(f"dynamic sampling cannot merge the rollout output {key!r} (not one entry per row)")
        if isinstance(parts[0], list):
            merged[key] = [x for part in parts for x in part]
            continue
        if parts[0].dim() >= 2:
            width = max(p.shape[1] for p in parts)
            pad = pad_token_id if key in PAD_WITH_TOKEN else 0
            parts = [_pad(p, width, pad, left=key in LEFT_PADDED) for p in parts]
        merged[key] = torch.cat(parts, dim=0)
    return merged


def _pad(t: torch.Tensor, width: int, value, left: bool) -> torch.Tensor:
    if t.shape[1] == width:
        return t
    filler = torch.full((t.shape[0], width - t.shape[1], *t.shape[2:]), value, dtype=t.dtype, device=t.device)
    return torch.cat([filler, t] if left else [t, filler], dim=1)
