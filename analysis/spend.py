"""What each arm spent on generation, and (for a spec with ``table.baseline_group``) what each arm changes from one
row group to another at what cost: ``spend.md|csv`` and ``group_deltas.csv`` of ``analysis.report``.

Spend, from the counters every run logs (``TrackedGRPOTrainer``: every completion and token generated, counted
where generation happens, so iGRPO's drafts, the baselines' critiques and dynamic sampling's resampled rounds are
in them): completions generated per trained prompt over the whole run (``rollouts/generated_total`` /
(``train.steps`` x ``train.prompts_per_step``): 8 for every method at the default budget without resampling), the
run's generated tokens (``rollouts/generated_tokens_total``) and its training seconds. Runs that predate the
counters show ``n/a``.

Across groups: for each row group other than the baseline group and each arm run in both, Δ Avg of the arm against
the same arm in the baseline group (seed-paired t-interval, and the paired bootstrap of ``analysis.bootstrap`` over
problems and seeds), beside the ratio of their generated tokens: e.g. what dynamic sampling changes for iGRPO and
how many more tokens it generated for that. Likewise each ``table.pairs`` (arm, reference arm) within every group
that runs both: e.g. iGRPO's adaptive draft budget against its fixed one.
"""

from __future__ import annotations

import math

import pandas as pd

from analysis import bootstrap
from analysis.stats import Cell, t_interval
from analysis.tables import final_scores, run_suites
from experiments.spec import Spec, group_arms

PER_PROMPT, TOKENS, SECONDS = "rollouts/generated_total", "rollouts/generated_tokens_total", "perf/train_seconds"


def _metric(run: pd.Series, key: str) -> float:
    value = run.get(f"metrics.{key}")
    return float("nan") if value is None or pd.isna(value) else float(value)


def _per_prompt(run: pd.Series) -> float:
    steps, prompts = run.get("params.train.steps"), run.get("params.train.prompts_per_step")
    try:
        return _metric(run, PER_PROMPT) / (int(steps) * int(prompts))
    except (TypeError, ValueError):
        return float("nan")


def spend_frame(spec: Spec, scale: str, matched: dict, seeds: list[int]) -> pd.DataFrame:
    """One row per (group, arm): per-seed cells of generated completions per trained prompt, generated tokens and
    training seconds, and the tokens relative to the table's baseline arm in the same group."""
    rows = []
    for group in spec.scale(scale).groups:
        for arm in group_arms(spec, group):
            runs = [matched[(group.label, arm.label, seed)] for seed in seeds]
            rows.append({"group": group.label, "arm": arm.label,
                         "per_prompt": t_interval([_per_prompt(r) for r in runs]),
                         "tokens": t_interval([_metric(r, TOKENS) for r in runs]),
                         "seconds": t_interval([_metric(r, SECONDS) for r in runs])})
    frame = pd.DataFrame(rows)
    baseline = spec.scale(scale).table.baseline
    ratios = []
    for r in frame.itertuples(index=False):
        base = frame[(frame.group == r.group) & (frame.arm == baseline)]
        ratios.append(_ratio(r.tokens, base.iloc[0].tokens) if len(base) else float("nan"))
    frame["tokens_vs_baseline"] = ratios
    return frame


def _ratio(a: Cell, b: Cell) -> float:
    return a.mean / b.mean if a.n and b.n and b.mean else float("nan")


def _delta_row(client, matched: dict, seeds: list[int], per_seed: pd.DataFrame, suites: list[str],
               spend: pd.DataFrame, loaded: dict, side: tuple[str, str], reference: tuple[str, str]) -> dict:
    """Δ Avg of ``side`` (group, arm) against ``reference`` (group, arm): seed-paired t-interval, the paired
    bootstrap over problems and seeds, and the ratio of their generated tokens."""
    avg = per_seed.set_index(["group", "method", "seed"])["Avg"]
    cell = t_interval([avg[(*side, s)] - avg[(*reference, s)] for s in seeds])
    low = high = float("nan")
    note = ""
    try:
        m = final_scores(client, matched, seeds, side[0], side[1], loaded)
        b = final_scores(client, matched, seeds, reference[0], reference[1], loaded)
        if m is None or b is None:
            note = "no per-problem scores logged"
        else:
            iv = bootstrap.bootstrap_delta(m, b, run_suites(matched[(side[0], side[1], seeds[0])], suites))
            low, high = iv.low, iv.high
    except bootstrap.BootstrapInputError as err:
        note = str(err)
    cost = spend.set_index(["group", "arm"])["tokens"]
    return {"delta_avg": cell.mean, "t_half": cell.half, "seeds": cell.n, "boot_low": low, "boot_high": high,
            "boot_excludes_0": bool(not math.isnan(low) and (low > 0 or high < 0)), "boot_note": note,
            "tokens_ratio": _ratio(cost[side], cost[reference])}


def group_deltas(spec: Spec, scale: str, per_seed: pd.DataFrame, matched: dict, seeds: list[int],
                 suites: list[str], client, spend: pd.DataFrame) -> pd.DataFrame:
    """Each arm in each other group against the same arm in ``table.baseline_group``; empty without one.
    ``per_seed``: the main table's per-seed frame (group, method, seed, Avg); ``spend``: ``spend_frame``."""
    sc = spec.scale(scale)
    base_group = sc.table.baseline_group
    if base_group is None:
        return pd.DataFrame()
    base_arms = {a.label for g in sc.groups if g.label == base_group for a in group_arms(spec, g)}
    loaded: dict = {}
    rows = []
    for group in sc.groups:
        if group.label == base_group:
            continue
        for arm in group_arms(spec, group):
            if arm.label in base_arms:
                rows.append({"arm": arm.label, "group": group.label, "baseline_group": base_group,
                             **_delta_row(client, matched, seeds, per_seed, suites, spend, loaded,
                                          (group.label, arm.label), (base_group, arm.label))})
    return pd.DataFrame(rows)


