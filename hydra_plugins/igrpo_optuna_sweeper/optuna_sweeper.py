"""``hydra/sweeper=igrpo_optuna``: a small Optuna sweeper for Hydra, with resumable studies and MLflow nesting.

Why our own (ARCHITECTURE.md, "Where we keep our own code"): the official ``hydra-optuna-sweeper`` 1.3.0 pins ``optuna<3``, so pip
resolves optuna 2.10.1, whose SQLite storage fails with current alembic: persistent (resumable) studies
break. ``hydra-optuna-mlflow-sweeper`` is a young third-party package that installs into the same
``hydra_plugins`` folder. Ours is three small modules on the pinned optuna 5.0.0, using only its public
ask/tell API, and it knows igrpo's MLflow layout (one parent run per study, one child run per trial):
this one (the Sweeper, its config dataclasses and ConfigStore entry), ``search_space`` (Hydra sweep syntax ->
optuna distributions, and the config errors) and ``study_parent`` (its use of the study's MLflow parent run).

    python run.py -m hparams_search=lr_single                       # conf/hparams_search/lr_single.yaml
    python run.py -m hparams_search=lr_single hydra.sweeper.n_trials=20   # same study: runs 20 - done more
    python run.py -m hydra/sweeper=igrpo_optuna 'algo.learning_rate=tag(log, interval(1e-5, 1e-3))'

Search space: ``hydra.sweeper.params`` (override key -> Hydra sweep syntax) plus any sweep override on the
command line (which wins over ``params`` for the same key); plain command-line overrides are passed to
every trial. Resume: ``study_name`` + ``storage`` identify the study; a re-run loads it, marks trials left
RUNNING by a killed sweep FAIL (this assumes no other process is working on the same study), and runs
only ``n_trials`` minus the trials already finished. MLflow: igrpo's multirun callback
(``igrpo.tracking.parent.MlflowParentRunCallback``) finds the study's parent run by the key
``optuna:<study_name>@<storage>`` (or creates it), so every trial of a persistent study, over all its sweeps, is a
child of one run; the callback alone sets that run's status (FINISHED at the end, FAILED if the sweep dies).
"""

# No `from __future__ import annotations`: Hydra executes plugin modules before registering them in
# sys.modules, and dataclasses then cannot resolve string annotations.
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, ListConfig, OmegaConf

from hydra_plugins.igrpo_sweeper_common import ExitIsFailure  # a job's sys.exit fails only that job

# Used as module attributes (search_space.SweepConfigError, not `from ... import`): Hydra's plugin scan executes
# every module under hydra_plugins again, in place, after this one imported them, so the exception classes a
# name imported here would hold are not the ones search_space raises.
from hydra_plugins.igrpo_optuna_sweeper import search_space, study_parent

# optuna and mlflow (through igrpo.tracking) are imported lazily: Hydra imports every plugin module on every
# `run.py` start.

SAMPLERS = ("tpe", "random", "nsga2")
DIRECTIONS = ("minimize", "maximize")


@dataclass
class SamplerConf:
    name: str = "tpe"  # tpe | random | nsga2 (nsga2 and tpe handle several objectives)
    seed: Optional[int] = None  # reproducible suggestions; a resumed study uses seed + trials already done
    n_startup_trials: int = 10  # tpe: random trials before the model takes over
    population_size: int = 50  # nsga2: trials per generation


@dataclass
class IgrpoOptunaSweeperConf:
    _target_: str = "hydra_plugins.igrpo_optuna_sweeper.optuna_sweeper.IgrpoOptunaSweeper"
    study_name: str = "igrpo"  # with storage, identifies the study: the same name resumes it
    storage: Optional[str] = None  # optuna RDB URL, e.g. sqlite:///optuna.db (relative = cwd); null = in memory
    direction: Any = "maximize"  # minimize | maximize, or a list of them (one per name in `objective`)
    n_trials: int = 8  # TOTAL trials the study should hold; a resumed study runs only the remainder
    n_jobs: int = 1  # trials per launcher batch (run in parallel by a parallel launcher)
    sampler: SamplerConf = field(default_factory=SamplerConf)
    # override key -> search space in Hydra's sweep syntax, e.g. algo.learning_rate: tag(log, interval(1e-5, 1e-3))
    params: Dict[str, str] = field(default_factory=dict)
    max_failures: Optional[int] = None  # stop (exit 1) after this many failed trials in one sweep; null = never


