"""Name-keyed task registry: maps ``task.name`` to a builder."""

from __future__ import annotations

from igrpo.errors import choice_error
from igrpo.tasks.arith import build_arith_task
from igrpo.tasks.base import TaskData

TASKS = ("arith",)


def load_task(task_cfg, seed: int) -> TaskData:
    """Build the task named by ``task_cfg.name``. The task's own ``seed`` fixes the data; the run seed
    does not, so that runs with different seeds are scored on the same eval suites."""
    if task_cfg.name == "arith":
        return build_arith_task(
            train_levels=list(task_cfg.train_levels),
            eval_levels=list(task_cfg.eval_suites),
            train_size=task_cfg.train_size,
            eval_size=task_cfg.eval_size,
            seed=task_cfg.data_seed,
            first_digits=task_cfg.first_digits,
            step_digits=task_cfg.step_digits,
        )
    raise choice_error("task.name", task_cfg.name, TASKS)
