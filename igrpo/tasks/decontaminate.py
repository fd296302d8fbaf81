"""N-gram decontamination between training problems and eval suites (as open-r1 and the AceReason authors do).

A training problem is contaminated when it shares any word n-gram (default n = 8) with any eval problem, after
both are normalised: lower case, LaTeX commands and punctuation turned into spaces, whitespace collapsed. A
problem shorter than n words is compared whole (its text must then equal an eval n-gram window or a whole
short eval problem). Exact-text hold-out (``igrpo.tasks.benchmarks.hold_out``) always runs; this is the
stricter check behind ``task.decontaminate=true`` and ``python -m igrpo.tasks decontaminate``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from igrpo.errors import ConfigError
from igrpo.tasks.base import Problem

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-cased alphanumeric words: ``$x^2+1$`` and ``x^2 + 1`` give the same words."""
    return _WORD.findall(text.lower())


def ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    """The text's word n-grams in order, without repeats (the whole text when it is shorter than n words)."""
    tokens = words(text)
    if len(tokens) < n:
        return [tuple(tokens)] if tokens else []
    return list(dict.fromkeys(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)))


@dataclass(frozen=True)
class Overlap:
    """One contaminated training problem and the first eval problem it shares an n-gram with."""

    train_id: str
    suite: str
    eval_id: str
    ngram: str


def find_overlaps(train: list[Problem], suites: dict[str, list[Problem]], n: int = 8) -> list[Overlap]:
    """Every training problem sharing an n-gram with an eval problem, in training order."""
    if n < 1:
        raise ConfigError(f"task.decontaminate_ngram={n} is not valid; it must be >= 1 (words per n-gram)")
    index: dict[tuple[str, ...], tuple[str, str]] = {}
    for suite, problems in suites.items():
        for problem in problems:
            for gram in ngrams(problem.problem, n):
                index.setdefault(gram, (suite, problem.id))
    found = []
    for problem in train:
        for gram in ngrams(problem.problem, n):
            if gram in index:
                suite, eval_id = index[gram]
                found.append(Overlap(problem.id, suite, eval_id, " ".join(gram)))
                break
    return found


def decontaminate(train: list[Problem], suites: dict[str, list[Problem]], n: int = 8
                  ) -> tuple[list[Problem], list[Overlap]]:
    """Training problems without any overlap, and the overlaps dropped."""
    overlaps = find_overlaps(train, suites, n)
    dropped = {o.train_id for o in overlaps}
    return [p for p in train if p.id not in dropped], overlaps
