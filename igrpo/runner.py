"""One run, from a composed config to logged results: validate -> base model -> MLflow run ->
base eval (step 0) -> GRPO or iGRPO training -> final eval -> rollout table -> objective value."""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import torch
from omegaconf import OmegaConf

from igrpo.config import to_container
from igrpo.evaluate import evaluate_suites
from igrpo.models.loading import build_tiny, default_cache_root, load_policy
from igrpo.tasks import load_task
from igrpo.tracking import (
    MlflowMetricsCallback,
    flatten,
    git_commit,
    log_metrics_at,
    log_params,
    mlflow_run,
    read_parent_run_id,
    resolve_tracking_uri,
)
from igrpo.trainer_factory import make_trainer
from igrpo.validate import validate


@dataclass
class RunResult:
    run_id: str
    tracking_uri: str
    experiment: str
    objective: float
    base_metrics: dict
    final_metrics: dict


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_run_name(cfg) -> str:
    return f"{cfg.variant.name}-{cfg.algo.name}-{cfg.reward.name}-s{cfg.seed}"


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


def resolve_policy_path(cfg, quiet: bool) -> tuple[str, object | None]:
    """Directory or hub id of the base policy, building the tiny model when needed."""
    if cfg.model.path is not None:
        return os.path.expanduser(cfg.model.path), None
    cache_root = Path(cfg.model.cache_dir) if cfg.model.cache_dir else default_cache_root()
    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.model.warmstart_steps, desc="warm-start tiny model", leave=False)

    def progress(step, loss, acc):
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", dev_acc=f"{acc:.2f}")

    info = build_tiny(cfg.model, cfg.task, cache_root, progress=progress)
    if bar is not None:
        bar.close()
    if info.built_now:
        _log_base_model_build(cfg, info)
    return info.path, info


def _log_base_model_build(cfg, info) -> None:
    """The base-model build is its own MLflow run (tag phase=base_model), with its accuracy."""
    tags = {"phase": "base_model", "model": cfg.model.name, "task": cfg.task.name, "cache_key": info.cache_key}
    with mlflow_run(cfg.tracking.experiment, f"base-{cfg.model.name}-{info.cache_key[:8]}", tags):
        client = mlflow.MlflowClient()
        run_id = mlflow.active_run().info.run_id
        log_params(client, run_id, flatten({"model": to_container(cfg.model), "task": to_container(cfg.task)}))
        for step, acc in info.history:
            log_metrics_at(client, run_id, {"base/dev_greedy": acc}, step)
        log_metrics_at(client, run_id, {"base/dev_greedy_final": info.dev_accuracy, "base/steps": info.steps,
                                        "base/final_loss": info.final_loss, "base/num_parameters": info.num_parameters,
                                        "perf/build_seconds": info.seconds}, info.steps)


def run(cfg) -> RunResult:
    """Execute one configured run and return its result (the objective for sweepers included)."""
    validate(cfg)
    seed_everything(cfg.seed)
    tracking_uri = resolve_tracking_uri(cfg.tracking.uri)
    mlflow.set_tracking_uri(tracking_uri)
    task = load_task(cfg.task, cfg.seed)
    policy_path, build_info = resolve_policy_path(cfg, cfg.quiet)

    sweep_dir, job_dir = _hydra_context()
    output_dir = Path(cfg.output_dir if cfg.output_dir else (job_dir or "outputs/run"))
    tags = {
        "variant": cfg.variant.name, "algo": cfg.algo.name, "reward": cfg.reward.name, "model": cfg.model.name,
        "task": cfg.task.name, "seed": str(cfg.seed), "git_commit": git_commit(Path(__file__).parent),
        "phase": "train",
    }
    run_name = cfg.tracking.run_name or default_run_name(cfg)
    parent = read_parent_run_id(sweep_dir)
    try:
        with mlflow_run(cfg.tracking.experiment, run_name, tags, parent_run_id=parent) as active:
            return _train_and_evaluate(cfg, task, policy_path, build_info, active.info.run_id, tracking_uri,
                                       output_dir)
    except BaseException:
        if parent:  # a failed job fails its sweep's parent run
            mlflow.MlflowClient().set_terminated(parent, status="FAILED")
        raise


def _train_and_evaluate(cfg, task, policy_path, build_info, run_id, tracking_uri, output_dir) -> RunResult:
    client = mlflow.MlflowClient()
    resolved = to_container(cfg)
    log_params(client, run_id, flatten(resolved))
    mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    if build_info is not None:
        mlflow.set_tags({"base_model_cache_key": build_info.cache_key,
                         "base_model_dev_greedy": f"{build_info.dev_accuracy:.4f}"})

    model, tokenizer = load_policy(policy_path, cfg.model.dtype, cfg.device)
    start = time.perf_counter()
    base_metrics, _ = evaluate_suites(model, tokenizer, task, cfg.eval, seed=cfg.seed)
    log_metrics_at(client, run_id, {**base_metrics, "perf/eval_seconds": time.perf_counter() - start}, step=0)

    def periodic_eval(step: int) -> dict:
        every = cfg.eval.every_steps
        if every and step % every == 0 and 0 < step < cfg.train.steps:
            metrics, _ = evaluate_suites(model, tokenizer, task, cfg.eval, seed=cfg.seed)
            return metrics
        return {}

    callback = MlflowMetricsCallback(run_id, client, extra_metrics=periodic_eval)
    trainer, recorder = make_trainer(cfg, model, tokenizer, task, output_dir, callbacks=[callback])
    train_start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_start

    start = time.perf_counter()
    final_metrics, samples = evaluate_suites(model, tokenizer, task, cfg.eval, seed=cfg.seed)
    final_metrics = dict(final_metrics)
    for key, value in base_metrics.items():
        final_metrics[key.replace("eval/", "eval_gain/", 1)] = final_metrics[key] - value
    log_metrics_at(client, run_id, {**final_metrics, "perf/train_seconds": train_seconds,
                                    "perf/eval_seconds": time.perf_counter() - start}, step=cfg.train.steps)
    if recorder.rows:
        mlflow.log_table(_table(recorder.rows), artifact_file="rollouts.json")
    mlflow.log_table(_table(samples), artifact_file="eval_samples.json")
    if cfg.tracking.log_model:
        trainer.save_model(str(output_dir / "final"))
        mlflow.log_artifacts(str(output_dir / "final"), "model")

    result = RunResult(run_id=run_id, tracking_uri=tracking_uri, experiment=cfg.tracking.experiment,
                       objective=float(final_metrics[cfg.objective]), base_metrics=base_metrics,
                       final_metrics=final_metrics)
    (output_dir / "result.json").parent.mkdir(parents=True, exist_ok=True)
    (output_dir / "result.json").write_text(json.dumps(result.__dict__, indent=2))
    return result


def _table(rows: list[dict]) -> dict[str, list]:
    columns = list(rows[0])
    return {c: [r[c] for r in rows] for c in columns}
