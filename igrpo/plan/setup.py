"""From a composed run config (and the plan's own settings, or the running job's environment) to the plan's inputs;
and the check a training run makes before its model loads (``check_run_fits``).

Where the numbers come from:

* the architecture: ``model.path``'s config.json when it is a local directory, else the config's
  ``model.architecture`` (the paper's presets carry it); the embedded tiny model from its build settings;
* GPUs and their memory: ``plan.gpus`` / ``plan.gpu_memory_gib``, else the accelerate config's ``num_processes``
  (``plan.accelerate``), else what torch sees here, else one 80 GB H100 (79.6 GiB usable), said so in the output;
  inside a launched run: ``WORLD_SIZE`` and the device's total memory;
* the sharding: ``plan.accelerate=<conf/accelerate/ option>``, else what ``accelerate launch`` exported
  (``ACCELERATE_USE_DEEPSPEED`` and ``ACCELERATE_DEEPSPEED_ZERO_STAGE``, ``ACCELERATE_USE_FSDP`` and
  ``FSDP_SHARDING_STRATEGY``), else none (one process per GPU);
* the batch: ``train.prompts_per_step`` x the variant's trained group (``Variant.group_size``: GRPO's whole budget,
  iGRPO's refinements) / ``train.gradient_accumulation_steps`` / GPUs, as ``igrpo.job.factory`` gives TRL.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from igrpo import CONF_DIR
from igrpo.config.fields import choice, number
from igrpo.errors import ConfigError
from igrpo.plan import memory as mem
from igrpo.plan.arch import Architecture, from_config, tiny_architecture
from igrpo.plan.budget import PlanInputs

ACCELERATE_DIR = CONF_DIR / "accelerate"
ASSUMED_GPU_MEMORY = 79.6 * mem.GIB  # an 80 GB H100 as torch reports it, less what the driver keeps
ASSUMED_GPU = "an 80 GB H100 (79.6 GiB usable) assumed: no GPU visible here (set plan.gpu_memory_gib)"
PLAN_OFF_ENV = "IGRPO_MEMORY_PLAN"  # =off: a training run starts without the memory check
FSDP_STAGES = {"FULL_SHARD": 3, "1": 3, "HYBRID_SHARD": 3, "4": 3, "SHARD_GRAD_OP": 2, "2": 2, "NO_SHARD": 0, "3": 0}


class CannotPlan(ConfigError):
    """The plan has no numbers for this run (an architecture it does not cover, no prompt cap); a training run then
    starts unchecked."""


def accelerate_options() -> list[str]:
    return sorted(p.stem for p in ACCELERATE_DIR.glob("*.yaml"))


@dataclass
class PlanSettings:
    """The command's own overrides (``plan.<field>=<value>``); each field's rule as the run config's are declared."""

    gpus: int | None = number(ge=1, why="(GPUs the run uses)")
    gpu_memory_gib: float | None = number(gt=0, why="(usable memory of one GPU, GiB)")
    accelerate: str | None = choice(*accelerate_options())


def sharding_from_accelerate(config: dict, source: str) -> mem.Sharding:
    """What an accelerate config (conf/accelerate/*.yaml) shards."""
    kind = str(config.get("distributed_type", "NO")).upper()
    if kind == "DEEPSPEED":
        stage = int((config.get("deepspeed_config") or {}).get("zero_stage", 0))
        return mem.Sharding(f"DeepSpeed ZeRO-{stage}", "deepspeed", stage, source)
    if kind == "FSDP":
        strategy = str((config.get("fsdp_config") or {}).get("fsdp_sharding_strategy", "FULL_SHARD")).upper()
        return mem.Sharding(f"FSDP {strategy}", "fsdp", FSDP_STAGES.get(strategy, 3), source)
    return mem.Sharding("DDP (every GPU holds everything)", "ddp", 0, source)


