"""``python -m analysis.report <experiment>``: the paper-style report of one experiment, from MLflow only.

    python -m analysis.report table1 [--scale cpu] [--seeds 0,1,2] [--tracking-uri URI] [--out reports/table1/]

It loads the FINISHED training runs of MLflow experiment ``<experiment>`` tagged with that experiment and
scale, matches them to the spec's plan (row group x arm x seed, by the tags ``group``, ``arm``, ``seed``;
the newest run wins when a cell was run more than once) and writes into ``--out``:
``table.md|tex|csv`` (the paper layout; with a baseline, each Δ Avg also gets a paired bootstrap 95% interval over
eval problems and seeds from the runs' logged per-problem scores, ``analysis.bootstrap``), ``table_seeds.csv`` (every seed's values), ``training.md|csv``
(final logged training metrics), ``figures/<name>.png|svg``, ``paper_reference.md`` (the paper's own
numbers, labelled and separate) when the spec has one, ``runs.csv`` and one self-contained
``report.html``; for a spec whose arms form regime cells (``analysis.regime``: iGRPO vs GRPO at its budget and at
its trained count), also ``regime.md|csv`` and ``figures/regime_heatmap.png|svg``; for a spec that draws the
``entropy`` figure, also ``entropy_points.md|csv`` (``analysis.entropy_points``: entropy at 10/30/100% of training,
each a mean over a 5%-of-training window); ``spend.md|csv`` (``analysis.spend``: completions and tokens each arm
generated) and, for a spec whose table names a ``baseline_group``, each arm's Δ against the same arm in that group
with its token ratio (``group_deltas.csv``, and a section of ``spend.md``). Re-running gives byte-identical
files. If any planned run is missing, it prints one line
naming them and exits 2 without writing anything.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

from experiments.plan import parse_seeds, plan_runs
from experiments.spec import SCALES, Spec, SpecError, load_spec


class MissingRuns(SpecError):
    """Planned runs are not (yet) FINISHED in MLflow."""


def collect(spec: Spec, scale: str, seeds: list[int], client) -> dict:
    """(group, arm, seed) -> the newest FINISHED run's row; MissingRuns (one line) if any planned run lacks one."""
    from analysis.load import load_runs

    runs = load_runs(client, spec.name, f"tags.phase = 'train' and tags.experiment = '{spec.name}' and "
                                        f"tags.scale = '{scale}' and attributes.status = 'FINISHED'")
    matched = {}
    for _, run in runs.iterrows():  # oldest first, so the newest run of a cell wins
        try:
            key = (run["tags.group"], run["tags.arm"], int(run["tags.seed"]))
        except (KeyError, TypeError, ValueError):
            continue
        matched[key] = run
    planned = plan_runs(spec, scale, seeds)
    missing = [p for p in planned if p.key not in matched]
    if missing:
        listed = ", ".join(p.describe() for p in missing)
        seeds_arg = "" if seeds == list(spec.scale(scale).seeds) else f" --seeds {','.join(map(str, seeds))}"
        raise MissingRuns(f"experiment {spec.name} (scale {scale}) is missing {len(missing)} of {len(planned)} "
                          f"FINISHED runs: {listed}; run: python -m experiments run {spec.name} --scale {scale}"
                          f"{seeds_arg}")
    return {p.key: matched[p.key] for p in planned}


def check_paper_reference(spec: Spec) -> None:
    """The spec's ``paper_reference`` must name one of the paper's tables held in ``analysis.paper_reference``
    (checked here, not when the spec loads: ``experiments`` never imports ``analysis``)."""
    from analysis.paper_reference import REFERENCES

    if spec.paper_reference is not None and spec.paper_reference not in REFERENCES:
        raise SpecError(f"{spec.path.name}: paper_reference={spec.paper_reference!r} is not valid; choose one of: "
                        f"{', '.join(REFERENCES)}")


