"""The tables, figures and HTML page of ``analysis.sweep_report`` (matplotlib, Agg; byte-identical across re-runs).

``trials_csv`` / ``display_frame`` / ``markdown_table``: the trials table, machine-readable and as text.

``history``: one panel per objective, its value per trial in trial order (Pareto-front trials highlighted when
there are several objectives), a best-so-far step line, failed (and still running) trials marked along the panel's
bottom edge. ``pareto``: one panel per pair of objectives, every complete trial, the front highlighted and labelled
by trial number. ``html``: one self-contained page, figures as base64 PNG data URIs (as ``analysis.html_report``).
"""

from __future__ import annotations

import html as html_lib
import io
import math
import re
from itertools import combinations
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from analysis.figures import save_figure  # noqa: E402
from analysis.html_report import _CSS, _img  # noqa: E402
from analysis.render import frame_html  # noqa: E402
from analysis.sweep_study import COMPLETE, FAIL, RUNNING, Study, best_so_far, finite_number  # noqa: E402

_RC = {"svg.hashsalt": "igrpo-sweep-report", "svg.fonttype": "path", "font.size": 9, "axes.grid": True,
       "grid.alpha": 0.3, "figure.dpi": 100}
_COMPLETE, _FRONT, _BEST, _FAIL = "#1f77b4", "#d62728", "#ff7f0e", "#7f7f7f"


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    number = finite_number(value) if isinstance(value, str) and re.fullmatch(r"[-+.\deE]+", value) else None
    if number is not None and not float(number).is_integer():
        return f"{number:.4g}"
    return str(value)


def display_frame(study: Study) -> pd.DataFrame:
    """The trials table as text (values to 6 significant digits, learning rates to 4), for Markdown and HTML."""
    df = study.trials.drop(columns=["run_id"])
    return pd.DataFrame([[_cell(v) for v in row] for row in df.itertuples(index=False)], columns=df.columns)


def trials_csv(study: Study) -> str:
    """Machine-readable: params as MLflow logged them, objective values to 10 significant digits."""
    buf = io.StringIO()
    study.trials.to_csv(buf, index=False, float_format="%.10g", lineterminator="\n")
    return buf.getvalue()


def markdown_table(df: pd.DataFrame) -> str:
    def esc(text) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(map(esc, df.columns)) + " |", "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def axis_label(study: Study, i: int) -> str:
    return f"{study.objectives[i]} ({study.directions[i]})"


