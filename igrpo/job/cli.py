"""Command-line glue for ``run.py``: one-line errors, quiet third-party logs, the end-of-run summary."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Callable

from igrpo.config.groups import find_bad_group_choice, group_options  # noqa: F401  (re-exported)
from igrpo.config.compose import compose_for_command, hydra_error_line  # noqa: F401  (re-exported)
from igrpo.errors import ConfigError
from igrpo.tracking.names import ui_runs_url



def check_group_choices(argv: list[str]) -> None:
    error = find_bad_group_choice(argv)
    if error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def full_error_wanted() -> bool:
    """Whether the user asked for Hydra's full tracebacks, read as Hydra reads it: ``HYDRA_FULL_ERROR=1`` and no
    other value (``0``, ``false`` or empty leave them off)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def run_hydra_app(main: Callable[[], object], argv: list[str]) -> None:
    """Run a ``@hydra.main`` app, turning Hydra's own composition errors into one line and exit status 2.

    Hydra prints these errors over several lines (exit 1); with HYDRA_FULL_ERROR=1 (``full_error_wanted``) they are
    raised with their traceback instead, and errors raised inside a job (already handled by ``run_job``, or real
    crashes) keep their full traceback.
    """
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    user_wants_traceback = full_error_wanted()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors to us (we print them in one line)
    try:
        main()
    except (HydraException, OmegaConfBaseException) as err:
        if user_wants_traceback or getattr(err, "raised_in_job", False):
            raise
        print(f"error: {hydra_error_line(err, argv)}", file=sys.stderr)
        sys.exit(2)


def quiet_third_party_logs() -> None:
    """Keep the terminal to our progress bars and summary; warnings stay available with IGRPO_VERBOSE=1."""
    if os.environ.get("IGRPO_VERBOSE"):
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")  # mlflow sets its loggers' level from this on import
    warnings.filterwarnings("ignore")
    for name in ("transformers", "trl", "accelerate", "datasets", "httpx", "urllib3", "alembic"):
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


@contextmanager
def job_errors():
    """The body of an entry point's job: a ConfigError ends it in one line with exit status 2; any other error is a
    crash inside the job and keeps its traceback (``run_hydra_app`` lets it through)."""
    try:
        yield
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:
        err.raised_in_job = True
        raise


def run_job(cfg) -> float | list[float]:
    """Run one job; config mistakes end it with a one-line error and exit status 2."""
    import signal

    quiet_third_party_logs()  # again here: joblib/submitit jobs run in processes that never ran run.py's main
    # A terminated job (SIGTERM from a scheduler or `kill`) unwinds like an error, so its MLflow run is
    # closed as FAILED instead of being left RUNNING.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with job_errors():
        from igrpo.config.validate import validate
        from igrpo.training.vllm_engine import keep_vllm_out_unless_used

        keep_vllm_out_unless_used(cfg)  # generation=hf: TRL does not import vLLM (faster start)
        validate(cfg)  # before importing the trainer stack: a config mistake costs ~2 s, not ~10
        from igrpo.job.threads import apply_cpu_threads

        apply_cpu_threads(cfg)  # torch threads = this process's share of the cores (igrpo/job/threads.py)
        from igrpo.job.runner import run

        result = run(cfg)
    if result.run_id:  # the main process; other ranks of a multi-process run stay quiet
        print(summary(result, cfg))
    return result.objective
