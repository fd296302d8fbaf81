"""One run, from a composed config to logged results: validate -> base model -> MLflow run ->
base eval (step 0) -> GRPO or iGRPO training -> final eval -> rollout table -> objective value.
With ``train.save_every`` the run checkpoints, and launching it again after a crash or kill continues the
same MLflow run from its last complete checkpoint (igrpo.training.checkpoints)."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from igrpo.job.builds import resolve_judge, resolve_model_dir, resolve_policy_path
from igrpo.training.checkpoints import (
    RankStateCallback,
    open_checkpoints,
    restore_worker,
    run_checkpoint_dir,
    share_with_workers,
    state_writer,
    train_from,
)
from igrpo.config import to_container
from igrpo.job.identity import config_hash, default_run_name
from igrpo.training.distributed import init_processes, is_main_process, process_index, wait_for_everyone, world_size
from igrpo.eval.context import check_eval_context, model_context
from igrpo.eval.suites import log_per_problem
from igrpo.eval.refine import refine_eval_enabled, refine_metrics
from igrpo.eval.suites import evaluate_suites, sample_rows
from igrpo.job.eval_phase import (
    base_store_dir,
    evaluate_in_training,
    final_store_dir,
    in_own_process,
    release_training_memory,
)
from igrpo.models.loading import load_policy
from igrpo.tasks import load_task
from igrpo.tracking.callback import MlflowMetricsCallback
from igrpo.tracking.names import (
    PHASE_TRAIN,
    TAG_CHECKPOINT_DIR,
    TAG_CONFIG_HASH,
    TAG_PHASE,
    TAG_RESUMED_FROM_STEP,
    flatten,
    read_parent_run_id,
    resolve_tracking_uri,
)
from igrpo.tracking.runs import RunLog, ensure_experiment, git_commit, mlflow_run
from igrpo.job.factory import build_training
from igrpo.training.final_policy import check_in_memory_eval, save_final_policy
from igrpo.config.validate import objective_names, validate


@dataclass
class RunResult:
    run_id: str
    tracking_uri: str
    experiment: str
    objective: float | list[float]  # one value, or one per name when cfg.objective is a list
    base_metrics: dict
    final_metrics: dict
    experiment_id: str = ""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _hydra_context() -> tuple[str | None, str | None]:
    """(sweep dir when this job is part of a multirun, this job's output dir), or Nones outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return None, None
    sweep = hc.sweep.dir if hc.mode == RunMode.MULTIRUN else None
    return sweep, hc.runtime.output_dir


def run(cfg) -> RunResult:
    """Execute one configured run and return its result (the objective for sweepers included).

    Under ``accelerate launch`` every process trains; only the main one builds (the others then load the
    cached builds), evaluates and talks to MLflow, so a run is logged once, to one MLflow run."""
    run_start = time.perf_counter()
    validate(cfg)
    check_in_memory_eval(cfg)  # this launch's sharding against the evaluation's mode
    if cfg.device == "cuda":  # the memory plan (python -m igrpo.plan): one line if it cannot fit, before any load
        from igrpo.plan.setup import check_eval_fits, check_run_fits

        check_run_fits(cfg)
        check_eval_fits(cfg, torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory)
    seed_everything(cfg.seed)
    tracking_uri = resolve_tracking_uri(cfg.tracking.uri)
    # data errors stop here, before writes (a package-shipped model is converted first: its tokenizer frames prompts)
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval,
                     model_dir=resolve_model_dir(cfg, cfg.quiet))
    init_processes(cpu=cfg.device == "cpu")
    main = is_main_process()
    if not main:
        wait_for_everyone()  # the main process builds first
    policy_path, build_info = resolve_policy_path(cfg, cfg.quiet or not main)
    check_eval_context(int(cfg.eval.max_new_tokens), model_context(policy_path), f"the model ({policy_path})")
    judge = resolve_judge(cfg, cfg.quiet or not main)
    if main:
        wait_for_everyone()

    sweep_dir, job_dir = _hydra_context()
    output_dir = Path(cfg.output_dir if cfg.output_dir else (job_dir or "outputs/run"))
    if not main:
        return _train_worker(cfg, task, policy_path, judge, output_dir, tracking_uri)
    tags = {
        "variant": cfg.variant.name, "algo": cfg.algo.name, "reward": cfg.reward.name, "model": cfg.model.name,
        "task": cfg.task.name, "seed": str(cfg.seed), "git_commit": git_commit(Path(__file__).parent),
        TAG_PHASE: PHASE_TRAIN, TAG_CONFIG_HASH: config_hash(cfg), "num_processes": str(world_size()),
        # the torch threads this process trained with (cpu_threads=0: its share of the cores, igrpo.job.threads)
        "torch_threads": str(torch.get_num_threads()),
        **{str(k): str(v) for k, v in (cfg.tracking.tags or {}).items()},
    }
    run_name = cfg.tracking.run_name or default_run_name(cfg)
    # A job never changes its parent's status: the multirun's owner of the parent does (igrpo.tracking.parent).
    parent = cfg.tracking.parent_run_id or read_parent_run_id(sweep_dir)
    # train.save_every > 0: checkpoints, and an unfinished earlier run of this config is continued
    with open_checkpoints(run_checkpoint_dir(cfg, tags[TAG_CONFIG_HASH], tracking_uri, run_name),
                          tracking_uri) as ckpt:
        resume_id = None
        if ckpt is not None:
            tags[TAG_CHECKPOINT_DIR] = str(ckpt.dir)
            if cfg.train.resume:
                resume_id = ckpt.resumable_run(ensure_experiment(tracking_uri, cfg.tracking.experiment))
            if resume_id is None:
                ckpt.start_fresh()
        with mlflow_run(tracking_uri, cfg.tracking.experiment, run_name, tags, parent_run_id=parent,
                        run_id=resume_id) as mlrun:
            if ckpt is not None and resume_id is None:
                ckpt.record_run(mlrun.run_id)
            resume = ckpt.resume(resume_id) if resume_id is not None else None
            result = _train_and_evaluate(cfg, task, policy_path, build_info, mlrun, output_dir, run_start, judge,
                                         ckpt, resume)
        if ckpt is not None:
            ckpt.remove()  # FINISHED: nothing left to resume
        return result


