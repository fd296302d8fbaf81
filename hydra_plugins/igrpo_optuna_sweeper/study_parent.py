"""The igrpo_optuna sweeper's use of the study's MLflow parent run, through igrpo's tracking wing.

The parent run is owned by ``igrpo.tracking.parent.MlflowParentRunCallback``: for a persistent study it is
found by the key ``optuna:<study_name>@<storage>``, so every sweep of one study (a resumed one included) nests
its trials under the same parent, and the callback alone sets its status. The sweeper only reads its id from the
sweep dir, tags it with the study, marks a killed sweep's leftover child runs KILLED, and logs the study's
results (best value/params or Pareto front) to it.
"""

# No `from __future__ import annotations`: Hydra executes plugin modules before registering them in
# sys.modules (see optuna_sweeper.py).
import logging
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

# igrpo.tracking.runs / .parent (and so mlflow) are imported lazily: Hydra imports every plugin module on every
# `run.py` start.
from igrpo.tracking.names import (
    TAG_OPTUNA_STORAGE,
    TAG_OPTUNA_STUDY,
    read_parent_run_id,
    resolve_tracking_uri,
)

log = logging.getLogger(__name__)


class StudyParent:
    """The study's parent run (as the callback left it in ``sweep_dir``) in the sweep's tracking store."""

    def __init__(self, tracking_uri: str, run_id: str) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id

    @classmethod
    def of_sweep(cls, config: Optional[DictConfig], sweep_dir: Path) -> Optional["StudyParent"]:
        """None without MLflow nesting (no parent run id in the sweep dir)."""
        run_id = read_parent_run_id(sweep_dir)
        if not run_id:
            return None
        uri = OmegaConf.select(config, "tracking.uri", default=None) if config is not None else None
        return cls(resolve_tracking_uri(uri), run_id)

    def tag_study(self, study_name: str, storage_label: str) -> None:
        from igrpo.tracking.runs import RunLog

        RunLog(self.tracking_uri, self.run_id).tags({TAG_OPTUNA_STUDY: study_name, TAG_OPTUNA_STORAGE: storage_label})

    def close_orphans(self) -> None:
        """Child runs still RUNNING when a resumed sweep starts belong to a killed sweep: marked KILLED."""
        from igrpo.tracking.parent import close_orphans

        close_orphans(self.tracking_uri, self.run_id)

    def log_results(self, study, results: dict, sweep_dir: Path) -> None:
        """``results`` (as written to ``optimization_results.yaml`` in ``sweep_dir``): best value(s) as metrics,
        best params as ``best.<key>`` tags (tags, not params: a resumed study's best may change, and MLflow
        params cannot), the Pareto front as ``pareto_front.json``, and the results file as an artifact."""
        from igrpo.tracking.runs import RunLog

        run = RunLog(self.tracking_uri, self.run_id)
        step = len(study.get_trials(deepcopy=False))
        metrics, tags = {}, {"optuna_trials_complete": str(results["trials"]["complete"])}
        if "best_value" in results:
            metrics["best.value"] = float(results["best_value"])
            for name in results["objective"]:
                metrics[f"best.{name}"] = float(results["best_value"])
            tags["best.trial"] = str(results["best_trial"])
            tags.update({f"best.{k}": str(v) for k, v in results["best_params"].items()})
        if "pareto_front" in results:
            metrics["pareto_front_size"] = float(len(results["pareto_front"]))
        try:
            run.metrics(metrics, step)
            run.tags(tags)
            if "pareto_front" in results:
                run.json({"objective": results["objective"], "directions": results["directions"],
                          "trials": results["pareto_front"]}, "pareto_front.json")
            run.artifact(sweep_dir / "optimization_results.yaml")
        except Exception as err:  # the study's results are on disk either way
            log.warning("could not log the study's results to MLflow run %s: %s", self.run_id, err)