def history(study: Study, out_dir: Path) -> tuple[Path, Path, str]:
    """``out_dir/history.png|svg`` and its caption."""
    t = study.trials
    n = len(study.objectives)
    front = set(study.front())
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(n, 1, figsize=(7.2, 2.9 * n + 0.5), sharex=True, squeeze=False)
        for i, (ax, objective, direction) in enumerate(zip(axes[:, 0], study.objectives, study.directions)):
            done = t[t.state == COMPLETE]
            on = done[done.trial.isin(front)]
            off = done[~done.trial.isin(front)]
            label = "complete trial" + (" (off the Pareto front)" if study.multi else "")
            ax.scatter(off.trial, off[objective].astype(float), s=22, color=_COMPLETE, zorder=3, label=label)
            if study.multi and not on.empty:
                ax.scatter(on.trial, on[objective].astype(float), s=30, color=_FRONT, zorder=4,
                           label="on the Pareto front")
            best = best_so_far([None if v is None or pd.isna(v) else float(v) for v in t[objective]], direction)
            steps = [(k, b) for k, b in zip(t.trial, best) if b is not None]
            if steps:
                xs, ys = zip(*steps)
                ax.step(list(xs) + [len(t) - 0.5], list(ys) + [ys[-1]], where="post", color=_BEST, linewidth=1.3,
                        label=f"best so far ({'lowest' if direction == 'minimize' else 'highest'})", zorder=2)
            for state, marker in ((FAIL, "x"), (RUNNING, "|")):
                bad = t[t.state == state]
                if not bad.empty:  # no value: marked on the bottom edge
                    ax.scatter(bad.trial, [0.03] * len(bad), marker=marker, s=40, color=_FAIL, zorder=3,
                               transform=ax.get_xaxis_transform(), clip_on=False,
                               label=f"{'failed' if state == FAIL else 'running'} trial (no value)")
            ax.set_ylabel(axis_label(study, i), fontsize=8)
            ax.legend(fontsize=7, loc="best")
        ax = axes[-1, 0]
        ax.set_xlabel("trial")
        ax.set_xlim(-0.5, max(len(t), 1) - 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.suptitle(f"Optimization history of study {study.ref.name} ({len(t)} trials)", fontsize=9)
        fig.tight_layout()
        png, svg = save_figure(fig, out_dir, "history")
    caption = ("Each objective per trial, in trial order; the step line is the best value so far of that objective"
               + (" alone" if study.multi else "") + "; failed trials (no value) are marked x on the bottom edge.")
    return png, svg, caption


def _front_labels(points: pd.DataFrame, x: str, y: str) -> list[tuple[float, float, str]]:
    """One label per distinct point of the front: '#3' or '#0,#2' (trials with the same values)."""
    labels: dict[tuple[float, float], list[int]] = {}
    for trial, vx, vy in zip(points.trial, points[x].astype(float), points[y].astype(float)):
        labels.setdefault((vx, vy), []).append(int(trial))
    return [(vx, vy, ",".join(f"#{n}" for n in sorted(ns))) for (vx, vy), ns in sorted(labels.items())]


def pareto(study: Study, out_dir: Path) -> tuple[Path, Path, str]:
    """``out_dir/pareto.png|svg`` (one panel per pair of objectives) and its caption."""
    done = study.complete
    on = done[done.trial.isin(study.front())]
    pairs = list(combinations(range(len(study.objectives)), 2))
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(1, len(pairs), figsize=(6.4 * len(pairs), 4.6), squeeze=False)
        for ax, (i, j) in zip(axes[0], pairs):
            x, y = study.objectives[i], study.objectives[j]
            ax.scatter(done[x].astype(float), done[y].astype(float), s=22, color=_COMPLETE, zorder=3,
                       label=f"complete trial ({len(done)})")
            front = on.sort_values([x, y], kind="stable")
            ax.scatter(front[x].astype(float), front[y].astype(float), s=40, color=_FRONT, zorder=4,
                       label=f"Pareto front ({len(front)})")
            for k, (vx, vy, text) in enumerate(_front_labels(front, x, y)):  # neighbours above / below
                ax.annotate(text, (vx, vy), xytext=(5, 5 if k % 2 == 0 else -12), textcoords="offset points",
                            fontsize=7, color=_FRONT)
            ax.set_xlabel(axis_label(study, i), fontsize=8)
            ax.set_ylabel(axis_label(study, j), fontsize=8)
            ax.legend(fontsize=7, loc="best")
        fig.suptitle(f"Pareto front of study {study.ref.name}: {len(on)} of {len(done)} complete trials",
                     fontsize=9)
        fig.tight_layout()
        png, svg = save_figure(fig, out_dir, "pareto")
    caption = ("Every complete trial; the trials no other trial beats in every objective (the Pareto front, over "
               "all objectives) in red, labelled by trial number.")
    return png, svg, caption


def html(study: Study, summary: list[str], figures: list[tuple[str, Path, Path, str]], table: pd.DataFrame) -> str:
    """The self-contained page: summary, figures (base64 PNG), the trials table. No timestamps."""
    e = html_lib.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>Optuna study {e(study.ref.name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>Optuna study {e(study.ref.name)}</h1>"]
    parts += [f"<p>{e(line)}</p>" for line in summary]
    parts.append('<p class="note">Everything below is read from MLflow (the study\'s parent run and its trial '
                 "runs), not from the Optuna storage. A trial with no MLflow run failed before its run started.</p>")
    parts.append("<h2>Figures</h2>")
    for name, png, _svg, caption in figures:
        parts.append(f'<figure id="fig-{e(name)}">{_img(png, name)}<figcaption>{e(caption)}</figcaption></figure>')
    parts += ["<h2>Trials</h2>", frame_html(table), "</body></html>"]
    return "\n".join(parts) + "\n"