def _train_worker(cfg, task, policy_path, judge, output_dir: Path, tracking_uri: str) -> RunResult:
    """A non-main process: train in step with the main process; no MLflow, no evaluation. Its collectives come in the
    main process's order: the shared plan, the policy's load (partitioned under ZeRO-3), training, the final save."""
    if cfg.eval.mode == "job":  # its share of the base model's evaluation, as the main process does
        evaluate_in_training(cfg, policy_path, task, base_store_dir(cfg, policy_path))
    shared = share_with_workers(None)  # an inline base evaluation runs on the main process meanwhile
    checkpoint_dir = Path(shared["dir"]) if shared["dir"] else None
    trainer, recorder, _, _ = build_training(cfg, policy_path, task, output_dir, checkpoint_dir=checkpoint_dir,
                                             judge_backend=judge.backend if judge is not None else None)
    if checkpoint_dir is not None:
        trainer.add_callback(RankStateCallback(trainer, recorder))
        restore_worker(trainer, recorder, shared["resume_from"])
    train_from(trainer, shared["resume_from"])
    final_dir = save_final_policy(trainer, cfg, output_dir)  # a collective under ZeRO-3 / FSDP: every rank takes part
    _write_rank_rollouts(recorder, output_dir)
    if cfg.eval.mode == "job":  # its share of the final evaluation
        wait_for_everyone()  # the main process writes the save (under DDP no other rank waits for it)
        if in_own_process(cfg):
            release_training_memory(trainer)
        evaluate_in_training(cfg, str(final_dir), task, Path(shared["final_store"]))
    return RunResult(run_id="", tracking_uri=tracking_uri, experiment=cfg.tracking.experiment,
                     objective=float("nan"), base_metrics={}, final_metrics={})


