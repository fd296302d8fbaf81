"""MLflow glue: where runs go, what each run records, and how TRL's log keys map to ours.

Tracking URI precedence (as MLflow users expect, with an explicit choice winning):
``tracking.uri`` > ``MLFLOW_TRACKING_URI`` > a local SQLite store ``mlflow.db`` in the working directory.
"""

from __future__ import annotations

import os
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from transformers import TrainerCallback

PARENT_RUN_FILE = ".mlflow_parent_run"  # in a multirun's sweep dir: the parent run id for its jobs
_INVALID_METRIC_CHARS = re.compile(r"[^A-Za-z0-9_\-\.:/ ]")


def resolve_tracking_uri(explicit: str | None, environ: dict | None = None, cwd: Path | None = None) -> str:
    environ = os.environ if environ is None else environ
    if explicit:
        return explicit
    if environ.get("MLFLOW_TRACKING_URI"):
        return environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(cwd or Path.cwd()).resolve() / 'mlflow.db'}"


def flatten(d: dict, prefix: str = "") -> dict[str, str]:
    """Nested config -> {'a.b.c': 'value'} with MLflow-safe string values."""
    out: dict[str, str] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:6000]
    return out


def git_commit(cwd: Path | None = None) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def metric_name(trl_key: str) -> str:
    """Our name for a TRL log key: ``train/...`` per step, ``perf/...`` timings, ``reward/...`` components."""
    renames = {
        "reward": "train/reward",
        "reward_std": "train/reward_std",
        "entropy": "train/entropy",
        "kl": "train/kl",
        "loss": "train/loss",
        "grad_norm": "train/grad_norm",
        "learning_rate": "train/learning_rate",
        "frac_reward_zero_std": "train/frac_groups_zero_std",
        "completions/mean_length": "train/completion_length",
        "step_time": "perf/step_time",
        "entropy_coef": "train/entropy_coef",
        "num_tokens": "train/num_tokens",
        "epoch": "train/epoch",
    }
    if trl_key in renames:
        return renames[trl_key]
    if trl_key.startswith(("draft/", "perf/", "eval/", "reward/")):
        name = trl_key
    elif trl_key.startswith("rewards/") and trl_key.endswith("/mean"):
        name = "reward/" + trl_key[len("rewards/") : -len("/mean")]
    elif trl_key.startswith("rewards/"):
        name = "reward/" + trl_key[len("rewards/") :]
    elif trl_key.startswith("profiling/"):
        name = "perf/" + trl_key[len("profiling/") :]
    else:
        name = "train/" + trl_key
    return _INVALID_METRIC_CHARS.sub("_", name)


class MlflowMetricsCallback(TrainerCallback):
    """Sends every TRL log record to the MLflow run under our metric names, at the global step.

    With ``on_checkpoint`` set (``train.save_every > 0``) records are held back and committed with each
    checkpoint: ``on_checkpoint(checkpoint_folder, pending)`` saves them into the checkpoint (transformers calls
    ``on_save`` once the folder is written), then they go to MLflow; what is left when training ends goes then.
    So a killed run never has a step in MLflow that its newest complete checkpoint does not cover.
    ``skip``: (name, step) pairs the run already holds (a resumed run); they are not logged again."""

    def __init__(self, run_id: str, client: MlflowClient, extra_metrics=None, on_checkpoint=None,
                 skip: frozenset = frozenset()):
        self.run_id = run_id
        self.client = client
        self.extra_metrics = extra_metrics  # callable(step) -> dict of metrics to add to each record
        self.on_checkpoint = on_checkpoint
        self.skip = skip
        self.pending: dict[int, dict] = {}  # step -> {"timestamp": ms, "metrics": {name: value}}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        import time

        step = state.global_step
        if "train_runtime" in logs:  # the end-of-training summary repeats the last step's epoch: once is enough
            logs = {k: v for k, v in logs.items() if k != "epoch"}
        values = {metric_name(k): float(v) for k, v in logs.items() if isinstance(v, (int, float)) and v == v}
        if self.extra_metrics is not None:
            values.update(self.extra_metrics(step))
        record = self.pending.setdefault(step, {"timestamp": int(time.time() * 1000), "metrics": {}})
        record["metrics"].update({k: v for k, v in values.items() if (k, step) not in self.skip})
        if self.on_checkpoint is None:
            self._commit()

    def on_save(self, args, state, control, **kwargs):
        if self.on_checkpoint is not None and state.is_world_process_zero:
            self.on_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}", self.pending)
            self._commit()

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._commit()

    def _commit(self) -> None:
        log_records(self.client, self.run_id, self.pending)
        self.pending = {}


def log_records(client: MlflowClient, run_id: str, records: dict[int, dict]) -> None:
    """{step: {"timestamp": ms, "metrics": {name: value}}} -> MLflow, in batches."""
    metrics = [Metric(k, float(v), rec["timestamp"], step) for step, rec in sorted(records.items())
               for k, v in rec["metrics"].items()]
    for start in range(0, len(metrics), 500):
        client.log_batch(run_id, metrics=metrics[start : start + 500])


def log_params(client: MlflowClient, run_id: str, params: dict[str, str]) -> None:
    items = [Param(k, v) for k, v in params.items()]
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start : start + 100])


def log_metrics_at(client: MlflowClient, run_id: str, metrics: dict[str, float], step: int,
                   skip: frozenset = frozenset()) -> None:
    """Log ``metrics`` at ``step``, except the (name, step) pairs in ``skip`` (already in a resumed run)."""
    import time

    values = {k: v for k, v in metrics.items() if (k, step) not in skip}
    log_records(client, run_id, {step: {"timestamp": int(time.time() * 1000), "metrics": values}})


def ensure_experiment(name: str) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return mlflow.create_experiment(name)
    except mlflow.exceptions.MlflowException:  # created concurrently by another job
        return mlflow.get_experiment_by_name(name).experiment_id


@contextmanager
def mlflow_run(experiment: str, run_name: str, tags: dict[str, str], parent_run_id: str | None = None,
               run_id: str | None = None):
    """Start a run, or reopen run ``run_id`` (a resumed run keeps its tags and parent); end it FINISHED on
    success, FAILED on error, KILLED on Ctrl-C (never left RUNNING, except by SIGKILL)."""
    if run_id is not None:
        run = mlflow.start_run(run_id=run_id)
    else:
        experiment_id = ensure_experiment(experiment)
        all_tags = dict(tags)
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=all_tags)
    try:
        yield run
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


def read_parent_run_id(sweep_dir: str | None) -> str | None:
    if not sweep_dir:
        return None
    marker = Path(sweep_dir) / PARENT_RUN_FILE
    return marker.read_text().strip() if marker.exists() else None
