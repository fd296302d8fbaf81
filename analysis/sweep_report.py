"""``python -m analysis.sweep_report``: an Optuna study's history and Pareto front, from MLflow alone.

    python -m analysis.sweep_report [--study NAME | --parent-run RUN_ID] [--tracking-uri URI] [--out DIR]

A study is what the ``igrpo_optuna`` sweeper leaves in MLflow (never read from ``optuna.db``): the study's parent
run (tag ``phase=sweep``, tagged ``optuna_study`` and ``optuna_storage``, with the artifact
``optimization_results.yaml``: objectives, directions, trial counts; multi-objective also ``pareto_front.json``)
and one child run per trial (tagged ``optuna_trial``). Without ``--study``/``--parent-run`` the store's only
study is used. Into ``--out`` (default ``reports/sweeps/<study>/``) it writes ``trials.csv|md`` (trial, state,
searched params, objective values; single-objective the best so far, multi-objective whether the trial is on the
Pareto front), ``figures/history.png|svg`` (each objective per trial in trial order, best-so-far line, failed
trials marked), multi-objective ``figures/pareto.png|svg`` (all complete trials, the front highlighted and
labelled by trial number) and one self-contained ``report.html``. A trial's state comes from its run: FINISHED
with every objective logged = COMPLETE; FAILED/KILLED = FAIL; a trial number with no run = FAIL (it failed before
its run started, e.g. a config validation rejected). The Pareto front is recomputed from the runs' metrics and
checked against the parent's ``pareto_front.json``. Re-running gives byte-identical files. An unknown study or
parent run is a one-line error naming the studies that exist (exit 2; nothing written).
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

from analysis.sweep_study import (  # noqa: F401  (re-exported: the report's public names)
    COMPLETE,
    FAIL,
    NO_RUN,
    RUNNING,
    Study,
    StudyRef,
    best_so_far,
    finite_number,
    pareto_mask,
    trial_state,
)
from igrpo.tracking.names import (
    PHASE_SWEEP,
    TAG_OPTUNA_STORAGE,
    TAG_OPTUNA_STUDY,
    TAG_OPTUNA_TRIAL,
    TAG_PARENT_RUN_ID,
    TAG_PHASE,
    storage_label,
)

RESULTS_ARTIFACT = "optimization_results.yaml"  # the sweeper's results, logged to the parent (study_parent.py)
PARETO_ARTIFACT = "pareto_front.json"


class SweepReportError(Exception):
    """A bad selection or an unusable store: one line, exit 2, nothing written."""


# ----------------------------------------------------------------------------- finding the study


def _tag(row, key: str):
    value = row.get(f"tags.{key}")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def list_studies(client) -> list[StudyRef]:
    """Every study's parent run in the store (all experiments), by study name then run id."""
    from analysis.load import load_runs

    refs = []
    for exp in client.search_experiments():
        runs = load_runs(client, exp.name, f"tags.{TAG_PHASE} = '{PHASE_SWEEP}'")
        for _, row in runs.iterrows():
            name = _tag(row, TAG_OPTUNA_STUDY)
            if name:
                refs.append(StudyRef(name, row["run_id"], str(row["run_name"]), exp.name,
                                     _tag(row, TAG_OPTUNA_STORAGE) or "in-memory", str(row["status"])))
    return sorted(refs, key=lambda r: (r.name, r.parent_run_id))


def _names(refs: list[StudyRef]) -> str:
    return ", ".join(sorted({r.name for r in refs})) or "none"


def select_study(refs: list[StudyRef], uri: str, study: str | None = None, parent_run: str | None = None) -> StudyRef:
    """The study named ``study``, or whose parent is ``parent_run``, or the only one; SweepReportError if none."""
    where = storage_label(uri)
    if not refs:
        raise SweepReportError(f"no Optuna study in {where} (no parent run tagged {TAG_OPTUNA_STUDY}); run one, e.g. "
                               "python run.py -m hparams_search=lr_single")
    if parent_run is not None:
        found = [r for r in refs if r.parent_run_id == parent_run]
        if not found:
            listed = ", ".join(f"{r.parent_run_id} ({r.name})" for r in refs)
            raise SweepReportError(f"--parent-run={parent_run} is not the parent run of an Optuna study in {where}; "
                                   f"studies' parent runs: {listed}")
        return found[0]
    if study is None:
        if len(refs) > 1:
            listed = ", ".join(r.describe() for r in refs)
            raise SweepReportError(f"{where} holds {len(refs)} studies; choose one with --study (or --parent-run): "
                                   f"{listed}")
        return refs[0]
    found = [r for r in refs if r.name == study]
    if not found:
        raise SweepReportError(f"--study={study} is not a study in {where}; studies: {_names(refs)}")
    if len(found) > 1:
        listed = ", ".join(f"{r.parent_run_id} ({r.storage})" for r in found)
        raise SweepReportError(f"study {study} has {len(found)} parent runs in {where} (one per storage); choose one "
                               f"with --parent-run: {listed}")
    return found[0]


