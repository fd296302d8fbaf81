"""Task data types shared by every task."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One problem: its text, a worked solution (for warm starts) and the reference final answer."""

    id: str
    problem: str
    answer: str
    solution: str = ""
    level: str = ""


@dataclass
class TaskData:
    """Training problems plus named held-out eval suites (the paper's benchmark columns)."""

    train: list[Problem]
    eval_suites: dict[str, list[Problem]]
    prompt_template: str = "{problem}"
    extra: dict = field(default_factory=dict)

    def prompt(self, problem: Problem) -> str:
        """The plain (draft-free) prompt for a problem."""
        return self.prompt_template.format(problem=problem.problem)
