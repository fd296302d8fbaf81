"""Schemas of ``entropy``, ``generation``, ``tracking``, ``train`` and the top-level run config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from igrpo.config.fields import choice, number
from igrpo.core.entropy import check_schedule
from igrpo.errors import ConfigError

GENERATION_BACKENDS = ("hf", "vllm")
VLLM_MODES = ("colocate", "server")
DEVICES = ("cpu", "cuda")


@dataclass
class EntropyNone:
    name: str = MISSING

    @staticmethod
    def check(e, cfg) -> None:
        check_schedule(e)  # the schedule's own rules (igrpo.core.entropy), every option alike


@dataclass
class EntropyConstant(EntropyNone):
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

    name: str = choice(*GENERATION_BACKENDS)
    temperature: float = number(gt=0)  # training rollouts (drafts and refinements alike)
    top_p: float = number(gt=0, le=1)
    max_completion_length: int = number(gt=0)  # tokens (characters for the tiny model)


@dataclass
class GenerationVLLM(GenerationHF):
    """Rollouts through vLLM via TRL's use_vllm (on CPU: vLLM's CPU build, colocate mode)."""

    vllm_mode: str = choice(*VLLM_MODES)  # colocate (shares the training GPUs) | server (`trl vllm-serve` elsewhere)
    gpu_memory_utilization: float = number(gt=0, le=1)  # colocate: share of each GPU's memory vLLM may take
    tensor_parallel_size: int = MISSING  # colocate: GPUs per vLLM engine
    server_base_url: str | None = MISSING  # server: e.g. http://10.0.0.5:8000 (else host/port below)
    server_host: str = MISSING
    server_port: int = MISSING
    enable_sleep_mode: bool = MISSING  # colocate: offload vLLM weights/cache during the optimizer step
    importance_sampling_correction: bool = MISSING  # correct for vLLM vs trainer logprob mismatch (TRL's TIS)

    @staticmethod
    def check(gen, cfg) -> None:
        if cfg.device == "cpu" and gen.vllm_mode != "colocate":  # vLLM's CPU build: igrpo/training/vllm_engine.py
            raise ConfigError(f"generation.vllm_mode={gen.vllm_mode} is not available with device=cpu; use "
                              "generation.vllm_mode=colocate (vLLM's CPU build inside the training process)")


# ---------------------------------------------------------------------------------- tracking, train


@dataclass
class Tracking:
    uri: str | None = MISSING  # explicit tracking URI; wins over MLFLOW_TRACKING_URI; None = local SQLite
    experiment: str = MISSING  # MLflow experiment name (non-empty)
    run_name: str | None = MISSING  # None = <variant>-<algo>-<reward>-s<seed>
    rollout_log_every: int = number(ge=0)  # training steps between rollout-table snapshots (first and last always)
    log_model: bool = MISSING  # save the trained policy as an artifact
    tags: dict[str, str] = MISSING  # extra run tags (experiments add experiment/arm/scale/group)
    parent_run_id: str | None = MISSING  # make this run a child of that run
    parent_key: str | None = MISSING  # a multirun's parent run is found (or made) by this key; None = sweep dir
    parent_name: str | None = MISSING  # name of a parent run made for parent_key

    @staticmethod
    def check(tr, cfg) -> None:
        if not str(tr.experiment or "").strip():
            raise ConfigError(f"tracking.experiment={tr.experiment!r} is not valid; give the MLflow experiment a "
                              "non-empty name")


@dataclass
class Train:
    steps: int = number(gt=0)  # optimizer steps
    prompts_per_step: int = number(gt=0)  # distinct prompts per optimizer step (global over processes)
    # one optimizer step's completions go through forward/backward in this many micro-batches; generation (drafts
    # and refinements) still happens once per optimizer step (TRL's steps_per_generation = this)
    gradient_accumulation_steps: int = number(ge=1)
    gradient_checkpointing: bool = MISSING  # recompute activations in the backward pass (less memory, more time)
    # prompt cap in tokens (paper: 1,024): the plain prompt is never cut; an iGRPO draft is cut per row to what
    # remains after the plain problem and the refinement template. None = no cap. vLLM's max_model_len = this +
    # generation.max_completion_length
    max_prompt_tokens: int | None = number(gt=0, why="or null (no prompt cap)")
    logging_steps: int = MISSING
    # checkpoints and resume (igrpo/training/checkpoints.py); none of these enter the config hash
    save_every: int = number(ge=0, why="(0 = no checkpoints)")  # checkpoint every k optimizer steps (0: no resume)
    # checkpoints kept; None = all
    save_total_limit: int | None = number(ge=2, why="(the newest checkpoint is incomplete until its metrics are "
                                                     "written) or null (keep all)")
    resume: bool = MISSING  # a restarted run continues its unfinished MLflow run from its last checkpoint
    checkpoint_root: str = MISSING  # checkpoints go to <checkpoint_root>/<config_hash>-<destination>

    @staticmethod
    def check(t, cfg) -> None:
        """Each process must hold whole groups (every copy of a prompt on one rank, so each prompt is drafted once
        and every rank drafts for as many prompts), and each process's completions must split into the
        micro-batches."""
        from igrpo.training.distributed import world_size
        from igrpo.variants import variant_of

        processes, prompts, k = world_size(), t.prompts_per_step, t.gradient_accumulation_steps
        if prompts % processes:
            raise ConfigError(f"train.prompts_per_step={prompts} is not valid with {processes} processes: every "
                              f"prompt's completions must sit on one process (so its drafts are drawn once); use a "
                              f"multiple of {processes}")
        group = variant_of(cfg).group_size(cfg)
        per_process = prompts * group // processes
        if per_process % k:
            raise ConfigError(f"train.gradient_accumulation_steps={k} does not divide the {per_process} completions "
                              f"each process trains on per step (train.prompts_per_step={prompts} x {group} / "
                              f"{processes} processes); choose a divisor")


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
    rollout_budget: int = number(ge=2)  # completions per prompt per step: GRPO's group size, iGRPO's N x rounds + G
    device: str = choice(*DEVICES)
    cpu_threads: int = MISSING  # torch threads on CPU; 0 = this process's share of the cores (igrpo.job.threads)
    output_dir: str | None = MISSING  # where checkpoints and scratch files go (None only in `--cfg job --resolve`: no run)
    objective: Any = MISSING  # metric returned to sweepers: a name, or a list of names (multi-objective)
    quiet: bool = MISSING  # no progress bars


# group -> option -> schema. A YAML option names its schema as ``/schema/<group>/<option>@_here_``.