def sharding_from_env(env) -> mem.Sharding | None:
    """What ``accelerate launch`` exported to this process, or None outside a launched run."""
    if env.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        stage = int(env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "0") or 0)
        return mem.Sharding(f"DeepSpeed ZeRO-{stage}", "deepspeed", stage, "accelerate launch")
    if env.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        strategy = env.get("FSDP_SHARDING_STRATEGY", "FULL_SHARD").upper()
        return mem.Sharding(f"FSDP {strategy}", "fsdp", FSDP_STAGES.get(strategy, 3), "accelerate launch")
    if int(env.get("WORLD_SIZE", "1")) > 1:
        return mem.Sharding("DDP (every GPU holds everything)", "ddp", 0, "launched processes")
    return None


def read_accelerate(name: str) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(ACCELERATE_DIR / f"{name}.yaml"))


def architecture_of(model_cfg) -> Architecture:
    """The model's architecture (see the module docstring); CannotPlan where none is known or it is not covered."""
    if "path" not in model_cfg:  # the embedded tiny model
        m = model_cfg
        return tiny_architecture(m.hidden_size, m.num_layers, m.num_heads, m.intermediate_size)
    path = str(model_cfg.path)
    local = Path(os.path.expanduser(path)) / "config.json"
    try:
        if local.is_file():
            config = json.loads(local.read_text(encoding="utf-8"))
            return from_config(config.get("text_config") or config, f"{path} (its config.json)")
        if model_cfg.get("architecture") is not None:
            from omegaconf import OmegaConf

            return from_config(OmegaConf.to_container(model_cfg.architecture), str(model_cfg.name))
    except ConfigError as err:
        raise CannotPlan(str(err)) from None
    except (OSError, ValueError) as err:
        raise CannotPlan(f"cannot plan model.path={path}: its config.json cannot be read ({err})") from None
    raise CannotPlan(f"cannot plan model.path={path}: no architecture is known (model.architecture=null and no "
                     "local config.json); give model.path=<a local model directory> or set model.architecture")


def visible_gpus() -> tuple[int, float, str] | None:
    """(count, memory of one, its name) of the GPUs torch sees here, or None (torch is imported only where a driver
    is installed)."""
    if not (Path("/proc/driver/nvidia").exists() or Path("/dev/nvidiactl").exists()):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return torch.cuda.device_count(), float(props.total_memory), props.name


def resolve_gpus(settings: PlanSettings, processes: int | None) -> tuple[int, float, str]:
    """(GPUs, bytes per GPU, where they come from) for the command (see the module docstring)."""
    seen = visible_gpus() if settings.gpus is None or settings.gpu_memory_gib is None else None
    if settings.gpus is not None:
        gpus, count_from = settings.gpus, f"plan.gpus={settings.gpus}"
    elif processes is not None:
        gpus, count_from = processes, f"num_processes of conf/accelerate/{settings.accelerate}.yaml"
    elif seen is not None:
        gpus, count_from = seen[0], "GPUs visible here"
    else:
        gpus, count_from = 1, "one GPU assumed (set plan.gpus)"
    if settings.gpu_memory_gib is not None:
        return gpus, settings.gpu_memory_gib * mem.GIB, f"{count_from}; plan.gpu_memory_gib={settings.gpu_memory_gib:g}"
    if seen is not None:
        return gpus, seen[1], f"{count_from}; memory of the {seen[2]} here"
    return gpus, ASSUMED_GPU_MEMORY, f"{count_from}; {ASSUMED_GPU}"