# ----------------------------------------------------------------------------- loading it


def _artifact_text(client, run_id: str, path: str) -> str | None:
    if path not in {a.path for a in client.list_artifacts(run_id)}:
        return None
    with tempfile.TemporaryDirectory(prefix="igrpo-sweep-") as tmp:
        return Path(client.download_artifacts(run_id, path, tmp)).read_text(encoding="utf-8")


def load_study(client, ref: StudyRef) -> Study:
    import yaml

    from analysis.load import load_runs

    text = _artifact_text(client, ref.parent_run_id, RESULTS_ARTIFACT)
    if text is None:
        raise SweepReportError(f"study {ref.name}: its parent run {ref.parent_run_id} has no {RESULTS_ARTIFACT} yet "
                               "(no sweep of it reached its end); finish the sweep (re-run it) first")
    results = yaml.safe_load(text) or {}
    directions = [str(d) for d in results.get("directions") or []]
    objectives = [str(o) for o in results.get("objective") or []]
    if not objectives and len(directions) == 1:
        objectives = ["objective"]
    if not directions or len(objectives) != len(directions):
        raise SweepReportError(f"study {ref.name}: {RESULTS_ARTIFACT} of parent run {ref.parent_run_id} names "
                               f"objectives {objectives} for directions {directions}; they must pair up")
    searched = dict(results.get("best_params") or {})
    for entry in results.get("pareto_front") or []:
        searched.update(entry.get("params") or {})
    params = sorted(searched)

    children = load_runs(client, ref.experiment, f"tags.`{TAG_PARENT_RUN_ID}` = '{ref.parent_run_id}'")
    runs: dict[int, dict] = {}
    for _, row in children.iterrows():  # oldest first: the newest run of a trial number wins
        number = finite_number(_tag(row, TAG_OPTUNA_TRIAL))
        if number is not None:
            runs[int(number)] = row.to_dict()
    counted = sum(int(v) for v in (results.get("trials") or {}).values())
    total = max([counted, *(n + 1 for n in runs)])

    rows = []
    for n in range(total):
        run = runs.get(n)
        values = [finite_number(run.get(f"metrics.{o}")) if run else None for o in objectives]
        state, note = trial_state(run["status"] if run else None, values)
        row = {"trial": n, "state": state}
        for p in params:
            value = run.get(f"params.{p}") if run else None
            row[p] = None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        row.update({o: (v if state == COMPLETE else None) for o, v in zip(objectives, values)})
        row.update(run_id=run["run_id"] if run else "", note=note)
        rows.append(row)
    trials = pd.DataFrame(rows, columns=["trial", "state", *params, *objectives, "run_id", "note"])
    if len(objectives) == 1:
        trials.insert(3 + len(params), "best_so_far", best_so_far(list(trials[objectives[0]]), directions[0]))
    else:
        done = [i for i, state in enumerate(trials.state) if state == COMPLETE]
        mask = iter(pareto_mask([[float(trials.at[i, o]) for o in objectives] for i in done], directions))
        column = [next(mask) if i in done else None for i in range(len(trials))]
        trials.insert(2 + len(params) + len(objectives), "pareto", pd.Series(column, dtype=object))

    front = None
    if len(objectives) > 1:
        import json

        data = _artifact_text(client, ref.parent_run_id, PARETO_ARTIFACT)
        front = sorted(int(t["trial"]) for t in json.loads(data)["trials"]) if data is not None else None
    best = client.get_run(ref.parent_run_id).data.tags.get("best.trial") if len(objectives) == 1 else None
    return Study(ref, objectives, directions, params, trials, best, front)


# ----------------------------------------------------------------------------- writing it


