"""analysis.sweep_report: an Optuna study's history and Pareto front from MLflow alone.

The default tests log synthetic studies into a real SQLite MLflow store (and a real optuna SQLite study) with the
sweeper's own functions: igrpo's parent-run callback helpers, one ``mlflow_run`` child per trial tagged as the
sweeper tags it, the sweeper's ``_fail`` / ``_write_results`` and ``StudyParent.log_results``. Real sweeps through
the CLI (``debug=smoke``) take 40-80 s each here, so that test is marked slow.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import optuna
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from analysis import sweep_report
from analysis.sweep_figures import _front_labels
from tests.helpers import ROOT, run_cli, subprocess_env, tiny_overrides

SINGLE, MULTI = "syn_single", "syn_multi"
QUALITY, SECONDS = "eval/mean/avg_at_k", "perf/run_seconds"
SPACE = {"algo.learning_rate": FloatDistribution(1e-5, 1e-3, log=True),
         "variant.num_drafts": CategoricalDistribution([2, 4, 8])}


def _values(params: dict) -> tuple[float, float]:
    """A synthetic (quality, seconds): more drafts and a rate near 1e-4 are better; more drafts and lower rates are
    slower."""
    drafts, rate = params["variant.num_drafts"], math.log10(params["algo.learning_rate"])
    return round(0.1 * math.log2(drafts) - 0.05 * abs(rate + 4), 6), round(5.0 * drafts - 2 * rate, 6)


def log_study(root, name: str, objectives: list[str], directions: list[str], n: int, failed_run: set[int],
              no_run: set[int]) -> optuna.Study:
    """A study logged as the igrpo_optuna sweeper logs one: trials in ``failed_run`` get a FAILED run, trials in
    ``no_run`` fail before any run starts (as a config the validation rejects)."""
    from hydra_plugins.igrpo_optuna_sweeper import optuna_sweeper, study_parent
    from igrpo.tracking.names import optuna_parent_key, storage_label
    from igrpo.tracking.parent import close_parent, open_parent
    from igrpo.tracking.runs import mlflow_run

    uri, storage = f"sqlite:///{root / 'mlflow.db'}", f"sqlite:///{root / 'optuna.db'}"
    sweep_dir = root / f"sweep-{name}"
    sweep_dir.mkdir()
    parent_id = open_parent(uri, "igrpo", optuna_parent_key(name, storage), f"study-{name}",
                            {"phase": "sweep", "sweep_dir": str(sweep_dir)})
    sweeper = optuna_sweeper.IgrpoOptunaSweeper(study_name=name, storage=storage, direction=directions, n_trials=n,
                                                n_jobs=1, sampler={"name": "random", "seed": 0}, params={},
                                                max_failures=None)
    sweeper.config = OmegaConf.create({"objective": objectives})
    study, _, storage = sweeper._open_study()
    parent = study_parent.StudyParent(uri, parent_id)
    parent.tag_study(name, storage_label(storage))
    for _ in range(n):
        trial = study.ask(SPACE)
        if trial.number in no_run:
            sweeper._fail(study, trial, "config does not compose: synthetic")
            continue
        values = list(_values(trial.params)[: len(objectives)])
        try:
            with mlflow_run(uri, "igrpo", f"trial-{trial.number}", {"phase": "train", "optuna_study": name,
                                                                    "optuna_trial": str(trial.number)},
                            parent_run_id=parent_id) as run:
                run.params({k: str(v) for k, v in trial.params.items()})
                run.metrics(dict(zip(objectives, values)), step=1)
                if trial.number in failed_run:
                    raise RuntimeError("synthetic crash")
        except RuntimeError as err:
            sweeper._fail(study, trial, str(err))
            continue
        study.tell(trial, values)
    parent.log_results(study, sweeper._write_results(study, sweep_dir, storage), sweep_dir)
    close_parent(uri, parent_id, "FINISHED")
    return study


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One MLflow store holding a single-objective and a two-objective study: (root, uri, {name: study})."""
    root = tmp_path_factory.mktemp("sweeps")
    studies = {SINGLE: log_study(root, SINGLE, [QUALITY], ["maximize"], 7, failed_run={3}, no_run={1, 6}),
               MULTI: log_study(root, MULTI, [QUALITY, SECONDS], ["maximize", "minimize"], 8, failed_run={2},
                                no_run={5})}
    return root, f"sqlite:///{root / 'mlflow.db'}", studies