def plan_inputs(cfg, gpus: int, gpu_memory: float, sharding: mem.Sharding) -> PlanInputs:
    """The plan's inputs for a composed, validated run config."""
    from igrpo.variants import variant_of

    model, gen, train = cfg.model, cfg.generation, cfg.train
    arch = architecture_of(model)
    completion = int(gen.max_completion_length)
    prompt = train.max_prompt_tokens
    if prompt is None and "max_positions" in model:  # the tiny model: prompt and completion share its positions
        prompt = max(int(model.max_positions) - completion, 1)
    if prompt is None:
        raise CannotPlan("cannot plan without a prompt cap (train.max_prompt_tokens=null): set it, e.g. "
                         "train.max_prompt_tokens=1024 (the paper's)")
    vllm = gen.name == "vllm"
    return PlanInputs(
        model=str(model.name), arch=arch, dtype=str(model.dtype), gpus=gpus, gpu_memory=gpu_memory,
        sharding=sharding, variant=str(cfg.variant.name), prompts_per_step=int(train.prompts_per_step),
        trained_per_prompt=int(variant_of(cfg).group_size(cfg)), accumulation=int(train.gradient_accumulation_steps),
        prompt_tokens=int(prompt), completion_tokens=completion, checkpointing=bool(train.gradient_checkpointing),
        attention=str(model.get("attn_implementation", "sdpa")), generation=str(gen.name),
        vllm_mode=str(gen.vllm_mode) if vllm else "colocate", vllm_share=float(gen.gpu_memory_utilization) if vllm
        else 0.0, tensor_parallel=int(gen.tensor_parallel_size) if vllm else 1,
        sleep_mode=bool(gen.enable_sleep_mode) if vllm else False, reference_model=float(cfg.algo.beta) > 0)


def check_run_fits(cfg, gpu_memory: float | None = None) -> None:
    """A training run on CUDA, before its model loads: one ConfigError line when the plan says it cannot fit in this
    launch's GPUs (``WORLD_SIZE`` of them, each with ``gpu_memory`` bytes: by default the device's total memory).
    ``IGRPO_MEMORY_PLAN=off`` skips the check; a model the plan cannot size starts unchecked."""
    if os.environ.get(PLAN_OFF_ENV, "").lower() == "off":
        return
    from igrpo.plan.budget import check_inputs, make_plan, verdict
    from igrpo.training.distributed import world_size

    if gpu_memory is None:
        import torch

        gpu_memory = float(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory)
    gpus, memory = world_size(), gpu_memory
    sharding = sharding_from_env(os.environ) or mem.NO_SHARDING
    try:
        inputs = plan_inputs(cfg, gpus, memory, sharding)
    except CannotPlan:
        return
    check_inputs(inputs)
    plan = make_plan(inputs)
    if not plan.fits:
        raise ConfigError(f"{verdict(plan)} (python -m igrpo.plan shows the table; {PLAN_OFF_ENV}=off starts anyway)")


def check_eval_fits(cfg, gpu_memory: float) -> None:
    """An evaluation through HF ``generate`` on CUDA (``eval.mode=inline``, or ``generation=hf``), before anything
    loads: one ConfigError line when the model's weights and the K/V cache of ``eval.batch_size`` sequences at full
    length (the longest training prompt + ``eval.max_new_tokens``) exceed one GPU. transformers' cache is not paged:
    every sequence of a batch holds its whole length until the batch's longest sample ends. vLLM pages it, in the
    evaluation job. A model the plan cannot size is not checked."""
    if cfg.eval.mode == "job" and cfg.generation.name == "vllm":
        return
    try:
        arch = architecture_of(cfg.model)
    except CannotPlan:
        return
    from igrpo.plan.arch import DTYPE_BYTES

    b = DTYPE_BYTES.get(str(cfg.model.dtype), 4)
    length = int(cfg.train.max_prompt_tokens or 0) + int(cfg.eval.max_new_tokens)
    sequences = int(cfg.eval.batch_size)
    cache = mem.hf_generation(arch, b, sequences, length)
    need = arch.parameters() * b + cache.bytes
    if need > gpu_memory:
        fix = ("use eval.mode=job generation=vllm (the evaluation job pages the cache), or lower eval.batch_size "
               "or eval.max_new_tokens")
        raise ConfigError(f"eval.max_new_tokens={cfg.eval.max_new_tokens} cannot be served by HF generate: the "
                          f"weights and the K/V cache ({cache.how}) need {need / mem.GIB:.0f} GiB, more than the "
                          f"GPU's {gpu_memory / mem.GIB:.0f} GiB; {fix}")
