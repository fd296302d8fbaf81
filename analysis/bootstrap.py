"""Paired bootstrap confidence interval for Δ Avg (method − baseline) over eval problems and seeds.

Method (quoted in the report caption as ``METHOD``):

* Data: for each method, run seed and eval suite, every problem's score is its fraction of correct samples
  (its contribution to the suite's avg@k), so a suite is a ``[seeds, problems]`` array and avg@k is its mean.
* Statistic: Δ = mean over suites of (avg@k of the method − avg@k of the baseline), averaged over seeds.
* Pairing: seeds are paired by seed value (only seeds both methods ran are used) and problems by identity
  (both methods must have evaluated the same problems, in the same order, in every suite): the per-cell
  differences ``D[seed, problem] = method − baseline`` are what is resampled.
* Resampling: each of ``n_boot`` (default 2000) replicates draws the seeds with replacement (one draw shared by
  every suite, since a seed is one training run) and, independently per suite, the problems with replacement,
  and recomputes Δ from the drawn rows and columns of ``D`` (a two-way "pigeonhole" bootstrap, Owen 2007).
* Interval: the 2.5th and 97.5th percentiles of the replicates (percentile interval); the generator is
  ``numpy.random.default_rng(rng_seed)`` with a fixed ``rng_seed`` (default 0), so reports are reproducible.

Coverage, measured with tests/test_bootstrap.py's generator (two identical arms, 2 suites x 100 problems, k = 8,
1500 draws each): 10 seeds whose runs differ by a seed effect of sd 4 points covers the true Δ = 0 in 94.4% of
draws (and a true +10 points in 94.7%, excluding 0 in all). Two departures follow from resampling both ways:
when seeds differ by sampling noise only, that noise is counted more than once and the interval is conservative
(3 seeds: 99.5%); a few seeds cannot show more seed-to-seed spread than they have, so with 3 seeds that differ
the interval is too narrow (seed sd 2 points: 92.9%; 6 points: 82.1%). With few seeds, read it beside the seed
t-interval, whose t quantiles account for the seed count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

N_BOOT = 2000
CONFIDENCE = 0.95
RNG_SEED = 0
METHOD = (f"Δ paired bootstrap {CONFIDENCE:.0%} CI: percentile interval of {N_BOOT} replicates (fixed RNG seed) that resample the "
          "seeds (paired by seed value) and, per suite, the eval problems (paired by problem: the same problems for "
          "both methods) with replacement, and recompute Δ Avg (mean over suites of the avg@k difference); "
          "conservative when seeds differ by sampling noise only, too narrow with few seeds that differ more.")


class BootstrapInputError(ValueError):
    """The per-problem scores of two methods cannot be paired (missing suite, different problems, no common seed)."""


@dataclass(frozen=True)
class MethodScores:
    """One method's per-problem scores: ``scores[suite]`` is ``[len(seeds), problems]``; ``ids[suite]`` names the
    problems of its columns (their identity across methods)."""

    label: str
    seeds: tuple[int, ...]
    scores: dict = field(default_factory=dict)  # suite -> np.ndarray [seeds, problems]
    ids: dict = field(default_factory=dict)  # suite -> tuple of problem ids, one per column

    def __post_init__(self):
        if len(set(self.seeds)) != len(self.seeds):
            raise BootstrapInputError(f"{self.label}: seeds={list(self.seeds)} repeat a seed")
        for suite, arr in self.scores.items():
            shape = np.shape(arr)
            if len(shape) != 2 or shape[0] != len(self.seeds) or shape[1] == 0:
                raise BootstrapInputError(f"{self.label}: suite {suite!r} has scores of shape {shape}; expected "
                                          f"[{len(self.seeds)} seeds, problems >= 1]")
            if suite in self.ids and len(self.ids[suite]) != shape[1]:
                raise BootstrapInputError(f"{self.label}: suite {suite!r} has {len(self.ids[suite])} problem ids "
                                          f"for {shape[1]} score columns")


def from_runs(label: str, per_seed: dict) -> MethodScores:
    """``per_seed``: seed -> {suite: (problem ids, scores)} (one run each, e.g. from ``analysis.load``). Every seed
    must cover the same suites with the same problems."""
    seeds = tuple(sorted(per_seed))
    if not seeds:
        raise BootstrapInputError(f"{label}: no seed has per-problem scores")
    suites = sorted(per_seed[seeds[0]])
    scores, ids = {}, {}
    for suite in suites:
        rows = []
        for seed in seeds:
            if suite not in per_seed[seed]:
                raise BootstrapInputError(f"{label}: seed {seed} has no per-problem scores for suite {suite!r}; "
                                          f"it has: {', '.join(sorted(per_seed[seed])) or 'none'}")
            seed_ids, seed_scores = per_seed[seed][suite]
            seed_ids = tuple(str(i) for i in seed_ids)
            if suite in ids and seed_ids != ids[suite]:
                raise BootstrapInputError(f"{label}: seed {seed} evaluated other problems in suite {suite!r} than "
                                          f"seed {seeds[0]}")
            ids[suite] = seed_ids
            rows.append(np.asarray(seed_scores, dtype=float))
        if len({len(r) for r in rows}) != 1:
            raise BootstrapInputError(f"{label}: seeds evaluated different numbers of problems in suite {suite!r}")
        scores[suite] = np.vstack(rows)
    return MethodScores(label, seeds, scores, ids)


def paired_differences(method: MethodScores, baseline: MethodScores, suites: list[str]
                       ) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """(common seeds, one ``[seeds, problems]`` array of method − baseline per suite, in ``suites`` order)."""
    if not suites:
        raise BootstrapInputError("no suites to compare")
    for scores in (method, baseline):
        missing = [s for s in suites if s not in scores.scores]
        if missing:
            raise BootstrapInputError(f"{scores.label}: no per-problem scores for suite(s) {', '.join(missing)}; "
                                      f"it has: {', '.join(sorted(scores.scores)) or 'none'}")
    seeds = tuple(s for s in method.seeds if s in set(baseline.seeds))
    if not seeds:
        raise BootstrapInputError(f"{method.label} (seeds {list(method.seeds)}) and {baseline.label} (seeds "
                                  f"{list(baseline.seeds)}) share no seed")
    rows_m = [method.seeds.index(s) for s in seeds]
    rows_b = [baseline.seeds.index(s) for s in seeds]
    diffs = []
    for suite in suites:
        ids_m, ids_b = method.ids.get(suite), baseline.ids.get(suite)
        a, b = method.scores[suite], baseline.scores[suite]
        if a.shape[1] != b.shape[1] or (ids_m is not None and ids_b is not None and ids_m != ids_b):
            raise BootstrapInputError(f"suite {suite!r}: {method.label} and {baseline.label} were evaluated on "
                                      f"different problems ({a.shape[1]} vs {b.shape[1]}); a paired Δ needs the "
                                      "same eval set")
        diffs.append(np.asarray(a, float)[rows_m] - np.asarray(b, float)[rows_b])
    return seeds, diffs


@dataclass(frozen=True)
class Interval:
    delta: float  # Δ on the data itself
    low: float
    high: float
    seeds: tuple[int, ...]  # the paired seeds used
    problems: tuple[int, ...]  # problems per suite
    n_boot: int

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def _counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """[n_boot, n] multiplicities of n uniform draws with replacement out of n (one row per replicate)."""
    picks = rng.integers(0, n, size=(n_boot, n)) + np.arange(n_boot)[:, None] * n
    return np.bincount(picks.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _resampled_means(rng, arrays: list[np.ndarray], n_boot: int, seed_counts: np.ndarray | None) -> np.ndarray:
    """[n_boot] replicates of the mean over suites of each array's mean, rows drawn by ``seed_counts`` (shared by
    every suite; drawn here when None) and columns drawn per suite."""
    n_seeds = arrays[0].shape[0]
    ws = _counts(rng, n_seeds, n_boot) if seed_counts is None else seed_counts
    total = np.zeros(n_boot)
    for arr in arrays:
        wp = _counts(rng, arr.shape[1], n_boot)
        total += np.einsum("bs,sp,bp->b", ws, arr, wp, optimize=True) / (arr.shape[0] * arr.shape[1])
    return total / len(arrays)


def bootstrap_delta(method: MethodScores, baseline: MethodScores, suites: list[str], n_boot: int = N_BOOT,
                    confidence: float = CONFIDENCE, rng_seed: int = RNG_SEED, paired: bool = True) -> Interval:
    """Percentile interval of Δ = mean over suites of avg@k(method) − avg@k(baseline), as the module docstring
    states. ``paired=False`` (for comparison only) resamples each method's seeds and problems independently."""
    if n_boot < 1:
        raise BootstrapInputError(f"n_boot={n_boot} is not valid; choose an integer >= 1")
    if not 0 < confidence < 1:
        raise BootstrapInputError(f"confidence={confidence} is not valid; choose a value in (0, 1)")
    seeds, diffs = paired_differences(method, baseline, suites)
    delta = float(np.mean([d.mean() for d in diffs]))
    rng = np.random.default_rng(rng_seed)
    if paired:
        reps = _resampled_means(rng, diffs, n_boot, None)
    else:
        rows_m = [method.seeds.index(s) for s in seeds]
        rows_b = [baseline.seeds.index(s) for s in seeds]
        reps = (_resampled_means(rng, [np.asarray(method.scores[s], float)[rows_m] for s in suites], n_boot, None)
                - _resampled_means(rng, [np.asarray(baseline.scores[s], float)[rows_b] for s in suites], n_boot,
                                   None))
    alpha = 1 - confidence
    low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return Interval(delta, float(low), float(high), seeds, tuple(d.shape[1] for d in diffs), n_boot)
