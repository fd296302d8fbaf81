"""What a data config loads, before any training: ``python -m igrpo.tasks inspect`` and ``... decontaminate``.

``inspect`` reads the task's training source and every eval suite without the skip threshold, and prints per
source the rows read, loaded and skipped (with reasons and line numbers), the reference answers' types, and a few
(problem, gold) pairs, and whether the load would pass ``max_bad_fraction``: the first thing to run on a new
dataset. ``decontaminate`` lists the training problems that share an n-gram with an eval problem
(``igrpo.tasks.decontaminate``), i.e. what ``task.decontaminate=true`` would drop.
"""

from __future__ import annotations

import re
from collections import Counter

from igrpo.errors import ConfigError
from igrpo.tasks.base import Problem
from igrpo.tasks.sources import LoadReport, SourceSpec, read_source

EXAMPLES = 3
_INTEGER = re.compile(r"[-+]?\d{1,3}(,\d{3})+|[-+]?\d+")
_DECIMAL = re.compile(r"[-+]?\d*\.\d+")
_FRACTION = re.compile(r"[-+]?(\\[dt]?frac\{[^{}]+\}\{[^{}]+\}|\d+/\d+)")


def answer_type(answer: str) -> str:
    """A coarse kind of a reference answer: integer, decimal, fraction, latex, interval/tuple, or text."""
    text = answer.strip().strip("$").strip()
    if _INTEGER.fullmatch(text):
        return "integer"
    if _DECIMAL.fullmatch(text):
        return "decimal"
    if _FRACTION.fullmatch(text):
        return "fraction"
    if text[:1] in "([" and text[-1:] in ")]" and "," in text:
        return "interval/tuple"
    if "\\" in text or "^" in text or "_" in text or "{" in text:
        return "latex"
    return "text"


def _shorten(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def describe_report(report: LoadReport, label: str, max_bad_fraction: float | None) -> list[str]:
    """The lines ``inspect`` prints for one source."""
    lines = [f"{report.where}: {report.rows} rows, {len(report.problems)} loaded, {len(report.skipped)} skipped"]
    lines += [f"  skipped {where}: {reason}" for where, reason in report.skipped[:20]]
    if len(report.skipped) > 20:
        lines.append(f"  ... and {len(report.skipped) - 20} more skipped")
    if report.fields and any("missing field" in reason for _, reason in report.skipped):
        lines.append(f"  rows have fields: {', '.join(report.fields)}")
    if max_bad_fraction is not None and report.rows:
        ok = report.problems and len(report.skipped) <= max_bad_fraction * report.rows
        verdict = "loads" if ok else "FAILS to load"
        lines.append(f"  {verdict} with {label}.max_bad_fraction={max_bad_fraction:g}")
    lines += describe_problems(report.problems)
    return lines


def describe_problems(problems: list[Problem]) -> list[str]:
    types = Counter(answer_type(p.answer) for p in problems)
    lines = ["  answer types: " + (", ".join(f"{kind} {n}" for kind, n in types.most_common()) or "none")]
    lines += [f"  [{p.id}] {_shorten(p.problem)}  ->  gold: {p.answer}" for p in problems[:EXAMPLES]]
    return lines


def inspect_lines(cfg) -> list[str]:
    """Every line of ``python -m igrpo.tasks inspect`` for a composed config."""
    from igrpo.tasks.math_data import REAL_TASKS

    lines: list[str] = []
    if cfg.task.name in REAL_TASKS:
        report = read_source(SourceSpec.from_cfg(cfg.task, "task"), id_prefix=cfg.task.name)
        lines += describe_report(report, "task", float(cfg.task.max_bad_fraction))
    suites = cfg.eval.get("suites") or {}
    if not suites:
        from igrpo.tasks import load_task

        data = load_task(cfg.task, cfg.seed)
        lines.append(f"task={cfg.task.name}: {len(data.train)} training problems (generated)")
        lines += describe_problems(data.train)
        for name, problems in data.eval_suites.items():
            lines.append(f"eval suite {name}: {len(problems)} problems (the task's own)")
            lines += describe_problems(problems)
        return lines
    for name, suite_cfg in suites.items():
        label = f"eval.suites.{name}"
        try:
            report = read_source(SourceSpec.from_cfg(suite_cfg, label), id_prefix=str(name))
        except ConfigError as err:  # one unreadable suite does not hide what the others hold
            lines.append(f"{label}: cannot load: {err}")
            continue
        if suite_cfg.max_problems is not None and len(report.problems) > suite_cfg.max_problems:
            lines.append(f"({label}.max_problems={suite_cfg.max_problems}: only the first are evaluated)")
        lines += describe_report(report, label, float(suite_cfg.max_bad_fraction))
    return lines


def decontaminate_lines(cfg, ngram: int | None = None) -> list[str]:
    """Every line of ``python -m igrpo.tasks decontaminate``: the training problems an n-gram ties to a suite."""
    from omegaconf import open_dict

    from igrpo.tasks import load_task
    from igrpo.tasks.decontaminate import find_overlaps

    configured = cfg.task.get("decontaminate_ngram")
    n = int(ngram if ngram is not None else configured if configured is not None else 8)
    task_cfg = cfg.task.copy()
    if "decontaminate" in task_cfg:
        with open_dict(task_cfg):
            task_cfg.decontaminate = False  # report what it would drop, from the full (exact-held-out) set
    data = load_task(task_cfg, cfg.seed, eval_cfg=cfg.eval)
    overlaps = find_overlaps(data.train, data.eval_suites, n)
    exact = data.extra.get("held_out_removed", 0)
    lines = [f"{len(overlaps)} of {len(data.train)} training problems share a {n}-gram with an eval problem "
             f"(suites: {', '.join(data.eval_suites)}; {exact} exact copies were already held out)"]
    lines += [f"  {o.train_id} ~ {o.eval_id}: \"{o.ngram}\"" for o in overlaps]
    return lines
