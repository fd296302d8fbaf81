"""Pure metric functions shared by training diagnostics and evaluation."""

from __future__ import annotations

from collections.abc import Sequence


def avg_at_k(correct: Sequence[Sequence[bool]]) -> float:
    """pass@1 averaged over k samples per problem (``avg@k``): mean over problems of the fraction correct.

    Every problem must have the same, non-zero number of samples; an empty suite is an error because a
    score of 0 would be indistinguishable from a model that fails everything.
    """
    if not correct:
        raise ValueError("avg_at_k needs at least one problem")
    k = len(correct[0])
    if k == 0 or any(len(row) != k for row in correct):
        raise ValueError("avg_at_k needs the same non-zero number of samples for every problem")
    return sum(sum(bool(c) for c in row) / k for row in correct) / len(correct)


def frac_groups_zero_std(rewards: Sequence[float | None], group_size: int) -> float:
    """Fraction of consecutive groups whose rewards are all equal (zero advantage for every member).

    ``None`` rewards (ungradeable) are ignored inside a group; a group with fewer than two scored members
    counts as zero-variance, since it carries no learning signal either.
    """
    if group_size <= 0 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    groups = [rewards[i : i + group_size] for i in range(0, len(rewards), group_size)]
    if not groups:
        return 0.0
    flat = 0
    for group in groups:
        scored = [r for r in group if r is not None]
        if len(scored) < 2 or max(scored) - min(scored) < 1e-9:
            flat += 1
    return flat / len(groups)


def mean_ignoring_none(values: Sequence[float | None]) -> float | None:
    """Mean of the non-None values, or None when there are none."""
    scored = [v for v in values if v is not None]
    return sum(scored) / len(scored) if scored else None


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random negative,
    ties counting one half (the Mann-Whitney statistic). Needs both classes present."""
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores for {len(labels)} labels")
    positives = [s for s, y in zip(scores, labels) if y]
    negatives = [s for s, y in zip(scores, labels) if not y]
    if not positives or not negatives:
        raise ValueError("auroc needs at least one positive and one negative example")
    # Rank-based: sort once, give tied scores their average rank.
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels) if y)
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
