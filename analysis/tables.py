"""Tables in the paper's layout, from logged metrics only.

Rows: per row group (a base model, an optimizer, ...), an optional ``base`` row (the step-0 eval that
every run logs before training; taken from the baseline arm's run of each seed), then one row per arm.
Columns: one per eval suite, with the spec's metric for that suite (``avg_at_{k}`` with k the run's
``eval.samples_per_problem`` unless the spec names another, e.g. ``avg_at_64`` for AIME), then Avg,
recomputed per seed as the mean of that seed's suite values (the logged ``eval/mean/...`` is never
used), then Δ Avg vs the baseline arm, the seed-paired difference (same seed, same group), then the
seed count. Every cell aggregates seeds as mean ± 95% t-interval (``analysis.stats``). Beside it, each Δ gets a
paired bootstrap 95% interval over eval problems and seeds (``analysis.bootstrap``) from the runs' logged
per-problem scores; ``n/a`` (with the reason in the caption) for runs that logged none.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import pandas as pd

from analysis import bootstrap
from analysis.load import per_problem, values_at_step
from analysis.stats import Cell, mean_of_columns, t_interval
from experiments.spec import Spec, TableLayout, group_arms

AVG = "Avg"
BOOT = "Δ paired bootstrap 95% CI"  # column title, beside "Δ Avg vs <baseline>"


@dataclass
class Row:
    group: str
    method: str
    is_base: bool
    cells: dict  # column (suite or Avg) -> Cell
    delta: Cell | None  # Δ Avg vs the baseline arm; None for the base row and the baseline itself
    n: int  # seeds in this row
    boot: bootstrap.Interval | None = None  # paired bootstrap CI of Δ Avg; None when not computable (see caption)


@dataclass
class PaperTable:
    title: str
    caption: str
    suites: list[str]
    labels: dict  # suite -> column title
    baseline: str | None
    percent: bool
    rows: list[Row]
    per_seed: pd.DataFrame  # group, method, seed, run_id, step, <suite>..., Avg (raw fractions)

    @property
    def columns(self) -> list[str]:
        return [*self.suites, AVG]


@dataclass
class SummaryTable:
    metrics: list[str]
    rows: list[tuple[str, str, dict]]  # (group, arm, {metric: Cell of its final logged value})


def resolve_suites(layout: TableLayout, runs: pd.DataFrame) -> list[str]:
    """The spec's suite order, else the runs' ``task.eval_suites`` param (embedded tasks), else the suites of
    their eval config (``eval.suites.<suite>.*`` params), else the suites in their logged eval keys."""
    if layout.suites:
        return list(layout.suites)
    union: list[str] = []  # row groups may evaluate different suites (the regime spec: one level per group)
    for text in runs.get("params.task.eval_suites", pd.Series(dtype=object)).dropna():
        suites = own_suites(text)
        if suites is None:
            break
        union += [s for s in suites if s not in union]
    if union:
        return union
    for prefix in ("params.eval.suites.", "metrics.eval/"):
        sep = "." if prefix.startswith("params") else "/"
        found = {c[len(prefix):].split(sep)[0] for c in runs.columns if c.startswith(prefix)}
        if found - {"mean"}:
            return sorted(found - {"mean"})
    return []


def own_suites(text) -> list[str] | None:
    """A run's ``task.eval_suites`` param as a list; None when it is absent or not a list."""
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return None
    try:
        suites = [str(s) for s in ast.literal_eval(str(text))]
    except (ValueError, SyntaxError, TypeError):
        return None
    return suites or None


def run_suites(run: pd.Series, suites: list[str]) -> list[str]:
    """The columns of ``suites`` this run evaluated (its own ``task.eval_suites``), else all of them: its Avg is
    their mean, so a group that evaluates other suites than another group gets its own Avg, never a partial one."""
    own = own_suites(run.get("params.task.eval_suites"))
    chosen = [s for s in suites if own is not None and s in own]
    return chosen or list(suites)


def metric_key(layout: TableLayout, suite: str, run: pd.Series) -> str | None:
    """``eval/<suite>/<metric>`` for this run. ``{k}`` in the metric is the suite's own sample count
    (``eval.suites.<suite>.samples``, e.g. 64 on AIME) or else ``eval.samples_per_problem``; None when the
    run logged neither."""
    metric = layout.suite_metrics.get(suite, layout.metric)
    if "{k}" in metric:
        k = run.get(f"params.eval.suites.{suite}.samples")
        if k is None or pd.isna(k) or str(k) in ("None", "null"):
            k = run.get("params.eval.samples_per_problem")
        if k is None or pd.isna(k):
            return None
        metric = metric.format(k=k)
    return f"eval/{suite}/{metric}"


def _final(run: pd.Series, key: str | None) -> float:
    value = run.get(f"metrics.{key}") if key else None
    return float("nan") if value is None or pd.isna(value) else float(value)


