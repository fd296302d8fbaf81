"""A run's per-GPU budget in three phases, and the verdict: it fits, or one line naming what to change.

Phases (each must fit in one GPU's memory):

* load: the model loaded whole on every GPU (before ZeRO-3 / FSDP shard it; in fp32 where no framework keeps a master
  copy) and, colocated, vLLM's share (TRL starts the engine while the trainer is built, before the first step shards
  anything);
* generate: the training state, and either vLLM's share or transformers' generate() with its K/V cache;
* train: one micro-step's forward and backward: the training state, activations, the loss's log-probs, and vLLM's
  share (unless its sleep mode gives it back during training).

``fixes`` tries single changes (vLLM's share or tensor parallelism, gradient checkpointing, more accumulation steps,
ZeRO-3, more GPUs), then a vLLM change with a training change, and names the first that make the plan fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from igrpo.errors import ConfigError
from igrpo.plan import memory as mem
from igrpo.plan.arch import DTYPE_BYTES, Architecture, billions

PHASES = ("load", "generate", "train")
ZERO3 = mem.Sharding("DeepSpeed ZeRO-3", "deepspeed", 3, "conf/accelerate/deepspeed_zero3.yaml")
GPU_STEPS = (2, 4, 8, 16, 32, 64)
TIGHT = 0.9  # above this share of the memory a fitting plan is called tight


@dataclass(frozen=True)
class PlanInputs:
    model: str  # the model's label (model.name)
    arch: Architecture
    dtype: str  # model.dtype
    gpus: int
    gpu_memory: float  # bytes per GPU
    sharding: mem.Sharding
    variant: str
    prompts_per_step: int
    trained_per_prompt: int  # the group TRL trains on (GRPO: rollout_budget; iGRPO: num_refinements)
    accumulation: int
    prompt_tokens: int
    completion_tokens: int
    checkpointing: bool
    attention: str
    generation: str  # hf | vllm
    vllm_mode: str = "colocate"
    vllm_share: float = 0.0
    tensor_parallel: int = 1
    sleep_mode: bool = False
    reference_model: bool = False  # algo.beta > 0: TRL keeps a frozen copy of the policy

    @property
    def bytes_per_value(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def seq_len(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def per_process(self) -> int:
        """Completions each GPU trains on per optimizer step (all generated at once)."""
        return self.prompts_per_step * self.trained_per_prompt // self.gpus

    @property
    def micro_batch(self) -> int:
        return self.per_process // self.accumulation

    @property
    def colocated(self) -> bool:
        return self.generation == "vllm" and self.vllm_mode == "colocate"


def check_inputs(i: PlanInputs) -> None:
    """The splits the trainer needs (``igrpo.config.run.Train.check`` asks them of the processes it runs in; the plan
    asks them of ``plan.gpus``), and a tensor-parallel size vLLM can use."""
    if i.prompts_per_step % i.gpus:
        raise ConfigError(f"train.prompts_per_step={i.prompts_per_step} does not split over {i.gpus} GPUs (every "
                          f"prompt's completions sit on one process); use a GPU count that divides it, or a multiple "
                          f"of {i.gpus} prompts")
    if i.per_process % i.accumulation:
        raise ConfigError(f"train.gradient_accumulation_steps={i.accumulation} does not divide the {i.per_process} "
                          f"completions each of {i.gpus} GPUs trains on per step; choose a divisor")
    if i.colocated and (i.gpus % i.tensor_parallel or i.arch.num_heads % i.tensor_parallel):
        raise ConfigError(f"generation.tensor_parallel_size={i.tensor_parallel} is not valid on {i.gpus} GPUs with "
                          f"{i.arch.num_heads} attention heads: it must divide both")


@dataclass(frozen=True)
class Row:
    label: str
    how: str
    bytes: dict  # phase -> bytes (absent: not alive in that phase)


@dataclass
class Plan:
    inputs: PlanInputs
    rows: list[Row]
    vllm: mem.VllmPlan | None
    totals: dict = field(default_factory=dict)
    problem: str | None = None  # why it does not fit (without the fix)

    @property
    def fits(self) -> bool:
        return self.problem is None

    @property
    def peak_phase(self) -> str:
        return max(PHASES, key=lambda p: self.totals[p])


def _row(part: mem.Part, *phases: str, phase_bytes: dict | None = None) -> Row:
    return Row(part.label, part.how, phase_bytes or {p: part.bytes for p in phases})


def make_plan(i: PlanInputs) -> Plan:
    """Every part's bytes per GPU in each phase, the totals, and the problem if a phase does not fit."""
    a, b = i.arch, i.bytes_per_value
    params = a.parameters()
    state = mem.training_state(params, i.dtype, i.sharding, i.gpus)
    loaded = params * mem.loaded_weight_bytes(i.dtype, i.sharding)  # whole on every GPU until sharded
    rows = [_row(state[0], "generate", "train",
                 phase_bytes={"load": loaded, "generate": state[0].bytes, "train": state[0].bytes})]
    rows += [_row(part, "generate", "train") for part in state[1:]]
    casts = mem.autocast_copies(params, i.dtype, i.sharding)
    if casts is not None:
        rows.append(_row(casts, "generate", "train"))
    full_shard = i.sharding.stage >= 3 and i.gpus > 1
    if full_shard:
        gathered = mem.gathered_layers(a, b)
        # generate() gathers every parameter: the rest of the weights beside this GPU's shard
        gen = params * b - state[0].bytes if i.generation == "hf" else gathered.bytes
        rows.append(Row(gathered.label, gathered.how + ("; generate() gathers all" if i.generation == "hf" else ""),
                        {"generate": gen, "train": gathered.bytes}))
    if i.reference_model:
        ref = params * b / (i.gpus if full_shard else 1)
        rows.append(Row("reference model (algo.beta > 0)", f"{billions(params)} x {b} B", {"generate": ref,
                                                                                          "train": ref}))
    rows += [_row(part, "train") for part in mem.activations(a, i.micro_batch, i.seq_len, b, i.checkpointing,
                                                             i.attention)]
    rows.append(_row(mem.loss_logprobs(a, i.micro_batch * i.completion_tokens, b, full_shard), "train"))
    vllm = None
    if i.colocated:
        vllm = mem.vllm_colocate(a, params, b, i.vllm_share, i.gpu_memory, i.tensor_parallel, i.seq_len,
                                 i.per_process * i.tensor_parallel)
        train = vllm.overhead if i.sleep_mode else vllm.share_bytes
        rows.append(Row("vLLM's share (colocate)", f"{i.vllm_share:g} x {mem.gib(i.gpu_memory)} GiB"
                        + ("; asleep while training: its overhead only" if i.sleep_mode else ""),
                        {"load": vllm.share_bytes, "generate": vllm.share_bytes, "train": train}))
    elif i.generation == "hf":
        rows.append(_row(mem.hf_generation(a, b, i.per_process, i.seq_len), "generate"))
    rows.append(_row(mem.Part("CUDA context, NCCL, allocator slack", mem.RUNTIME_BYTES, "per process, a rule of thumb"),
                     *PHASES))
    plan = Plan(i, rows, vllm)
    plan.totals = {p: sum(r.bytes.get(p, 0.0) for r in rows) for p in PHASES}
    plan.problem = _problem(plan)
    return plan


