"""Config -> TRL ``GRPOConfig`` + trainer. Every TRL setting that matters for CPU runs or for a fair
GRPO vs iGRPO comparison is set here from our config, never left to TRL's defaults (which assume
bf16 GPUs, lr 1e-6, the dapo loss and 512-token completions)."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from trl import GRPOConfig

from igrpo.training.distributed import world_size
from igrpo.core.entropy import trl_args as entropy_trl_args
from igrpo.errors import ConfigError
from igrpo.models.loading import load_policy
from igrpo.training.generation import pin_stop_tokens, rollout_stop_kwargs
from igrpo.training.precision import mixed_precision_args, reference_model_args, weights_dtype
from igrpo.rewards import build_reward_funcs
from igrpo.tasks.base import TaskData
from igrpo.training.seam import check_trl_seam
from igrpo.training.trainer import RolloutRecorder
from igrpo.training.vllm_sync import install_sync_log
from igrpo.variants import variant_of


def group_size(cfg) -> int:
    """Completions per prompt that TRL generates and trains on: GRPO's whole budget, iGRPO's G."""
    return variant_of(cfg).group_size(cfg)


def per_device_batch(prompts_per_step: int, group: int, processes: int, accumulation: int = 1) -> int:
    """Completions per process per micro-batch. ``train.prompts_per_step`` is global, so GRPO and iGRPO see the
    same prompts per optimizer step on any number of processes and micro-batches; each process holds whole groups
    (``igrpo.config.run.Train.check`` refuses a split that would cut one), so a prompt is drafted once."""
    total = prompts_per_step * group
    if total % (processes * accumulation):
        raise ConfigError(f"train.prompts_per_step={prompts_per_step} x {group} completions = {total} does not "
                          f"split into {processes} processes x {accumulation} micro-batches; choose "
                          "prompts_per_step so the product divides")
    return total // (processes * accumulation)


def lr_schedule(algo) -> dict:
    """TRL's scheduler settings: ``cosine`` with ``algo.min_lr_rate > 0`` is transformers' ``cosine_with_min_lr``
    (the LR decays to that fraction of the peak, the paper's 10% floor); other schedulers as named."""
    if algo.lr_scheduler_type == "cosine" and algo.min_lr_rate > 0:
        return {"lr_scheduler_type": "cosine_with_min_lr", "lr_scheduler_kwargs": {"min_lr_rate": algo.min_lr_rate}}
    return {"lr_scheduler_type": algo.lr_scheduler_type}


def vllm_max_model_len(cfg) -> int | None:
    """vLLM's context length: the prompt cap plus the completion cap, so a draft-conditioned prompt never shortens
    its completions (None without a prompt cap: vLLM then takes the model's own limit)."""
    cap = cfg.train.max_prompt_tokens
    return None if cap is None else cap + cfg.generation.max_completion_length


def vllm_args(gen, max_model_len: int | None = None) -> dict:
    """TRL's vLLM settings from ``generation=vllm`` (nothing for the hf backend)."""
    if gen.name != "vllm":
        return {"use_vllm": False}
    return {
        "use_vllm": True,
        "vllm_mode": gen.vllm_mode,
        "vllm_gpu_memory_utilization": gen.gpu_memory_utilization,
        "vllm_tensor_parallel_size": gen.tensor_parallel_size,
        "vllm_max_model_length": max_model_len,
        "vllm_server_base_url": gen.server_base_url,
        "vllm_server_host": gen.server_host,
        "vllm_server_port": gen.server_port,
        "vllm_enable_sleep_mode": gen.enable_sleep_mode,
        "vllm_importance_sampling_correction": gen.importance_sampling_correction,
    }


def build_grpo_args(cfg, output_dir: Path) -> GRPOConfig:
    g = group_size(cfg)
    k = cfg.train.gradient_accumulation_steps
    a, gen = cfg.algo, cfg.generation
    on_cpu = cfg.device == "cpu"
    return GRPOConfig(
        output_dir=str(output_dir),
        # hardware. model.dtype is the compute dtype: bf16/fp16 are autocast over fp32 weights, or DeepSpeed's and
        # FSDP's mixed precision over their own fp32 copy (igrpo.training.precision); the config keeps CPU runs fp32
        use_cpu=on_cpu,
        **mixed_precision_args(cfg.model.dtype),
        gradient_checkpointing=cfg.train.gradient_checkpointing,
        # optimisation
        learning_rate=a.learning_rate,
        **lr_schedule(a),
        warmup_steps=a.warmup_ratio,  # a float < 1 is a ratio of the total steps
        weight_decay=a.weight_decay,
        max_grad_norm=a.max_grad_norm,
        max_steps=cfg.train.steps,
        per_device_train_batch_size=per_device_batch(cfg.train.prompts_per_step, g, world_size(), k),
        # k micro-batches per optimizer step, generated in one go: TRL generates steps_per_generation micro-batches
        # at once, so drafts and refinements are sampled once per optimizer step from the same policy snapshot
        gradient_accumulation_steps=k,
        steps_per_generation=k,
        num_iterations=a.num_iterations,
        # the GRPO-family objective
        num_generations=g,
        loss_type=a.loss_type,
        scale_rewards=a.scale_rewards,
        importance_sampling_level=a.importance_sampling_level,
        epsilon=a.epsilon,
        epsilon_high=a.epsilon_high,
        beta=a.beta,
        mask_truncated_completions=a.mask_truncated_completions,
        **reference_model_args(cfg.model.dtype, a.beta),
        **entropy_trl_args(cfg.entropy),  # entropy_coef; entropy=adaptive: TRL's controller (use_adaptive_entropy...)
        # rollouts
        max_completion_length=gen.max_completion_length,
        **vllm_args(gen, vllm_max_model_len(cfg)),
        temperature=gen.temperature,
        top_p=gen.top_p,
        top_k=0,
        # bookkeeping: we log to MLflow ourselves and evaluate with our own protocol
        report_to="none",
        logging_steps=cfg.train.logging_steps,
        # checkpoints (train.save_every > 0): into output_dir, which is then the run's checkpoint dir
        save_strategy="steps" if cfg.train.save_every > 0 else "no",
        save_steps=max(cfg.train.save_every, 1),
        save_total_limit=cfg.train.save_total_limit,
        eval_strategy="no",
        log_completions=False,
        disable_tqdm=cfg.quiet,
        seed=cfg.seed,
        data_seed=cfg.seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every parameter gets a gradient; the extra graph walk is waste
    )


def build_dataset(task: TaskData, tokenizer=None, max_prompt_tokens: int | None = None) -> tuple[Dataset, int]:
    """The training rows, and how many problems were left out because their plain prompt alone is over the prompt
    cap (``train.max_prompt_tokens``): such a prompt is never cut (cutting it would cut the problem), and the same
    problems are left out for every variant, so their budgets stay matched."""
    rows, over = [], 0
    for p in task.train:
        prompt = task.prompt(p)
        if max_prompt_tokens is not None and len(tokenizer(text=prompt)["input_ids"]) > max_prompt_tokens:
            over += 1
            continue
        rows.append({"prompt": prompt, "problem": p.problem, "answer": p.answer, "prompt_id": p.id, "level": p.level})
    if not rows:
        raise ConfigError(f"train.max_prompt_tokens={max_prompt_tokens} is under every training prompt's length; "
                          "raise it or set it to null")
    return Dataset.from_list(rows), over


def build_training(cfg, policy_path: str, task: TaskData, output_dir: Path, callbacks=(), judge_backend=None,
                   checkpoint_dir: Path | None = None):
    """(trainer, recorder, model, tokenizer): the training arguments first, then the trainable policy, then the trainer.

    The order matters under DeepSpeed ZeRO-3: building TRL's GRPOConfig there (``accelerate launch`` exported
    DeepSpeed) makes transformers' DeepSpeed config live, and ``from_pretrained`` partitions the weights across the
    processes as they load (``zero3_init_flag``) only while it is; a policy loaded before would sit whole on every GPU.
    transformers holds that config by a weak reference, so the arguments are kept alive by the trainer they go to.
    The policy loads in fp32 where the optimizer would otherwise update half-precision weights
    (igrpo.training.precision)."""
    from igrpo.training.vllm_engine import prepare_colocated_engine

    prepare_colocated_engine(cfg, policy_path)  # vLLM's CPU build: what TRL's colocated engine needs from us
    args = build_grpo_args(cfg, checkpoint_dir or output_dir)
    model, tokenizer = load_policy(policy_path, weights_dtype(cfg.model.dtype), cfg.device,
                                   cfg.model.get("attn_implementation"), partitioned=True)
    trainer, recorder = make_trainer(cfg, model, tokenizer, task, output_dir, callbacks=callbacks,
                                     judge_backend=judge_backend, checkpoint_dir=checkpoint_dir, args=args)
    return trainer, recorder, model, tokenizer


def make_trainer(cfg, model, tokenizer, task: TaskData, output_dir: Path, callbacks=(), judge_backend=None,
                 checkpoint_dir: Path | None = None, args: GRPOConfig | None = None):
    """The configured trainer and its rollout recorder. With ``checkpoint_dir`` (``train.save_every > 0``)
    TRL's output dir is that, so its checkpoints land where a restart of the same command finds them. ``args``: the
    training arguments when they had to exist before the model loaded (``build_training``)."""
    variant = variant_of(cfg)
    check_trl_seam()  # an upgraded TRL without a private member we use fails here, in one line
    stops = pin_stop_tokens(model, tokenizer)  # TRL's rollouts stop where evaluation does (igrpo.training.generation)
    reward_funcs, weights = build_reward_funcs(cfg.reward, judge_backend)
    if cfg.algo.overlong_shaping:  # DAPO's length penalty, added to the reward (igrpo.rewards.overlong)
        from igrpo.rewards.overlong import OverlongPenalty

        a = cfg.algo
        reward_funcs = [*reward_funcs, OverlongPenalty(cfg.generation.max_completion_length, a.overlong_buffer,
                                                       a.overlong_penalty, tokenizer)]
        weights = [*weights, 1.0]
    args = args if args is not None else build_grpo_args(cfg, checkpoint_dir or output_dir)
    args.reward_weights = weights
    # the stop tokens passed to generation explicitly: vLLM's engine never sees the pinned in-memory generation config
    args.generation_kwargs = rollout_stop_kwargs(cfg.generation.name, stops, tokenizer.pad_token_id)
    recorder = RolloutRecorder(every=cfg.tracking.rollout_log_every, last_step=cfg.train.steps)
    dataset, over_cap = build_dataset(task, tokenizer, cfg.train.max_prompt_tokens)
    if over_cap and not cfg.quiet:
        print(f"train.max_prompt_tokens={cfg.train.max_prompt_tokens}: {over_cap} of {len(task.train)} training "
              "problems left out (their plain prompt alone is longer; prompts are never cut)", flush=True)
    common = dict(model=model, reward_funcs=reward_funcs, args=args, train_dataset=dataset,
                  processing_class=tokenizer, callbacks=list(callbacks), rollout_recorder=recorder,
                  entropy_schedule=cfg.entropy, generated_per_prompt=variant.generated_per_prompt(cfg),
                  max_resample_rounds=cfg.algo.max_resample_rounds if cfg.algo.dynamic_sampling else None)
    trainer = variant.make_trainer(cfg, task, tokenizer, common)
    # generation=vllm: its syncs and generations recorded (logged as vllm_sync.json); the CPU build's sync
    trainer.vllm_sync_log = install_sync_log(trainer, cfg.device, stops)
    # Metrics go to MLflow; the terminal gets a progress bar, not a dict per step.
    trainer.prompts_over_cap = over_cap  # training problems left out by the prompt cap
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if not cfg.quiet:
        trainer.add_callback(BarOnlyProgressCallback())
    return trainer, recorder


class BarOnlyProgressCallback(ProgressCallback):
    """transformers' progress bar without the per-step log dump."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return