ConfigStore.instance().store(group="hydra/sweeper", name="igrpo_optuna", node=IgrpoOptunaSweeperConf,
                             provider="igrpo")


# ----------------------------------------------------------------------------- helpers


def objective_values(value: Any, n_objectives: int) -> list[float]:
    """A job's return value -> one finite float per objective; ValueError says why not."""
    if isinstance(value, (ListConfig, DictConfig)):
        value = OmegaConf.to_container(value)
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) != n_objectives:
        raise ValueError(f"the job returned {len(values)} value(s) ({value!r}) but the study has "
                         f"{n_objectives} direction(s); make `objective` list one metric per direction")
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"the job returned {value!r}, not numbers") from None
    if not all(math.isfinite(v) for v in floats):
        raise ValueError(f"the job returned a non-finite objective {floats}")
    return floats


def _absolute_storage(storage: str | None) -> str | None:
    """``sqlite:///optuna.db`` -> ``sqlite:////abs/cwd/optuna.db`` (and its folder created)."""
    if not storage or not storage.startswith("sqlite:///"):
        return storage
    path = Path(storage[len("sqlite:///"):])
    if str(path) in ("", ":memory:"):
        return storage
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _as_container(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


def _safe_url(url: str | None) -> str:
    from igrpo.tracking.names import storage_label

    return storage_label(url)


def _short(params: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _tag_value(text: str) -> str:
    """A study name as an override value (quoted unless plain)."""
    return text if re.fullmatch(r"[A-Za-z0-9_.\-]+", text) else "'" + text.replace("'", "\\'") + "'"


# ----------------------------------------------------------------------------- the sweeper


class IgrpoOptunaSweeper(Sweeper):
    def __init__(self, study_name: str, storage: Optional[str], direction: Any, n_trials: int, n_jobs: int,
                 sampler: Any, params: Optional[dict], max_failures: Optional[int]) -> None:
        super().__init__()
        self.study_name = study_name
        self.storage = storage
        self.direction = _as_container(direction)
        self.directions = ([str(d) for d in self.direction] if isinstance(self.direction, (list, tuple))
                           else [str(self.direction)])
        self.n_trials = int(n_trials)
        self.n_jobs = int(n_jobs)
        self.sampler_conf = dict(_as_container(sampler) or {})
        self.params = dict(_as_container(params) or {})
        self.max_failures = max_failures
        self.hydra_context = None
        self.config: Optional[DictConfig] = None
        self.launcher = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=ExitIsFailure(task_function), config=config)

    # -- optuna ---------------------------------------------------------------------------------

    def _make_sampler(self, offset: int):
        import optuna

        conf = self.sampler_conf
        seed = conf.get("seed")
        seed = None if seed is None else int(seed) + offset  # a resumed study must not replay its first trials
        name = conf.get("name", "tpe")
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=int(conf.get("population_size", 50)))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=int(conf.get("n_startup_trials", 10)))

    def _open_study(self):
        """Create or load the study; fail trials left RUNNING by a killed sweep. Returns (study, stale numbers)."""
        import optuna
        from optuna.trial import TrialState

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = _absolute_storage(self.storage)
        study = optuna.create_study(study_name=self.study_name, storage=storage, directions=self.directions,
                                    load_if_exists=True)
        existing = [d.name.lower() for d in study.directions]
        if existing != self.directions:
            raise search_space.SweepConfigError(
                f"study '{self.study_name}' in {_safe_url(storage)} was created with directions {existing}, not "
                f"{self.directions}; use another hydra.sweeper.study_name")
        stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for trial in stale:
            optuna.Trial(study, trial._trial_id).set_user_attr("fail_reason", "left RUNNING by an interrupted sweep")
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL,
                                                             TrialState.PRUNED)))
        study.sampler = self._make_sampler(done)
        return study, [t.number for t in stale], storage

    def _check_compatible(self, study, distributions: dict) -> None:
        """A resumed study cannot change a parameter's kind (e.g. interval -> choice): say so in one line."""
        from optuna.distributions import check_distribution_compatibility

        seen: dict = {}
        for trial in study.get_trials(deepcopy=False):
            seen.update(trial.distributions)
        for key, dist in distributions.items():
            if key in seen:
                try:
                    check_distribution_compatibility(seen[key], dist)
                except ValueError as err:
                    raise search_space.SearchSpaceError(
                        f"{key}: study '{self.study_name}' already searched it as {seen[key]}, and {dist} is not "
                        f"compatible ({err}); use a new hydra.sweeper.study_name") from None

    # -- the sweep ------------------------------------------------------------------------------

    def _check_settings(self) -> None:
        if not self.directions or any(d not in DIRECTIONS for d in self.directions):
            raise search_space.SweepConfigError(f"hydra.sweeper.direction={self.direction!r} is not valid; use "
                                                "minimize or maximize, or a list of them (one per objective)")
        if self.sampler_conf.get("name", "tpe") not in SAMPLERS:
            raise search_space.SweepConfigError(f"hydra.sweeper.sampler.name={self.sampler_conf.get('name')!r} is "
                                                f"not valid; choose one of: {', '.join(SAMPLERS)}")
        if self.n_trials < 0 or self.n_jobs < 1:
            raise search_space.SweepConfigError(f"hydra.sweeper.n_trials={self.n_trials} / n_jobs={self.n_jobs} is "
                                                "not valid; they must be >= 0 and >= 1")
        names = self._objective_names()
        if names and len(names) != len(self.directions):
            raise search_space.SweepConfigError(
                f"objective lists {len(names)} metric(s) ({', '.join(names)}) but "
                f"hydra.sweeper.direction has {len(self.directions)} ({', '.join(self.directions)})")

    def _objective_names(self) -> list:
        objective = OmegaConf.select(self.config, "objective", default=None)
        if objective is None:
            return []
        return [objective] if isinstance(objective, str) else [str(n) for n in objective]

    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        sweep_dir = Path(self.config.hydra.sweep.dir)
        try:
            self._check_settings()
            parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
            distributions, fixed = search_space.build_search_space(self.params, arguments, parser)
            if not distributions:
                raise search_space.SweepConfigError("nothing to search: hydra.sweeper.params is empty and no "
                                                    "command-line override is a sweep; give e.g. "
                                                    "'algo.learning_rate=tag(log, interval(1e-5, 1e-3))'")
            sweep_dir.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
            study, stale, storage = self._open_study()
            self._check_compatible(study, distributions)
        except search_space.SweepConfigError as err:  # igrpo's convention for config mistakes: one line, exit 2, no run
            print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
            sys.exit(2)
        return self._optimize(study, stale, storage, distributions, fixed, sweep_dir)

    def _optimize(self, study, stale: list, storage, distributions: dict, fixed: list, sweep_dir: Path) -> Any:
        from optuna.trial import TrialState

        parent = study_parent.StudyParent.of_sweep(self.config, sweep_dir)
        if parent is not None:
            parent.tag_study(self.study_name, _safe_url(storage))
            if stale:
                parent.close_orphans()
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL,
                                                             TrialState.PRUNED)))
        remaining = max(0, self.n_trials - done)
        print(f"[igrpo_optuna] study '{self.study_name}' ({_safe_url(storage)}): {done} trial(s) done"
              + (f", {len(stale)} interrupted marked FAIL" if stale else "")
              + f", running {remaining} more" + (f"; MLflow parent run {parent.run_id}" if parent else ""), flush=True)

        returns, failures, completed, in_flight = [], 0, 0, []
        try:
            while remaining > 0:
                in_flight = []
                for _ in range(min(self.n_jobs, remaining)):
                    in_flight.append(study.ask(distributions))
                trials = list(in_flight)
                remaining -= len(trials)
                launchable = []
                for trial in trials:
                    overrides = [*fixed, *(f"{k}={search_space.format_value(v)}" for k, v in trial.params.items()),
                                 f"++tracking.tags.optuna_trial={trial.number}",
                                 f"++tracking.tags.optuna_study={_tag_value(self.study_name)}"]
                    try:  # a value that cannot compose (e.g. a wrong type) fails this trial only
                        self.validate_batch_is_legal([overrides])
                    except Exception as err:
                        failures += self._fail(study, trial, f"config does not compose: {err}")
                        continue
                    launchable.append((trial, overrides))
                for group in _consecutive(launchable):
                    results = self.launcher.launch([o for _, o in group], initial_job_idx=group[0][0].number)
                    returns.append(results)
                    for (trial, _), result in zip(group, results, strict=True):
                        if result.status != JobStatus.COMPLETED:  # the job raised; Hydra kept the exception
                            err = result._return_value
                            failures += self._fail(study, trial, f"{type(err).__name__}: {err}")
                            continue
                        try:
                            values = objective_values(result.return_value, len(self.directions))
                        except ValueError as err:
                            failures += self._fail(study, trial, str(err))
                            continue
                        study.tell(trial, values)
                        completed += 1
                        shown = ", ".join(f"{v:.4g}" for v in values)
                        print(f"[igrpo_optuna] trial {trial.number}: {_short(trial.params)} -> {shown}", flush=True)
                in_flight = []
                if self.max_failures is not None and failures >= self.max_failures:
                    break
        except BaseException:  # Ctrl-C, SIGTERM: leave no trial RUNNING
            for trial in in_flight:
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise

        results = self._write_results(study, sweep_dir, storage)
        if parent is not None:
            parent.log_results(study, results, sweep_dir)
        stop = None
        if self.max_failures is not None and failures >= self.max_failures:
            stop = f"stopped after {failures} failed trial(s) (hydra.sweeper.max_failures={self.max_failures})"
        elif failures and not completed:
            stop = f"all {failures} trial(s) of this sweep failed; see the errors above"
        if stop:  # exit status 1, like a failed job in a basic multirun (the parent run ends FAILED)
            print(f"error: study '{self.study_name}': {stop}", file=sys.stderr)
            sys.exit(1)
        return returns

    def _fail(self, study, trial, reason: str) -> int:
        from optuna.trial import TrialState

        reason = " ".join(reason.split())[:1000]
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)
        print(f"[igrpo_optuna] trial {trial.number}: {_short(trial.params)} -> FAIL ({reason})", flush=True)
        return 1

    # -- results --------------------------------------------------------------------------------

    def _write_results(self, study, sweep_dir: Path, storage: str | None) -> dict:
        """``optimization_results.yaml`` in the sweep dir: best params/value, or the Pareto front."""
        from optuna.trial import TrialState

        names = self._objective_names()
        counts = {state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
                  for state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)}
        results: dict = {"name": "igrpo_optuna", "study_name": self.study_name, "storage": _safe_url(storage),
                         "objective": names, "directions": self.directions, "trials": counts}
        if counts["complete"]:
            if len(self.directions) == 1:
                best = study.best_trial
                results.update(best_trial=best.number, best_params=dict(best.params), best_value=best.value)
            else:
                results["pareto_front"] = [{"trial": t.number, "params": dict(t.params), "values": list(t.values)}
                                           for t in sorted(study.best_trials, key=lambda t: t.number)]
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        if "best_value" in results:
            print(f"[igrpo_optuna] best: trial {results['best_trial']} {_short(results['best_params'])} -> "
                  f"{results['best_value']:.4g}", flush=True)
        elif "pareto_front" in results:
            print(f"[igrpo_optuna] Pareto front: {len(results['pareto_front'])} trial(s): "
                  f"{', '.join(str(t['trial']) for t in results['pareto_front'])}", flush=True)
        print(f"[igrpo_optuna] results: {sweep_dir / 'optimization_results.yaml'}", flush=True)
        return results


def _consecutive(items: list) -> list[list]:
    """[(trial, overrides)] -> runs of consecutive trial numbers (one launch each: job dir name = trial number)."""
    groups: list[list] = []
    for item in items:
        if groups and groups[-1][-1][0].number + 1 == item[0].number:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups
