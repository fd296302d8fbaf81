"""The plan as text: what was planned, the per-GPU table (one column per phase), vLLM's K/V cache, the verdict."""

from __future__ import annotations

from igrpo.plan import memory as mem
from igrpo.plan.arch import billions
from igrpo.plan.budget import PHASES, Plan, verdict


def header(plan: Plan, gpu_source: str) -> list[str]:
    i = plan.inputs
    a = i.arch
    tp = f", tensor parallel {i.tensor_parallel}" if i.tensor_parallel > 1 else ""
    gen = {"hf": "transformers' generate() on the training GPUs",
           "vllm": (f"vLLM colocated, share {i.vllm_share:g}{tp}{', sleep mode' if i.sleep_mode else ''}"
                    if i.colocated else "vLLM server on other GPUs (not on these)")}[i.generation]
    sharding = i.sharding.label + (f" ({i.sharding.source})" if i.sharding.source else "")
    if i.sharding.stage == 0 and not i.sharding.source:
        sharding += (" (one process)" if i.gpus == 1 else
                     " (DDP: every GPU holds everything; plan.accelerate=<conf/accelerate/ option> chooses)")
    return [
        f"memory plan: {i.model} ({billions(a.parameters())} parameters, {i.dtype}), variant={i.variant}",
        f"  model: {a.describe()}",
        f"  GPUs: {i.gpus} x {mem.gib(i.gpu_memory)} GiB ({gpu_source})",
        f"  sharding: {sharding}",
        (f"  micro-step per GPU: {i.prompts_per_step} prompts x {i.trained_per_prompt} trained completions / "
        f"{i.accumulation} accumulation steps / {i.gpus} GPU{'s' if i.gpus > 1 else ''} = {i.micro_batch} "
        f"completions x {i.seq_len:,} tokens ({i.prompt_tokens:,} prompt cap + {i.completion_tokens:,} completion "
        f"cap); gradient checkpointing {'on' if i.checkpointing else 'off'}, attention {i.attention}"),
        f"  generation: {gen}",
    ]


def table(plan: Plan) -> list[str]:
    width = max(len(r.label) for r in plan.rows) + 2
    lines = [f"{'per GPU, GiB':<{width}}" + "".join(f"{p:>10}" for p in PHASES) + "   how"]
    for r in plan.rows:
        cells = "".join(f"{mem.gib(r.bytes[p]) if p in r.bytes else '-':>10}" for p in PHASES)
        lines.append(f"{r.label:<{width}}{cells}   {r.how}")
    lines.append("-" * (width + 10 * len(PHASES)))
    lines.append(f"{'total':<{width}}" + "".join(f"{mem.gib(plan.totals[p]):>10}" for p in PHASES))
    memory = plan.inputs.gpu_memory
    lines.append(f"{f'of {mem.gib(memory)} GiB':<{width}}"
                 + "".join(f"{plan.totals[p] / memory:>10.0%}" for p in PHASES))
    return lines


def vllm_lines(plan: Plan) -> list[str]:
    v = plan.vllm
    if v is None:
        return []
    held = (f"{v.sequences_held} sequences of {v.seq_len:,} tokens at once" if v.sequences_held
            else f"not one sequence of {v.seq_len:,} tokens")
    wait = (f"; {v.queued - v.sequences_held} wait for a free slot" if v.queued > v.sequences_held > 0 else "")
    return [(f"vLLM K/V cache: {v.share:g} x {mem.gib(plan.inputs.gpu_memory)} GiB = {mem.gib(v.share_bytes)} GiB "
            f"- engine weights {mem.gib(v.engine_weights)} - overhead {mem.gib(v.overhead)} = "
            f"{mem.gib(v.kv_cache)} GiB; {v.kv_per_token / 1024:.0f} KiB per token holds {held}, "
            f"against {v.queued} queued per engine{wait}")]


def render(plan: Plan, gpu_source: str, notes: tuple[str, ...] = ()) -> list[str]:
    """Every line the command prints, the verdict last; ``notes``: lines under the header."""
    return [*header(plan, gpu_source), *(f"  note: {n}" for n in notes), "", *table(plan), "", *vllm_lines(plan),
            verdict(plan)]
