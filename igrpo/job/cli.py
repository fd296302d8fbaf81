"""Command-line glue for ``run.py``: one-line errors, quiet third-party logs, the end-of-run summary."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Callable

from igrpo.config.groups import find_bad_group_choice, group_options  # noqa: F401  (re-exported)
from igrpo.errors import ConfigError
from igrpo.tracking.names import ui_runs_url



def check_group_choices(argv: list[str]) -> None:
    error = find_bad_group_choice(argv)
    if error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


_KINDS = {int: "an integer", float: "a number", bool: "true or false"}


def _expected_kind(err) -> str:
    """What the schema field at fault takes, in words (read from the field's type, not from the error text)."""
    import typing

    try:
        hints = typing.get_type_hints(err.object_type)
    except Exception:  # not a dataclass schema, or a type that cannot be resolved
        return "of the field's type"
    kind = hints.get(str(err.key))
    for candidate in (kind, *typing.get_args(kind)):
        if candidate in _KINDS:
            return _KINDS[candidate]
    return f"of type {getattr(kind, '__name__', kind)}"


def compose_for_command(overrides: list[str], fixed: tuple[str, ...] = ()):
    """The run config composed from conf/ for a command that starts no Hydra job (``python -m igrpo.plan``,
    ``igrpo.tasks``, the judge CLI): Hydra's compose API, ``fixed`` overrides first, then the user's; an unknown group
    option or a bad key or value is one ConfigError line naming it."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from igrpo import CONF_DIR
    from igrpo.config import register_configs
    from igrpo.config.groups import find_bad_group_choice
    from igrpo.errors import ConfigError

    bad = find_bad_group_choice(overrides)
    if bad:
        raise ConfigError(bad)
    register_configs()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=[*fixed, *overrides])
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(hydra_error_line(err, overrides)) from None


def hydra_error_line(err: BaseException, argv: list[str]) -> str:
    """Hydra's or OmegaConf's multi-line composition error as our one line, naming the override at fault. The
    key and value come from OmegaConf's exception (its ``full_key`` and ``value``), and an unknown option of any
    group (``hydra/launcher=nope`` too: Hydra's groups are filled by plugins) from Hydra's own (its
    ``missing_cfg_file`` and ``options``), never from the message text."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    cause = err.__cause__ if err.__cause__ is not None else err
    if isinstance(err, MissingConfigException) and err.options and "/" in str(err.missing_cfg_file or ""):
        group, option = str(err.missing_cfg_file).rsplit("/", 1)
        return f"{group}={option} is not a known option; choose one of: {', '.join(err.options)}"
    if isinstance(cause, ValidationError) and getattr(cause, "full_key", None):
        return f"{cause.full_key}={cause.value} is not valid; it must be {_expected_kind(cause)}"
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and getattr(cause, "full_key", None):
        shown = "hydra" if str(cause.full_key).startswith("hydra.") else "job"
        return f"{cause.full_key} is not a known config key; list the keys with: python run.py --cfg {shown}"
    detail = str(cause)
    if type(err).__name__ == "OverrideParseException":
        bad = _unparseable_override(argv)
        where = f"the override {bad!r}" if bad else "an override"
        return (f"could not parse {where}: {detail.splitlines()[0]}; quote values with spaces or braces, "
                "e.g. 'variant.template=\"Fix: {draft}\"'")
    lines = [line.strip() for text in (str(err), detail if cause is not err else "") for line in text.splitlines()]
    return ": ".join(dict.fromkeys(line for line in lines if line and not line.startswith(("See https", "full_key",
                                                                                           "object_type"))))


def _unparseable_override(argv: list[str]) -> str | None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in argv:
        if arg.startswith("-"):
            continue
        try:
            parser.parse_override(arg)
        except HydraException:
            return arg
    return None


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

        validate(cfg)  # before importing the trainer stack: a config mistake costs ~2 s, not ~10
        from igrpo.job.threads import apply_cpu_threads

        apply_cpu_threads(cfg)  # torch threads = this process's share of the cores (igrpo/job/threads.py)
        from igrpo.job.runner import run

        result = run(cfg)
    if result.run_id:  # the main process; other ranks of a multi-process run stay quiet
        print(summary(result, cfg))
    return result.objective