def _problem(plan: Plan) -> str | None:
    i, v = plan.inputs, plan.vllm
    M = i.gpu_memory
    share = f"its share {i.vllm_share:g} x {mem.gib(M)} GiB = {mem.gib(v.share_bytes)} GiB" if v else ""
    if v is not None and v.engine_weights >= v.share_bytes:
        tp = f" / {i.tensor_parallel} (tensor parallel)" if i.tensor_parallel > 1 else ""
        return (f"vLLM's copy of the {billions(i.arch.parameters())}-parameter weights, {mem.gib(v.engine_weights)} "
                f"GiB{tp}, exceeds {share}")
    if v is not None and v.sequences_held < 1:
        return (f"vLLM's share leaves {mem.gib(max(v.kv_cache, 0))} GiB of K/V cache after the weights "
                f"({mem.gib(v.engine_weights)} GiB) and its overhead ({mem.gib(v.overhead)} GiB): less than one "
                f"sequence of {i.seq_len:,} tokens ({mem.gib(v.one_sequence)} GiB); {share}")
    over = [p for p in PHASES if plan.totals[p] > M]
    if not over:
        return None
    phase = max(over, key=lambda p: plan.totals[p])
    groups: dict[str, list[Row]] = {}
    for r in plan.rows:  # "activations: ..." rows count as one
        if phase in r.bytes:
            groups.setdefault(r.label.split(":")[0], []).append(r)
    name, rows = max(groups.items(), key=lambda g: sum(r.bytes[phase] for r in g[1]))
    largest = f"{name} {mem.gib(sum(r.bytes[phase] for r in rows))} GiB"
    if len(rows) > 1:
        largest += " (" + ", ".join(f"{r.label.split(': ', 1)[1]} {mem.gib(r.bytes[phase])}" for r in rows) + ")"
    if name == "activations":
        largest += f" for {i.micro_batch} completions x {i.seq_len:,} tokens per micro-step"
    where = {"load": "loading the model", "generate": "generation", "train": "the training micro-step"}[phase]
    gpus = f"{i.gpus} GPUs" if i.gpus > 1 else "1 GPU"
    return f"{where} needs {mem.gib(plan.totals[phase])} GiB per GPU of {mem.gib(M)} GiB on {gpus} (largest: {largest})"


