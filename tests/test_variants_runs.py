"""The four Table-1 methods side by side, as a user runs them: ``python run.py -m
variant=grpo,igrpo,critique_grpo,self_verify`` (smoke size) gives four FINISHED runs under one parent run, each
logging the same rollout spend per prompt and its own metrics and rollout-table stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_cli, smoke_overrides

VARIANTS = ("grpo", "igrpo", "critique_grpo", "self_verify")
OWN_METRICS = {  # metrics only that variant logs
    "igrpo": ("draft/reward_mean", "draft/frac_groups_zero_std"),
    "critique_grpo": ("critique/initial_reward_mean", "critique/refinement_reward_mean",
                      "critique/refinement_fixed_frac", "critique/shaping_mean", "critique/frac_groups_zero_std",
                      "critique/initial_frac_groups_zero_std"),
    "self_verify": ("verify/accuracy", "verify/yes_rate", "verify/unparseable_frac", "verify/frac_groups_zero_std",
                    "verify/solve_frac_groups_zero_std", "buffer/size", "buffer/correct_frac", "reward/verify"),
}
STAGES = {"grpo": {"grpo"}, "igrpo": {"draft", "refinement"}, "critique_grpo": {"initial", "refinement"},
          "self_verify": {"solve", "verify"}}


@pytest.fixture(scope="module")
def four_runs(model_cache, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("four_variants")
    db = f"sqlite:///{tmp / 'mlflow.db'}"
    proc = run_cli(["-m", f"variant={','.join(VARIANTS)}", *smoke_overrides(model_cache), f"tracking.uri={db}"],
                   cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=db)
    experiment = client.get_experiment_by_name("igrpo")
    return client, client.search_runs([experiment.experiment_id])


def test_four_finished_runs_under_one_parent(four_runs):
    _, runs = four_runs
    parents = [r for r in runs if r.data.tags.get("phase") == "sweep"]
    children = [r for r in runs if r.data.tags.get("phase") == "train"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["variant"] for r in children) == sorted(VARIANTS)
    assert all(r.info.status == "FINISHED" for r in children)
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_run_logs_the_matched_spend_and_its_own_metrics(four_runs, variant):
    client, runs = four_runs
    run = next(r for r in runs if r.data.tags.get("variant") == variant)
    metrics = run.data.metrics
    assert metrics["rollouts/generated_per_prompt"] == 8.0  # the default budget, for every method
    for name in OWN_METRICS.get(variant, ()):
        assert name in metrics, name
    others = {m for v, names in OWN_METRICS.items() if v != variant for m in names}
    assert not others & set(metrics)  # no variant logs another's metrics
    table = json.loads(Path(client.download_artifacts(run.info.run_id, "rollouts.json")).read_text())
    assert set(table["columns"]) >= {"stage", "prompt", "completion", "reward"}
    stages = {row[table["columns"].index("stage")] for row in table["data"]}
    assert stages == STAGES[variant]