def build(spec: Spec, scale: str, seeds: list[int], client, out: Path) -> list[Path]:
    """Write every output file into ``out`` (created); return the paths, sorted."""
    from analysis import figures as figs
    from analysis import render
    from analysis.html_report import render as render_html
    from analysis.load import histories
    from analysis.paper_reference import REFERENCES
    from analysis.tables import build_summary, build_table

    check_paper_reference(spec)
    matched = collect(spec, scale, seeds, client)
    sc = spec.scale(scale)
    table = build_table(spec, scale, matched, seeds, client)
    summary = build_summary(spec, scale, matched, seeds)
    texts = {"table.md": render.table_markdown(table), "table.tex": render.table_latex(table),
             "table.csv": render.table_csv(table), "table_seeds.csv": render.per_seed_csv(table),
             "training.md": render.summary_markdown(summary), "training.csv": render.summary_csv(summary)}
    reference = REFERENCES[spec.paper_reference]() if spec.paper_reference else None
    if reference is not None:
        texts["paper_reference.md"] = (f"**{reference.title}**\n\n{reference.note}\n\n"
                                       + _markdown(reference.table))
    runs = pd.DataFrame([{"group": g, "arm": a, "seed": s, "run_name": r["run_name"], "run_id": r["run_id"],
                          "config_hash": r.get("tags.config_hash", "")} for (g, a, s), r in matched.items()])
    texts["runs.csv"] = render._csv(runs)

    meta = runs[["run_id", "group", "arm", "seed"]]
    hist = histories(client, list(runs.run_id), figs.figure_metrics(spec.figures))
    drawn, skipped = [], []
    for name in spec.figures:
        paths = figs.plot(name, hist, meta, [a.label for a in spec.arms], [g.label for g in sc.groups],
                          out / "figures")
        if paths is None:
            skipped.append(name)
        else:
            keys = ", ".join(m for m, _, _ in figs.FIGURES[name].series)
            drawn.append((name, paths[0], f"{figs.FIGURES[name].title} ({keys})"))
    texts.update(_regime(spec, scale, matched, seeds, client, table, out, drawn))
    points = _entropy_points(spec, matched, hist, meta)
    texts.update(_entropy_texts(points))
    spend, spend_texts = _spend(spec, scale, matched, seeds, client, table)
    texts.update(spend_texts)
    texts["report.html"] = render_html(spec, scale, seeds, table, summary, drawn, skipped, reference,
                                       runs, points, spend)
    for name, text in texts.items():
        (out / name).write_text(text, encoding="utf-8")
    return sorted(p for p in out.rglob("*") if p.is_file())


def _entropy_points(spec: Spec, matched: dict, hist: pd.DataFrame, meta: pd.DataFrame) -> list | None:
    """Entropy at 10/30/100% of each run's train.steps (``analysis.entropy_points``) when the spec draws the
    ``entropy`` figure; None otherwise."""
    from analysis import entropy_points

    if entropy_points.FIGURE not in spec.figures:
        return None
    steps = [matched[(g, a, s)].get("params.train.steps") for g, a, s in meta[["group", "arm", "seed"]].itertuples(
        index=False)]
    return entropy_points.build(entropy_points.from_long(hist, meta.assign(steps=steps)))


def _entropy_texts(points: list | None) -> dict:
    from analysis import entropy_points

    if points is None:
        return {}
    return {"entropy_points.md": entropy_points.markdown(points), "entropy_points.csv": entropy_points.csv(points)}


def _regime(spec: Spec, scale: str, matched: dict, seeds: list[int], client, table, out: Path, drawn: list) -> dict:
    """``regime.md|csv`` and the ΔAvg heatmap (appended to ``drawn``) when the spec's arms form regime cells
    (``analysis.regime``: an iGRPO arm and GRPO at its budget and at its trained count); nothing otherwise."""
    from analysis import regime
    from analysis.render import _csv

    cells = regime.regime_cells(spec, scale)
    if not cells:
        return {}
    df = regime.build(cells, table.per_seed, matched, seeds, table.suites, client)
    ks = sorted({str(r.get("params.eval.samples_per_problem")) for r in matched.values()})
    metric = f"avg@{'/'.join(ks)}"
    text = regime.caption(metric)
    png, _ = regime.heatmap(df, out / "figures", metric)
    drawn.append(("regime_heatmap", png, "ΔAvg of iGRPO per level x budget x model: " + text))
    return {"regime.md": regime.markdown(df, text), "regime.csv": _csv(df)}


