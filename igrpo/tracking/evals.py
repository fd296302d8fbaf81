"""MLflow side of the evaluation job: the training run it logs into (found by id, its saved model downloaded),
or its own run tagged ``phase=eval``. Logging into an existing run goes through the client only, so the
training run's status is never changed by an evaluation (a failed evaluation does not mark training FAILED)."""

from __future__ import annotations

from pathlib import Path

from mlflow.exceptions import MlflowException

from igrpo.errors import ConfigError
from igrpo.tracking.runs import RunLog, client

PHASE_EVAL = "eval"  # tag phase=eval: a run of `python -m igrpo.eval` that belongs to no training run
TAG_EVAL_CHECKPOINT = "eval_checkpoint"  # what an eval job evaluated (model dir, hub id or run:<id>)
MODEL_ARTIFACT = "model"  # where runner.py logs the trained policy (tracking.log_model=true)


def existing_run(tracking_uri: str, run_id: str) -> RunLog:
    """A RunLog for run ``run_id`` of this store; ConfigError (one line) when there is no such run."""
    try:
        run = client(tracking_uri).get_run(run_id)
    except MlflowException:
        raise ConfigError(f"eval.run_id={run_id} is not a run of tracking store {tracking_uri}") from None
    return RunLog(tracking_uri, run_id, run.info.experiment_id)


def run_status(tracking_uri: str, run_id: str) -> str | None:
    try:
        return client(tracking_uri).get_run(run_id).info.status
    except MlflowException:
        return None


def download_saved_model(tracking_uri: str, run_id: str, destination: Path) -> Path | None:
    """The run's saved policy (artifact ``model/``) in ``destination``, or None when the run saved none."""
    mlflow_client = client(tracking_uri)
    if not any(a.path == MODEL_ARTIFACT for a in mlflow_client.list_artifacts(run_id)):
        return None
    target = destination / run_id
    if not (target / MODEL_ARTIFACT / "config.json").exists():
        target.mkdir(parents=True, exist_ok=True)
        mlflow_client.download_artifacts(run_id, MODEL_ARTIFACT, str(target))
    return target / MODEL_ARTIFACT
