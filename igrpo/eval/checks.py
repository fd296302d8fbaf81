"""Value checks of the eval-job settings, importable without torch (``igrpo.config.validate`` runs them before any
model is loaded)."""

from __future__ import annotations

from igrpo.errors import ConfigError, choice_error

EVAL_MODES = ("inline", "job")


def check_eval_job(cfg) -> None:
    """The eval-job settings: one ConfigError line on the first mistake."""
    e = cfg.eval
    if e.mode not in EVAL_MODES:
        raise choice_error("eval.mode", e.mode, EVAL_MODES)
    if e.step is not None and int(e.step) < 0:
        raise ConfigError(f"eval.step={e.step} is not valid; it must be >= 0 (or null: the run's train.steps)")
    if not str(e.store_root).strip():
        raise ConfigError("eval.store_root is empty; name a directory for the eval job's graded samples")
