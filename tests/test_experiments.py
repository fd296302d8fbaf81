"""Experiment specs: every spec loads, every arm composes with the real Hydra config, mistakes are one line,
and `python -m experiments run` creates the planned MLflow runs (nested, tagged, named) and resumes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import ROOT, tiny_overrides
from experiments.__main__ import main as experiments_main
from experiments.execute import compose_runs
from experiments.plan import plan_runs
from experiments.spec import FIGURES, SCALES, SPEC_DIR, SpecError, load_spec, spec_names
from igrpo.cli import find_bad_group_choice

PAPER_SPECS = ("table1", "table2", "table3", "tableS4_kl", "tableS4_budget", "fig3_entropy", "selection")


def test_every_paper_result_has_a_spec():
    assert set(PAPER_SPECS) <= set(spec_names())
    for name in spec_names():
        spec = load_spec(name)
        assert spec.name == name and set(spec.scales) == set(SCALES) and spec.arms
        assert set(spec.figures) <= set(FIGURES)
        layout = spec.scale("cpu").table
        assert layout.baseline is None or layout.baseline in [a.label for a in spec.arms]


@pytest.mark.parametrize("name", PAPER_SPECS)
@pytest.mark.parametrize("scale", SCALES)
def test_every_arm_composes(name, scale, model_cache, tmp_path):
    """Each planned run composes with the real config and validates; names and config hashes are distinct.
    Arms whose config-group options do not exist yet (paper scale, the judge reward) are skipped by name."""
    spec = load_spec(name)
    runs = plan_runs(spec, scale, seeds=[0, 1])
    assert len(runs) == len(spec.scale(scale).groups) * len(spec.arms) * 2
    absent = sorted({bad for r in runs if (bad := find_bad_group_choice(list(r.overrides)))})
    if absent:
        pytest.skip(f"{name}/{scale} needs config files not in conf/ yet: {'; '.join(absent)}")
    # paper scale: composed (keys and types checked) but not value-checked: that needs a CUDA device
    cfgs = compose_runs(plan_runs(spec, scale, seeds=[0, 1], extra=tiny_overrides(model_cache) if scale == "cpu"
                                  else ()), tmp_path, check_values=scale == "cpu")
    for run, cfg in zip(runs, cfgs):
        assert cfg.tracking.experiment == name and cfg.tracking.tags["arm"] == run.arm.label
        assert cfg.tracking.tags["scale"] == scale and cfg.seed == run.seed
        if run.arm.suffix:
            assert cfg.tracking.run_name.endswith(f"-s{run.seed}-{run.arm.suffix}")


def test_budget_arms_split_the_budget_evenly(model_cache, tmp_path):
    spec = load_spec("tableS4_budget")
    cfgs = compose_runs(plan_runs(spec, "cpu", seeds=[0]), tmp_path)
    assert [(c.rollout_budget, c.variant.num_drafts, c.variant.num_refinements) for c in cfgs] == [
        (b, b // 2, b // 2) for b in (4, 8, 16, 32)]
    assert [c.tracking.run_name for c in cfgs] == [f"igrpo-grpo-binary-s0-budget{b}" for b in (4, 8, 16, 32)]


def _write_spec(tmp_path: Path, name: str, edit) -> Path:
    raw = yaml.safe_load((SPEC_DIR / "fig3_entropy.yaml").read_text())
    raw["name"] = name
    edit(raw)
    (tmp_path / "_scales.yaml").write_text((SPEC_DIR / "_scales.yaml").read_text())
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("edit, expected", [
    (lambda r: r.update(colour="red"), ["colour", "arms", "scales"]),
    (lambda r: r["arms"][0].update(lable="x"), ["lable", "label"]),
    (lambda r: r.update(figures=["entropy", "entropie"]), ["entropie", "zero_std"]),
    (lambda r: r["table"].update(baseline="PPO"), ["PPO", "GRPO, iGRPO"]),
    (lambda r: r["scales"].pop("paper"), ["paper", "cpu, paper"]),
    (lambda r: r["scales"].update(gpu={}), ["gpu", "cpu, paper"]),
    (lambda r: r["scales"].update(cpu={"seeds": [0, "one"]}), ["seeds", "integers"]),
    (lambda r: r["arms"][1].update(overrides=["variant"]), ["'variant'", "key=value"]),
    (lambda r: r["arms"].append({"label": "GRPO"}), ["GRPO", "twice"]),
    (lambda r: r["table"].update(base_row="yes"), ["yes", "true, false"]),
    (lambda r: r.update(paper_reference="table9"), ["table9", "table1"]),
])
def test_bad_spec_is_one_line_naming_value_and_choices(tmp_path, edit, expected):
    path = _write_spec(tmp_path, "bad", edit)
    with pytest.raises(SpecError) as err:
        load_spec(path, spec_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message and message.startswith("bad.yaml")
    for word in expected:
        assert word in message, (word, message)


def test_cli_errors_are_one_line(capsys):
    for argv, words in ((["run", "nosuch"], ["nosuch", "table1", "fig3_entropy"]),
                        (["run", "table1", "--scale", "gpu"], ["gpu", "cpu, paper"]),
                        (["run", "table1", "--seeds", "0,x"], ["0,x"]),
                        (["run", "table1", "--", "variant=foo"], ["variant=foo", "grpo, igrpo"])):
        assert experiments_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("error: "), err
        assert all(w in err for w in words), (words, err)


def test_paper_scale_dry_run_prints_every_command(capsys):
    assert experiments_main(["run", "table1", "--scale", "paper", "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    commands = [ln for ln in lines if ln.startswith("python run.py ")]
    spec = load_spec("table1")
    assert len(commands) == len(spec.scale("paper").groups) * len(spec.arms) * len(spec.scale("paper").seeds)
    assert all("task=math" in c and "tracking.experiment=table1" in c and "++tracking.tags.scale=paper" in c
               for c in commands)
    assert any("model=openmath_nemotron_7b" in c and "variant=igrpo" in c for c in commands)


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "experiments", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def tiny_fig3_args(uri: str, cache: Path) -> list[str]:
    return ["run", "fig3_entropy", "--scale", "cpu", "--seeds", ",".join(map(str, TINY_SEEDS)), "--tracking-uri",
            uri, "--", *tiny_overrides(cache), "train.steps=3"]


TINY_SEEDS = [0, 1]


def tiny_fig3_runs(base: Path, cache: Path) -> tuple[str, str]:
    """The one tiny run set shared by the experiment, analysis and browser tests: ``python -m experiments run
    fig3_entropy`` (GRPO and iGRPO x 2 seeds, 3 steps) into ``base/mlflow.db``, launched by whichever test
    needs it first. Returns (tracking URI, stdout of that first invocation)."""
    uri, log = f"sqlite:///{base / 'mlflow.db'}", base / "first_invocation.txt"
    if not log.exists():
        base.mkdir(parents=True, exist_ok=True)
        first = _cli(tiny_fig3_args(uri, cache), base)
        assert first.returncode == 0, first.stderr[-3000:]
        log.write_text(first.stdout)
    return uri, log.read_text()


@pytest.fixture(scope="module")
def fig3_runs(tmp_path_factory, model_cache):
    base = tmp_path_factory.getbasetemp() / "tiny_fig3"
    return base, *tiny_fig3_runs(base, model_cache)


def test_run_creates_nested_tagged_runs_and_resumes(fig3_runs, model_cache):
    base, uri, first_stdout = fig3_runs
    assert "4 launched, 0 skipped" in first_stdout
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("fig3_entropy")
    runs = client.search_runs([exp.experiment_id], "tags.experiment = 'fig3_entropy'")
    parents = [r for r in runs if r.data.tags.get("phase") == "experiment"]
    children = [r for r in runs if r.data.tags.get("phase") == "train"]
    assert len(parents) == 1 and len(children) == 4 and len(runs) == 5
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.info.run_name for r in children} == {f"{v}-grpo-binary-s{s}" for v in ("grpo", "igrpo") for s in (0, 1)}
    for r in children:
        tags = r.data.tags
        assert tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert tags["scale"] == "cpu" and tags["arm"] == {"grpo": "GRPO", "igrpo": "iGRPO"}[tags["variant"]]
        assert [m.step for m in client.get_metric_history(r.info.run_id, "train/entropy")] == [1, 2, 3]

    second = _cli(tiny_fig3_args(uri, model_cache), base)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("skip ") == 4 and "0 launched, 4 skipped" in second.stdout
    assert len(client.search_runs([exp.experiment_id], "tags.experiment = 'fig3_entropy'")) == 5