def _evaluate_base(cfg, policy_path: str, task, judge) -> tuple[dict, list]:
    """The base model's evaluation (step 0) on a copy loaded for inference in ``model.dtype``, freed before the
    trainable policy loads: that one may be loaded partitioned across the processes (ZeRO-3), which no process alone can
    generate with, and in fp32 (igrpo.training.precision). ``eval.mode=job``: through the evaluation job's store and
    backend, every process taking its share (igrpo.job.eval_phase)."""
    if cfg.eval.mode == "job":
        from igrpo.job.eval_job import job_counters

        outcome = evaluate_in_training(cfg, policy_path, task, base_store_dir(cfg, policy_path))
        metrics, rows = {**outcome.metrics, **job_counters(outcome)}, sample_rows(outcome.records, task)
        if not (refine_eval_enabled(cfg) and not in_own_process(cfg)):
            return metrics, rows  # the draft-conditioned diagnostic needs the model in this process
        model, tokenizer = load_policy(policy_path, cfg.model.dtype, cfg.device, cfg.model.get("attn_implementation"))
        metrics.update(refine_metrics(cfg, model, tokenizer, task, judge))
        del model
        return metrics, rows
    model, tokenizer = load_policy(policy_path, cfg.model.dtype, cfg.device, cfg.model.get("attn_implementation"))
    metrics, rows = evaluate_suites(model, tokenizer, task, cfg.eval, seed=cfg.seed)
    metrics.update(refine_metrics(cfg, model, tokenizer, task, judge))  # variant=igrpo, eval.refine
    del model
    if cfg.device == "cuda":
        torch.cuda.empty_cache()  # its memory goes back before the trainable policy and vLLM take theirs
    return metrics, rows


def _write_rank_rollouts(recorder, output_dir: Path) -> None:
    """With several processes, each rank's rollouts also go to ``rollouts-rank<k>.json`` in the output dir,
    so what every rank conditioned on can be checked (MLflow holds the main process's table)."""
    if world_size() > 1:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / f"rollouts-rank{process_index()}.json").write_text(json.dumps(recorder.rows))


def _log_setup(mlrun: RunLog, cfg, build_info, judge, resume) -> None:
    """Params, config, build tags, the judge's AUROC; a resumed run only gets what it does not hold yet."""
    params = flatten(to_container(cfg))
    if resume is not None:
        params = {k: v for k, v in params.items() if k not in resume.params}
    mlrun.params(params)
    if resume is None or "config.yaml" not in resume.artifacts:
        mlrun.text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    if build_info is not None:
        mlrun.tags({"base_model_cache_key": build_info.cache_key,
                    "base_model_dev_greedy": f"{build_info.dev_accuracy:.4f}"})
    if judge is not None and judge.build_info is not None:
        mlrun.tags({"judge_cache_key": judge.build_info.cache_key})
        if resume is None or 0 not in resume.history.get("judge/heldout_auroc", {}):
            mlrun.metrics({"judge/heldout_auroc": judge.build_info.heldout_auroc}, step=0)


