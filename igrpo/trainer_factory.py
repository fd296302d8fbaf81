"""Config -> TRL ``GRPOConfig`` + trainer. Every TRL setting that matters for CPU runs or for a fair
GRPO vs iGRPO comparison is set here from our config, never left to TRL's defaults (which assume
bf16 GPUs, lr 1e-6, the dapo loss and 512-token completions)."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from trl import GRPOConfig

from igrpo.rewards import build_reward_funcs
from igrpo.tasks.base import TaskData
from igrpo.trainer import DraftSettings, IGRPOTrainer, RolloutRecorder, TrackedGRPOTrainer


def group_size(cfg) -> int:
    """Completions per prompt that TRL generates and trains on: GRPO's whole budget, iGRPO's G."""
    return cfg.variant.num_refinements if cfg.variant.name == "igrpo" else cfg.rollout_budget


def build_grpo_args(cfg, output_dir: Path) -> GRPOConfig:
    g = group_size(cfg)
    a, gen = cfg.algo, cfg.generation
    on_cpu = cfg.device == "cpu"
    return GRPOConfig(
        output_dir=str(output_dir),
        # hardware: fp32 and no checkpointing on CPU; bf16 only when asked for on GPU
        use_cpu=on_cpu,
        bf16=(not on_cpu and cfg.model.dtype == "bfloat16"),
        fp16=False,
        gradient_checkpointing=False,
        # optimisation
        learning_rate=a.learning_rate,
        lr_scheduler_type=a.lr_scheduler_type,
        warmup_steps=a.warmup_ratio,  # a float < 1 is a ratio of the total steps
        weight_decay=a.weight_decay,
        max_grad_norm=a.max_grad_norm,
        max_steps=cfg.train.steps,
        per_device_train_batch_size=cfg.train.prompts_per_step * g,
        gradient_accumulation_steps=1,
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
        entropy_coef=cfg.entropy.coef,
        # rollouts
        max_completion_length=gen.max_completion_length,
        temperature=gen.temperature,
        top_p=gen.top_p,
        top_k=0,
        # bookkeeping: we log to MLflow ourselves and evaluate with our own protocol
        report_to="none",
        logging_steps=cfg.train.logging_steps,
        save_strategy="no",
        eval_strategy="no",
        log_completions=False,
        disable_tqdm=cfg.quiet,
        seed=cfg.seed,
        data_seed=cfg.seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )


def build_dataset(task: TaskData) -> Dataset:
    return Dataset.from_list([
        {"prompt": task.prompt(p), "problem": p.problem, "answer": p.answer, "prompt_id": p.id, "level": p.level}
        for p in task.train
    ])


def make_trainer(cfg, model, tokenizer, task: TaskData, output_dir: Path, callbacks=()):
    """The configured trainer and its rollout recorder."""
    reward_funcs, weights = build_reward_funcs(cfg.reward)
    args = build_grpo_args(cfg, output_dir)
    args.reward_weights = weights
    recorder = RolloutRecorder(every=cfg.tracking.rollout_log_every, last_step=cfg.train.steps)
    common = dict(model=model, reward_funcs=reward_funcs, args=args, train_dataset=build_dataset(task),
                  processing_class=tokenizer, callbacks=list(callbacks), rollout_recorder=recorder,
                  entropy_schedule=cfg.entropy)
    if cfg.variant.name == "igrpo":
        v = cfg.variant
        settings = DraftSettings(num_drafts=v.num_drafts, selection=v.selection, tie_break=v.tie_break,
                                 on_all_zero=v.on_all_zero, max_draft_tokens=v.max_draft_tokens,
                                 draft_truncation=v.draft_truncation, template=v.template, rounds=v.rounds,
                                 seed=cfg.seed)
        trainer = IGRPOTrainer(draft_settings=settings, **common)
    else:
        trainer = TrackedGRPOTrainer(**common)
    # Metrics go to MLflow; the terminal gets a progress bar, not a dict per step.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if not cfg.quiet:
        trainer.add_callback(BarOnlyProgressCallback())
    return trainer, recorder


class BarOnlyProgressCallback(ProgressCallback):
    """transformers' progress bar without the per-step log dump."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return