def _spend(spec: Spec, scale: str, matched: dict, seeds: list[int], client, table) -> tuple[list, dict]:
    """``spend.md|csv`` (``analysis.spend``: what each arm generated), ``group_deltas.csv`` when the scale's table
    names a ``baseline_group`` and ``pair_deltas.csv`` when it names ``pairs``; the sections also go into the HTML
    page."""
    from analysis import spend
    from analysis.render import _csv

    layout = spec.scale(scale).table
    frame = spend.spend_frame(spec, scale, matched, seeds)
    deltas = spend.group_deltas(spec, scale, table.per_seed, matched, seeds, table.suites, client, frame)
    pairs = spend.pair_deltas(spec, scale, table.per_seed, matched, seeds, table.suites, client, frame)
    parts = spend.sections(frame, deltas, layout.baseline, layout.baseline_group, pairs)
    texts = {"spend.md": spend.markdown(parts), "spend.csv": _csv(spend.csv_frame(frame))}
    if len(deltas):
        texts["group_deltas.csv"] = _csv(deltas)
    if len(pairs):
        texts["pair_deltas.csv"] = _csv(pairs)
    return parts, texts


def _markdown(df: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


STORE_TIMEOUT_S = 3.0  # an MLflow server that does not answer in this time is reported, not retried for minutes


def check_store_readable(uri: str, timeout_s: float = STORE_TIMEOUT_S) -> None:
    """The store to read is there: a SQLite file or store directory that exists (opening a missing one would create
    it: the report never writes), or a server that answers within ``timeout_s``. SpecError (one line) otherwise."""
    import os
    import urllib.error
    import urllib.request
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    hint = "name the store the experiment logged into with --tracking-uri (or MLFLOW_TRACKING_URI)"
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s):
                pass
        except urllib.error.HTTPError:
            pass  # it answered
        except (urllib.error.URLError, OSError) as err:
            raise SpecError(f"the MLflow server {uri} does not answer within {timeout_s:g} s "
                            f"({getattr(err, 'reason', err)}); start it, or {hint}") from None
        return
    if parsed.scheme == "sqlite":
        path = Path(os.path.expanduser(uri[len("sqlite:///"):])) if uri.startswith("sqlite:///") else None
        if path is not None and not path.is_file():
            what = "is not a file" if path.exists() else "does not exist"
            raise SpecError(f"no MLflow store at {uri} ({path} {what}); {hint}")
        try:
            if path is not None:
                with open(path, "rb"):
                    pass
        except OSError as err:
            raise SpecError(f"the MLflow store {uri} cannot be read ({err.strerror or err})") from None
    elif parsed.scheme in ("", "file"):
        root = Path(os.path.expanduser(parsed.path if parsed.scheme == "file" else uri))
        if not (root / "0").is_dir() and not any(root.glob("*/meta.yaml")):
            raise SpecError(f"no MLflow store at {uri} ({root} holds no experiments); {hint}")


def make_report(experiment: str, scale: str = "cpu", seeds: list[int] | None = None,
                tracking_uri: str | None = None, out: str | Path | None = None) -> Path:
    """Build the report of ``experiment`` into ``out`` (default ``reports/<experiment>/``): all files or none."""
    from analysis.load import client_for
    from igrpo.tracking.names import resolve_tracking_uri

    spec = load_spec(experiment)
    if scale not in SCALES:
        raise SpecError(f"--scale={scale} is not valid; choose one of: {', '.join(SCALES)}")
    seeds = list(spec.scale(scale).seeds) if seeds is None else seeds
    uri = resolve_tracking_uri(tracking_uri)
    check_store_readable(uri)
    client = client_for(uri)
    target = Path(out) if out else Path("reports") / spec.name
    with tempfile.TemporaryDirectory(prefix=f"report-{spec.name}-") as tmp:
        build(spec, scale, seeds, client, Path(tmp))  # fails before anything reaches `target`
        target.mkdir(parents=True, exist_ok=True)
        shutil.copytree(tmp, target, dirs_exist_ok=True)
    return target


def _quiet_logs() -> None:
    """Keep the terminal to the report's own lines; warnings stay available with IGRPO_VERBOSE=1."""
    import logging
    import os
    import warnings

    if os.environ.get("IGRPO_VERBOSE"):
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore")
    import analysis.load  # noqa: F401  (imports mlflow, which sets its loggers' level on import: first, then quiet)

    for name in ("mlflow", "alembic", "matplotlib"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n")[0])
    p.add_argument("experiment")
    p.add_argument("--scale", default="cpu", help=f"one of: {', '.join(SCALES)} (default cpu)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the spec's)")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI, "
                                                        "else sqlite:///<cwd>/mlflow.db)")
    p.add_argument("--out", default=None, help="output directory (default reports/<experiment>/)")
    args = p.parse_args(argv)
    _quiet_logs()
    try:
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
        target = make_report(args.experiment, args.scale, seeds, args.tracking_uri, args.out)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report: {target / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