def _min_share(i: PlanInputs) -> float:
    """The smallest vLLM share (in steps of 0.05) whose K/V cache holds one whole sequence."""
    a, b = i.arch, i.bytes_per_value
    need = (a.parameters() * b / i.tensor_parallel + mem.VLLM_OVERHEAD_BYTES
            + a.kv_bytes_per_token(b, i.tensor_parallel) * i.seq_len)
    return math.ceil(need / i.gpu_memory * 20 - 1e-9) / 20


def _vllm_changes(i: PlanInputs) -> list[tuple[str, str, PlanInputs]]:
    """(kind, what to change, the changed inputs) for vLLM's part: a larger share, or tensor parallelism."""
    if not i.colocated:
        return []
    out = []
    share = _min_share(i)
    if i.vllm_share < share <= 0.95:
        out.append(("share", f"generation.gpu_memory_utilization to >= {share:g}", replace(i, vllm_share=share)))
    for tp in GPU_STEPS:
        if tp > i.tensor_parallel and tp <= i.gpus and not i.gpus % tp and not i.arch.num_heads % tp:
            out.append(("tp", f"generation.tensor_parallel_size={tp}", replace(i, tensor_parallel=tp)))
    return out


def _training_changes(i: PlanInputs) -> list[tuple[str, str, PlanInputs]]:
    """(kind, what to change, the changed inputs) for the training side: checkpointing, more accumulation steps (each
    divisor of the per-GPU completions), ZeRO-3, more GPUs (with ZeRO-3 unless the run already shards fully)."""
    out = []
    if not i.checkpointing:
        out.append(("checkpointing", "train.gradient_checkpointing=true", replace(i, checkpointing=True)))
    for k in range(i.accumulation + 1, i.per_process + 1):
        if not i.per_process % k:
            out.append(("accumulation", f"train.gradient_accumulation_steps={k}", replace(i, accumulation=k)))
    if i.gpus > 1 and i.sharding.stage < 3:
        out.append(("zero3", ("ZeRO-3 (accelerate launch --config_file conf/accelerate/deepspeed_zero3.yaml; "
                    "plan.accelerate=deepspeed_zero3)"), replace(i, sharding=ZERO3)))
    sharding = i.sharding if i.sharding.stage >= 3 else ZERO3
    for g in GPU_STEPS:
        if g > i.gpus and not i.prompts_per_step % g and (i.prompts_per_step * i.trained_per_prompt // g) \
                % i.accumulation == 0:
            flags = f"plan.gpus={g}" + ("" if sharding is i.sharding else " plan.accelerate=deepspeed_zero3")
            what = f"{g} GPUs" + ("" if sharding is i.sharding else " with ZeRO-3")
            out.append(("gpus", f"{what} ({flags})", replace(i, gpus=g, sharding=sharding)))
    return out


VERBS = {"share": "raise", "tp": "use", "checkpointing": "set", "accumulation": "set", "zero3": "use", "gpus": "use"}


def _first_fitting(changes: list[tuple[str, str, PlanInputs]]) -> list[tuple[str, str]]:
    """The first change of each kind that makes the plan fit (the smallest such step), in order."""
    found: dict[str, str] = {}
    for kind, what, changed in changes:
        if kind not in found and make_plan(changed).fits:
            found[kind] = what
    return list(found.items())


def fixes(i: PlanInputs, most: int = 2) -> list[str]:
    """Up to ``most`` changes, each of which makes the plan fit: single changes first (the smallest step of each
    kind), then a vLLM change combined with the smallest training change that then fits."""
    found = [f"{VERBS[kind]} {what}" for kind, what in _first_fitting([*_vllm_changes(i), *_training_changes(i)])]
    for kind, what, changed in _vllm_changes(i):
        if len(found) >= most:
            break
        paired = _first_fitting(_training_changes(changed))
        if paired:
            found.append(f"{VERBS[kind]} {what} with {paired[0][1]}")
    return found[:most]


def verdict(plan: Plan) -> str:
    """The plan's last line: ``fits: ...`` or ``does not fit: <why>; <what to change>``."""
    i = plan.inputs
    if plan.fits:
        phase = plan.peak_phase
        used = plan.totals[phase] / i.gpu_memory
        tight = " (tight: estimates are rough to ~25%)" if used > TIGHT else ""
        return (f"fits: {mem.gib(plan.totals[phase])} of {mem.gib(i.gpu_memory)} GiB per GPU at its peak ({phase}, "
                f"{used:.0%}){tight}")
    found = fixes(i)
    change = (" or ".join(found) if found else
              "no change of vLLM's share or tensor parallelism, accumulation, sharding or GPU count up to "
              f"{GPU_STEPS[-1]} fits; shorten generation.max_completion_length or train.max_prompt_tokens, or plan "
              "a smaller model")
    return f"does not fit: {plan.problem}; {change}"
