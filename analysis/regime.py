"""The `regime` report (issue #14): ΔAvg of iGRPO vs GRPO per cell (level x budget x model size), as a table and a
heatmap, each Δ with a seed t-interval and a paired bootstrap interval (``analysis.bootstrap``).

A cell is one iGRPO arm of a row group with its two GRPO partners in the same group, read from the arms' own
overrides (only arms that set ``rollout_budget=`` explicitly count): iGRPO-B (``rollout_budget=B``,
``variant.num_drafts=N``: it trains on B - N completions per prompt) is compared with GRPO at the same budget
(``variant=grpo rollout_budget=B``: same completions generated per prompt per step) and with GRPO at iGRPO's
trained count (``rollout_budget=B-N``: same completions trained on). A spec without such arms has no cells and
gets no regime output. The cell's model and level come from the group's ``model=`` and ``task.train_levels=``
overrides (else the group label and ``-``). Every number is single-shot avg@k on the group's eval suites (Avg:
their mean per seed, as the main table), final step, seeds paired by value, problems by id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis import bootstrap
from analysis.stats import Cell, t_interval
from analysis.tables import final_scores, run_suites
from experiments.spec import Arm, Group, Spec, group_arms

CONDITIONS = {
    "GRPO": "same budget: both generate B completions per prompt per step; GRPO trains on all B, iGRPO on B - N "
            "refinements conditioned on its best of N drafts",
    "GRPO-half": "same trained count: GRPO generates and trains on B - N completions per prompt, as many as "
                 "iGRPO trains on (iGRPO also generates N drafts)",
}


@dataclass(frozen=True)
class RegimeCell:
    group: str
    model: str
    level: str
    budget: int
    igrpo: str  # arm labels
    grpo: str
    grpo_half: str


def _overrides(items) -> dict[str, str]:
    out: dict[str, str] = {}
    for o in items:
        if "=" in o and o[:1] not in "+~":
            key, value = o.split("=", 1)
            out[key] = value
    return out


def arm_budget(arm: Arm) -> tuple[str, int, int] | None:
    """(variant, completions generated per prompt, completions trained per prompt), or None when the arm does not
    set its budget explicitly (``rollout_budget=``, and for iGRPO ``variant.num_drafts=``)."""
    o = _overrides(arm.overrides)
    variant = o.get("variant")
    try:
        budget = int(o["rollout_budget"])
        drafts = int(o["variant.num_drafts"]) if variant == "igrpo" else 0
    except (KeyError, ValueError):
        return None
    if variant not in ("grpo", "igrpo"):
        return None
    return variant, budget, budget - drafts


def group_axes(group: Group) -> tuple[str, str]:
    """(model, level) of a row group from its overrides; the label and '-' when it sets neither."""
    o = _overrides(group.overrides)
    model = o.get("model", group.label)
    level = o.get("task.train_levels", "-").strip("[] ").replace(" ", "") or "-"
    return model, level


def regime_cells(spec: Spec, scale: str) -> list[RegimeCell]:
    """Every (group, iGRPO arm) whose two GRPO partners run in the same group, in the spec's order."""
    cells = []
    for group in spec.scale(scale).groups:
        arms = {a.label: arm_budget(a) for a in group_arms(spec, group)}
        grpo = {b: label for label, v in arms.items() if v and v[0] == "grpo" for b in (v[1],)}
        model, level = group_axes(group)
        for label, v in arms.items():
            if v and v[0] == "igrpo" and v[1] in grpo and v[2] in grpo:
                cells.append(RegimeCell(group.label, model, level, v[1], label, grpo[v[1]], grpo[v[2]]))
    return cells


def _per_seed_avg(per_seed: pd.DataFrame, group: str, method: str) -> pd.Series:
    rows = per_seed[(per_seed.group == group) & (per_seed.method == method)]
    return rows.set_index("seed")["Avg"]


def build(cells: list[RegimeCell], per_seed: pd.DataFrame, matched: dict, seeds: list[int], suites: list[str],
          client) -> pd.DataFrame:
    """One row per (cell, comparison): Δ Avg (fractions) with its seed t-interval and paired bootstrap interval.
    ``per_seed``: the main table's per-seed frame (group, method, seed, Avg); ``matched``: (group, arm, seed) ->
    run row, for the per-problem scores."""
    loaded: dict = {}

    def scores(group: str, arm: str):
        return final_scores(client, matched, seeds, group, arm, loaded)

    rows = []
    for c in cells:
        method = _per_seed_avg(per_seed, c.group, c.igrpo)
        for role, base_arm in (("GRPO", c.grpo), ("GRPO-half", c.grpo_half)):
            base = _per_seed_avg(per_seed, c.group, base_arm)
            paired = (method - base.reindex(method.index)).dropna()
            cell: Cell = t_interval(paired.tolist())
            low = high = float("nan")
            boot_note = ""
            try:
                m, b = scores(c.group, c.igrpo), scores(c.group, base_arm)
                if m is None or b is None:
                    boot_note = "no per-problem scores logged"
                else:
                    iv = bootstrap.bootstrap_delta(m, b, run_suites(matched[(c.group, c.igrpo, seeds[0])], suites))
                    low, high = iv.low, iv.high
            except bootstrap.BootstrapInputError as err:
                boot_note = str(err)
            rows.append({"model": c.model, "level": c.level, "budget": c.budget, "group": c.group,
                         "comparison": role, "method": c.igrpo, "baseline": base_arm,
                         "delta_avg": cell.mean, "t_half": cell.half, "seeds": cell.n,
                         "boot_low": low, "boot_high": high,
                         "boot_excludes_0": bool(not math.isnan(low) and (low > 0 or high < 0)),
                         "boot_note": boot_note})
    return pd.DataFrame(rows)


