"""hydra/sweeper=igrpo_optuna: search-space parsing, and real sweeps through the Hydra CLI with a real optuna
SQLite study, a real MLflow SQLite store and tiny real runs (one training step each)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

# Hydra re-executes plugin modules in place whenever it scans for plugins (each compose in this process), so
# names are looked up on the module at call time, never bound at import.
from hydra_plugins.igrpo_optuna_sweeper import search_space
from tests.helpers import ROOT, run_cli, tiny_overrides

# ----------------------------------------------------------------------------- search space (pure)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("interval(1e-5, 1e-3)", FloatDistribution(1e-5, 1e-3)),
        ("tag(log, interval(1e-5, 1e-3))", FloatDistribution(1e-5, 1e-3, log=True)),
        ("int(interval(1, 8))", IntDistribution(1, 8)),
        ("tag(log, int(interval(1, 64)))", IntDistribution(1, 64, log=True)),
        ("choice(a, b, c)", CategoricalDistribution(["a", "b", "c"])),
        ("choice(0.5, -1.0)", CategoricalDistribution([0.5, -1.0])),
        ("2,4", CategoricalDistribution([2, 4])),
        ("range(1, 5)", IntDistribution(1, 4)),
        ("range(1, 10, 3)", IntDistribution(1, 7, step=3)),
    ],
)
def test_search_space_strings_map_to_optuna_distributions(text, expected):
    assert search_space.parse_search_space("algo.learning_rate", text) == expected


@pytest.mark.parametrize(
    "text, reason",
    [
        ("loguniform(1e-5, 1e-3)", "Unknown function 'loguniform'"),
        ("1e-4", "a single value, not a sweep"),
        ("interval(1e-5)", "missing a required argument"),
        ("tag(log, interval(0, 1))", "low > 0"),
        ("tag(lg, interval(1, 2))", "unknown tag lg"),
        ("range(3, 3)", "the range is empty"),
    ],
)
def test_bad_search_space_is_one_line_error_naming_key_and_forms(text, reason):
    with pytest.raises(search_space.SearchSpaceError) as info:
        search_space.parse_search_space("algo.learning_rate", text)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"hydra.sweeper.params.algo.learning_rate={text!r} is not a valid search space")
    assert reason in message
    assert "interval(low, high)" in message and "choice(a, b, ...)" in message and "range(start, stop" in message


# ----------------------------------------------------------------------------- real sweeps


def _sweep_args(tmp_path, model_cache, *extra: str, sweep_dir: str = "sweep") -> list[str]:
    tiny = [o for o in tiny_overrides(model_cache) if not o.startswith("train.steps=")]
    return ["-m", f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
            f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", f"hydra.sweep.dir={tmp_path / sweep_dir}",
            *tiny, "train.steps=1", *extra]


def _study(tmp_path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")


def _mlflow(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("igrpo")
    runs = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL) if experiment else []
    return client, runs


def _parent_id(tmp_path, study_name: str) -> str | None:
    """The study's MLflow parent run: found by its key (study name and storage), as igrpo's callback finds it."""
    from igrpo.tracking.names import optuna_parent_key
    from igrpo.tracking.parent import find_parent_run

    return find_parent_run(f"sqlite:///{tmp_path / 'mlflow.db'}", "igrpo",
                           optuna_parent_key(study_name, f"sqlite:///{tmp_path / 'optuna.db'}"))


def _children(runs, study_name: str):
    return [r for r in runs if r.data.tags.get("phase") == "train" and r.data.tags.get("optuna_study") == study_name]


def test_single_objective_sweep_runs_n_trials_as_children_of_the_study_parent(tmp_path, model_cache):
    proc = run_cli(_sweep_args(tmp_path, model_cache, "hparams_search=lr_single", "hydra.sweeper.n_trials=6"),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    study = _study(tmp_path, "igrpo_lr_single")
    assert [t.number for t in study.trials] == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert {"algo.learning_rate", "variant.num_drafts"} == set(study.trials[0].params)
    parent_id = _parent_id(tmp_path, "igrpo_lr_single")

    client, runs = _mlflow(tmp_path)
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["optuna_study"] == "igrpo_lr_single"
    assert parent.data.tags["best.trial"] == str(study.best_trial.number)
    assert "best.eval/mean/avg_at_k" in parent.data.metrics
    children = _children(runs, "igrpo_lr_single")
    assert sorted(int(r.data.tags["optuna_trial"]) for r in children) == list(range(6))
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent_id
        trial = study.trials[int(child.data.tags["optuna_trial"])]
        assert float(child.data.params["algo.learning_rate"]) == pytest.approx(trial.params["algo.learning_rate"])
        assert child.data.metrics["eval/mean/avg_at_k"] == pytest.approx(trial.value)

    for n in range(6):
        assert f"[igrpo_optuna] trial {n}: algo.learning_rate=" in proc.stdout
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["best_trial"] == study.best_trial.number and results["trials"]["complete"] == 6
    assert results["best_params"] == study.best_trial.params


def _trial_states(db) -> list[str]:
    """The study's trial states, read-only (the sweep process owns the database)."""
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
        try:
            return [state for (state,) in con.execute("SELECT state FROM trials")]
        finally:
            con.close()
    except sqlite3.Error:  # not created yet, or locked
        return []


