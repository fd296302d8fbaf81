"""Multi-process helpers (``accelerate launch``): who is the main process, barriers, and sharing the iGRPO
Stage-1 decision across ranks.

Under several processes TRL's sampler can put some copies of one prompt on one rank and the rest on another.
Each rank drafts and selects for the prompts it holds; the ranks then exchange their rewritten prompts and,
for a prompt held by several ranks, all adopt the lowest rank's choice, so every copy of a prompt is
conditioned on the same selected draft. Every rank makes the same collective calls in the same order, which
is what vLLM's colocate mode and DeepSpeed need. One process (the main one) talks to MLflow.
"""

from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_index() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return process_index() == 0


def init_processes(cpu: bool) -> None:
    """Join the process group when launched with several processes (``accelerate launch`` / ``torchrun``).
    On CPU this must say so before anything else creates accelerate's shared state: it then uses gloo."""
    if world_size() > 1:
        from accelerate import PartialState

        PartialState(cpu=cpu)


def wait_for_everyone() -> None:
    if world_size() > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def gather_objects(obj) -> list:
    """Every rank's ``obj``, in rank order (a one-element list in a single process)."""
    if world_size() == 1:
        return [obj]
    from accelerate.utils import gather_object

    return gather_object([obj])


def agree_on_prompts(local: dict[str, str]) -> dict[str, str]:
    """Merge every rank's {prompt_id: rewritten prompt}; for a prompt held by several ranks the lowest rank
    wins. Returns the merged mapping (identical on every rank)."""
    merged: dict[str, str] = {}
    for rank_choices in gather_objects(local):
        for prompt_id, prompt in rank_choices.items():
            merged.setdefault(prompt_id, prompt)
    return merged


def mean_across_processes(value: float, weight: float = 1.0) -> float:
    """Weighted mean of a per-rank value over all ranks (weights e.g. the number of groups each rank holds)."""
    pairs = gather_objects((value * weight, weight))
    total = sum(w for _, w in pairs)
    return sum(v for v, _ in pairs) / total if total else 0.0
