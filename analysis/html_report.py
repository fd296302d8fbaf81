"""One self-contained HTML page per experiment: tables inline, figures as base64 PNG data URIs, no
external assets, scripts or timestamps (the same inputs give the same bytes)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from analysis import entropy_points as points
from analysis.render import frame_html, summary_frame, table_html

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;
padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
.tbl{border-collapse:collapse;font-size:.9em;margin:.6em 0}
.tbl th,.tbl td{border:1px solid #ccc;padding:.25em .6em;text-align:right;white-space:nowrap}
.tbl th:first-child,.tbl td:first-child{text-align:left}
.tbl tr.group td{background:#f1f3f6;font-weight:600;text-align:left}
.tbl tr.base td{color:#555;font-style:italic}
.note{color:#555;font-size:.9em}.reference{border-left:4px solid #c90;padding-left:1em}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.85em}
"""


def _img(png: Path, alt: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render(spec, scale, seeds, table, summary, figures: list[tuple[str, Path, str]], skipped_figures: list[str],
           reference, runs: pd.DataFrame, entropy_points: list | None = None,
           spend: list | None = None) -> str:
    """``figures``: (name, png path, caption); ``reference``: an analysis.paper_reference.Reference or None;
    ``entropy_points``: rows of ``analysis.entropy_points.build`` (a section of their own) or None; ``spend``:
    ``analysis.spend.sections`` (title, caption, frame), each a section."""
    e = html.escape
    sc = spec.scale(scale)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(spec.name)}: {e(spec.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(spec.title)}</h1>", f"<p>{e(spec.description)}</p>",
        f'<p class="note">MLflow experiment <code>{e(spec.name)}</code>, scale <code>{e(scale)}</code> '
        f"({e(sc.description)}), seeds {e(', '.join(map(str, seeds)))}, {len(runs)} runs. Every number below "
        "is computed from metrics logged in MLflow by these runs; nothing is typed in by hand.</p>",
        "<h2>Results (our runs)</h2>", f'<p class="note">{e(table.caption)}</p>', table_html(table),
        "<h2>Training dynamics (final logged value)</h2>",
        '<p class="note">Value at the last training step, mean ± 95% t-interval over seeds.</p>',
        frame_html(summary_frame(summary)),
    ]
    for title, caption, frame in spend or ():
        parts += [f"<h2>{e(title)}</h2>", f'<p class="note">{e(caption)}</p>', frame_html(frame)]
    parts.append("<h2>Figures</h2>")
    for name, png, caption in figures:
        parts.append(f'<figure id="fig-{e(name)}">{_img(png, name)}<figcaption>{e(caption)}</figcaption></figure>')
    if skipped_figures:
        parts.append(f'<p class="note">Not drawn (no run logged their metrics): {e(", ".join(skipped_figures))}.</p>')
    if entropy_points is not None:
        parts += ['<h2 id="entropy-points">Policy entropy at 10%, 30% and 100% of training</h2>',
                  f'<p class="note">{e(points.CAPTION)}</p>', frame_html(points.frame(entropy_points))]
    if reference is not None:
        parts += ['<div class="reference">', f"<h2>{e(reference.title)}</h2>",
                  '<p class="note">Numbers reported in the paper, for orientation only: different models, data and '
                  f"scale; never mixed into the tables above. {e(reference.note)}</p>",
                  frame_html(reference.table), "</div>"]
    parts += ["<h2>Runs</h2>", frame_html(runs), "</body></html>"]
    return "\n".join(parts) + "\n"
