"""What an Optuna study is, read back from MLflow: its parent run, its trials with their states and objective values,
and the rules over them (trial state, Pareto front, best so far). Shared by the sweep report and its figures."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

COMPLETE, FAIL, RUNNING = "COMPLETE", "FAIL", "RUNNING"
NO_RUN = "no MLflow run: failed before its run started (e.g. its config was rejected)"


@dataclass(frozen=True)
class StudyRef:
    """One study's parent run."""

    name: str
    parent_run_id: str
    run_name: str
    experiment: str
    storage: str  # credential-free label
    status: str

    def describe(self) -> str:
        return f"{self.name} (parent run {self.parent_run_id}, {self.storage})"


@dataclass(frozen=True)
class Study:
    ref: StudyRef
    objectives: list[str]
    directions: list[str]
    params: list[str]  # the searched keys
    trials: pd.DataFrame  # trial, state, <params>, <objectives>, best_so_far | pareto, run_id, note
    logged_best: str | None  # the parent's best.trial tag (single objective)
    logged_front: list[int] | None  # the trial numbers of the parent's pareto_front.json (multi-objective)

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    @property
    def complete(self) -> pd.DataFrame:
        return self.trials[self.trials.state == COMPLETE]

    def front(self) -> list[int]:
        """The trial numbers on the Pareto front (recomputed from the runs' metrics); [] single-objective."""
        if "pareto" not in self.trials:
            return []
        return [int(n) for n, on in zip(self.trials.trial, self.trials.pareto) if on is True]


def finite_number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def trial_state(status: str | None, values: list[float | None]) -> tuple[str, str]:
    """(state, note) of one trial from its run's status and logged objective values (None: no run)."""
    if status is None:
        return FAIL, NO_RUN
    if status == "FINISHED":
        if all(v is not None for v in values):
            return COMPLETE, ""
        return FAIL, "its run FINISHED without logging every objective"
    if status == "RUNNING":
        return RUNNING, "its run is still RUNNING (a sweep in progress, or killed and not yet resumed)"
    return FAIL, f"its run ended {status}"


def pareto_mask(values: list[list[float]], directions: list[str]) -> list[bool]:
    """Which points no other point dominates (at least as good in every objective, better in one), as optuna's
    ``best_trials``; equal points do not dominate each other."""
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    costs = [[s * v for s, v in zip(signs, point)] for point in values]

    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))

    return [not any(dominates(other, point) for other in costs) for point in costs]


def best_so_far(values: list[float | None], direction: str) -> list[float | None]:
    """The best value up to each trial (None before the first complete trial)."""
    pick = min if direction == "minimize" else max
    out, best = [], None
    for v in values:
        if v is not None:
            best = v if best is None else pick(best, v)
        out.append(best)
    return out