def summary_lines(study: Study) -> list[str]:
    """The study's facts in sentences (the report's header and trials.md's preamble)."""
    t, ref = study.trials, study.ref
    counts = ", ".join(f"{int((t.state == s).sum())} {word}" for s, word in
                       ((COMPLETE, "complete"), (FAIL, "failed"), (RUNNING, "running")) if (t.state == s).any())
    objectives = ", ".join(f"{o} ({d})" for o, d in zip(study.objectives, study.directions))
    lines = [(f"Study {ref.name}, storage {ref.storage}; MLflow experiment {ref.experiment}, parent run "
              f"{ref.parent_run_id} ({ref.run_name}, {ref.status})."),
             f"{len(t)} trials ({counts or 'none'}); objective(s): {objectives}."]
    done = study.complete
    if done.empty:
        lines.append("No trial completed.")
    elif not study.multi:
        o, d = study.objectives[0], study.directions[0]
        best = done[o].min() if d == "minimize" else done[o].max()
        at = [int(n) for n in done.trial[done[o] == best]]
        tag = f"; the sweeper's best.trial tag: {study.logged_best}" if study.logged_best is not None else ""
        lines.append(f"Best {o}: {best:.6g} at trial(s) {', '.join(map(str, at))}{tag}.")
    else:
        front = study.front()
        logged = study.logged_front
        check = ("not logged" if logged is None else "the same set" if logged == front
                 else f"differs: {', '.join(map(str, logged))}")
        lines.append(f"Pareto front ({len(front)} of {len(done)} complete trials): trial(s) "
                     f"{', '.join(map(str, front))}; the parent's {PARETO_ARTIFACT}: {check}.")
    return lines


def build(study: Study, out: Path) -> list[Path]:
    """Every output file of ``study`` into ``out``; the paths, sorted."""
    from analysis import sweep_figures as figs

    out.mkdir(parents=True, exist_ok=True)
    table = figs.display_frame(study)
    texts = {"trials.csv": figs.trials_csv(study),
             "trials.md": "\n\n".join(summary_lines(study)) + "\n\n" + figs.markdown_table(table)}
    figures = [("history", *figs.history(study, out / "figures"))]
    if study.multi and not study.complete.empty:
        figures.append(("pareto", *figs.pareto(study, out / "figures")))
    texts["report.html"] = figs.html(study, summary_lines(study), figures, table)
    for name, text in texts.items():
        (out / name).write_text(text, encoding="utf-8")
    return sorted(p for p in out.rglob("*") if p.is_file())


def _check_store(uri: str) -> None:
    """A SQLite store that does not exist is an error (MLflow would create an empty one)."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if str(path) not in ("", ":memory:") and not path.exists():
            raise SweepReportError(f"no MLflow store at {path}; give --tracking-uri (or MLFLOW_TRACKING_URI)")


def folder_name(study: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", study) or "study"


def make_report(study: str | None = None, parent_run: str | None = None, tracking_uri: str | None = None,
                out: str | Path | None = None) -> Path:
    """Build one study's report into ``out`` (default ``reports/sweeps/<study>/``): all files or none."""
    from analysis.load import client_for
    from igrpo.tracking.names import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    _check_store(uri)
    client = client_for(uri)
    ref = select_study(list_studies(client), uri, study, parent_run)
    loaded = load_study(client, ref)
    target = Path(out) if out else Path("reports") / "sweeps" / folder_name(ref.name)
    with tempfile.TemporaryDirectory(prefix="sweep-report-") as tmp:
        for path in build(loaded, Path(tmp)):  # fails before anything reaches `target`
            dest = target / path.relative_to(tmp)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
    return target


def main(argv: list[str] | None = None) -> int:
    from analysis.report import _quiet_logs

    p = argparse.ArgumentParser(prog="python -m analysis.sweep_report", description=__doc__.split("\n")[0])
    which = p.add_mutually_exclusive_group()
    which.add_argument("--study", default=None, help="the study's name (hydra.sweeper.study_name)")
    which.add_argument("--parent-run", default=None, help="the study's MLflow parent run id")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI, "
                                                        "else sqlite:///<cwd>/mlflow.db)")
    p.add_argument("--out", default=None, help="output directory (default reports/sweeps/<study>/)")
    args = p.parse_args(argv)
    _quiet_logs()
    try:
        target = make_report(args.study, args.parent_run, args.tracking_uri, args.out)
    except SweepReportError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(f"report: {target / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
