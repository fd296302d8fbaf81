"""DAPO's two sampling-side rules (Yu et al., 2025), as pure functions: dynamic sampling (which groups of a step
form the trained batch) and overlong reward shaping (the length penalty). The trainer side is
``igrpo.training.dynamic`` (the rounds of sampling on TRL's seam) and ``igrpo.rewards.overlong`` (the penalty as a
reward function).

Dynamic sampling. A group whose rewards are all equal has zero advantage for every member: it contributes no policy
gradient, only weight in the loss normaliser. DAPO drops such groups and samples more prompts until the batch is
full. Here one round samples as many prompts as the step's batch; a step samples at most ``max_rounds`` extra
rounds (``algo.max_resample_rounds``). The batch is the first informative groups in sampling order; when the cap
is reached first, it is topped up with flat groups in sampling order (they train exactly as they would without
dynamic sampling: no gradient), so the batch keeps its shape and the shortfall is logged. "Flat" is the definition
``frac_groups_zero_std`` logs (``igrpo.core.metrics.is_flat``): fewer than two scored rewards, or all equal.

Overlong shaping. With L_max the completion cap and L_cache the buffer, a completion of length L gets
0 for L <= L_max - L_cache, (L_max - L_cache - L) / L_cache inside the buffer (down to -1 at L_max), and -1 beyond;
scaled by ``factor`` (DAPO: 1) and added to the reward. It is the same for every completion the training reward
scores (iGRPO's drafts included, so the draft that is shown is ranked by the reward that trains).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from igrpo.core.metrics import is_flat


def informative_groups(rewards: Sequence[float | None], group_size: int) -> list[bool]:
    """Per consecutive group of ``group_size`` rewards: True when it carries a learning signal (not flat)."""
    if group_size <= 0 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    return [not is_flat(rewards[i:i + group_size]) for i in range(0, len(rewards), group_size)]


@dataclass(frozen=True)
class BatchPlan:
    """Which groups of which round form the trained batch, in order: ``(round, group index in that round)``."""

    picks: tuple[tuple[int, int], ...]
    informative: int  # picks that carry a signal
    filled: int  # flat groups taken because the cap was reached first

    @property
    def full(self) -> bool:
        return self.filled == 0


def plan_batch(rounds: Sequence[Sequence[bool]], needed: int) -> BatchPlan:
    """The trained batch from each round's ``informative_groups``: the first ``needed`` informative groups in
    sampling order, topped up with flat groups in sampling order when there are fewer."""
    if needed < 0:
        raise ValueError(f"needed={needed} must be >= 0")
    good = [(r, g) for r, flags in enumerate(rounds) for g, ok in enumerate(flags) if ok][:needed]
    flat = [(r, g) for r, flags in enumerate(rounds) for g, ok in enumerate(flags) if not ok]
    fill = flat[:needed - len(good)]
    if len(good) + len(fill) < needed:
        raise ValueError(f"{sum(map(len, rounds))} groups sampled cannot fill a batch of {needed}")
    picks = sorted(good + fill)
    return BatchPlan(tuple(picks), informative=len(good), filled=len(fill))


def needs_another_round(informative_so_far: int, needed: int, extra_rounds_done: int, max_rounds: int) -> bool:
    """Sample another round while the batch lacks informative groups and the cap of extra rounds allows it."""
    return informative_so_far < needed and extra_rounds_done < max_rounds


def overlong_penalty(length: int, max_length: int, buffer: int, factor: float = 1.0) -> float:
    """DAPO's soft overlong punishment of a completion of ``length`` tokens under the cap ``max_length`` with a
    buffer of ``buffer`` tokens: 0 up to ``max_length - buffer``, then linear down to ``-factor`` at the cap."""
    if not 0 < buffer <= max_length:
        raise ValueError(f"buffer={buffer} must be in 1..max_length={max_length}")
    start = max_length - buffer
    if length <= start:
        return 0.0
    return -factor * min(length - start, buffer) / buffer
