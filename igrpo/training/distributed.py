"""Multi-process helpers (``accelerate launch``): who is the main process, barriers, and per-step statistics
over ranks.

Every prompt's group sits on one rank: TRL's sampler lays out each prompt's copies consecutively and hands each
process a contiguous block of ``prompts_per_step x G / processes`` completions, so when ``train.prompts_per_step``
is a multiple of the number of processes (``igrpo.config.run.Train.check`` refuses anything else) every block
holds whole groups. Each rank then drafts only for its own prompts: no prompt is drafted twice (the budget holds),
no agreement between ranks is needed, and every rank drafts for the same number of prompts, as TRL's vLLM colocate
mode assumes when it gathers and slices prompts across ranks. Every rank makes the same collective calls in the
same order. One process (the main one) talks to MLflow.
"""

from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_index() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return process_index() == 0


def sharding_framework(env=None) -> str | None:
    """``"deepspeed"`` or ``"fsdp"`` when ``accelerate launch`` exported one to this process (its
    ``ACCELERATE_USE_DEEPSPEED`` / ``ACCELERATE_USE_FSDP``, which transformers' TrainingArguments read too), else None:
    one process, or DDP."""
    env = os.environ if env is None else env
    if env.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return "deepspeed"
    if env.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return "fsdp"
    return None


def shards_weights(env=None) -> bool:
    """Each process holds only a shard of the policy's weights (DeepSpeed ZeRO-3, FSDP's full or hybrid sharding), so
    no process alone can generate with the in-memory policy."""
    env = os.environ if env is None else env
    framework = sharding_framework(env)
    if framework == "deepspeed":
        return env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "") == "3"
    if framework == "fsdp":  # accelerate exports the strategy by name or by its number (1 FULL, 4 HYBRID)
        return env.get("FSDP_SHARDING_STRATEGY", "FULL_SHARD").upper() in ("FULL_SHARD", "HYBRID_SHARD", "1", "4")
    return False


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


def mean_across_processes(value: float, weight: float = 1.0) -> float:
    """Weighted mean of a per-rank value over all ranks (weights e.g. the number of groups each rank holds)."""
    pairs = gather_objects((value * weight, weight))
    total = sum(w for _, w in pairs)
    return sum(v for v, _ in pairs) / total if total else 0.0


def max_across_processes(value: float) -> float:
    """The largest of every rank's value (e.g. the longest Stage-2 prompt of the step)."""
    return max(gather_objects(value))


def finish_processes() -> None:
    """Several processes, at the end of a job: a last barrier, then the process group closed on every rank, so no rank
    exits (tearing down its side of the group) while another still uses it. Without it a worker that left early
    aborted once at exit ("terminate called without an active exception", the two-process evaluation job)."""
    if world_size() > 1:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
