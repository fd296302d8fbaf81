"""Experiment specs and `python -m experiments run` through Hydra: every spec loads through its typed schema and
every arm composes with the real config; spec and CLI mistakes are one line; the plan, the dry-run's single
multirun command, the plan sweeper's failure contract; and for real, with the smoke profile: fig3_entropy through
the basic launcher (the run set test_analysis reports on) and table1 through joblib, two runs at once, both
FINISHED under one parent run, a second invocation launching nothing, and the report built from MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from analysis.report import check_paper_reference
from experiments.__main__ import main as experiments_main
from experiments.__main__ import launch_settings
from experiments.execute import build_bases, compose_runs, launcher_is_local
from experiments.plan import plan_runs, split_extras
from experiments.spec import FIGURES, SCALES, SPEC_DIR, SpecError, group_arms, load_spec, spec_names
from hydra_plugins.igrpo_plan_sweeper import plan_sweeper
from igrpo.tracking.names import BUILDS_EXPERIMENT
from tests.helpers import ROOT, smoke_overrides, subprocess_env

PAPER_SPECS = ("table1", "table2", "table3", "tableS4_kl", "tableS4_budget", "fig3_entropy", "selection")


def test_every_paper_result_has_a_spec():
    assert set(PAPER_SPECS) <= set(spec_names())
    for name in spec_names():
        spec = load_spec(name)
        assert spec.name == name and set(spec.scales) == set(SCALES) and spec.arms
        assert set(spec.figures) <= set(FIGURES)
        check_paper_reference(spec)
        layout = spec.scale("cpu").table
        assert layout.baseline is None or layout.baseline in [a.label for a in spec.arms]


@pytest.mark.parametrize("name", PAPER_SPECS)
@pytest.mark.parametrize("scale", SCALES)
def test_every_arm_composes(name, scale, tmp_path):
    """Each planned run composes with the real config (values checked at cpu scale; paper scale needs CUDA for
    that); names and config hashes are distinct; a scale's `when` reaches only the runs of its option."""
    spec = load_spec(name)
    runs = plan_runs(spec, scale, seeds=[0])
    assert len(runs) == sum(len(group_arms(spec, g)) for g in spec.scale(scale).groups)  # a group may run fewer arms
    cfgs = compose_runs(runs, tmp_path, check_values=scale == "cpu")
    for run, cfg in zip(runs, cfgs):
        assert cfg.tracking.experiment == name and cfg.tracking.tags["arm"] == run.arm.label
        assert cfg.tracking.tags["scale"] == scale and cfg.seed == run.seed
        if run.arm.suffix:
            assert cfg.tracking.run_name.endswith(f"-s{run.seed}-{run.arm.suffix}")
        if scale == "paper" and cfg.variant.name == "igrpo":
            assert cfg.variant.template == "paper" and cfg.variant.max_draft_tokens == 640
        if scale == "paper" and cfg.variant.name == "critique_grpo":
            assert cfg.variant.template == "paper" and cfg.variant.max_solution_tokens == 640
        if cfg.variant.name == "grpo":
            assert "template" not in cfg.variant and "num_drafts" not in cfg.variant


