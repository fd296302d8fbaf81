"""Execute an experiment's plan as ONE Hydra multirun, resumably, so any Hydra launcher runs it.

Order of work, so that a mistake costs nothing: check every run-level override's config-group choice, compose every
planned run with the real Hydra config and validate it (one-line error, nothing written), compute each run's
``config_hash`` and ask the tracking wing for a FINISHED run with that hash and the same table tags in the spec's
MLflow experiment (those are skipped and printed), write the rest to a plan file in a fresh sweep dir, and only
then run

    python run.py -m hydra/sweeper=igrpo_plan hydra.sweeper.plan=<sweep dir>/plan.json hydra.sweep.dir=<sweep dir>
        tracking.experiment=<spec> tracking.parent_key=experiment:<spec>:<scale> tracking.parent_name=<spec>-<scale>
        ++tracking.tags.experiment=<spec> ++tracking.tags.scale=<scale> [tracking.uri=...] [tracking.* / hydra extras]

from the caller's working directory, its output streamed, its exit status returned. The plan sweeper
(``hydra_plugins/igrpo_plan_sweeper``) hands every run to the launcher in one call (joblib runs them side by side,
SLURM submits them). MLflow: this module creates no run and imports no mlflow; igrpo's multirun callback finds or
creates the parent run by ``tracking.parent_key`` (one parent per spec and scale, reopened by every invocation,
tagged phase/experiment/scale from the command line), nests every job under it and ends it FINISHED, or FAILED if a
run failed. The FINISHED runs are kept either way, so the same command resumes where it stopped.

Values are checked on this machine when the runs will run here (the default and the joblib launcher). With another
launcher (``hydra/launcher=slurm``) the runs are composed and type-checked here, and each job checks its values where
it runs (CUDA and vLLM exist on the cluster's nodes, not necessarily on the submitting one); so is a dry run.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from experiments.plan import PlannedRun, override_key
from igrpo import CONF_DIR
from igrpo.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
RUN_PY = ROOT / "run.py"
LOCAL_LAUNCHERS = ("basic", "local_parallel", "joblib")  # hydra/launcher options that run the jobs on this machine


@dataclass
class Pending:
    """The plan after the MLflow lookup: what runs, and what is already FINISHED."""
    todo: list[PlannedRun] = field(default_factory=list)
    skipped: list[tuple[PlannedRun, str, str]] = field(default_factory=list)  # (run, FINISHED run id, its name)
    hashes: dict = field(default_factory=dict)  # PlannedRun.key -> config_hash


def launcher_is_local(hydra_overrides: list[str]) -> bool:
    """Whether the chosen ``hydra/launcher`` (default: basic) runs the jobs on this machine."""
    chosen = [o.split("=", 1)[1] for o in hydra_overrides if override_key(o) == "hydra/launcher" and "=" in o]
    return not chosen or chosen[-1] in LOCAL_LAUNCHERS


def check_hydra_overrides(hydra_overrides: list[str]) -> None:
    """The launch's ``hydra/...`` and ``hydra.*`` overrides compose (an unknown launcher or sweeper, a launcher setting
    of the wrong type), so a mistake there is one line before any sweep directory is written, not the multirun's."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from igrpo.config import register_configs
    from igrpo.config.compose import hydra_error_line

    if not hydra_overrides:
        return
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            compose("config", overrides=list(hydra_overrides), return_hydra_config=True)
        except (HydraException, OmegaConfBaseException) as err:
            raise ConfigError(hydra_error_line(err, list(hydra_overrides))) from None


def compose_runs(runs: list[PlannedRun], output_root: Path, check_values: bool = True, extra: list[str] = ()) -> list:
    """The composed config of every run (with ``extra`` overrides last), value-checked by ``igrpo.config.validate``; with
    ``check_values`` False (e.g. a paper-scale plan on a machine without CUDA) without what only the machine that
    runs it can answer (CUDA, vLLM installed, local model directories). ConfigError with one line on the first bad
    one."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from igrpo.config.groups import find_bad_group_choice
    from igrpo.config import register_configs
    from igrpo.config.validate import validate

    register_configs()
    configs = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for run in runs:
            overrides = [*run.overrides, *extra]
            bad = find_bad_group_choice(overrides, CONF_DIR)
            if bad:
                raise ConfigError(f"{run.describe()}: {bad}")
            try:  # output_dir is the job's Hydra dir when it runs; any path here (not part of the hash)
                cfg = compose("config", overrides=[*overrides, f"output_dir={output_root}"])
            except (HydraException, OmegaConfBaseException) as err:
                raise ConfigError(f"{run.describe()}: {_first_line(err)}") from None
            try:
                validate(cfg, machine=check_values)
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
    from igrpo.job.identity import config_hash, default_run_name

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


def store_exists(tracking_uri: str) -> bool:
    """False for a SQLite store whose file is not there yet (nothing can have FINISHED; asking would create it)."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri[len("sqlite:///"):]).exists()
    return True


