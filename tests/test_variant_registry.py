"""The variant registry: every built-in method registers its schema, budget, checks and trainer in its own module,
and a fifth method added from outside the library (tests/toy_variant.py) runs through ``run.py`` like the others."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlflow.tracking import MlflowClient

from igrpo.variants import names, variant_of
from tests.helpers import ROOT, compose_config, run_cli, smoke_overrides

PLUGIN = {"IGRPO_VARIANT_MODULES": "tests.toy_variant"}


def test_builtin_variants_own_their_budgets():
    assert set(names()) >= {"grpo", "igrpo", "critique_grpo", "self_verify"}
    for name, trained in (("grpo", 8), ("igrpo", 4), ("critique_grpo", 8), ("self_verify", 8)):
        cfg = compose_config(f"variant={name}")
        assert variant_of(cfg).group_size(cfg) == trained, name
        assert variant_of(cfg).generated_per_prompt(cfg) == 8, name


def test_no_variant_name_branch_outside_the_registry():
    found = subprocess.run(["grep", "-rn", r"variant.name ==\|variant\.name in\|\.name == \"igrpo\"", "igrpo"],
                           cwd=ROOT, capture_output=True, text=True).stdout.splitlines()
    assert [line for line in found if not line.startswith("igrpo/variants/")] == []


def test_a_fifth_variant_from_a_test_module_runs_end_to_end(model_cache, tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_cli(["variant=half_group", *smoke_overrides(model_cache), f"tracking.uri={db}"], cwd=tmp_path,
                   env_extra=PLUGIN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=db)
    (run,) = client.search_runs([client.get_experiment_by_name("igrpo").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["variant"] == "half_group"
    assert run.data.params["variant.group_fraction"] == "0.5"
    spent = client.get_metric_history(run.info.run_id, "rollouts/generated_per_prompt")
    assert spent and {m.value for m in spent} == {4.0}  # half of the default budget of 8
    assert client.get_metric_history(run.info.run_id, "train/half_group/groups")  # the trainer subclass's own metric


def test_a_fifth_variants_field_rule_is_a_one_line_error(tmp_path: Path):
    proc = run_cli(["variant=half_group", "variant.group_fraction=2"], cwd=tmp_path, env_extra=PLUGIN, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0] == "error: variant.group_fraction=2.0 is not valid; it must be in (0, 1]"
    unknown = run_cli(["variant=half_group"], cwd=tmp_path, timeout=120)  # without the module: not an option
    assert unknown.returncode == 2 and "variant=half_group is not a known option" in unknown.stderr