def test_budget_arms_split_the_budget_evenly(tmp_path):
    spec = load_spec("tableS4_budget")
    cfgs = compose_runs(plan_runs(spec, "cpu", seeds=[0]), tmp_path)
    assert [(c.rollout_budget, c.variant.num_drafts, c.variant.num_refinements) for c in cfgs] == [
        (b, b // 2, b // 2) for b in (4, 8, 16, 32)]
    assert [c.tracking.run_name for c in cfgs] == [f"igrpo-grpo-binary-s0-budget{b}" for b in (4, 8, 16, 32)]


@pytest.mark.parametrize("name", ["table1", "fig3_entropy", "regime"])
def test_debug_smoke_sizes_a_spec_run_whatever_its_scale_sets(name, tmp_path):
    """A scale's train.steps / task.eval_size are value overrides, which beat a preset on Hydra's command line:
    with `-- debug=smoke` the plan leaves them out, so the preset's sizes hold. The scale's other settings (a
    model key the smoke model only inherits, the entropy setting's temperature) and the groups' and arms' stay."""
    spec = load_spec(name)
    full = compose_runs(plan_runs(spec, "cpu", seeds=[0]), tmp_path)
    planned = plan_runs(spec, "cpu", seeds=[0], extra=["debug=smoke"])
    smoke = compose_runs(planned, tmp_path)
    for run, f, s in zip(planned, full, smoke):
        group_model = any(o.startswith("model=") for o in run.group.overrides)   # a group's model choice is its axis
        assert (s.train.steps, s.task.eval_size) == (2, 4)
        assert s.model.name == (f.model.name if group_model else "tiny-smoke")
        assert f.train.steps > 2 and f.task.eval_size > 4
        assert s.model.warmstart_formats == f.model.warmstart_formats
        assert s.generation.temperature == f.generation.temperature
        assert (s.variant.name, s.rollout_budget) == (f.variant.name, f.rollout_budget)
        assert set(run.group.overrides) | set(run.arm.overrides) <= set(run.overrides)
    later = plan_runs(spec, "cpu", seeds=[0], extra=["debug=smoke", "train.steps=3"])
    assert all(r.overrides[-1] == "train.steps=3" for r in later)   # an explicit value after -- still wins
    with pytest.raises(SpecError) as err:
        plan_runs(spec, "cpu", seeds=[0], extra=["debug=smok"])
    assert "\n" not in str(err.value) and "debug=smok" in str(err.value) and "smoke" in str(err.value)


def test_a_scale_launches_its_way_unless_the_command_line_names_a_launcher():
    """The regime's CPU scale runs two at once (its 45-minute budget assumes it); `--` settings add to or replace it."""
    regime = load_spec("regime").scale("cpu").launcher
    assert regime == ("hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2")
    assert launch_settings(regime, []) == list(regime)
    assert launch_settings(regime, ["hydra.launcher.n_jobs=1"])[-1] == "hydra.launcher.n_jobs=1"   # later wins
    assert launch_settings(regime, ["hydra/launcher=slurm"]) == ["hydra/launcher=slurm"]
    assert load_spec("table1").scale("cpu").launcher == ()


def test_bases_are_built_once_before_the_launch(tmp_path):
    """Every run's base is built (here, with the whole machine) before the launcher starts two jobs that would both
    wait on it; two groups of one model share one base, and the build is logged in the runs' store."""
    cache, uri = tmp_path / "cache", f"sqlite:///{tmp_path / 'mlflow.db'}"
    # a recipe no build is shipped for (another warm-start seed), so the base is really built
    runs = plan_runs(load_spec("regime"), "cpu", seeds=[0], extra=[*smoke_overrides(cache), "model=tiny_smoke",
                                                                  "model.warmstart_seed=3"])
    build_bases(compose_runs(runs, tmp_path), uri)
    assert len(list(cache.glob("tiny-*"))) == 1
    builds = MlflowClient(uri).get_experiment_by_name(BUILDS_EXPERIMENT)
    assert len(MlflowClient(uri).search_runs([builds.experiment_id])) == 1
    build_bases(compose_runs(runs, tmp_path), uri)   # cached: nothing more
    assert len(MlflowClient(uri).search_runs([builds.experiment_id])) == 1


def _write_spec(tmp_path: Path, name: str, edit) -> Path:
    raw = yaml.safe_load((SPEC_DIR / "fig3_entropy.yaml").read_text())
    raw["name"] = name
    edit(raw)
    (tmp_path / "_scales.yaml").write_text((SPEC_DIR / "_scales.yaml").read_text())
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("edit, expected", [
    # refused by the schema: unknown keys (with the valid ones) and wrong types, at any depth
    (lambda r: r.update(colour="red"), ["colour", "name, title", "scales"]),
    (lambda r: r["arms"][0].update(lable="x"), ["arms[0].lable", "label, overrides, suffix"]),
    (lambda r: r["scales"].update(gpu={}), ["scales.gpu", "cpu, paper"]),
    (lambda r: r["scales"].update(cpu={"table": {"sutes": []}}), ["scales.cpu.table.sutes", "suite_labels"]),
    (lambda r: r["scales"].update(cpu={"groups": [{"label": "a", "colour": 1}]}), ["groups[0].colour", "label"]),
    (lambda r: r["scales"].update(cpu={"seeds": [0, "one"]}), ["scales.cpu.seeds[1]", "'one'", "integer"]),
    (lambda r: r["table"].update(base_row="maybe"), ["table.base_row", "maybe", "true, false"]),
    (lambda r: r["arms"][1].update(overrides="variant=grpo"), ["arms[1].overrides", "list of strings"]),
    (lambda r: r.update(arms="GRPO"), ["arms='GRPO'", "list of mappings", "label"]),
    (lambda r: r.update(table=3), ["table=3", "base_row"]),
    (lambda r: r.pop("arms"), ["arms is required"]),
    # the checks a schema cannot express
    (lambda r: r.update(figures=["entropy", "entropie"]), ["entropie", "zero_std"]),
    (lambda r: r["table"].update(baseline="PPO"), ["PPO", "GRPO, GRPO-4, iGRPO"]),
    (lambda r: r["scales"].pop("paper"), ["paper", "cpu, paper"]),
    (lambda r: r["scales"].update(cpu={"seeds": [0, -1]}), ["seeds", ">= 0"]),
    (lambda r: r["arms"][1].update(overrides=["variant"]), ["'variant'", "key=value"]),
    (lambda r: r["arms"].append({"label": "GRPO"}), ["GRPO", "twice"]),
    (lambda r: r["arms"][0].update(label="a|b"), ["a|b", "letters"]),
    (lambda r: r["scales"].update(paper={"when": {"variant": ["x=1"]}}), ["when.variant", "key=value"]),
    (lambda r: r["scales"].update(cpu={"launcher": ["train.steps=3"]}), ["scales.cpu.launcher", "hydra/"]),
])
def test_bad_spec_is_one_line_naming_value_and_choices(tmp_path, edit, expected):
    path = _write_spec(tmp_path, "bad", edit)
    with pytest.raises(SpecError) as err:
        load_spec(path, spec_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message and message.startswith("bad.yaml: "), message
    for word in expected:
        assert word in message, (word, message)


def test_paper_reference_is_checked_by_the_report(tmp_path):
    """experiments never imports analysis: a spec with an unknown paper_reference loads, and the report refuses it."""
    spec = load_spec(_write_spec(tmp_path, "ref", lambda r: r.update(paper_reference="table9")), spec_dir=tmp_path)
    assert spec.paper_reference == "table9"
    with pytest.raises(SpecError) as err:
        check_paper_reference(spec)
    assert "\n" not in str(err.value) and "ref.yaml" in str(err.value)
    assert "table9" in str(err.value) and "table1" in str(err.value)


def test_plan_sorts_extras_and_applies_when_per_option():
    run_level, tracking, hydra_level = split_extras(
        ["debug=smoke", "+tracking.tags.note=x", "hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2",
         "tracking.uri=sqlite:///m.db", "~eval.suites.hard", "train.steps=3"])
    assert run_level == ["debug=smoke", "~eval.suites.hard", "train.steps=3"]
    assert tracking == ["+tracking.tags.note=x", "tracking.uri=sqlite:///m.db"]
    assert hydra_level == ["hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2"]
    assert launcher_is_local(hydra_level) and launcher_is_local([])
    assert not launcher_is_local(["hydra/launcher=slurm"])
    for bad, words in ((["--cfg"], ["'--cfg'", "key=value"]), (["tracking.experiment=x"], ["tracking.experiment"])):
        with pytest.raises(SpecError) as err:
            split_extras(bad)
        assert all(w in str(err.value) for w in words)

    runs = plan_runs(load_spec("table1"), "paper", seeds=[0], extra=["train.steps=3"])
    for run in runs:
        if "variant=critique_grpo" in run.overrides or "variant=grpo" in run.overrides:  # (iGRPO's: its preset)
            assert ("variant.template=paper" in run.overrides) == ("variant=critique_grpo" in run.overrides)
        assert run.overrides[-1] == "train.steps=3"  # run-level extras last: they win
        assert run.tags == {"experiment": "table1", "scale": "paper", "group": run.group.label, "arm": run.arm.label}


def test_plan_file_format(tmp_path):
    # through the module at call time: Hydra's plugin scan re-executes plugin modules in place, replacing classes
    read_plan, PlanError = plan_sweeper.read_plan, plan_sweeper.PlanError
    good = tmp_path / "plan.json"
    good.write_text(json.dumps([["seed=0"], {"label": "GRPO seed 1", "overrides": ["seed=1", "variant=grpo"]}]))
    assert read_plan(str(good)) == [("run 0", ["seed=0"]), ("GRPO seed 1", ["seed=1", "variant=grpo"])]
    for text, words in (("{}", ["JSON list"]), ("[[1]]", ["entry 0", "override strings"]), ("[", ["not JSON"])):
        good.write_text(text)
        with pytest.raises(PlanError) as err:
            read_plan(str(good))
        assert "\n" not in str(err.value) and all(w in str(err.value) for w in words), str(err.value)
    for path, words in ((None, ["hydra.sweeper.plan is not set"]), (str(tmp_path / "none.json"), ["cannot read"])):
        with pytest.raises(PlanError) as err:
            read_plan(path)
        assert all(w in str(err.value) for w in words), str(err.value)


def test_cli_errors_are_one_line(capsys):
    for argv, words in ((["run", "nosuch"], ["nosuch", "table1", "fig3_entropy"]),
                        (["run", "table1", "--scale", "gpu"], ["gpu", "cpu, paper"]),
                        (["run", "table1", "--seeds", "0,x"], ["0,x"]),
                        (["run", "table1", "--", "variant=foo"], ["variant=foo", "grpo, igrpo"]),
                        (["run", "table1", "--", "variant.num_drafts=2"], ["GRPO seed", "num_drafts"]),
                        (["run", "table1", "--", "--cfg", "job"], ["--cfg", "key=value"]),
                        (["run", "table1", "--", "tracking.parent_key=x"], ["tracking.parent_key"]),
                        (["run", "regime", "--groups", "hard-tiny,nosuch"], ["'nosuch'", "easy-tiny", "hard / tiny"])):
        assert experiments_main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("error: "), err
        assert all(w in err for w in words), (words, err)


def test_groups_option_plans_only_the_named_groups(tmp_path, monkeypatch, capsys):
    """--groups takes suffixes or labels: a group whose base is still building can be run later by itself."""
    monkeypatch.chdir(tmp_path)
    assert experiments_main(["run", "regime", "--groups", "hard / tiny", "--seeds", "0", "--dry-run",
                             "--out", "out", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 0
    out = capsys.readouterr().out
    plan = json.loads(Path(next(w for w in out.split() if w.startswith("hydra.sweeper.plan=")).split("=", 1)[1])
                      .read_text())
    assert len(plan) == 5 and all("task.train_levels=[hard]" in e["overrides"] for e in plan)


def test_paper_scale_dry_run_prints_one_multirun_command(tmp_path, monkeypatch, capsys):
    """Composed and type-checked here (no CUDA needed), written as a plan file, shown as ONE `python run.py -m`
    command with the launcher's settings on it (and not in any run's overrides); nothing runs, no MLflow store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert experiments_main(["run", "table1", "--scale", "paper", "--dry-run", "--out", "out", "--",
                             "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "train.save_every=10"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    commands = [ln for ln in lines if ln.startswith("multirun: ")]
    assert len(commands) == 1, lines
    words = commands[0].split()
    assert words[1:5] == ["python", str(ROOT / "run.py"), "-m", "hydra/sweeper=igrpo_plan"]
    for expected in ("tracking.experiment=table1", "tracking.parent_key=experiment:table1:paper",
                     "tracking.parent_name=table1-paper", "++tracking.tags.experiment=table1",
                     "++tracking.tags.scale=paper"):
        assert expected in words, (expected, words)
    assert words[-2:] == ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"]
    plan_arg = next(w for w in words if w.startswith("hydra.sweeper.plan="))
    plan_file = Path(plan_arg.split("=", 1)[1])
    sweep_dir = Path(next(w for w in words if w.startswith("hydra.sweep.dir=")).split("=", 1)[1])
    assert plan_file == sweep_dir / "plan.json" and sweep_dir.parent == tmp_path / "out" / "table1" / "paper"
    plan = json.loads(plan_file.read_text())
    spec = load_spec("table1")
    assert len(plan) == sum(len(group_arms(spec, g)) for g in spec.scale("paper").groups)
    for entry in plan:
        assert not any(o.startswith(("hydra", "tracking.parent")) for o in entry["overrides"]), entry
        assert "task=math" in entry["overrides"] and entry["overrides"][-1] == "train.save_every=10"
    assert any("model=openmath_nemotron_7b" in e["overrides"] and "variant=igrpo" in e["overrides"] for e in plan)
    assert not (tmp_path / "mlflow.db").exists()


def test_plan_sweeper_runs_every_job_and_fails_the_multirun_after(tmp_path, model_cache):
    """A plan of two runs whose values are invalid (checked by each job): both jobs run and fail on their own,
    the multirun exits 1 naming both, and its parent run (the multirun callback's) ends FAILED."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"label": f"drafts {n}", "overrides": ["variant=igrpo", f"variant.num_drafts={n}"]}
                                for n in (97, 98)]))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "-m", "hydra/sweeper=igrpo_plan",
                           f"hydra.sweeper.plan={plan}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                           *smoke_overrides(model_cache), f"tracking.uri={uri}", "tracking.experiment=plan_fail"],
                          cwd=tmp_path, env=subprocess_env({"OMP_NUM_THREADS": "1"}), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "run #0 drafts 97 failed" in proc.stderr and "run #1 drafts 98 failed" in proc.stderr, proc.stderr
    assert "2 of 2 run(s) failed" in proc.stderr
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("plan_fail").experiment_id])
    assert [(r.data.tags.get("phase"), r.info.status) for r in runs] == [("sweep", "FAILED")]


def _experiments_cli(args: list[str], cwd: Path, module: str = "experiments") -> subprocess.CompletedProcess:
    """``python -m experiments ...`` as a user types it, one torch thread per process (runs may share the cores)."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=subprocess_env({"OMP_NUM_THREADS": "1"}),
                          capture_output=True, text=True, timeout=900)


TINY_SEEDS = [0, 1]


def tiny_fig3_args(uri: str, cache: Path) -> list[str]:
    return ["run", "fig3_entropy", "--scale", "cpu", "--seeds", ",".join(map(str, TINY_SEEDS)), "--tracking-uri",
            uri, "--", *smoke_overrides(cache), "train.steps=3"]


def tiny_fig3_runs(base: Path, cache: Path) -> tuple[str, str]:
    """The one tiny run set shared by the experiment, analysis and browser tests: ``python -m experiments run
    fig3_entropy`` (GRPO, GRPO-4 and iGRPO x 2 seeds, 3 smoke steps, Hydra's basic launcher: one after another) into
    ``base/mlflow.db``, launched by whichever test needs it first. Returns (tracking URI, stdout of that run)."""
    uri, log = f"sqlite:///{base / 'mlflow.db'}", base / "first_invocation.txt"
    if not log.exists():
        base.mkdir(parents=True, exist_ok=True)
        first = _experiments_cli(tiny_fig3_args(uri, cache), base)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        log.write_text(first.stdout)
    return uri, log.read_text()


@pytest.fixture(scope="module")
def fig3_runs(tmp_path_factory, model_cache):
    base = tmp_path_factory.getbasetemp() / "tiny_fig3"
    return base, *tiny_fig3_runs(base, model_cache)


def _experiment_runs(uri: str, experiment: str) -> tuple[list, list]:
    """(parent runs, training runs) of an MLflow experiment."""
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return ([r for r in runs if r.data.tags.get("phase") == "experiment"],
            [r for r in runs if r.data.tags.get("phase") == "train"])


def test_fig3_runs_are_nested_tagged_and_named(fig3_runs):
    base, uri, first_stdout = fig3_runs
    assert "6 launched, 0 skipped" in first_stdout
    parents, children = _experiment_runs(uri, "fig3_entropy")
    assert len(parents) == 1 and len(children) == 6
    assert {r.info.status for r in parents + children} == {"FINISHED"}
    parent = parents[0]
    assert parent.info.run_name == "fig3_entropy-cpu"
    assert {k: parent.data.tags.get(k) for k in ("experiment", "scale", "igrpo.parent_key")} == {
        "experiment": "fig3_entropy", "scale": "cpu", "igrpo.parent_key": "experiment:fig3_entropy:cpu"}
    arms = (("grpo", ""), ("grpo", "-b4"), ("igrpo", ""))  # GRPO, GRPO-4, iGRPO
    names = {f"{v}-grpo-binary-s{s}{suffix}" for v, suffix in arms for s in (0, 1)}
    assert {r.info.run_name for r in children} == names
    client = MlflowClient(uri)
    for r in children:
        tags = r.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["scale"] == "cpu" and tags["group"] == "tiny"
        half = r.info.run_name.endswith("-b4")  # GRPO-4: rollout_budget=4
        assert tags["arm"] == ("GRPO-4" if half else {"grpo": "GRPO", "igrpo": "iGRPO"}[tags["variant"]])
        assert [m.step for m in client.get_metric_history(r.info.run_id, "train/entropy")] == [1, 2, 3]


def test_table1_through_joblib_two_at_once_one_parent_then_nothing_then_report(tmp_path, model_cache,
                                                                               smoke_model_dir):
    """The acceptance command, with the default MLflow store (mlflow.db in the working directory). The smoke
    model is built beforehand (smoke_model_dir), so the two jobs do not both build it."""
    args = ["run", "table1", "--scale", "cpu", "--seeds", "0", "--", *smoke_overrides(model_cache),
            "hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2"]
    first = _experiments_cli(args, tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in first.stdout + first.stderr
    assert "5 launched, 0 skipped" in first.stdout  # GRPO, Self-Verification, Critique-GRPO, iGRPO, GRPO-4
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parents, children = _experiment_runs(uri, "table1")
    assert len(parents) == 1 and len(children) == 5
    assert {r.info.status for r in parents + children} == {"FINISHED"}
    assert {r.data.tags["arm"] for r in children} == {"GRPO", "Self-Verification", "Critique-GRPO", "iGRPO",
                                                       "GRPO-4"}
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert {k: parents[0].data.tags.get(k) for k in ("phase", "experiment", "scale")} == {
        "phase": "experiment", "experiment": "table1", "scale": "cpu"}

    second = _experiments_cli(args, tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert second.stdout.count("skip ") == 5 and "nothing to launch" in second.stdout
    assert "multirun:" not in second.stdout and "Joblib" not in second.stdout + second.stderr
    parents_again, children_again = _experiment_runs(uri, "table1")
    assert len(parents_again) == 1 and len(children_again) == 5

    report = _experiments_cli(["table1", "--seeds", "0"], tmp_path, module="analysis.report")
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    assert (tmp_path / "reports" / "table1" / "report.html").stat().st_size > 0
    table = (tmp_path / "reports" / "table1" / "table.md").read_text()
    assert all(f"| {m} |" in table for m in ("base", "GRPO", "Self-Verification", "Critique-GRPO", "iGRPO", "GRPO-4")), \
        table
    # two jobs at once: each took its share of the 2 cores (igrpo.job.threads: 2 cores // n_jobs=2), also the second
    # job in a reused worker process. Whether their MLflow runs overlap in time depends on process start-up, so it
    # is not asserted.
    assert [r.data.tags.get("torch_threads") for r in children] == ["1"] * 5
