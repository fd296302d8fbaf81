"""MLflow -> pandas. Reads any tracking URI (SQLite file, ``mlflow server``); never writes.

``load_runs`` gives one row per run: ``run_id``, ``run_name``, ``status``, ``start_time``, then
``tags.<k>``, ``params.<k>`` and ``metrics.<k>`` (the value at the highest logged step, i.e. the final
eval for ``eval/...``), like ``mlflow.search_runs`` but with a stable row and column order.
``metric_history`` / ``histories`` fetch per-step series on demand (``MlflowClient.get_metric_history``);
``values_at_step`` picks one step (step 0 = the base model's eval, before training).
"""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient


def client_for(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri)


def load_runs(client: MlflowClient, experiment: str, filter_string: str = "") -> pd.DataFrame:
    """Every run of ``experiment`` matching ``filter_string`` (MLflow search syntax), oldest first."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return pd.DataFrame(columns=["run_id", "run_name", "status", "start_time"])
    rows, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], filter_string=filter_string, max_results=1000,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        for run in page:
            row = {"run_id": run.info.run_id, "run_name": run.info.run_name, "status": run.info.status,
                   "start_time": run.info.start_time}
            row.update({f"tags.{k}": v for k, v in run.data.tags.items() if not k.startswith("mlflow.")})
            row.update({f"params.{k}": v for k, v in run.data.params.items()})
            row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
            rows.append(row)
        token = page.token
        if not token:
            break
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["run_id", "run_name", "status", "start_time"])
    fixed = ["run_id", "run_name", "status", "start_time"]
    return df[fixed + sorted(c for c in df.columns if c not in fixed)].sort_values(["start_time", "run_id"],
                                                                                   ignore_index=True)


def metric_history(client: MlflowClient, run_id: str, key: str) -> pd.Series:
    """step -> value of one metric of one run (the last value logged at a step wins); empty if never logged."""
    points = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    series = pd.Series({m.step: m.value for m in points}, dtype=float)
    series.index.name = "step"
    return series.sort_index()


def histories(client: MlflowClient, run_ids: list[str], keys: list[str]) -> pd.DataFrame:
    """Long table ``run_id, key, step, value`` of the per-step series of ``keys`` for ``run_ids``."""
    frames = []
    for run_id in run_ids:
        for key in keys:
            s = metric_history(client, run_id, key)
            if not s.empty:
                frames.append(pd.DataFrame({"run_id": run_id, "key": key, "step": s.index, "value": s.values}))
    if not frames:
        return pd.DataFrame(columns=["run_id", "key", "step", "value"])
    return pd.concat(frames, ignore_index=True)


def values_at_step(client: MlflowClient, run_id: str, keys: list[str], step: int) -> dict[str, float]:
    """{key: value logged at ``step``} for the keys that have a value there."""
    out = {}
    for key in keys:
        s = metric_history(client, run_id, key)
        if step in s.index:
            out[key] = float(s.loc[step])
    return out