def caption(k_metric: str) -> str:
    return (f"ΔAvg in points of {k_metric} (single-shot: no draft shown at evaluation), final step, mean over suites "
            "of the group's level, per seed, then mean over seeds. vs GRPO: " + CONDITIONS["GRPO"] + ". vs GRPO-half: "
            + CONDITIONS["GRPO-half"] + ". ± : 95% t-interval over seed-paired differences. "
            + bootstrap.METHOD + " * : the bootstrap interval excludes 0.")


def _pts(x: float, signed: bool = True) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:{'+' if signed else ''}.1f}"


def markdown(df: pd.DataFrame, text: str) -> str:
    lines = ["# Regime: ΔAvg of iGRPO per cell", "", text, "",
             "| model | level | budget | Δ vs | Δ Avg ± t (pts) | paired bootstrap 95% CI | seeds |",
             "|---|---|---|---|---|---|---|"]
    for r in df.itertuples(index=False):
        t = "" if r.t_half is None or (isinstance(r.t_half, float) and math.isnan(r.t_half)) else \
            f" ± {100 * r.t_half:.1f}"
        boot = (f"[{_pts(r.boot_low)}, {_pts(r.boot_high)}]{' *' if r.boot_excludes_0 else ''}"
                if not math.isnan(r.boot_low) else f"n/a ({r.boot_note})")
        lines.append(f"| {r.model} | {r.level} | {r.budget} | {r.method} − {r.baseline} ({r.comparison}) | "
                     f"{_pts(r.delta_avg)}{t} | {boot} | {r.seeds} |")
    return "\n".join(lines) + "\n"


def heatmap(df: pd.DataFrame, out_dir: Path, title_metric: str) -> tuple[Path, Path]:
    """Rows of panels: vs GRPO, vs GRPO-half; one panel per model; cells = level x budget, colour = ΔAvg (points),
    text = Δ ± t and the bootstrap interval; a thick border and * where the bootstrap interval excludes 0; blank
    (grey, "dropped") where the grid has no cell."""
    from analysis.figures import _RC, plt, save_figure

    models = list(dict.fromkeys(df.model))
    # a row per level; per level and iGRPO arm when several iGRPO arms share a cell (e.g. fixed and adaptive drafts)
    shared = df.duplicated(["model", "level", "budget", "comparison"], keep=False).any()
    df = df.assign(level=[f"{r.level} · {r.method}" if shared else r.level for r in df.itertuples(index=False)])
    levels = list(dict.fromkeys(df.level))
    budgets = sorted(set(int(b) for b in df.budget))
    roles = ["GRPO", "GRPO-half"]
    vmax = max(5.0, float((df.delta_avg.abs() * 100).max()) if df.delta_avg.notna().any() else 5.0)
    with plt.rc_context({**_RC, "axes.grid": False}):
        # at least 7.5 in wide: the two-line title must fit with one model column
        fig, axes = plt.subplots(len(roles), len(models), figsize=(max(7.5, 1.9 * len(budgets) * len(models) + 1.8),
                                                                   1.25 * len(levels) * len(roles) + 1.6),
                                 squeeze=False)
        image = None
        for i, role in enumerate(roles):
            for j, model in enumerate(models):
                ax = axes[i][j]
                grid = [[float("nan")] * len(budgets) for _ in levels]
                for r in df[(df.comparison == role) & (df.model == model)].itertuples(index=False):
                    grid[levels.index(r.level)][budgets.index(int(r.budget))] = 100 * r.delta_avg
                image = ax.imshow(grid, cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto")
                ax.set_facecolor("0.85")
                for r in df[(df.comparison == role) & (df.model == model)].itertuples(index=False):
                    y, x = levels.index(r.level), budgets.index(int(r.budget))
                    t = "" if r.t_half is None or math.isnan(r.t_half) else f" ± {100 * r.t_half:.1f}"
                    boot = f"[{_pts(r.boot_low)}, {_pts(r.boot_high)}]" if not math.isnan(r.boot_low) else "boot n/a"
                    dark = not math.isnan(r.delta_avg) and abs(100 * r.delta_avg) > 0.6 * vmax
                    ax.text(x, y, f"{_pts(r.delta_avg)}{t}\n{boot}{' *' if r.boot_excludes_0 else ''}",
                            ha="center", va="center", fontsize=7, color="white" if dark else "black")
                    if r.boot_excludes_0:
                        ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, linewidth=2.5,
                                                   edgecolor="black"))
                for y, level in enumerate(levels):
                    for x, budget in enumerate(budgets):
                        if math.isnan(grid[y][x]):
                            ax.text(x, y, "dropped", ha="center", va="center", fontsize=7, color="0.4")
                ax.set_xticks(range(len(budgets)), [f"budget {b}" for b in budgets])
                ax.set_yticks(range(len(levels)), levels)
                ax.set_title(f"{model}: iGRPO − {role}", fontsize=8)
        fig.colorbar(image, ax=axes, shrink=0.8, label="ΔAvg (points)")
        fig.suptitle(f"ΔAvg of iGRPO ({title_metric}, single-shot) per level x budget. Row 1 vs GRPO at the same "
                     "budget; row 2 vs GRPO at iGRPO's trained count.\nText: Δ ± seed t-interval, [paired bootstrap "
                     "95% CI]; * and border: bootstrap CI excludes 0", fontsize=8)
        png, svg = save_figure(fig, out_dir, "regime_heatmap")
    return png, svg
