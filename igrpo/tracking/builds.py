"""The one-off builds as MLflow runs of their own, in their own experiment (``names.BUILDS_EXPERIMENT``), so the
training runs' experiment holds training runs only: tag ``phase`` = base_model or judge_build."""

from __future__ import annotations

from igrpo.tracking.names import BUILDS_EXPERIMENT, PHASE_BASE_MODEL, PHASE_JUDGE_BUILD, TAG_PHASE, flatten
from igrpo.tracking.runs import mlflow_run


def log_build(tracking_uri: str, phase: str, run_name: str, tags: dict[str, str], config: dict,
              history: dict[str, list[tuple[int, float]]], final: dict[str, float], final_step: int) -> str:
    """One build run: ``config`` (nested) as params, per-step ``history`` (name -> [(step, value)]) and the
    ``final`` figures at ``final_step``. Returns its run id."""
    with mlflow_run(tracking_uri, BUILDS_EXPERIMENT, run_name, {TAG_PHASE: phase, **tags}) as run:
        run.params(flatten(config))
        for name, points in history.items():
            for step, value in points:
                run.metrics({name: value}, step)
        run.metrics(final, final_step)
    return run.run_id


def log_base_model_build(tracking_uri: str, model_cfg: dict, task_cfg: dict, info) -> str:
    """The tiny base model's build (``igrpo.models.loading.BuildInfo``) with its dev accuracy."""
    return log_build(
        tracking_uri, PHASE_BASE_MODEL, f"base-{model_cfg['name']}-{info.cache_key[:8]}",
        {"model": model_cfg["name"], "task": task_cfg["name"], "cache_key": info.cache_key},
        {"model": model_cfg, "task": task_cfg}, {"base/dev_greedy": list(info.history)},
        {"base/dev_greedy_final": info.dev_accuracy, "base/steps": info.steps, "base/final_loss": info.final_loss,
         "base/num_parameters": info.num_parameters, "perf/build_seconds": info.seconds}, info.steps)


def log_judge_build(tracking_uri: str, judge_cfg: dict, task_name: str, info) -> str:
    """The embedded judge's build with its measured quality: held-out AUROC, and the hack suite's scores (the highest
    score of any hack candidate, the worst family's mean, each family's mean) on held-out problems."""
    return log_build(
        tracking_uri, PHASE_JUDGE_BUILD, f"judge-tiny-{info.cache_key[:8]}",
        {"task": task_name, "cache_key": info.cache_key}, {"judge": judge_cfg}, {"judge/dev_auroc": list(info.history)},
        {"judge/heldout_auroc": info.heldout_auroc, "judge/heldout_size": info.heldout_size, "judge/steps": info.steps,
         "perf/build_seconds": info.seconds, "judge/hack_max_score": info.hack_max_score,
         "judge/hack_max_mean": info.hack_max_mean,
         **{f"judge/hack/{name}": family["mean"] for name, family in info.hack_families.items()}}, info.steps)
