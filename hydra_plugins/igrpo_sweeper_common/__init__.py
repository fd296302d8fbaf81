"""What igrpo's two sweepers (igrpo_optuna, igrpo_plan) share. Holds no Hydra plugin itself."""

# No `from __future__ import annotations`: Hydra imports every module under hydra_plugins while scanning for plugins.
import functools


class JobExited(RuntimeError):
    """A job called sys.exit (igrpo's one-line config errors exit 2)."""


class ExitIsFailure:
    """Wraps a sweeper's task function: a job's ``sys.exit(n)`` becomes a JobExited exception, which Hydra records
    as that job's failure, so one bad trial or planned run does not end the others. Exits from signals (status
    >= 128: igrpo's SIGTERM handler) still end the sweep. A module-level class, so parallel launchers can pickle it."""

    def __init__(self, task_function) -> None:
        self.task_function = task_function
        functools.update_wrapper(self, task_function)

    def __call__(self, cfg):
        try:
            return self.task_function(cfg)
        except SystemExit as exit_:
            if isinstance(exit_.code, int) and exit_.code >= 128:
                raise
            raise JobExited(f"the job exited with status {exit_.code} (its error is printed above)") from None