@pytest.mark.slow  # ~1 min each: run with `pytest -m slow`
def test_killed_sweep_resumes_with_the_same_parent_and_continued_trial_numbers(tmp_path, model_cache):
    args = _sweep_args(tmp_path, model_cache, "hparams_search=lr_single", "hydra.sweeper.n_trials=6",
                       sweep_dir="sweep1")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=tmp_path, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 400
            while True:  # kill once 2 trials finished and the next one is running
                states = _trial_states(tmp_path / "optuna.db")
                if states.count("COMPLETE") >= 2 and "RUNNING" in states:
                    break
                assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the first sweep never reached 2 finished trials"
                time.sleep(0.2)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    killed = [t.number for t in _study(tmp_path, "igrpo_lr_single").trials if t.state == TrialState.RUNNING]
    assert len(killed) == 1
    first_parent = _parent_id(tmp_path, "igrpo_lr_single")
    assert first_parent is not None

    args = [a if not a.startswith("hydra.sweep.dir=") else f"hydra.sweep.dir={tmp_path / 'sweep2'}" for a in args]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 interrupted marked FAIL" in proc.stdout

    study = _study(tmp_path, "igrpo_lr_single")
    numbers = [t.number for t in study.trials]
    assert len(numbers) >= 6 and numbers == list(range(len(numbers)))  # continued, no duplicates
    killed_trial = study.trials[killed[0]]
    assert killed_trial.state == TrialState.FAIL and "interrupted" in killed_trial.user_attrs["fail_reason"]
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    complete = [t.number for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == len(numbers) - 1
    assert _parent_id(tmp_path, "igrpo_lr_single") == first_parent

    client, runs = _mlflow(tmp_path)
    assert client.get_run(first_parent).info.status == "FINISHED"
    assert (tmp_path / "sweep2" / ".mlflow_parent_run").read_text().strip() == first_parent
    sweeps = [r for r in runs if r.data.tags.get("phase") == "sweep"]
    assert [r.info.run_id for r in sweeps] == [first_parent]  # found again by its key: no second parent made
    children = _children(runs, "igrpo_lr_single")
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert sorted(int(r.data.tags["optuna_trial"]) for r in finished) == complete
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {first_parent}
    assert not [r for r in runs if r.info.status == "RUNNING"]  # the killed trial's run (if any) is KILLED


def test_failing_trial_is_fail_and_the_sweep_goes_on(tmp_path, model_cache):
    # seed 0 draws -1.0 (rejected by validation: exit 2 inside the job) for trials 0 and 1, then 5e-5
    proc = run_cli(_sweep_args(tmp_path, model_cache, "hparams_search=lr_single", "hydra.sweeper.n_trials=3",
                               "algo.learning_rate=choice(5e-5,-1.0)"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    study = _study(tmp_path, "igrpo_lr_single")
    states = {t.state for t in study.trials}
    assert len(study.trials) == 3 and states == {TrialState.FAIL, TrialState.COMPLETE}
    for trial in study.trials:
        bad = trial.params["algo.learning_rate"] == -1.0
        assert trial.state == (TrialState.FAIL if bad else TrialState.COMPLETE)
        if bad:
            assert "exited with status 2" in trial.user_attrs["fail_reason"]
            assert f"[igrpo_optuna] trial {trial.number}: algo.learning_rate=-1 " in proc.stdout
    assert "error: algo.learning_rate=-1.0 is not valid" in proc.stderr
    client, runs = _mlflow(tmp_path)
    assert client.get_run(_parent_id(tmp_path, "igrpo_lr_single")).info.status == "FINISHED"
    assert len(_children(runs, "igrpo_lr_single")) == sum(t.state == TrialState.COMPLETE for t in study.trials)


@pytest.mark.slow  # ~1 min each: run with `pytest -m slow`
def test_multi_objective_sweep_gives_two_values_per_trial_and_a_pareto_front(tmp_path, model_cache):
    proc = run_cli(_sweep_args(tmp_path, model_cache, "hparams_search=quality_vs_time", "hydra.sweeper.n_trials=3"),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = _study(tmp_path, "igrpo_quality_vs_time")
    assert len(study.trials) == 3
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE and len(trial.values) == 2 and trial.values[1] > 0
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["objective"] == ["eval/mean/avg_at_k", "perf/run_seconds"]
    assert sorted(t["trial"] for t in results["pareto_front"]) == sorted(t.number for t in study.best_trials)
    client, _ = _mlflow(tmp_path)
    parent = client.get_run(_parent_id(tmp_path, "igrpo_quality_vs_time"))
    assert parent.data.metrics["pareto_front_size"] == len(study.best_trials)
    assert "pareto_front.json" in [a.path for a in client.list_artifacts(parent.info.run_id)]


def test_directions_must_match_the_objectives(tmp_path):
    proc = run_cli(["-m", "hparams_search=lr_single", "hydra.sweeper.direction=[maximize,minimize]",
                    f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
                    f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"], cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: objective lists 1 metric(s)"), proc.stderr
    _, runs = _mlflow(tmp_path)  # no trial ran; the study's parent run ended FAILED (the sweep was refused)
    assert [r.data.tags["phase"] for r in runs] == ["sweep"] and runs[0].info.status == "FAILED"
