"""Hydra callback: one MLflow parent run per multirun; every job becomes its child.

The parent's id is written into the sweep directory, which every job (local, joblib or SLURM, all on
a shared filesystem) can read through ``HydraConfig``. A job that fails marks the parent FAILED; a
parent still RUNNING when the multirun ends is marked FINISHED; a multirun that dies before its end
(e.g. a job's config fails to compose) leaves its parent FAILED, never RUNNING.
"""

from __future__ import annotations

import atexit
from pathlib import Path

import mlflow
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from igrpo.tracking import PARENT_RUN_FILE, ensure_experiment, resolve_tracking_uri


class MlflowParentRunCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        mlflow.set_tracking_uri(resolve_tracking_uri(config.tracking.uri))
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        experiment_id = ensure_experiment(config.tracking.experiment)
        overrides = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
        client = mlflow.MlflowClient()
        run = client.create_run(
            experiment_id,
            run_name=f"sweep-{sweep_dir.parent.name}-{sweep_dir.name}",
            tags={"phase": "sweep", "sweep_dir": str(sweep_dir), "overrides": " ".join(overrides)[:5000]},
        )
        (sweep_dir / PARENT_RUN_FILE).write_text(run.info.run_id)
        # read back at exit, not this id: a sweeper may re-point the file (igrpo_optuna reuses its study's parent)
        atexit.register(_fail_if_running, client, sweep_dir / PARENT_RUN_FILE)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        marker = Path(config.hydra.sweep.dir) / PARENT_RUN_FILE
        if not marker.exists():
            return
        mlflow.set_tracking_uri(resolve_tracking_uri(config.tracking.uri))
        client = mlflow.MlflowClient()
        run = client.get_run(marker.read_text().strip())
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="FINISHED")


def _fail_if_running(client, marker: Path) -> None:
    """At interpreter exit: a parent still RUNNING means the multirun ended abnormally."""
    try:
        run_id = marker.read_text().strip()
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status="FAILED")
    except Exception:  # the store may be gone at exit; nothing more can be done
        pass