def build_table(spec: Spec, scale: str, matched: dict, seeds: list[int], client) -> PaperTable:
    """``matched``: (group, arm, seed) -> the run's row from ``load_runs``; every key must be present."""
    sc = spec.scale(scale)
    layout = sc.table
    runs = pd.DataFrame(list(matched.values()))
    suites = resolve_suites(layout, runs)
    baseline = layout.baseline or spec.arms[0].label
    records = []
    for group in sc.groups:
        for seed in seeds:
            if layout.base_row:
                run = matched[(group.label, baseline, seed)]
                keys = {s: metric_key(layout, s, run) for s in suites}
                base = values_at_step(client, run["run_id"], [k for k in keys.values() if k], step=0)
                records.append(_record(group.label, "base", seed, run, 0,
                                       {s: base.get(k, float("nan")) if k else float("nan")
                                        for s, k in keys.items()}))
            for arm in group_arms(spec, group):
                run = matched[(group.label, arm.label, seed)]
                step = run.get("params.train.steps")
                records.append(_record(group.label, arm.label, seed, run, step,
                                       {s: _final(run, metric_key(layout, s, run)) for s in suites}))
    per_seed = pd.DataFrame(records)
    boots, why_not = _bootstraps(spec, scale, matched, seeds, suites, client) if layout.baseline else ({}, [])
    rows = []
    for group in sc.groups:
        g = per_seed[per_seed.group == group.label]
        methods = (["base"] if layout.base_row else []) + [a.label for a in group_arms(spec, group)]
        base_avg = g[g.method == baseline].set_index("seed")[AVG]
        for method in methods:
            m = g[g.method == method]
            cells = {c: t_interval(m[c]) for c in [*suites, AVG]}
            delta = None
            if layout.baseline and method not in ("base", baseline):
                paired = m.set_index("seed")[AVG] - base_avg.reindex(m.seed).values
                delta = t_interval(paired)
            rows.append(Row(group.label, method, method == "base", cells, delta, len(m),
                            boots.get((group.label, method))))
    what = "pass@1 (%)" if layout.percent else "value"
    caption = (f"{what} per suite, mean ± 95% t-interval over seeds (seeds column: n; no interval for n = 1). "
               "Avg is recomputed per seed from the suite columns."
               + (" The base row is the step-0 evaluation before training." if layout.base_row else "")
               + (f" Δ Avg: seed-paired difference to {layout.baseline}. {bootstrap.METHOD}" if layout.baseline
                  else "")
               + (f" n/a: {'; '.join(why_not)}." if why_not else ""))
    labels = {s: layout.suite_labels.get(s, s) for s in suites}
    return PaperTable(spec.title, caption, suites, labels, layout.baseline, layout.percent, rows, per_seed)



def final_scores(client, matched: dict, seeds, group: str, arm: str, loaded: dict) -> bootstrap.MethodScores | None:
    """One arm's per-problem scores at the end of training, per seed (the runs' ``eval/per_problem_step<N>.json``);
    None when no seed's run has them. ``loaded``: run id -> scores, a cache shared by the caller's lookups."""
    per_seed = {}
    for seed in seeds:
        run = matched[(group, arm, seed)]
        steps = run.get("params.train.steps")
        if client is None or steps is None or pd.isna(steps):
            continue
        if run["run_id"] not in loaded:
            loaded[run["run_id"]] = per_problem(client, run["run_id"], int(steps))
        if loaded[run["run_id"]] is not None:
            per_seed[seed] = loaded[run["run_id"]]
    return bootstrap.from_runs(arm, per_seed) if per_seed else None

def _bootstraps(spec: Spec, scale: str, matched: dict, seeds: list[int], suites: list[str], client
                ) -> tuple[dict, list[str]]:
    """(group, arm) -> paired bootstrap Interval of its Δ Avg vs the baseline, from the final evaluation's logged
    per-problem scores; and the distinct reasons why some arm has none."""
    sc = spec.scale(scale)
    layout = sc.table
    metrics = [layout.suite_metrics.get(s, layout.metric) for s in suites]
    if not suites or not all(m.startswith("avg_at_") for m in metrics):
        return {}, [f"the paired bootstrap needs avg@k columns (table metrics: {', '.join(sorted(set(metrics)))})"]
    out, why_not, loaded = {}, [], {}

    def scores_of(group: str, arm: str) -> bootstrap.MethodScores | None:
        return final_scores(client, matched, seeds, group, arm, loaded)

    for group in sc.groups:
        arms = [a.label for a in group_arms(spec, group) if a.label != layout.baseline]
        if not arms:
            continue
        for arm in arms:
            try:
                base, method = scores_of(group.label, layout.baseline), scores_of(group.label, arm)
                if base is None or method is None:
                    why_not.append("runs that logged no per-problem eval scores (eval/per_problem_step<N>.json)")
                    continue
                own = run_suites(matched[(group.label, arm, seeds[0])], suites)
                out[(group.label, arm)] = bootstrap.bootstrap_delta(method, base, own)
            except bootstrap.BootstrapInputError as err:
                why_not.append(str(err))
    return out, list(dict.fromkeys(why_not))


def _record(group: str, method: str, seed: int, run: pd.Series, step, values: dict) -> dict:
    own = run_suites(run, list(values))
    return {"group": group, "method": method, "seed": seed, "run_id": run["run_id"],
            "step": None if step is None or pd.isna(step) else int(step), **values,
            AVG: mean_of_columns(values[s] for s in own)}


def build_summary(spec: Spec, scale: str, matched: dict, seeds: list[int]) -> SummaryTable:
    """Final logged value of each of the spec's ``summary_metrics`` (training dynamics), per arm."""
    rows = []
    for group in spec.scale(scale).groups:
        for arm in group_arms(spec, group):
            runs = [matched[(group.label, arm.label, seed)] for seed in seeds]
            rows.append((group.label, arm.label,
                         {m: t_interval([_final(r, m) for r in runs]) for m in spec.summary_metrics}))
    return SummaryTable(list(spec.summary_metrics), rows)
