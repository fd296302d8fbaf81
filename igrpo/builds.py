"""The one-off builds a run may need before training: the base policy (the embedded tiny model is built
and warm-started once, then cached) and, for reward=judge, the judge (the embedded tiny judge likewise).
A build done now is logged as its own MLflow run (tag ``phase``: base_model or judge_build)."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow

from igrpo.config import to_container
from igrpo.models.loading import build_tiny, default_cache_root
from igrpo.tracking import flatten, log_metrics_at, log_params, mlflow_run


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


def resolve_judge(cfg, quiet: bool):
    """The judge backend for reward=judge (building the embedded judge when needed), else None."""
    if cfg.reward.name != "judge":
        return None
    from igrpo.judge import build_judge

    cache_root = Path(cfg.model.cache_dir) if cfg.model.cache_dir else default_cache_root()
    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.reward.judge.build_steps, desc="build tiny judge", leave=False)

    def progress(step, loss, auc):
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", dev_auroc=f"{auc:.3f}")

    handle = build_judge(cfg.reward.judge, cfg.task, cfg.device, cache_root, progress=progress)
    if bar is not None:
        bar.close()
    info = handle.build_info
    if info is not None:
        if info.built_now:
            _log_judge_build(cfg, info)
        if not quiet:
            print(f"judge: AUROC {info.heldout_auroc:.3f} on {info.heldout_size} held-out candidates "
                  f"(built in {info.steps} steps{'' if info.built_now else ', cached'})")
    return handle


def _log_judge_build(cfg, info) -> None:
    """The judge build is its own MLflow run (tag phase=judge_build) with its measured quality."""
    tags = {"phase": "judge_build", "task": cfg.task.name, "cache_key": info.cache_key}
    with mlflow_run(cfg.tracking.experiment, f"judge-tiny-{info.cache_key[:8]}", tags):
        client = mlflow.MlflowClient()
        run_id = mlflow.active_run().info.run_id
        log_params(client, run_id, flatten({"judge": to_container(cfg.reward.judge)}))
        for step, auc in info.history:
            log_metrics_at(client, run_id, {"judge/dev_auroc": auc}, step)
        log_metrics_at(client, run_id, {"judge/heldout_auroc": info.heldout_auroc,
                                        "judge/heldout_size": info.heldout_size, "judge/steps": info.steps,
                                        "perf/build_seconds": info.seconds}, info.steps)