def pair_deltas(spec: Spec, scale: str, per_seed: pd.DataFrame, matched: dict, seeds: list[int],
                suites: list[str], client, spend: pd.DataFrame) -> pd.DataFrame:
    """Each ``table.pairs`` (arm, reference arm) in every group that runs both; empty without pairs."""
    sc = spec.scale(scale)
    loaded: dict = {}
    rows = []
    for arm, reference in sc.table.pairs:
        for group in sc.groups:
            run = {a.label for a in group_arms(spec, group)}
            if arm in run and reference in run:
                rows.append({"arm": arm, "reference": reference, "group": group.label,
                             **_delta_row(client, matched, seeds, per_seed, suites, spend, loaded,
                                          (group.label, arm), (group.label, reference))})
    return pd.DataFrame(rows)


def _cell(c: Cell, digits: int = 1) -> str:
    if c.n == 0 or math.isnan(c.mean):
        return "n/a"
    half = None if c.half is None else 0.0 if math.isnan(c.half) else c.half  # nan: seeds all equal (sd 0)
    return f"{c.mean:,.{digits}f}" + (f" ± {half:,.{digits}f}" if half is not None else "")


def _x(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.2f}x"


def _pts(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:+.1f}"


SPEND_CAPTION = ("Generation spend over the whole run, mean ± 95% t-interval over seeds: completions generated per "
                 "trained prompt (drafts, critiques and dynamic sampling's resampled prompts included; the "
                 "matched budget is 8 without resampling), generated tokens, training seconds; tokens relative to "
                 "the baseline arm of the same group (ratio of seed means). n/a: the runs logged no spend counters.")


def _delta_cells(r) -> dict:
    t = "" if r.t_half is None or (isinstance(r.t_half, float) and math.isnan(r.t_half)) else f" ± {100 * r.t_half:.1f}"
    boot = (f"[{_pts(r.boot_low)}, {_pts(r.boot_high)}]{' *' if r.boot_excludes_0 else ''}"
            if not math.isnan(r.boot_low) else f"n/a ({r.boot_note})")
    return {"Δ Avg ± t (pts)": f"{_pts(r.delta_avg)}{t}", "paired bootstrap 95% CI": boot,
            "tokens": _x(r.tokens_ratio), "seeds": r.seeds}


def sections(spend: pd.DataFrame, deltas: pd.DataFrame, baseline: str | None, base_group: str | None,
             pairs: pd.DataFrame | None = None) -> list[tuple[str, str, pd.DataFrame]]:
    """(title, caption, table of display strings) for the markdown file and the HTML page."""
    shown = pd.DataFrame([{"group": r.group, "arm": r.arm, "generated per prompt": _cell(r.per_prompt, 2),
                           "generated tokens": _cell(r.tokens, 0), "train seconds": _cell(r.seconds, 0),
                           f"tokens vs {baseline or '-'}": _x(r.tokens_vs_baseline)}
                          for r in spend.itertuples(index=False)])
    out = [("Generation spend", SPEND_CAPTION, shown)]
    if base_group is not None and len(deltas):
        rows = [{"arm": r.arm, "group": f"{r.group} − {r.baseline_group}", **_delta_cells(r)}
                for r in deltas.itertuples(index=False)]
        caption = (f"Δ Avg in points (final step, mean over suites per seed, seed-paired) of an arm against the same "
                   f"arm in {base_group}; ± : 95% t-interval; {bootstrap.METHOD} * : the bootstrap interval excludes "
                   "0. Tokens: the ratio of their generated tokens.")
        out.append((f"Each arm across groups, vs {base_group}", caption, pd.DataFrame(rows)))
    if pairs is not None and len(pairs):
        rows = [{"group": r.group, "arm − reference": f"{r.arm} − {r.reference}", **_delta_cells(r)}
                for r in pairs.itertuples(index=False)]
        caption = ("Δ Avg in points (final step, mean over suites per seed, seed-paired) of an arm against another "
                   f"arm of the same group (the spec's table.pairs); ± : 95% t-interval; {bootstrap.METHOD} * : the "
                   "bootstrap interval excludes 0. Tokens: the ratio of their generated tokens.")
        out.append(("Arm against arm", caption, pd.DataFrame(rows)))
    return out


def markdown(parts: list[tuple[str, str, pd.DataFrame]]) -> str:
    lines: list[str] = []
    for title, caption, frame in parts:
        lines += [*([""] if lines else []), f"# {title}", "", caption, "",
                  "| " + " | ".join(frame.columns) + " |", "|" + "|".join("---" for _ in frame.columns) + "|"]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def csv_frame(spend: pd.DataFrame) -> pd.DataFrame:
    """``spend_frame`` with each cell as mean / half / n columns (CSV)."""
    out = spend[["group", "arm"]].copy()
    for col in ("per_prompt", "tokens", "seconds"):
        out[f"{col}_mean"] = [c.mean for c in spend[col]]
        out[f"{col}_half"] = [c.half for c in spend[col]]
        out[f"{col}_n"] = [c.n for c in spend[col]]
    out["tokens_vs_baseline"] = spend["tokens_vs_baseline"]
    return out