def pending_runs(runs: list[PlannedRun], configs: list, tracking_uri: str) -> Pending:
    """Split the plan into runs to launch and runs whose config_hash (with the same table tags) already FINISHED in
    the spec's MLflow experiment."""
    from igrpo.job.identity import config_hash

    out = Pending()
    lookup = store_exists(tracking_uri)
    if lookup:
        from igrpo.tracking.parent import finished_run_with_hash
    for run, cfg in zip(runs, configs):
        chash = out.hashes[run.key] = config_hash(cfg)
        done = finished_run_with_hash(tracking_uri, run.experiment, chash, run.tags) if lookup else None
        if done is None:
            out.todo.append(run)
        else:
            out.skipped.append((run, *done))
    return out


def build_bases(configs: list, tracking_uri: str) -> None:
    """Build every embedded base model and judge the runs need (or find it cached), once each, here, before the
    launcher starts the runs: this process has the whole machine, while two jobs started at once would wait on one
    build running on one job's share of the cores. A build done now is logged to ``tracking_uri`` as the runs
    would log it."""
    from omegaconf import OmegaConf

    from igrpo.job.builds import resolve_judge, resolve_policy_path

    seen: set[str] = set()
    for cfg in configs:
        cfg = cfg.copy()
        OmegaConf.update(cfg, "tracking.uri", tracking_uri, merge=False)
        policy = OmegaConf.to_yaml(cfg.model) + OmegaConf.to_yaml(cfg.task)
        if policy not in seen:
            seen.add(policy)
            resolve_policy_path(cfg, quiet=False)
        judge = OmegaConf.to_yaml(cfg.reward) + OmegaConf.to_yaml(cfg.task) + str(cfg.device)
        if cfg.reward.name == "judge" and judge not in seen:
            seen.add(judge)
            resolve_judge(cfg, quiet=False)


def new_sweep_dir(root: Path) -> Path:
    """``<root>/<date>_<time>`` (a suffix if two invocations start in the same second), created."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    path, n = root / stamp, 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    path.mkdir(parents=True)
    return path


def write_plan(runs: list[PlannedRun], path: Path) -> Path:
    """The plan file of the ``igrpo_plan`` sweeper: one ``{"label", "overrides"}`` per run, in launch order."""
    path.write_text(json.dumps([{"label": r.describe(), "overrides": list(r.overrides)} for r in runs], indent=1)
                    + "\n")
    return path


def multirun_command(experiment: str, scale: str, plan_file: Path, sweep_dir: Path, tracking_uri: str | None,
                     tracking: list[str], hydra_level: list[str], python: str = sys.executable) -> list[str]:
    """``python run.py -m`` with the plan sweeper, the parent run's key/name/tags and the command line's
    MLflow and launcher settings (last, so a user's ``hydra.sweep.dir=...`` wins)."""
    from experiments.plan import _quote

    return [python, str(RUN_PY), "-m", "hydra/sweeper=igrpo_plan", f"hydra.sweeper.plan={_quote(str(plan_file))}",
            f"hydra.sweep.dir={_quote(str(sweep_dir))}", f"tracking.experiment={experiment}",
            f"tracking.parent_key=experiment:{experiment}:{scale}", f"tracking.parent_name={experiment}-{scale}",
            f"++tracking.tags.experiment={experiment}", f"++tracking.tags.scale={scale}",
            *([f"tracking.uri={_quote(tracking_uri)}"] if tracking_uri else []), *tracking, *hydra_level]


def shown(command: list[str]) -> str:
    """The command as a user would type it: ``python run.py ...`` (run.py relative when it is in the cwd)."""
    run_py = Path(command[1])
    try:
        run_py = run_py.relative_to(Path.cwd())
    except ValueError:
        pass
    return " ".join(shlex.quote(c) for c in ["python", str(run_py), *command[2:]])


def launch(command: list[str]) -> int:
    """Run the multirun from the caller's working directory, its output streamed; its exit status."""
    proc = subprocess.Popen(command)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reached the multirun too; let it close its runs
        return proc.wait() or 130
