"""MLflow -> pandas. Reads any tracking URI (SQLite file, ``mlflow server``); never writes.

``load_runs`` gives one row per run: ``run_id``, ``run_name``, ``status``, ``start_time``, then
``tags.<k>``, ``params.<k>`` and ``metrics.<k>`` (the value at the highest logged step, i.e. the final
eval for ``eval/...``), like ``mlflow.search_runs`` but with a stable row and column order.
``metric_history`` / ``histories`` fetch per-step series on demand (``MlflowClient.get_metric_history``);
``values_at_step`` picks one step (step 0 = the base model's eval, before training). ``per_problem`` reads an
evaluation's per-problem scores (the paired bootstrap's input); None for runs that logged none.
"""

from __future__ import annotations

import json
import posixpath
import tempfile

import pandas as pd
from mlflow.tracking import MlflowClient

from igrpo.tracking.names import EVAL_JOB_SAMPLES, PER_PROBLEM_ARTIFACT


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




def per_problem(client: MlflowClient, run_id: str, step: int) -> dict | None:
    """{suite: (problem ids, scores)} of the run's evaluation at ``step`` (score: fraction of the problem's samples
    correct), from ``eval/per_problem_step<step>.json``, else from the eval job's per-sample table; None when the
    run logged neither (runs older than per-problem logging)."""
    data = _artifact_json(client, run_id, PER_PROBLEM_ARTIFACT.format(step=int(step)))
    if data is not None:
        return {suite: (list(v["ids"]), [float(x) for x in v["scores"]]) for suite, v in data["suites"].items()}
    table = _artifact_json(client, run_id, EVAL_JOB_SAMPLES.format(step=int(step)))
    if table is None:
        return None
    return _per_problem_from_samples(table)


def _per_problem_from_samples(table: dict) -> dict:
    """An MLflow table of one row per sample (suite, problem_id, sample, correct; problems in order, sample 0
    first) -> {suite: (ids, fraction correct)}."""
    col = {c: i for i, c in enumerate(table["columns"])}
    out: dict = {}
    for row in table["data"]:
        ids, counts = out.setdefault(row[col["suite"]], ([], []))
        if int(row[col["sample"]]) == 0:
            ids.append(str(row[col["problem_id"]]))
            counts.append([0, 0])
        counts[-1][0] += bool(row[col["correct"]])
        counts[-1][1] += 1
    return {suite: (ids, [c / n for c, n in counts]) for suite, (ids, counts) in out.items()}


def _artifact_json(client: MlflowClient, run_id: str, path: str):
    """The parsed JSON artifact ``path`` of the run, or None when it has none."""
    folder = posixpath.dirname(path)
    if path not in {a.path for a in client.list_artifacts(run_id, folder or None)}:
        return None
    with tempfile.TemporaryDirectory(prefix="igrpo-artifact-") as tmp:
        local = client.download_artifacts(run_id, path, tmp)
        with open(local, encoding="utf-8") as fh:
            return json.load(fh)
