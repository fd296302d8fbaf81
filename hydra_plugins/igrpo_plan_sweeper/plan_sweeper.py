"""``hydra/sweeper=igrpo_plan``: run a written plan (a list of runs, each its own overrides) as one Hydra multirun.

This is how ``python -m experiments run <spec>`` executes a spec (experiments run through Hydra, so every launcher applies): it composes and checks every
planned run, drops the ones already FINISHED in MLflow, writes the rest to a plan file and runs

    python run.py -m hydra/sweeper=igrpo_plan hydra.sweeper.plan=<plan.json> [hydra/launcher=...] [overrides]

so any Hydra launcher runs the plan: the basic one (one run after another), ``hydra/launcher=local_parallel
hydra.launcher.n_jobs=2`` (joblib: two at once), ``hydra/launcher=slurm`` (one SLURM job per run). All jobs go to the
launcher in ONE ``launch`` call, so a parallel launcher runs them side by side. Job ``i`` gets the plan's run ``i``'s
overrides, then the command line's (which therefore win); a sweep on the command line (``seed=0,1``) is refused:
the plan is the sweep.

The plan file (JSON) is a list with one entry per run: either a list of overrides, or
``{"label": "GRPO seed 0", "overrides": [...]}`` (the label is only printed).

MLflow: the multirun's parent run belongs to igrpo's multirun callback (``igrpo.tracking.parent``; the experiments
runner names it with ``tracking.parent_key``); every job is its child. A job that fails does not stop the others;
once all have ended, the sweeper names the failed ones and exits 1 (the parent run then ends FAILED), and the ones
that FINISHED stay FINISHED. Mistakes in the plan file are one line on stderr and exit status 2.
"""

# No `from __future__ import annotations`: Hydra executes plugin modules before registering them in
# sys.modules, and dataclasses then cannot resolve string annotations.
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.igrpo_sweeper_common import ExitIsFailure  # a job's sys.exit fails only that job


@dataclass
class IgrpoPlanSweeperConf:
    _target_: str = "hydra_plugins.igrpo_plan_sweeper.plan_sweeper.IgrpoPlanSweeper"
    plan: Optional[str] = None  # the plan file (JSON): one entry per run, each a list of overrides (module docstring)


ConfigStore.instance().store(group="hydra/sweeper", name="igrpo_plan", node=IgrpoPlanSweeperConf, provider="igrpo")


class PlanError(ValueError):
    """The plan file or the command line cannot be run as a plan; one line."""


def read_plan(path: Optional[str]) -> list:
    """[(label, overrides)] from the plan file; PlanError (one line) when it is missing or malformed."""
    if not path:
        raise PlanError("hydra.sweeper.plan is not set; give the plan file: hydra.sweeper.plan=<plan.json>")
    try:
        entries = json.loads(Path(path).read_text())
    except OSError as err:
        raise PlanError(f"hydra.sweeper.plan={path}: cannot read it ({err.strerror or err})") from None
    except ValueError as err:
        raise PlanError(f"hydra.sweeper.plan={path}: not JSON ({err})") from None
    if not isinstance(entries, list):
        raise PlanError(f"hydra.sweeper.plan={path}: must be a JSON list with one entry per run")
    runs = []
    for i, entry in enumerate(entries):
        label, overrides = (entry.get("label") or f"run {i}", entry.get("overrides")) if isinstance(entry, dict) \
            else (f"run {i}", entry)
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise PlanError(f"hydra.sweeper.plan={path}: entry {i} must be a list of override strings "
                            '(or {"label": ..., "overrides": [...]})')
        runs.append((str(label), list(overrides)))
    return runs


class IgrpoPlanSweeper(Sweeper):
    def __init__(self, plan: Optional[str]) -> None:
        super().__init__()
        self.plan = plan
        self.config: Optional[DictConfig] = None
        self.hydra_context = None
        self.launcher = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=ExitIsFailure(task_function), config=config)

    def _jobs(self, arguments: List[str]) -> list:
        runs = read_plan(self.plan)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        sweeps = [o.input_line for o in parser.parse_overrides(arguments) if o.is_sweep_override()]
        if sweeps:
            raise PlanError(f"{sweeps[0]} is a sweep; the plan sweeper runs the plan's runs as written: put the "
                            "values into the plan (one run each), or use the basic sweeper")
        return [(label, [*overrides, *arguments]) for label, overrides in runs]

    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        try:
            jobs = self._jobs(arguments)
        except PlanError as err:  # igrpo's convention for mistakes: one line, exit 2
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        if not jobs:
            print(f"[igrpo_plan] {self.plan}: no runs in the plan; nothing to launch", flush=True)
            return []
        print(f"[igrpo_plan] {len(jobs)} run(s) from {self.plan}:", flush=True)
        for i, (label, _) in enumerate(jobs):
            print(f"[igrpo_plan]   #{i} {label}", flush=True)
        results = self.launcher.launch([overrides for _, overrides in jobs], initial_job_idx=0)
        failed = [(i, label, result) for i, ((label, _), result) in enumerate(zip(jobs, results))
                  if result.status != JobStatus.COMPLETED]
        print(f"[igrpo_plan] done: {len(jobs) - len(failed)} of {len(jobs)} run(s) completed", flush=True)
        if failed:
            for i, label, result in failed:
                err = result._return_value  # the job's exception (Hydra keeps it there)
                text = " ".join(f"{type(err).__name__}: {err}".split())[:500]
                print(f"error: run #{i} {label} failed: {text}", file=sys.stderr)
            print(f"error: {len(failed)} of {len(jobs)} run(s) failed (see above); the runs that finished are kept",
                  file=sys.stderr)
            sys.exit(1)
        return [results]
