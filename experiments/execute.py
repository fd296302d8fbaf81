"""Run an experiment's planned runs in this process, resumably, under one MLflow parent run.

Order of work, so that a mistake costs nothing: check every override's config-group choice, compose
every run with the real Hydra config and validate it (one-line error, nothing written), compute each
run's ``config_hash`` and look in MLflow for a FINISHED run with that hash in this experiment (those
are skipped and printed), and only then open the parent run (``<spec>-<scale>``, tag
``phase=experiment``) and launch the rest one after another as its children. A run that fails marks
the parent FAILED (the runner does it); the FINISHED runs before it are kept, so the same command
resumes where it stopped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from experiments.plan import PlannedRun
from igrpo.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass
class Outcome:
    launched: list[str] = field(default_factory=list)  # run ids
    skipped: list[str] = field(default_factory=list)  # run ids of the FINISHED runs reused
    parent_run_id: str | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", text).strip("_") or "x"


def compose_runs(runs: list[PlannedRun], output_root: Path, check_values: bool = True) -> list:
    """The composed config of every run, value-checked by ``igrpo.validate`` unless ``check_values`` is False
    (e.g. a paper-scale plan on a machine without CUDA); ConfigError with one line on the first bad one."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from igrpo.cli import find_bad_group_choice
    from igrpo.config import register_configs
    from igrpo.validate import validate

    register_configs()
    configs = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for run in runs:
            bad = find_bad_group_choice(list(run.overrides), CONF_DIR)
            if bad:
                raise ConfigError(f"{run.describe()}: {bad}")
            out = output_root / _slug(run.group.label) / _slug(run.arm.label) / f"s{run.seed}"
            try:
                cfg = compose("config", overrides=[*run.overrides, f"output_dir={out}"])
            except (HydraException, OmegaConfBaseException) as err:
                raise ConfigError(f"{run.describe()}: {_first_line(err)}") from None
            try:
                if check_values:
                    validate(cfg)
            except ConfigError as err:
                raise ConfigError(f"{run.describe()}: {err}") from None
            configs.append(cfg)
    _check_distinct(runs, configs)
    return configs


def _first_line(err: Exception) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return " ".join(lines[:2]) if lines else type(err).__name__


def _check_distinct(runs: list[PlannedRun], configs: list) -> None:
    """Two planned runs with one config would be one experiment twice, and two with one name confuse the UI."""
    from igrpo.runner import config_hash, default_run_name

    seen_hash: dict[str, PlannedRun] = {}
    seen_name: dict[str, PlannedRun] = {}
    for run, cfg in zip(runs, configs):
        h, name = config_hash(cfg), cfg.tracking.run_name or default_run_name(cfg)
        if h in seen_hash:
            raise ConfigError(f"{seen_hash[h].describe()} and {run.describe()} compose to the same config "
                              f"(config_hash {h}); give the arms different overrides")
        if name in seen_name:
            raise ConfigError(f"{seen_name[name].describe()} and {run.describe()} would both be named {name!r}; "
                              "give the arm or group a suffix")
        seen_hash[h], seen_name[name] = run, run


def finished_run(client, experiment: str, chash: str):
    """The newest FINISHED run of ``experiment`` with this config hash, or None."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    found = client.search_runs([exp.experiment_id],
                               filter_string=f"tags.config_hash = '{chash}' and tags.experiment = '{experiment}' "
                                             "and attributes.status = 'FINISHED'",
                               order_by=["attributes.start_time DESC"], max_results=1)
    return found[0] if found else None


def execute(runs: list[PlannedRun], tracking_uri: str, output_root: Path, echo=print) -> Outcome:
    """Launch every planned run that has no FINISHED twin in MLflow; return what was launched / skipped."""
    import mlflow
    from omegaconf import open_dict

    from igrpo.runner import config_hash, default_run_name, run as run_one
    from igrpo.tracking import ensure_experiment

    configs = compose_runs(runs, output_root)
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    outcome, todo = Outcome(), []
    for planned, cfg in zip(runs, configs):
        chash = config_hash(cfg)
        done = finished_run(client, planned.experiment, chash)
        if done is not None:
            outcome.skipped.append(done.info.run_id)
            echo(f"skip   {planned.describe()}: FINISHED run {done.info.run_name} ({done.info.run_id}) "
                 f"has config_hash {chash}")
        else:
            todo.append((planned, cfg))
    if not todo:
        echo(f"nothing to launch: all {len(runs)} runs already FINISHED")
        return outcome

    first = runs[0]
    parent = client.create_run(ensure_experiment(first.experiment), run_name=f"{first.experiment}-{first.scale}",
                               tags={"phase": "experiment", "experiment": first.experiment, "scale": first.scale,
                                     "planned_runs": str(len(runs)), "launched_runs": str(len(todo))})
    outcome.parent_run_id = parent.info.run_id
    for i, (planned, cfg) in enumerate(todo, 1):
        with open_dict(cfg):
            cfg.tracking.parent_run_id = outcome.parent_run_id
        echo(f"launch [{i}/{len(todo)}] {planned.describe()}: {cfg.tracking.run_name or default_run_name(cfg)}")
        try:
            result = run_one(cfg)  # a failure marks the parent FAILED and propagates
        except KeyboardInterrupt:
            client.set_terminated(outcome.parent_run_id, status="KILLED")
            raise
        outcome.launched.append(result.run_id)
        values = result.objective if isinstance(result.objective, list) else [result.objective]
        echo(f"       FINISHED {result.run_id}: objective {', '.join(f'{v:.4f}' for v in values)}")
    client.set_terminated(outcome.parent_run_id, status="FINISHED")
    return outcome
