"""The real Hydra CLI: multirun nesting in MLflow, printed config, and one-line errors."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli, tiny_overrides


def _runs(db):
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("igrpo")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id])


def test_multirun_gives_children_under_one_parent(tmp_path, model_cache):
    db = tmp_path / "mlflow.db"
    proc = run_cli(["-m", "variant=grpo,igrpo", f"tracking.uri=sqlite:///{db}", *tiny_overrides(model_cache)],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = _runs(db)
    parents = [r for r in runs if r.data.tags.get("phase") == "sweep"]
    children = [r for r in runs if r.data.tags.get("phase") == "train"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["variant"] for r in children) == ["grpo", "igrpo"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert "eval/mean/avg_at_2" in child.data.metrics and "train/entropy" in child.data.metrics
    assert "view: mlflow ui --backend-store-uri" in proc.stdout


def test_env_tracking_uri_is_honoured_and_explicit_wins(tmp_path, model_cache):
    env_db, explicit_db = tmp_path / "env.db", tmp_path / "explicit.db"
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{env_db}"}
    proc = run_cli(["variant=grpo", *tiny_overrides(model_cache)], cwd=tmp_path, env_extra=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len([r for r in _runs(env_db) if r.data.tags.get("phase") == "train"]) == 1
    proc = run_cli(["variant=grpo", f"tracking.uri=sqlite:///{explicit_db}", *tiny_overrides(model_cache)],
                   cwd=tmp_path, env_extra=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len([r for r in _runs(explicit_db) if r.data.tags.get("phase") == "train"]) == 1
    assert len([r for r in _runs(env_db) if r.data.tags.get("phase") == "train"]) == 1


def test_cfg_job_prints_composed_config(tmp_path):
    proc = run_cli(["--cfg", "job", "variant=grpo"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "variant:\n  name: grpo" in proc.stdout and "rollout_budget: 8" in proc.stdout


@pytest.mark.parametrize(
    "override, expected",
    [
        ("variant=foo", "variant=foo is not a known option; choose one of: grpo, igrpo"),
        ("algo=foo", "algo=foo is not a known option; choose one of: bnpo, dapo, dr_grpo, grpo, gspo"),
        ("variant.num_drafts=0", "variant.num_drafts=0 is not valid"),
        ("variant.num_refinements=6", "budget mismatch"),
        ("model.path=/nonexistent", "model.path='/nonexistent' does not exist"),
        ("algo.learning_rate=-0.001", "algo.learning_rate=-0.001 is not valid; it must be > 0"),
        ("variant.selection=median", "variant.selection='median' is not valid; choose one of: best, worst"),
        ("variant.rounds=0", "variant.rounds=0 is not valid"),
        ("entropy=constant entropy.coef=-0.5", "entropy.coef=-0.5 is not valid"),
    ],
)
def test_bad_config_is_one_line_error_and_no_run(override, expected, tmp_path, model_cache):
    db = tmp_path / "mlflow.db"
    proc = run_cli([*override.split(), f"tracking.uri=sqlite:///{db}", *tiny_overrides(model_cache)], cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in proc.stderr
    assert not [r for r in _runs(db) if r.info.status == "RUNNING"]


def test_multirun_with_a_failing_job_fails_its_parent(tmp_path, model_cache):
    db = tmp_path / "mlflow.db"
    proc = run_cli(["-m", "variant.num_drafts=4,0", f"tracking.uri=sqlite:///{db}", *tiny_overrides(model_cache)],
                   cwd=tmp_path)
    assert proc.returncode != 0
    assert "error: variant.num_drafts=0 is not valid" in proc.stderr
    runs = _runs(db)
    parent = [r for r in runs if r.data.tags.get("phase") == "sweep"]
    children = [r for r in runs if r.data.tags.get("phase") == "train"]
    assert len(parent) == 1 and parent[0].info.status == "FAILED"
    assert [c.info.status for c in children] == ["FINISHED"]
    assert not [r for r in runs if r.info.status == "RUNNING"]


def test_every_algo_under_both_wrappers(tmp_path, model_cache):
    db = tmp_path / "mlflow.db"
    proc = run_cli(["-m", "variant=grpo,igrpo", "algo=grpo,dapo,dr_grpo,gspo", f"tracking.uri=sqlite:///{db}",
                    *tiny_overrides(model_cache)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    children = [r for r in _runs(db) if r.data.tags.get("phase") == "train"]
    assert sorted((r.data.tags["variant"], r.data.tags["algo"]) for r in children) == sorted(
        (v, a) for v in ("grpo", "igrpo") for a in ("grpo", "dapo", "dr_grpo", "gspo"))
    for child in children:
        assert child.info.status == "FINISHED" and "train/entropy" in child.data.metrics


def test_draft_count_sweep_stays_budget_matched(tmp_path, model_cache):
    db = tmp_path / "mlflow.db"
    proc = run_cli(["-m", "variant.num_drafts=2,6", "variant.selection=worst", f"tracking.uri=sqlite:///{db}",
                    *tiny_overrides(model_cache)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    children = [r for r in _runs(db) if r.data.tags.get("phase") == "train"]
    assert sorted((r.data.params["variant.num_drafts"], r.data.params["variant.num_refinements"])
                  for r in children) == [("2", "6"), ("6", "2")]
