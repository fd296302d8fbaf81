"""The four Table-1 methods side by side, as a user runs them: ``python run.py -m
variant=grpo,igrpo,critique_grpo,self_verify`` (smoke size) gives four FINISHED runs under one parent run, each
logging the same rollout spend per prompt and its own metrics and rollout-table stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import ROOT, run_cli, smoke_overrides

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


# --- Table 1's arms and the paper's reference rows -----------------------------------------------------------


def test_table1_runs_all_four_methods_at_cpu_scale_and_the_baselines_on_two_paper_models():
    from experiments.plan import plan_runs
    from experiments.spec import load_spec

    spec = load_spec("table1")
    cpu = plan_runs(spec, "cpu")
    assert {(p.arm.label, p.seed) for p in cpu} == {(a, s) for a in ("GRPO", "Self-Verification", "Critique-GRPO",
                                                                      "iGRPO", "GRPO-4") for s in (0, 1, 2)}
    paper = {(p.group.label, p.arm.label) for p in plan_runs(spec, "paper")}
    baselines = {g for g, a in paper if a in ("Self-Verification", "Critique-GRPO")}
    assert baselines == {"Nemotron-H-8B-Base-8K", "DeepSeek-R1-Distill-Qwen-7B"}
    assert {g for g, a in paper if a == "iGRPO"} == {g for g, a in paper if a == "GRPO"} and len(paper) == 12
    critique = next(p for p in plan_runs(spec, "paper") if p.arm.label == "Critique-GRPO")
    assert "variant.template=paper" in critique.overrides  # the scale's `when` for that variant only
    assert not any(o.startswith("variant.template") for p in plan_runs(spec, "paper")
                   if p.arm.label == "GRPO" for o in p.overrides)


def test_a_group_naming_an_unknown_arm_or_leaving_out_the_baseline_is_refused(tmp_path):
    import yaml

    from experiments.spec import SpecError, load_spec

    base = yaml.safe_load((ROOT / "experiments/specs/table1.yaml").read_text())
    (tmp_path / "_scales.yaml").write_text((ROOT / "experiments/specs/_scales.yaml").read_text())
    for arms, message in ((["GRPO", "PPO"], "'PPO' is not valid; choose from the arms"),
                          (["iGRPO"], "must include the table's baseline 'GRPO'")):
        base["scales"]["paper"]["groups"][2]["arms"] = arms
        (tmp_path / "table1.yaml").write_text(yaml.safe_dump(base))
        with pytest.raises(SpecError, match=message):
            load_spec("table1", spec_dir=tmp_path)


def test_paper_reference_holds_every_table1_row():
    from analysis.paper_reference import TABLE1, amc_is_avg_at_8, check_avg, table1_reference

    ref = table1_reference().table
    rows = set(zip(ref.model, ref.method))
    for model in ("Nemotron-H-8B-Base-8K", "DeepSeek-R1-Distill-Qwen-7B"):
        assert {(model, f"+ {m}") for m in ("GRPO", "Self-Verification", "Critique-GRPO", "iGRPO")} <= rows
    assert {("OpenMath-Nemotron-14B", m) for m in ("base", "+ GRPO", "+ iGRPO")} <= rows
    sv = ref[(ref.model == "DeepSeek-R1-Distill-Qwen-7B") & (ref.method == "+ Self-Verification")].iloc[0]
    assert (sv["AMC"], sv["Avg (printed)"], sv["check"]) == ("92.50", "69.08", "ok")
    assert len(TABLE1) == 19 and sum(not check_avg(c, p)[1] for _, _, c, p in TABLE1) == 1  # only the known misprint
    assert amc_is_avg_at_8(92.50) and not amc_is_avg_at_8(46.50)
