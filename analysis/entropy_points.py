"""Policy entropy at 10%, 30% and 100% of training, per arm: the numbers the paper reads off its Figure 3.

One step's ``train/entropy`` is noisy (8 prompts per step on CPU), so a point is the mean over a window of steps:
for a run of ``train.steps`` = S, the point at p% ends at step e = round(p·S/100) (half up, at least step 1: the
first training step; step 0 logs no entropy) and spans the last w = max(1, round(0.05·S)) steps, e−w+1 … e. Every
value logged at a step in that range counts (with ``train.logging_steps`` = 1, the default, that is w values); a
window with no logged value is n/a. Over seeds: mean ± 95% t-interval (``analysis.stats``). The ratio
entropy(100%) / entropy(10%) is computed per seed, then aggregated the same way.

Pure functions: histories (step -> value) in, rows and their text forms out; ``analysis.report`` loads the
histories from MLflow and writes ``entropy_points.md|csv``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from analysis.stats import Cell, fmt_general, t_interval

KEY = "train/entropy"
FIGURE = "entropy"  # the spec figure that asks for these points
POINTS = (10, 30, 100)  # percent of train.steps
WINDOW_PERCENT = 5  # window width, percent of train.steps
RATIO = "100%/10%"
COLUMNS = (*(f"{p}%" for p in POINTS), RATIO)  # a row's cells
CAPTION = (f"Mean per-token entropy (nats) of the trained completions at 10%, 30% and 100% of each run's "
           f"train.steps S: the mean of the {KEY} values logged at steps e−w+1 … e, with e = round(p·S) for "
           f"p = 0.1, 0.3, 1 (half up, at least 1) and window w = max(1, round({WINDOW_PERCENT / 100:g}·S)) steps, "
           "as one step's value is noisy. Then mean ± 95% t-interval over seeds (n/a: no value logged in the "
           f"window). {RATIO}: the per-seed ratio entropy(100%) / entropy(10%), aggregated the same way. The paper "
           "describes its Figure 3 at such points.")


class EntropyPointsError(ValueError):
    """Bad input to the window rule (one line, naming the value and what is valid)."""


def _half_up(numerator: int, denominator: int) -> int:
    """round(numerator / denominator), halves up, in exact integer arithmetic (no float or banker's rounding)."""
    return (2 * numerator + denominator) // (2 * denominator)


def window(steps: int, percent: int) -> tuple[int, int]:
    """(first, last) training step, inclusive, of the window of the point at ``percent``% of ``steps``."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise EntropyPointsError(f"train.steps={steps!r} is not valid; choose an integer >= 1")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
        raise EntropyPointsError(f"percent={percent!r} is not valid; choose an integer in 1..100 (e.g. "
                                 f"{', '.join(map(str, POINTS))})")
    end = max(1, _half_up(percent * steps, 100))
    width = max(1, _half_up(WINDOW_PERCENT * steps, 100))
    return max(1, end - width + 1), end


def entropy_at(history: Mapping[int, float], steps: int, percent: int) -> float:
    """Mean of the values of ``history`` (step -> value) logged in the window of ``percent``% of ``steps``; nan
    when none was (NaN values count as not logged)."""
    first, last = window(steps, percent)
    vals = [float(v) for s, v in history.items() if first <= int(s) <= last and not math.isnan(float(v))]
    return math.fsum(vals) / len(vals) if vals else float("nan")


def run_points(history: Mapping[int, float], steps: int) -> dict[str, float]:
    """One run: {'10%': .., '30%': .., '100%': .., '100%/10%': ..} (nan where a window has no value)."""
    out = {f"{p}%": entropy_at(history, steps, p) for p in POINTS}
    start, end = out[f"{POINTS[0]}%"], out[f"{POINTS[-1]}%"]
    out[RATIO] = end / start if start and not math.isnan(start) else float("nan")
    return out


@dataclass(frozen=True)
class RunHistory:
    group: str
    arm: str
    seed: int
    steps: int | None  # the run's train.steps; None (all points n/a) when the run did not log it
    history: Mapping[int, float]  # step -> train/entropy


@dataclass(frozen=True)
class PointsRow:
    group: str
    arm: str
    windows: dict  # '10%' -> 'e-w+1–e' (distinct windows of the arm's runs joined by '/')
    cells: dict  # '10%', '30%', '100%', '100%/10%' -> Cell over seeds
    n: int  # runs (seeds) of the arm



def build(runs: list[RunHistory]) -> list[PointsRow]:
    """One row per (group, arm) in the order they first appear in ``runs``."""
    order = list(dict.fromkeys((r.group, r.arm) for r in runs))
    rows = []
    for group, arm in order:
        mine = [r for r in runs if (r.group, r.arm) == (group, arm)]
        per_run = [run_points(r.history, r.steps) if r.steps else dict.fromkeys(COLUMNS, float("nan"))
                   for r in mine]
        windows = {f"{p}%": "/".join(dict.fromkeys("{}–{}".format(*window(r.steps, p)) for r in mine if r.steps))
                   for p in POINTS}
        rows.append(PointsRow(group, arm, windows, {c: t_interval([v[c] for v in per_run]) for c in COLUMNS},
                              len(mine)))
    return rows


def frame(rows: list[PointsRow]) -> pd.DataFrame:
    """The display table (Markdown and HTML): text cells, and the steps each point averages."""
    return pd.DataFrame([{"group": row.group, "arm": row.arm, **{c: fmt_general(row.cells[c]) for c in COLUMNS},
                          "window steps (10% · 30% · 100%)": " · ".join(row.windows[f"{p}%"] or "n/a"
                                                                        for p in POINTS),
                          "seeds": row.n} for row in rows])


def markdown(rows: list[PointsRow]) -> str:
    df = frame(rows)
    lines = ["**Policy entropy at 10%, 30% and 100% of training (our runs)**", "", CAPTION, "",
             "| " + " | ".join(map(str, df.columns)) + " |",
             "|" + "|".join("---" if c in ("group", "arm") or c.startswith("window") else "---:"
                           for c in df.columns) + "|"]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def csv(rows: list[PointsRow]) -> str:
    """Numbers: per point ``entropy_<p>pct`` (mean), ``..._ci95`` (half-width, empty for one seed), ``..._steps``
    (the window); ``ratio_100_10`` and its ``_ci95``; ``seeds``."""
    names = {f"{p}%": f"entropy_{p}pct" for p in POINTS} | {RATIO: "ratio_100_10"}
    records = []
    for row in rows:
        rec = {"group": row.group, "arm": row.arm}
        for col, name in names.items():
            cell: Cell = row.cells[col]
            rec[name] = cell.mean if cell.n else None
            rec[f"{name}_ci95"] = cell.half
            if col in row.windows:
                rec[f"{name}_steps"] = row.windows[col]
        rec["seeds"] = row.n
        records.append(rec)
    buf = io.StringIO()
    pd.DataFrame(records).to_csv(buf, index=False, float_format="%.6f", lineterminator="\n")
    return buf.getvalue()


def from_long(hist: pd.DataFrame, meta: pd.DataFrame) -> list[RunHistory]:
    """``hist``: long ``run_id, key, step, value`` (``analysis.load.histories``); ``meta``: ``run_id, group, arm,
    seed, steps`` in report order (steps: the run's ``train.steps`` param, None/NaN when absent)."""
    data = hist[hist.key == KEY]
    out = []
    for m in meta.itertuples(index=False):
        d = data[data.run_id == m.run_id]
        steps = None if m.steps is None or pd.isna(m.steps) else int(float(m.steps))
        out.append(RunHistory(m.group, m.arm, int(m.seed), steps,
                              dict(zip(d.step.astype(int).tolist(), d.value.astype(float).tolist()))))
    return out
