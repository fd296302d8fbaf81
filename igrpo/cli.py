"""Command-line glue for ``run.py``: one-line errors, quiet third-party logs, the end-of-run summary."""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from pathlib import Path

from igrpo.errors import ConfigError
from igrpo.tracking.names import ui_runs_url

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
_SIMPLE_VALUES = re.compile(r"^[A-Za-z0-9_.\-]+(,[A-Za-z0-9_.\-]+)*$")


def group_options(conf_dir: Path = CONF_DIR) -> dict[str, list[str]]:
    """Config group -> its option names, read from the conf/ tree; nested groups by path (``reward/judge``).
    Hydra's own groups (``hydra/...``) are left out: plugins add options to them that are not files here."""
    return {
        d.relative_to(conf_dir).as_posix(): sorted(p.stem for p in d.glob("*.yaml"))
        for d in sorted(path for path in conf_dir.rglob("*") if path.is_dir())
        if any(d.glob("*.yaml")) and d.relative_to(conf_dir).parts[0] != "hydra"
    }


def find_bad_group_choice(argv: list[str], conf_dir: Path = CONF_DIR) -> str | None:
    """The one-line error for the first override that selects a non-existent group option, if any.
    Only plain values and comma lists are checked; sweep functions (choice(), glob()) are left to Hydra."""
    groups = group_options(conf_dir)
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key not in groups or not _SIMPLE_VALUES.match(value):
            continue
        for option in value.split(","):
            if option not in groups[key]:
                return f"{key}={option} is not a known option; choose one of: {', '.join(groups[key])}"
    return None


def check_group_choices(argv: list[str]) -> None:
    error = find_bad_group_choice(argv)
    if error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def quiet_third_party_logs() -> None:
    """Keep the terminal to our progress bars and summary; warnings stay available with IGRPO_VERBOSE=1."""
    if os.environ.get("IGRPO_VERBOSE"):
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore")
    from igrpo.tracking.runs import quiet_logs

    quiet_logs()  # MLflow's loggers (the tracking wing imports mlflow, which sets their level on import)
    for name in ("transformers", "trl", "accelerate", "datasets", "httpx", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def summary(result, cfg) -> str:
    """Short end-of-run text: where the run is, base -> final headline metrics, how to look at it."""
    lines = [f"run {result.run_id} ({cfg.variant.name}/{cfg.algo.name}/{cfg.reward.name}, seed {cfg.seed}) "
             f"in experiment '{result.experiment}'"]
    for key in sorted(result.final_metrics):  # each suite's avg@k (its own k), greedy, and the means
        if key.startswith("eval/") and ("/avg_at_" in key or key.endswith("greedy")):
            lines.append(f"  {key:28s} {result.base_metrics.get(key, float('nan')):.3f} -> "
                         f"{result.final_metrics[key]:.3f}")
    values = result.objective if isinstance(result.objective, list) else [result.objective]
    names = cfg.objective if isinstance(cfg.objective, str) else ", ".join(cfg.objective)
    lines.append(f"  objective {names} = {', '.join(f'{v:.4f}' for v in values)}")
    if result.tracking_uri.startswith(("http://", "https://")):  # an `mlflow server`: its UI is right there
        lines.append(f"view: {ui_runs_url(result.experiment_id or '0', result.tracking_uri)}")
    else:
        lines.append(f"view: mlflow ui --backend-store-uri {result.tracking_uri} --workers 1")
        if result.experiment_id:
            lines.append(f"      then open {ui_runs_url(result.experiment_id)}")
    return "\n".join(lines)


def run_job(cfg) -> float | list[float]:
    """Run one job; config mistakes end it with a one-line error and exit status 2."""
    import signal

    quiet_third_party_logs()  # again here: joblib/submitit jobs run in processes that never ran run.py's main
    # A terminated job (SIGTERM from a scheduler or `kill`) unwinds like an error, so its MLflow run is
    # closed as FAILED instead of being left RUNNING.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        from igrpo.validate import validate

        validate(cfg)  # before importing the trainer stack: a config mistake costs ~2 s, not ~10
        from igrpo.threads import apply_cpu_threads

        apply_cpu_threads(cfg)  # torch threads = this process's share of the cores (igrpo/threads.py)
        from igrpo.runner import run

        result = run(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if result.run_id:  # the main process; other ranks of a multi-process run stay quiet
        print(summary(result, cfg))
    return result.objective
