"""Opening, closing and writing MLflow runs, with an explicit tracking URI everywhere.

``mlflow_run`` opens a run (or reopens one to resume it) and always closes it: FINISHED on success, FAILED on
error, KILLED on Ctrl-C (never left RUNNING, except by SIGKILL). Inside, ``RunLog`` writes to it: params,
metrics at a step, tags, text, tables and artifacts. ``ensure_experiment`` creates experiments tagged as
model-training experiments (``names.EXPERIMENT_KIND``), so ``mlflow ui`` opens them on the runs table.
"""

from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from igrpo.tracking.names import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, TAG_PARENT_RUN_ID

FINISHED, FAILED, KILLED, RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"


def client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri)


def quiet_logs() -> None:
    """MLflow's own loggers (and alembic's, which it drives) to errors only. mlflow sets its logger's level on
    import, so it is imported first."""
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def ensure_experiment(tracking_uri: str, name: str) -> str:
    """The id of experiment ``name``, created if needed; tagged as a model-training experiment (an existing
    experiment without a kind gets the tag too, so stores made before the tag existed open on the runs table)."""
    mlflow_client = client(tracking_uri)
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return mlflow_client.create_experiment(name, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except MlflowException:  # created concurrently by another job
            experiment = mlflow_client.get_experiment_by_name(name)
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        mlflow_client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return experiment.experiment_id


def experiment_id(tracking_uri: str, name: str) -> str | None:
    """The id of experiment ``name``, or None if it does not exist (nothing is created)."""
    experiment = client(tracking_uri).get_experiment_by_name(name)
    return experiment.experiment_id if experiment is not None else None


@dataclass(frozen=True)
class RunLog:
    """Writes to one MLflow run of one tracking store."""

    tracking_uri: str
    run_id: str
    experiment_id: str = ""

    @property
    def _client(self) -> MlflowClient:
        return client(self.tracking_uri)

    def params(self, params: dict[str, str]) -> None:
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self._client.log_batch(self.run_id, params=items[start : start + 100])

    def records(self, records: dict[int, dict]) -> None:
        """{step: {"timestamp": ms, "metrics": {name: value}}} -> MLflow, in batches."""
        metrics = [Metric(k, float(v), rec["timestamp"], step) for step, rec in sorted(records.items())
                   for k, v in rec["metrics"].items()]
        for start in range(0, len(metrics), 500):
            self._client.log_batch(self.run_id, metrics=metrics[start : start + 500])

    def metrics(self, metrics: dict[str, float], step: int, skip: frozenset = frozenset()) -> None:
        """Log ``metrics`` at ``step``, except the (name, step) pairs in ``skip`` (already in a resumed run)."""
        values = {k: v for k, v in metrics.items() if (k, step) not in skip}
        self.records({step: {"timestamp": int(time.time() * 1000), "metrics": values}})

    def tags(self, tags: dict[str, str]) -> None:
        if tags:
            self._client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def text(self, text: str, artifact_file: str) -> None:
        self._client.log_text(self.run_id, text, artifact_file)

    def json(self, data: dict, artifact_file: str) -> None:
        self._client.log_dict(self.run_id, data, artifact_file)

    def table(self, rows: list[dict], artifact_file: str) -> None:
        """Rows (dicts with the same keys) as an MLflow table artifact (appended to an existing one)."""
        columns = list(rows[0]) if rows else []
        self._client.log_table(self.run_id, {c: [r[c] for r in rows] for c in columns}, artifact_file)

    def artifact(self, local_path: str | Path) -> None:
        self._client.log_artifact(self.run_id, str(local_path))

    def artifacts(self, local_dir: str | Path, artifact_path: str) -> None:
        self._client.log_artifacts(self.run_id, str(local_dir), artifact_path)


@contextmanager
def mlflow_run(tracking_uri: str, experiment: str, run_name: str, tags: dict[str, str],
               parent_run_id: str | None = None, run_id: str | None = None):
    """Start a run in ``experiment`` (a child of ``parent_run_id`` if given), or reopen run ``run_id`` (a resumed
    run keeps its tags and parent); yield its RunLog; end it FINISHED on success, FAILED on error, KILLED on
    Ctrl-C. MLflow's fluent API opens it, so the run gets MLflow's usual source/user tags."""
    mlflow.set_tracking_uri(tracking_uri)
    if run_id is not None:
        run = mlflow.start_run(run_id=run_id)
    else:
        all_tags = dict(tags)
        if parent_run_id:
            all_tags[TAG_PARENT_RUN_ID] = parent_run_id
        run = mlflow.start_run(experiment_id=ensure_experiment(tracking_uri, experiment), run_name=run_name,
                               tags=all_tags)
    try:
        yield RunLog(tracking_uri, run.info.run_id, run.info.experiment_id)
    except KeyboardInterrupt:
        mlflow.end_run(status=KILLED)
        raise
    except BaseException:
        mlflow.end_run(status=FAILED)
        raise
    else:
        mlflow.end_run(status=FINISHED)


@dataclass(frozen=True)
class RunState:
    run_id: str
    status: str  # RUNNING | FINISHED | FAILED | KILLED | SCHEDULED
    experiment_id: str


def run_state(tracking_uri: str, run_id: str) -> RunState | None:
    """A run's status and experiment, or None when the store does not hold it (or it was deleted)."""
    try:
        info = client(tracking_uri).get_run(run_id).info
    except MlflowException:
        return None
    if info.lifecycle_stage != "active":
        return None
    return RunState(info.run_id, info.status, info.experiment_id)


def set_status(tracking_uri: str, run_id: str, status: str) -> None:
    """End a run with ``status`` (FINISHED, FAILED, KILLED), or reopen it (RUNNING)."""
    if status == RUNNING:
        client(tracking_uri).update_run(run_id, status=RUNNING)
    else:
        client(tracking_uri).set_terminated(run_id, status=status)


def git_commit(cwd: Path | None = None) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
