"""Tasks: training prompts with reference answers, and held-out eval suites."""

from igrpo.tasks.base import Problem, TaskData
from igrpo.tasks.registry import TASKS, load_task

__all__ = ["Problem", "TASKS", "TaskData", "load_task"]
