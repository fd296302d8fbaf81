"""Seed aggregation: mean ± half-width of a two-sided 95% Student-t interval, and its text form.

With n seeds the interval is mean ± t(0.975, n-1) · s / sqrt(n) (s: sample std, ddof=1; ``scipy.stats.t.interval``). One seed has
no interval (shown as the bare mean); a metric that no run logged is ``n/a``, never 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Cell:
    mean: float  # nan when n == 0
    half: float | None  # CI half-width; None when n < 2
    n: int  # values aggregated (seeds that logged this metric)


def t_interval(values, confidence: float = CONFIDENCE) -> Cell:
    """Aggregate per-seed values (NaNs = not logged, left out)."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(vals)
    if n == 0:
        return Cell(float("nan"), None, 0)
    mean = math.fsum(vals) / n
    if n == 1:
        return Cell(mean, None, 1)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1))
    if sd == 0.0:  # every seed the same: scipy's interval of a zero scale is nan, the width is 0
        return Cell(mean, 0.0, n)
    _, high = stats.t.interval(confidence, n - 1, loc=0.0, scale=sd / math.sqrt(n))
    return Cell(mean, float(high), n)


def mean_of_columns(values) -> float:
    """Avg of one seed's suite values; nan if any suite is missing (no partial averages)."""
    vals = [float(v) for v in values]
    if not vals or any(math.isnan(v) for v in vals):
        return float("nan")
    return math.fsum(vals) / len(vals)


def fmt(cell: Cell | None, scale: float = 100.0, digits: int = 2, signed: bool = False, pm: str = " ± ") -> str:
    """'45.04 ± 1.23' (percent by default), '45.04' for one seed, 'n/a' when nothing was logged."""
    if cell is None:
        return ""
    if cell.n == 0:
        return "n/a"
    sign = "+" if signed else ""
    text = f"{cell.mean * scale:{sign}.{digits}f}"
    if cell.half is not None:
        text += f"{pm}{cell.half * scale:.{digits}f}"
    return text


def fmt_general(cell: Cell | None, pm: str = " ± ") -> str:
    """Raw units with 4 significant digits (entropy in nats, seconds, fractions)."""
    if cell is None:
        return ""
    if cell.n == 0:
        return "n/a"
    text = f"{cell.mean:.4g}"
    if cell.half is not None:
        text += f"{pm}{cell.half:.2g}"
    return text
