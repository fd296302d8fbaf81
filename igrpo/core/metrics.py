"""Pure metric functions shared by training diagnostics and evaluation."""

from __future__ import annotations

from collections.abc import Sequence

from igrpo.core.answers import answers_match


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
    return sum(is_flat(group) for group in groups) / len(groups)


def is_flat(group: Sequence[float | None]) -> bool:
    """A group with no learning signal: fewer than two scored rewards (``None``: ungradeable), or all equal."""
    scored = [r for r in group if r is not None]
    return len(scored) < 2 or max(scored) - min(scored) < 1e-9


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


def first_of_each_group(values: Sequence, group_size: int, keep: int) -> list:
    """The first ``keep`` members of each consecutive group of ``group_size`` (members are i.i.d. samples, so
    the first ``keep`` are a fair subsample): compares zero-variance rates of groups of different sizes at one
    size."""
    if group_size <= 0 or len(values) % group_size:
        raise ValueError(f"{len(values)} values do not split into groups of {group_size}")
    if not 0 < keep <= group_size:
        raise ValueError(f"keep={keep} must be in 1..{group_size}")
    return [v for start in range(0, len(values), group_size) for v in values[start:start + keep]]


def correct_flags(scores: Sequence[float | None]) -> list[float | None]:
    """Accuracy-reward scores as binary correct (1.0 / 0.0), None (ungradeable) kept: the one definition the
    Stage-1 and Stage-2 binary-correct zero-variance rates share."""
    return [None if s is None or s != s else (1.0 if s > 0.5 else 0.0) for s in scores]


REFINE_RATES = ("copy_rate", "copy_rate_shown_correct", "copy_rate_shown_wrong", "fix_rate", "keep_rate")


def refine_counts(shown_answers: Sequence[str | None], shown_correct: Sequence[bool | None],
                  refined_answers: Sequence[str | None], refined_correct: Sequence[bool | None]) -> dict[str, int]:
    """Counts behind the ``refine/*`` rates, one entry per refinement conditioned on a shown draft.

    ``shown_answers``: the shown (selected) draft's extracted final answer (None: it wrote none);
    ``shown_correct``: that draft graded against the reference (None: ungradeable reference);
    ``refined_answers`` / ``refined_correct``: the same for the refinement. A refinement *copies* when both
    answers exist and match (``igrpo.core.answers.answers_match``); a refinement with no answer never copies, and
    refinements of a draft that wrote no answer are left out of the copy counts (nothing to copy) but count in
    ``fix`` as shown-wrong. Counts add across processes and steps (``refine_rates`` turns them into rates)."""
    n = len(shown_answers)
    if not (len(shown_correct) == len(refined_answers) == len(refined_correct) == n):
        raise ValueError(f"refine_counts needs equal lengths, got {n}, {len(shown_correct)}, "
                         f"{len(refined_answers)}, {len(refined_correct)}")
    keys = ("with_answer", "copied", "shown_correct", "copied_shown_correct", "kept", "shown_wrong_with_answer",
            "copied_shown_wrong", "shown_wrong_graded", "fixed")
    counts = dict.fromkeys(keys, 0)
    for shown, ok, refined, right in zip(shown_answers, shown_correct, refined_answers, refined_correct):
        copied = shown is not None and refined is not None and answers_match(refined, shown)
        if shown is not None:
            counts["with_answer"] += 1
            counts["copied"] += copied
        if ok is None or right is None:  # ungradeable reference: no correct/wrong split
            continue
        if ok:
            counts["shown_correct"] += 1
            counts["copied_shown_correct"] += copied
            counts["kept"] += bool(right)
        else:
            counts["shown_wrong_graded"] += 1
            counts["fixed"] += bool(right)
            if shown is not None:
                counts["shown_wrong_with_answer"] += 1
                counts["copied_shown_wrong"] += copied
    return counts


def add_counts(parts: Sequence[dict[str, int]]) -> dict[str, int]:
    """Key-wise sum of ``refine_counts`` results (e.g. one per process)."""
    total: dict[str, int] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    return total


def refine_rates(counts: dict[str, int]) -> dict[str, float]:
    """Rates from ``refine_counts``; a rate whose denominator is 0 is left out (undefined, never 0):

    * ``copy_rate``: refinements whose answer equals the shown draft's, among those whose draft has an answer;
    * ``copy_rate_shown_correct`` / ``copy_rate_shown_wrong``: the same, split by the shown draft's grade;
    * ``fix_rate``: refinements that are right among those whose shown draft was wrong (no answer included);
    * ``keep_rate``: refinements that are right among those whose shown draft was right."""
    pairs = {"copy_rate": ("copied", "with_answer"),
             "copy_rate_shown_correct": ("copied_shown_correct", "shown_correct"),
             "copy_rate_shown_wrong": ("copied_shown_wrong", "shown_wrong_with_answer"),
             "fix_rate": ("fixed", "shown_wrong_graded"),
             "keep_rate": ("kept", "shown_correct")}
    return {name: counts.get(num, 0) / counts[den] for name, (num, den) in pairs.items() if counts.get(den, 0) > 0}


def combine_scores(per_func: Sequence[Sequence[float | None]], weights: Sequence[float]) -> list[float | None]:
    """Weighted sum per completion; None when every function declined to score it (as TRL does)."""
    combined: list[float | None] = []
    for values in zip(*per_func, strict=True):
        if all(v is None for v in values):
            combined.append(None)
        else:
            combined.append(sum(w * v for w, v in zip(weights, values, strict=True) if v is not None))
    return combined