def _train_and_evaluate(cfg, task, policy_path, build_info, mlrun: RunLog, output_dir, run_start: float,
                        judge=None, ckpt=None, resume=None) -> RunResult:
    """``ckpt``: the run's RunCheckpoints (train.save_every > 0); ``resume``: where a reopened run continues."""
    _log_setup(mlrun, cfg, build_info, judge, resume)
    if resume is None:  # what data loading dropped: skipped rows, exact and n-gram eval overlaps
        mlrun.params({f"data/{k}": str(v) for k, v in task.extra.items()
                      if k in ("skipped_rows", "held_out_removed", "decontaminated")})
    base_metrics = resume.base_metrics() if resume is not None else {}
    # eval.mode=job: every process takes part in the base evaluation, so the main one does too (a resumed run's
    # samples are in the store already)
    if not base_metrics or cfg.eval.mode == "job":
        start = time.perf_counter()
        metrics, base_rows = _evaluate_base(cfg, policy_path, task, judge)
        if not base_metrics:  # a new run, or a resumed one killed before its base evaluation was logged
            base_metrics = metrics
            mlrun.metrics({**base_metrics, "perf/eval_seconds": time.perf_counter() - start}, step=0)
            log_per_problem(mlrun, base_rows, step=0)
    resume_from = str(resume.checkpoint) if resume is not None and resume.checkpoint is not None else None
    share_with_workers({"dir": str(ckpt.dir) if ckpt is not None else None, "resume_from": resume_from,
                        "final_store": str(final_store_dir(cfg, mlrun.run_id))})
    policy = {}  # the trainable policy and its tokenizer, once built (below)

    def periodic_eval(step: int) -> dict:
        every = cfg.eval.every_steps
        if every and step % every == 0 and 0 < step < cfg.train.steps:
            metrics, _ = evaluate_suites(policy["model"], policy["tokenizer"], task, cfg.eval, seed=cfg.seed)
            return metrics
        return {}

    skip = resume.logged_after() if resume is not None else frozenset()
    callback = MlflowMetricsCallback(mlrun, extra_metrics=periodic_eval, skip=skip)
    trainer, recorder, model, tokenizer = build_training(
        cfg, policy_path, task, output_dir, callbacks=[callback], judge_backend=judge.backend if judge is not None
        else None, checkpoint_dir=ckpt.dir if ckpt is not None else None)
    policy.update(model=model, tokenizer=tokenizer)
    if ckpt is not None:
        callback.on_checkpoint = state_writer(trainer, recorder)  # metrics are committed with checkpoints
    if resume is not None:
        resume.restore(trainer, recorder)
        mlrun.tags({TAG_RESUMED_FROM_STEP: str(resume.step)})
        print(resume.describe(), flush=True)
    train_start = time.perf_counter()
    train_from(trainer, resume_from)
    train_seconds = time.perf_counter() - train_start
    if getattr(trainer, "vllm_sync_log", None) is not None:  # generation=vllm: when weights synced, when it sampled
        mlrun.json(trainer.vllm_sync_log.as_json(), "vllm_sync.json")
    final_dir = save_final_policy(trainer, cfg, output_dir)  # once, on every rank; the eval job and log_model read it
    _write_rank_rollouts(recorder, output_dir)

    start = time.perf_counter()
    if cfg.eval.mode == "job":  # the resumable eval-job path on the saved final policy (igrpo.job.eval_job)
        from igrpo.job.eval_job import evaluate_saved_model

        wait_for_everyone()  # every rank reads the save this process writes
        if in_own_process(cfg):  # its process needs the memory training holds
            policy.clear()
            model = None
            release_training_memory(trainer)
        final_metrics, samples = evaluate_saved_model(cfg, final_dir, task, mlrun)
        if model is not None:  # the draft-conditioned diagnostic (variant=igrpo) needs the model in this process
            final_metrics = {**final_metrics, **refine_metrics(cfg, model, tokenizer, task, judge)}
    else:
        final_metrics, samples = evaluate_suites(model, tokenizer, task, cfg.eval, seed=cfg.seed)
        final_metrics = {**final_metrics, **refine_metrics(cfg, model, tokenizer, task, judge)}
    final_metrics = dict(final_metrics)
    for key, value in base_metrics.items():
        if key in final_metrics:  # a refine rate is left out where undefined (no wrong shown draft)
            final_metrics[key.replace("eval/", "eval_gain/", 1)] = final_metrics[key] - value
    final_metrics["perf/train_seconds"] = train_seconds
    final_metrics["perf/run_seconds"] = time.perf_counter() - run_start
    mlrun.metrics({**final_metrics, "perf/eval_seconds": time.perf_counter() - start}, step=cfg.train.steps,
                  skip=skip)
    done = resume.artifacts if resume is not None else set()  # a table logged again would be appended to
    if recorder.rows and "rollouts.json" not in done:
        mlrun.table(recorder.rows, "rollouts.json")
    if "eval_samples.json" not in done:
        mlrun.table(samples, "eval_samples.json")
    log_per_problem(mlrun, samples, step=cfg.train.steps)
    if cfg.tracking.log_model:
        mlrun.artifacts(final_dir, "model")

    result = RunResult(run_id=mlrun.run_id, tracking_uri=mlrun.tracking_uri, experiment=cfg.tracking.experiment,
                       objective=objective_value(cfg.objective, final_metrics), base_metrics=base_metrics,
                       final_metrics=final_metrics, experiment_id=mlrun.experiment_id)
    (output_dir / "result.json").parent.mkdir(parents=True, exist_ok=True)
    (output_dir / "result.json").write_text(json.dumps(result.__dict__, indent=2))
    return result


def objective_value(objective, metrics: dict) -> float | list[float]:
    """What a sweeper optimises: one float, or a list of floats for a multi-objective search."""
    if isinstance(objective, str):
        return float(metrics[objective])
    return [float(metrics[name]) for name in objective_names(objective)]

