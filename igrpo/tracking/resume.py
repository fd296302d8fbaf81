"""What checkpoint/resume (``igrpo.training.checkpoints``) reads back from an MLflow run it continues."""

from __future__ import annotations

from dataclasses import dataclass

from igrpo.tracking.runs import client


@dataclass
class RunContents:
    history: dict[str, dict[int, float]]  # every metric in the run: name -> {step: value}
    params: dict[str, str]
    artifacts: set[str]  # top-level artifact paths


def run_contents(tracking_uri: str, run_id: str) -> RunContents:
    """Everything a resumed run already holds, so nothing is logged twice."""
    mlflow_client = client(tracking_uri)
    run = mlflow_client.get_run(run_id)
    history = {key: {m.step: m.value for m in mlflow_client.get_metric_history(run_id, key)}
               for key in run.data.metrics}
    artifacts = {a.path for a in mlflow_client.list_artifacts(run_id)}
    return RunContents(history, dict(run.data.params), artifacts)
