"""Per-step training curves (matplotlib, Agg backend), PNG and SVG, byte-identical across re-runs.

Each figure plots one or more per-step metrics against the global step, one colour per arm, one panel per
row group; the line is the mean over seeds and the band spans min..max over seeds (shown when n >= 2).
``entropy`` is the paper's Figure 3 (mean per-token entropy, nats, of the completions that get gradient).
Determinism: a fixed ``svg.hashsalt``, and no date / software stamps in the files' metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from experiments.spec import FIGURES as SPEC_FIGURES  # noqa: E402

_RC = {"svg.hashsalt": "igrpo-report", "svg.fonttype": "path", "font.size": 9, "axes.grid": True,
       "grid.alpha": 0.3, "figure.dpi": 100}
PNG_META = {"Software": None}
SVG_META = {"Date": None, "Creator": None}


@dataclass(frozen=True)
class FigureDef:
    title: str
    ylabel: str
    series: tuple  # (metric key, series label or "", line style)


FIGURES = {
    "entropy": FigureDef("Policy entropy during training (paper Figure 3)", "mean token entropy (nats)",
                         (("train/entropy", "", "-"),)),
    "reward": FigureDef("Training reward of the trained completions", "reward", (("train/reward", "", "-"),)),
    "draft_vs_refinement": FigureDef("Stage 1 drafts vs Stage 2 refinements (GRPO: its group)", "reward",
                                     (("train/reward", "trained completions", "-"),
                                      ("draft/best_reward_mean", "selected draft", "--"),
                                      ("draft/reward_mean", "mean draft", ":"))),
    "completion_length": FigureDef("Completion length", "tokens", (("train/completion_length", "", "-"),)),
    "zero_std": FigureDef("Groups with zero reward variance (no advantage signal)", "fraction of groups",
                          (("train/frac_groups_zero_std", "Stage 2 / GRPO", "-"),
                           ("draft/frac_groups_zero_std", "Stage 1 drafts", "--"))),
    "kl": FigureDef("KL to the reference policy", "KL (k3)", (("train/kl", "", "-"),)),
}
assert set(FIGURES) == set(SPEC_FIGURES), "experiments.spec.FIGURES and analysis.figures.FIGURES disagree"


def figure_metrics(names) -> list[str]:
    return sorted({m for n in names for m, _, _ in FIGURES[n].series})


def plot(name: str, hist: pd.DataFrame, meta: pd.DataFrame, arms: list[str], groups: list[str],
         out_dir: Path) -> tuple[Path, Path] | None:
    """Draw figure ``name`` into ``out_dir/<name>.png|svg``; None when no run logged any of its metrics.

    ``hist``: long ``run_id, key, step, value``; ``meta``: ``run_id, group, arm, seed`` of the runs to use.
    """
    fdef = FIGURES[name]
    data = hist.merge(meta, on="run_id")
    data = data[data.key.isin([m for m, _, _ in fdef.series])]
    if data.empty:
        return None
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(1, len(groups), figsize=(5.6 * len(groups) + 0.6, 3.9), sharey=True,
                                 squeeze=False)
        colours = plt.get_cmap("tab10").colors
        nseeds = meta.groupby(["group", "arm"]).seed.nunique()
        for ax, group in zip(axes[0], groups):
            for i, arm in enumerate(arms):
                for metric, label, style in fdef.series:
                    d = data[(data.group == group) & (data.arm == arm) & (data.key == metric)]
                    if d.empty:
                        continue
                    grid = d.pivot_table(index="step", columns="seed", values="value", aggfunc="last").sort_index()
                    steps = grid.index.to_numpy()
                    text = arm + (f" · {label}" if label else "")
                    ax.plot(steps, grid.mean(axis=1).to_numpy(), linestyle=style, color=colours[i % 10],
                            linewidth=1.4, label=text)
                    if grid.shape[1] > 1:
                        ax.fill_between(steps, grid.min(axis=1).to_numpy(), grid.max(axis=1).to_numpy(),
                                        color=colours[i % 10], alpha=0.18, linewidth=0)
            if len(groups) > 1 or group != "default":
                ax.set_title(group)
            ax.set_xlabel("training step")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=7, loc="best")
        axes[0][0].set_ylabel(fdef.ylabel)
        seeds = sorted(set(nseeds.tolist()))
        fig.suptitle(f"{fdef.title}\nline: mean over {'/'.join(map(str, seeds))} seed(s); band: min–max over seeds",
                     fontsize=9)
        fig.tight_layout()
        png, svg = save_figure(fig, out_dir, name)
    return png, svg


def save_figure(fig, out_dir: Path, name: str) -> tuple[Path, Path]:
    """``<out_dir>/<name>.png|svg`` without creation dates or versions (byte-identical on a rerun), then closed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    fig.savefig(png, format="png", dpi=110, metadata=PNG_META)
    fig.savefig(svg, format="svg", metadata=SVG_META)
    plt.close(fig)
    return png, svg
