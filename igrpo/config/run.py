"""Schemas of ``entropy``, ``generation``, ``tracking``, ``train`` and the top-level run config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


@dataclass
class EntropyNone:
    name: str = MISSING


@dataclass
class EntropyConstant:
    name: str = MISSING
    coef: float = MISSING  # loss = policy loss - coef * mean token entropy


@dataclass
class EntropyDelayed(EntropyConstant):
    start_step: int | None = MISSING  # switch on at this step (None = never by step)
    threshold: float | None = MISSING  # switch on once entropy falls below this (None = never)


@dataclass
class EntropyLinear(EntropyConstant):
    final_coef: float = MISSING  # value reached at decay_steps
    decay_steps: int = MISSING  # steps to go from coef to final_coef


@dataclass
class EntropyAdaptive(EntropyConstant):
    target: float = MISSING  # target mean token entropy (nats)
    delta: float = MISSING  # step size of the coefficient
    coef_min: float = MISSING
    coef_max: float = MISSING


# ---------------------------------------------------------------------------------------- generation


@dataclass
class GenerationHF:
    """Rollouts with transformers.generate."""

    name: str = MISSING
    temperature: float = MISSING  # training rollouts (drafts and refinements alike)
    top_p: float = MISSING
    max_completion_length: int = MISSING  # tokens (characters for the tiny model)


@dataclass
class GenerationVLLM(GenerationHF):
    """Rollouts through vLLM via TRL's use_vllm (CUDA only)."""

    vllm_mode: str = MISSING  # colocate (shares the training GPUs) | server (`trl vllm-serve` elsewhere)
    gpu_memory_utilization: float = MISSING  # colocate: share of each GPU's memory vLLM may take
    tensor_parallel_size: int = MISSING  # colocate: GPUs per vLLM engine
    server_base_url: str | None = MISSING  # server: e.g. http://10.0.0.5:8000 (else host/port below)
    server_host: str = MISSING
    server_port: int = MISSING
    enable_sleep_mode: bool = MISSING  # colocate: offload vLLM weights/cache during the optimizer step
    importance_sampling_correction: bool = MISSING  # correct for vLLM vs trainer logprob mismatch (TRL's TIS)


# ---------------------------------------------------------------------------------- tracking, train


@dataclass
class Tracking:
    uri: str | None = MISSING  # explicit tracking URI; wins over MLFLOW_TRACKING_URI; None = local SQLite
    experiment: str = MISSING  # MLflow experiment name
    run_name: str | None = MISSING  # None = <variant>-<algo>-<reward>-s<seed>
    rollout_log_every: int = MISSING  # training steps between rollout-table snapshots (first and last always)
    log_model: bool = MISSING  # save the trained policy as an artifact
    tags: dict[str, str] = MISSING  # extra run tags (experiments add experiment/arm/scale/group)
    parent_run_id: str | None = MISSING  # make this run a child of that run
    parent_key: str | None = MISSING  # a multirun's parent run is found (or made) by this key; None = sweep dir
    parent_name: str | None = MISSING  # name of a parent run made for parent_key


@dataclass
class Train:
    steps: int = MISSING  # optimizer steps
    prompts_per_step: int = MISSING  # distinct prompts per optimizer step (global over processes)
    # one optimizer step's completions go through forward/backward in this many micro-batches; generation (drafts
    # and refinements) still happens once per optimizer step (TRL's steps_per_generation = this)
    gradient_accumulation_steps: int = MISSING
    gradient_checkpointing: bool = MISSING  # recompute activations in the backward pass (less memory, more time)
    # prompt cap in tokens (paper: 1,024): the plain prompt is never cut; an iGRPO draft is cut per row to what
    # remains after the plain problem and the refinement template. None = no cap. vLLM's max_model_len = this +
    # generation.max_completion_length
    max_prompt_tokens: int | None = MISSING
    logging_steps: int = MISSING
    # checkpoints and resume (igrpo/training/checkpoints.py); none of these enter the config hash
    save_every: int = MISSING  # checkpoint every k optimizer steps (0 = no checkpoints, no resume)
    save_total_limit: int | None = MISSING  # checkpoints kept, >= 2; None = all
    resume: bool = MISSING  # a restarted run continues its unfinished MLflow run from its last checkpoint
    checkpoint_root: str = MISSING  # checkpoints go to <checkpoint_root>/<config_hash>-<destination>


@dataclass
class RunConfig:
    # Groups: typed by the schema each option's YAML names (see the module docstring).
    model: Any = MISSING
    task: Any = MISSING
    variant: Any = MISSING
    algo: Any = MISSING
    reward: Any = MISSING
    entropy: Any = MISSING
    generation: Any = MISSING
    eval: Any = MISSING
    tracking: Any = MISSING
    train: Train = field(default_factory=Train)
    seed: int = MISSING
    rollout_budget: int = MISSING  # completions per prompt per step: GRPO's group size, iGRPO's N x rounds + G
    device: str = MISSING  # cpu | cuda
    cpu_threads: int = MISSING  # torch threads on CPU; 0 = this process's share of the cores (igrpo.job.threads)
    output_dir: str | None = MISSING  # where checkpoints and scratch files go (None only in `--cfg job --resolve`: no run)
    objective: Any = MISSING  # metric returned to sweepers: a name, or a list of names (multi-objective)
    quiet: bool = MISSING  # no progress bars


# group -> option -> schema. A YAML option names its schema as ``/schema/<group>/<option>@_here_``.
