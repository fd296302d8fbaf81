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
