"""iGRPO's draft budget per prompt (``variant.draft_budget``), as pure functions.

``fixed`` (the paper): every prompt gets N drafts. ``adaptive``: the step's N x P drafts (P prompts) are shared out
by what the run knows about each prompt's drafts: drafts go where the outcome is uncertain, none beyond the probe
where the prompt is always solved or never solved (a draft selected from all-right or all-wrong drafts shows the
same thing whichever is picked). The total stays N x P every step, so the matched budget holds exactly.

How a step shares them out (``igrpo.variants.igrpo.trainer``):

1. the probe: every prompt gets ``draft_probe`` drafts (k, possibly 0), graded with the training reward's
   accuracy;
2. each prompt's history is its last ``draft_history`` graded drafts, from earlier steps and this probe;
3. the other N x P - k x P drafts are apportioned by ``allocate_drafts`` with weight p(1 - p), p the history's
   success rate (0 for always solved and never solved; 0.25, the largest, for a prompt with no history), at most
   ``max_drafts_per_prompt`` per prompt; D'Hondt's rule (each next draft to the largest weight / (drafts given + 1),
   ties to the lower index) keeps it proportional and deterministic. Drafts no uncertain prompt can take (all
   settled, or all at the cap) are spread evenly over the others, so the spend never changes.

A prompt left with no drafts is trained on its plain prompt (no draft shown), like ``on_all_zero=plain``.
"""

from __future__ import annotations

from collections.abc import Sequence

DRAFT_BUDGETS = ("fixed", "adaptive")
UNSEEN_WEIGHT = 0.25  # p(1 - p) at its largest: a prompt with no graded draft is treated as the most uncertain


def uncertainty(history: Sequence[bool]) -> float:
    """p(1 - p) of the success rate p of a prompt's graded drafts; ``UNSEEN_WEIGHT`` with none."""
    if not history:
        return UNSEEN_WEIGHT
    p = sum(bool(h) for h in history) / len(history)
    return p * (1 - p)


def remember(history: Sequence[bool], outcomes: Sequence[bool | None], window: int) -> list[bool]:
    """The last ``window`` graded outcomes after appending ``outcomes`` (ungradeable ones, None, are skipped)."""
    kept = [*history, *(bool(o) for o in outcomes if o is not None)]
    return kept[-window:] if window > 0 else []


def allocate_drafts(histories: Sequence[Sequence[bool]], total: int, cap: int, floor: int = 0) -> list[int]:
    """Drafts per prompt, summing to ``total``: ``floor`` each (the probe), the rest by D'Hondt's rule on
    ``uncertainty``, none above ``cap``; what no uncertain prompt can take is spread evenly over the rest."""
    n = len(histories)
    if n == 0:
        if total:
            raise ValueError(f"total={total} drafts for no prompts")
        return []
    if not 0 <= floor <= cap or floor * n > total or total > cap * n:
        raise ValueError(f"cannot give {n} prompts {total} drafts with {floor} to {cap} each")
    counts = [floor] * n
    weights = [uncertainty(h) for h in histories]
    left = total - floor * n
    given = [0] * n  # beyond the floor, the divisor of D'Hondt's rule
    while left:
        open_ = [i for i in range(n) if weights[i] > 0 and counts[i] < cap]
        if not open_:
            break
        best = max(open_, key=lambda i: (weights[i] / (given[i] + 1), -i))
        counts[best] += 1
        given[best] += 1
        left -= 1
    while left:  # nobody uncertain can take more: even spread, fewest first, then lower index
        i = min((i for i in range(n) if counts[i] < cap), key=lambda i: (counts[i], i))
        counts[i] += 1
        left -= 1
    return counts


def histogram(counts: Sequence[int], cap: int) -> list[int]:
    """How many prompts got 0, 1, ..., ``cap`` drafts."""
    out = [0] * (cap + 1)
    for c in counts:
        out[c] += 1
    return out
