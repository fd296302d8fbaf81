"""Held-out benchmark suites from the eval config (``eval=paper``: AIME24/25, MATH500, AMC23, GSM8K, Minerva).

Each suite of ``eval.suites`` names its source (a local file or a hub dataset) and its column mapping, and is
loaded with the same schema-checked loader as training data. Suites are held out from training: a training
problem whose normalised text (lower case, whitespace collapsed) equals any eval problem's is removed before
training, and the number removed is kept in ``TaskData.extra["held_out_removed"]``.
"""

from __future__ import annotations

import re

from igrpo.tasks.base import Problem
from igrpo.tasks.sources import SourceSpec, load_problems


def load_suites(eval_cfg, quiet: bool = False) -> dict[str, list[Problem]]:
    """``{suite: problems}`` in config order, each cut to ``max_problems`` when set."""
    suites: dict[str, list[Problem]] = {}
    for name, suite_cfg in eval_cfg.suites.items():
        problems = load_problems(SourceSpec.from_cfg(suite_cfg, f"eval.suites.{name}"), id_prefix=str(name),
                                 quiet=quiet)
        if suite_cfg.max_problems is not None:
            problems = problems[: suite_cfg.max_problems]
        suites[str(name)] = problems
    return suites


def problem_key(text: str) -> str:
    """Text identity for contamination checks: case and whitespace do not make a problem new."""
    return re.sub(r"\s+", " ", text).strip().lower()


def hold_out(train: list[Problem], suites: dict[str, list[Problem]]) -> tuple[list[Problem], int]:
    """Training problems that appear in no eval suite, and how many were removed."""
    held = {problem_key(p.problem) for problems in suites.values() for p in problems}
    kept = [p for p in train if problem_key(p.problem) not in held]
    return kept, len(train) - len(kept)