def _rows(path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _parent(uri: str, name: str):
    client = MlflowClient(uri)
    (ref,) = [r for r in sweep_report.list_studies(client) if r.name == name]
    return client, ref.parent_run_id


def _logged_front(uri: str, name: str, tmp_path) -> list[int]:
    """The trial numbers of the study parent's pareto_front.json (as the sweeper logged it)."""
    client, parent_id = _parent(uri, name)
    with open(client.download_artifacts(parent_id, "pareto_front.json", str(tmp_path))) as fh:
        return sorted(int(t["trial"]) for t in json.load(fh)["trials"])


def _files(folder) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_single_objective_report_has_one_row_per_trial_with_the_logged_objective(store, tmp_path, capsys):
    _, uri, studies = store
    assert sweep_report.main(["--study", SINGLE, "--tracking-uri", uri, "--out", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().out.strip() == f"report: {tmp_path / 'a' / 'report.html'}"
    out = tmp_path / "a"
    assert sorted(_files(out)) == ["figures/history.png", "figures/history.svg", "report.html", "trials.csv",
                                   "trials.md"]
    study, rows = studies[SINGLE], _rows(out / "trials.csv")
    assert [int(r["trial"]) for r in rows] == [t.number for t in study.trials] == list(range(7))
    for row, trial in zip(rows, study.trials):
        assert row["state"] == trial.state.name  # COMPLETE / FAIL, from MLflow alone
        if trial.state == TrialState.COMPLETE:
            assert float(row[QUALITY]) == pytest.approx(trial.value, rel=1e-9)
            assert float(row["algo.learning_rate"]) == pytest.approx(trial.params["algo.learning_rate"])
            assert int(row["variant.num_drafts"]) == trial.params["variant.num_drafts"]
        else:
            assert row[QUALITY] == ""
    assert [r["note"] for r in rows if r["trial"] in ("1", "6")] == [sweep_report.NO_RUN] * 2
    assert rows[3]["note"] == "its run ended FAILED"
    best = [max((t.value for t in study.trials[: i + 1] if t.value is not None), default=None) for i in range(7)]
    assert [float(r["best_so_far"]) if r["best_so_far"] else None for r in rows] == pytest.approx(best)
    md = (out / "trials.md").read_text()
    assert f"Best {QUALITY}: {study.best_value:.6g} at trial(s) {study.best_trial.number}" in md
    assert "7 trials (4 complete, 3 failed)" in md
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 1 and "<script" not in page and 'src="http' not in page


def test_rerun_is_byte_identical(store, tmp_path):
    _, uri, _ = store
    for out in ("a", "b"):
        assert sweep_report.main(["--study", MULTI, "--tracking-uri", uri, "--out", str(tmp_path / out)]) == 0
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(first) == sorted(second) and len(first) == 7
    assert [name for name in first if first[name] != second[name]] == []


def test_multi_objective_pareto_set_equals_the_parents_pareto_front(store, tmp_path):
    _, uri, studies = store
    assert sweep_report.main(["--study", MULTI, "--tracking-uri", uri, "--out", str(tmp_path / "m")]) == 0
    out, study = tmp_path / "m", studies[MULTI]
    assert (out / "figures" / "pareto.png").stat().st_size > 0 and (out / "figures" / "pareto.svg").exists()
    rows = _rows(out / "trials.csv")
    assert len(rows) == 8
    for row, trial in zip(rows, study.trials):
        assert row["state"] == trial.state.name
        if trial.state == TrialState.COMPLETE:
            assert [float(row[QUALITY]), float(row[SECONDS])] == pytest.approx(trial.values, rel=1e-9)
    front = sorted(int(r["trial"]) for r in rows if r["pareto"] == "True")
    assert front == _logged_front(uri, MULTI, tmp_path) == sorted(t.number for t in study.best_trials)
    assert 1 < len(front) < 6  # a real trade-off: not every complete trial is on the front
    assert {r["pareto"] for r in rows if r["state"] != "COMPLETE"} == {""}
    md = (out / "trials.md").read_text()
    assert f"trial(s) {', '.join(map(str, front))}; the parent's pareto_front.json: the same set." in md
    assert f"objective(s): {QUALITY} (maximize), {SECONDS} (minimize)" in md
    assert (out / "report.html").read_text().count('src="data:image/png;base64,') == 2


def test_default_out_dir_and_parent_run_selection(store, tmp_path, monkeypatch):
    _, uri, _ = store
    _, parent_id = _parent(uri, SINGLE)
    monkeypatch.chdir(tmp_path)
    assert sweep_report.main(["--parent-run", parent_id, "--tracking-uri", uri]) == 0
    assert (tmp_path / "reports" / "sweeps" / SINGLE / "report.html").exists()


def _assert_refused(err: str, tmp_path, *needles: str):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "reports").exists()


def test_unknown_study_is_a_one_line_error_naming_the_studies_exit_2(store, tmp_path):
    _, uri, _ = store
    proc = subprocess.run([sys.executable, "-m", "analysis.sweep_report", "--study", "nope", "--tracking-uri", uri,
                           "--out", str(tmp_path / "out")], cwd=ROOT, env=subprocess_env(), capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 2
    _assert_refused(proc.stderr, tmp_path, "--study=nope", f"studies: {MULTI}, {SINGLE}")


@pytest.mark.parametrize("args, needles", [
    (["--parent-run", "0123abcd"], ["--parent-run=0123abcd", f"({MULTI})", f"({SINGLE})"]),
    ([], ["holds 2 studies; choose one with --study", MULTI, SINGLE]),
])
def test_bad_or_missing_selection_is_refused(store, tmp_path, capsys, monkeypatch, args, needles):
    _, uri, _ = store
    monkeypatch.chdir(tmp_path)
    assert sweep_report.main([*args, "--tracking-uri", uri]) == 2
    _assert_refused(capsys.readouterr().err, tmp_path, *needles)


def test_missing_store_is_refused_and_not_created(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    assert sweep_report.main(["--tracking-uri", uri, "--out", str(tmp_path / "out")]) == 2
    _assert_refused(capsys.readouterr().err, tmp_path, f"no MLflow store at {tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()


# ----------------------------------------------------------------------------- pure parts


def test_pareto_mask_follows_the_directions_and_keeps_ties():
    points = [[0.5, 10.0], [0.5, 10.0], [0.4, 5.0], [0.3, 6.0], [0.6, 20.0]]
    assert sweep_report.pareto_mask(points, ["maximize", "minimize"]) == [True, True, True, False, True]
    assert sweep_report.pareto_mask(points, ["minimize", "minimize"]) == [False, False, True, True, False]


def test_best_so_far_and_front_labels():
    assert sweep_report.best_so_far([None, 2.0, 1.0, None, 3.0], "maximize") == [None, 2.0, 2.0, 2.0, 3.0]
    assert sweep_report.best_so_far([None, 2.0, 1.0, None, 3.0], "minimize") == [None, 2.0, 1.0, 1.0, 1.0]
    import pandas as pd

    front = pd.DataFrame({"trial": [4, 0, 2], "a": [1.0, 1.0, 2.0], "b": [3.0, 3.0, 1.0]})
    assert _front_labels(front, "a", "b") == [(1.0, 3.0, "#0,#4"), (2.0, 1.0, "#2")]


# ----------------------------------------------------------------------------- real sweeps through the CLI


@pytest.mark.slow  # two debug=smoke sweeps (2 + 3 trials): 2-3 min here
def test_report_of_real_cli_sweeps(tmp_path, model_cache):
    tiny = [o for o in tiny_overrides(model_cache) if not o.startswith("train.steps=")]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for search, n in (("lr_single", 2), ("quality_vs_time", 3)):
        proc = run_cli(["-m", f"hparams_search={search}", f"hydra.sweeper.n_trials={n}",
                        f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}", f"tracking.uri={uri}",
                        f"hydra.sweep.dir={tmp_path / search}", *tiny, "train.steps=1"], cwd=tmp_path,
                       env_extra={"OMP_NUM_THREADS": "1"})
        assert proc.returncode == 0, proc.stderr[-3000:]
    for name, n in (("igrpo_lr_single", 2), ("igrpo_quality_vs_time", 3)):
        assert sweep_report.main(["--study", name, "--tracking-uri", uri, "--out", str(tmp_path / name)]) == 0
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
        rows = _rows(tmp_path / name / "trials.csv")
        assert [int(r["trial"]) for r in rows] == list(range(n))
        for row, trial in zip(rows, study.trials):
            assert row["state"] == "COMPLETE"
            assert float(row[QUALITY]) == pytest.approx(trial.values[0], rel=1e-9)
        assert (tmp_path / name / "report.html").exists() and (tmp_path / name / "figures" / "history.png").exists()
    logged = _logged_front(uri, "igrpo_quality_vs_time", tmp_path)
    rows = _rows(tmp_path / "igrpo_quality_vs_time" / "trials.csv")
    assert sorted(int(r["trial"]) for r in rows if r["pareto"] == "True") == logged
    assert float(rows[0][SECONDS]) > 0
