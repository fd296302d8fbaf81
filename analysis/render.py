"""Text forms of the tables: Markdown, LaTeX (booktabs), CSV (machine-readable: means and CI half-widths
as numbers) and HTML fragments for the report. Deterministic: same table in, same bytes out."""

from __future__ import annotations

import html
import io

import pandas as pd

from analysis.stats import fmt, fmt_general
from analysis.tables import AVG, BOOT, PaperTable, Row, SummaryTable

_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _grid(table: PaperTable, pm: str = " ± ") -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(header, [(group, cells of each row)]) with the display text of every cell."""
    scale = 100.0 if table.percent else 1.0
    header = ["method", *[table.labels[s] for s in table.suites], AVG]
    if table.baseline:
        header += [f"Δ Avg vs {table.baseline}", BOOT]
    header.append("seeds")
    body = []
    for row in table.rows:
        cells = [row.method, *[fmt(row.cells[c], scale, pm=pm) for c in table.columns]]
        if table.baseline:
            cells.append(fmt(row.delta, scale, signed=True, pm=pm) if row.delta is not None else "—")
            cells.append(boot_text(row, scale))
        cells.append(str(row.n))
        body.append((row.group, cells))
    return header, body


def boot_text(row: Row, scale: float, digits: int = 2) -> str:
    """'[+1.20, +5.31]' (with '(n=2)' when fewer seeds than the row's were paired), '—' where there is no Δ,
    'n/a' where the runs logged no per-problem scores."""
    if row.delta is None:
        return "—"
    b = row.boot
    if b is None:
        return "n/a"
    text = f"[{b.low * scale:+.{digits}f}, {b.high * scale:+.{digits}f}]"
    return text + (f" (n={len(b.seeds)})" if len(b.seeds) != row.n else "")


def _groups(table: PaperTable) -> bool:
    return len({r.group for r in table.rows}) > 1 or table.rows[0].group != "default"


def table_markdown(table: PaperTable) -> str:
    header, body = _grid(table)
    lines = [f"**{table.title}**", "", table.caption, "", "| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    group = None
    for g, cells in body:
        if _groups(table) and g != group:
            lines.append("| **" + g + "** |" + " |" * (len(header) - 1))
            group = g
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(c, c) for c in text).replace("±", r"$\pm$").replace("Δ", r"$\Delta$")


def table_latex(table: PaperTable) -> str:
    header, body = _grid(table, pm=" $\\pm$ ")
    out = [r"\begin{table}[t]", r"\centering", r"\small", f"\\caption{{{tex_escape(table.title)}. "
           f"{tex_escape(table.caption)}}}", r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}", r"\toprule",
           " & ".join(tex_escape(h) for h in header) + r" \\", r"\midrule"]
    group = None
    for g, cells in body:
        if _groups(table) and g != group:
            if group is not None:
                out.append(r"\midrule")
            out.append(f"\\multicolumn{{{len(header)}}}{{l}}{{\\textit{{{tex_escape(g)}}}}} \\\\")
            group = g
        out.append(" & ".join([tex_escape(cells[0]), *[c.replace("—", "--") for c in cells[1:]]]) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def table_csv(table: PaperTable) -> str:
    """One row per table row: ``<col>`` mean and ``<col>_ci95`` half-width (percent if the table is), n; with a
    baseline, Δ Avg (``delta_avg``, ``delta_avg_ci95``) and its paired bootstrap interval (``delta_avg_boot_low``,
    ``delta_avg_boot_high``, seeds paired in ``delta_avg_boot_seeds``; empty when not computable)."""
    scale = 100.0 if table.percent else 1.0
    records = []
    for row in table.rows:
        rec = {"group": row.group, "method": row.method, "seeds": row.n}
        for col in table.columns:
            cell = row.cells[col]
            rec[col] = cell.mean * scale if cell.n else None
            rec[f"{col}_ci95"] = cell.half * scale if cell.half is not None else None
        if table.baseline:
            d = row.delta
            rec["delta_avg"] = d.mean * scale if d is not None and d.n else None
            rec["delta_avg_ci95"] = d.half * scale if d is not None and d.half is not None else None
            b = row.boot
            rec["delta_avg_boot_low"] = b.low * scale if b is not None else None
            rec["delta_avg_boot_high"] = b.high * scale if b is not None else None
            rec["delta_avg_boot_seeds"] = str(len(b.seeds)) if b is not None else ""
        records.append(rec)
    return _csv(pd.DataFrame(records))


def per_seed_csv(table: PaperTable) -> str:
    return _csv(table.per_seed)


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6f", lineterminator="\n")
    return buf.getvalue()


def summary_frame(summary: SummaryTable) -> pd.DataFrame:
    return pd.DataFrame([{"group": g, "arm": a, **{m: fmt_general(cells[m]) for m in summary.metrics},
                          "seeds": max((c.n for c in cells.values()), default=0)} for g, a, cells in summary.rows])


def summary_markdown(summary: SummaryTable) -> str:
    df = summary_frame(summary)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def summary_csv(summary: SummaryTable) -> str:
    records = []
    for g, a, cells in summary.rows:
        rec = {"group": g, "arm": a}
        for m in summary.metrics:
            rec[m] = cells[m].mean if cells[m].n else None
            rec[f"{m}_ci95"] = cells[m].half
        records.append(rec)
    return _csv(pd.DataFrame(records))


def frame_html(df: pd.DataFrame, css_class: str = "tbl") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def table_html(table: PaperTable) -> str:
    header, body = _grid(table)
    out = [f'<table class="tbl paper"><thead><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in header)}'
           "</tr></thead><tbody>"]
    group = None
    for g, cells in body:
        if _groups(table) and g != group:
            out.append(f'<tr class="group"><td colspan="{len(header)}">{html.escape(g)}</td></tr>')
            group = g
        cls = ' class="base"' if cells[0] == "base" else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)
