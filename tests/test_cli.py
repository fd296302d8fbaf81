"""The real Hydra CLI: multirun nesting in MLflow, printed config, and one-line errors."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_cli, tiny_overrides


def _runs(db):
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("igrpo")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id])


def test_env_tracking_uri_is_honoured(tmp_path, model_cache):
    """MLFLOW_TRACKING_URI reaches a CLI run (that an explicit tracking.uri wins is tested on resolve_tracking_uri)."""
    env_db = tmp_path / "env.db"
    proc = run_cli(["variant=grpo", *tiny_overrides(model_cache)], cwd=tmp_path,
                   env_extra={"MLFLOW_TRACKING_URI": f"sqlite:///{env_db}"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len([r for r in _runs(env_db) if r.data.tags.get("phase") == "train"]) == 1
    assert not (tmp_path / "mlflow.db").exists()


def test_cfg_job_prints_composed_config(tmp_path):
    proc = run_cli(["--cfg", "job", "variant=grpo"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "variant:\n  name: grpo" in proc.stdout and "rollout_budget: 8" in proc.stdout


@pytest.mark.parametrize(
    "override, expected",
    [
        ("variant=foo", "variant=foo is not a known option; choose one of: critique_grpo, grpo, igrpo, self_verify"),
        ("variant.num_refinements=6", "budget mismatch"),
    ],
)
def test_bad_config_is_one_line_error_and_no_run(override, expected, tmp_path, model_cache):
    """The CLI contract: exit status 2, one line on stderr, no traceback, no MLflow run (a group choice is
    checked before Hydra starts, a value by igrpo.config.validate before anything is written)."""
    db = tmp_path / "mlflow.db"
    proc = run_cli([*override.split(), f"tracking.uri=sqlite:///{db}", *tiny_overrides(model_cache)], cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in proc.stderr
    assert not _runs(db)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("variant.num_drafts=0", "variant.num_drafts=0 is not valid"),
        ("variant.num_refinements=6", "budget mismatch"),
        ("model=hf model.path=/nonexistent", "model.path='/nonexistent' does not exist"),
        ("model=hf", "model.path is required by the chosen options"),
        ("algo.learning_rate=-0.001", "algo.learning_rate=-0.001 is not valid; it must be > 0"),
        ("variant.selection=median", "variant.selection='median' is not valid; choose one of: best, worst"),
        ("variant.rounds=0", "variant.rounds=0 is not valid"),
        ("entropy=constant entropy.coef=-0.5", "entropy.coef=-0.5 is not valid"),
        ("reward=judge reward/judge=http", "reward.judge.url is required"),
    ],
)
def test_bad_values_are_one_line_config_errors(override, expected, compose):
    """Every value check, in-process (the CLI turns a ConfigError into the line above)."""
    from igrpo.errors import ConfigError
    from igrpo.config.validate import validate

    with pytest.raises(ConfigError) as info:
        validate(compose(*override.split()))
    assert expected in str(info.value) and "\n" not in str(info.value)


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


def test_multirun_of_every_algo_under_both_wrappers_nests_under_one_parent(tmp_path, model_cache):
    """``-m variant=grpo,igrpo algo=...``: 8 runs, all children of one FINISHED parent found by its sweep-dir key."""
    db = tmp_path / "mlflow.db"
    proc = run_cli(["-m", "variant=grpo,igrpo", "algo=grpo,dapo,dr_grpo,gspo", f"tracking.uri=sqlite:///{db}",
                    *tiny_overrides(model_cache)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = _runs(db)
    parents = [r for r in runs if r.data.tags.get("phase") == "sweep"]
    children = [r for r in runs if r.data.tags.get("phase") == "train"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.tags["igrpo.parent_key"].startswith("sweep:")  # found again by this key (sweep dir)
    assert sorted((r.data.tags["variant"], r.data.tags["algo"]) for r in children) == sorted(
        (v, a) for v in ("grpo", "igrpo") for a in ("grpo", "dapo", "dr_grpo", "gspo"))
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert "eval/mean/avg_at_2" in child.data.metrics and "train/entropy" in child.data.metrics
    assert "view: mlflow ui --backend-store-uri" in proc.stdout
    assert "/runs?workflowType=machine_learning" in proc.stdout  # the address that opens on the runs table


def test_draft_count_sweep_stays_budget_matched(compose):
    """num_refinements follows num_drafts (rollout_budget - N x rounds), so a sweep over N stays matched; the
    run logs the resolved values."""
    from igrpo.job.runner import run

    assert compose("variant.num_drafts=2").variant.num_refinements == 6
    cfg = compose("variant.num_drafts=6", "variant.selection=worst")
    assert cfg.variant.num_refinements == 2
    result = run(cfg)
    params = MlflowClient(cfg.tracking.uri).get_run(result.run_id).data.params
    assert (params["variant.num_drafts"], params["variant.num_refinements"]) == ("6", "2")
