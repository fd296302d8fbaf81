"""The igrpo_optuna sweeper's MLflow parent run: one parent per study, every trial a child of it.

``igrpo.hydra_callbacks.MlflowParentRunCallback`` opens a fresh parent run for each multirun and writes its id to
``PARENT_RUN_FILE`` in the sweep dir; trial jobs nest under whatever id that file holds. A study outlives one
multirun, so the study keeps its parent (study user attr ``PARENT_ATTR``): the first sweep stores the fresh
parent there; a resumed sweep re-adopts the stored one (the file is pointed at it) and deletes the fresh
placeholder. Also here: discarding the fresh parent of a sweep refused before any trial, marking a killed
sweep's leftover child runs KILLED, keeping the parent RUNNING while trials fail, and logging the study's
results (best value/params or Pareto front) to the parent.
"""

# No `from __future__ import annotations`: Hydra executes plugin modules before registering them in
# sys.modules (see optuna_sweeper.py).
import logging
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

# mlflow is imported lazily: Hydra imports every plugin module on every `run.py` start.

log = logging.getLogger(__name__)

PARENT_ATTR = "mlflow_parent_run_id"  # study user attr: the MLflow parent run of all the study's trials


def mlflow_client(config: Optional[DictConfig]):
    """An MlflowClient for the sweep config's ``tracking.uri`` (resolved as igrpo's runs resolve it)."""
    uri = OmegaConf.select(config, "tracking.uri", default=None) if config is not None else None
    from mlflow import MlflowClient

    from igrpo.tracking import resolve_tracking_uri

    return MlflowClient(resolve_tracking_uri(uri))


def adopt_parent(study, sweep_dir: Path, config: Optional[DictConfig], study_name: str, storage_label: str):
    """The study's MLflow parent run id (or None without MLflow nesting) and a client.
    First sweep: store the callback's fresh parent in the study. Resumed sweep: point this sweep dir at the
    stored parent, delete the fresh one, and set the stored one RUNNING again. The parent is tagged with
    ``study_name`` and ``storage_label`` (the storage URL without credentials)."""
    from igrpo.tracking import PARENT_RUN_FILE

    marker = sweep_dir / PARENT_RUN_FILE
    fresh = marker.read_text().strip() if marker.exists() else None
    stored = study.user_attrs.get(PARENT_ATTR)
    if not fresh and not stored:
        return None, None
    client = mlflow_client(config)
    parent = fresh
    if stored and stored != fresh:
        try:
            usable = client.get_run(stored).info.lifecycle_stage == "active"
        except Exception:  # deleted for good, or another tracking store
            usable = False
        if usable:
            marker.write_text(stored)
            if fresh:  # the callback's placeholder: closed and deleted (hidden in the UI)
                client.set_terminated(fresh, status="FINISHED")
                client.delete_run(fresh)
            client.update_run(stored, status="RUNNING")
            parent = stored
        elif fresh:
            log.warning("study '%s': its MLflow parent run %s is gone; using %s", study_name, stored, fresh)
        else:
            return None, None
    if parent and parent != stored:
        study.set_user_attr(PARENT_ATTR, parent)
    client.set_tag(parent, "optuna_study", study_name)
    client.set_tag(parent, "optuna_storage", storage_label)
    return parent, client


def discard_fresh_parent(config: Optional[DictConfig], sweep_dir: Path) -> None:
    """A sweep refused before its first trial leaves no MLflow run behind."""
    from igrpo.tracking import PARENT_RUN_FILE

    marker = sweep_dir / PARENT_RUN_FILE
    if marker.exists():
        try:
            client, run_id = mlflow_client(config), marker.read_text().strip()
            client.set_terminated(run_id, status="FAILED")
            client.delete_run(run_id)
        except Exception:  # best effort; the callback's exit hook still closes it
            pass


def close_orphans(client, parent: str) -> None:
    """Child runs still RUNNING when a sweep starts belong to a killed sweep: mark them KILLED."""
    experiment_id = client.get_run(parent).info.experiment_id
    for run in client.search_runs([experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent}' "
                                                "and attributes.status = 'RUNNING'"):
        client.set_terminated(run.info.run_id, status="KILLED")


def keep_parent_running(client, parent: str | None) -> None:
    """igrpo's runner fails the sweep's parent when a job fails; in a study a failed trial is routine."""
    if parent and client.get_run(parent).info.status != "RUNNING":
        client.update_run(parent, status="RUNNING")


def log_to_parent(client, parent: str, study, results: dict, sweep_dir: Path) -> None:
    """``results`` (as written to ``optimization_results.yaml`` in ``sweep_dir``) on the parent run: best value(s)
    as metrics, best params as ``best.<key>`` tags (tags, not params: a resumed study's best may change, and
    MLflow params cannot), the Pareto front as ``pareto_front.json``, and the results file as an artifact."""
    from mlflow.entities import Metric, RunTag
    from mlflow.utils.time import get_current_time_millis

    now, step = get_current_time_millis(), len(study.get_trials(deepcopy=False))
    metrics, tags = [], [RunTag("optuna_trials_complete", str(results["trials"]["complete"]))]
    if "best_value" in results:
        metrics.append(Metric("best.value", float(results["best_value"]), now, step))
        for name in results["objective"]:
            metrics.append(Metric(f"best.{name}", float(results["best_value"]), now, step))
        tags.append(RunTag("best.trial", str(results["best_trial"])))
        tags += [RunTag(f"best.{k}", str(v)) for k, v in results["best_params"].items()]
    if "pareto_front" in results:
        metrics.append(Metric("pareto_front_size", float(len(results["pareto_front"])), now, step))
    try:
        client.log_batch(parent, metrics=metrics, tags=tags)
        if "pareto_front" in results:
            client.log_dict(parent, {"objective": results["objective"], "directions": results["directions"],
                                     "trials": results["pareto_front"]}, "pareto_front.json")
        client.log_artifact(parent, str(sweep_dir / "optimization_results.yaml"))
    except Exception as err:  # the study's results are on disk either way
        log.warning("could not log the study's results to MLflow run %s: %s", parent, err)
