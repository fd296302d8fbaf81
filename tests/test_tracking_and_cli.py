from pathlib import Path

import pytest
from omegaconf import OmegaConf

from igrpo.config.groups import find_bad_group_choice, group_options
from igrpo.tracking.names import (
    BUILDS_EXPERIMENT,
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    PARENT_RUN_FILE,
    TAG_PARENT_KEY,
    absolute_sqlite,
    flatten,
    metric_name,
    optuna_parent_key,
    read_parent_run_id,
    resolve_tracking_uri,
    sweep_parent_key,
    ui_runs_url,
)


def test_tracking_uri_precedence(tmp_path):
    assert resolve_tracking_uri("http://127.0.0.1:5000", {"MLFLOW_TRACKING_URI": "sqlite:///x.db"}) == (
        "http://127.0.0.1:5000"
    )
    assert resolve_tracking_uri(None, {"MLFLOW_TRACKING_URI": "sqlite:///x.db"}) == "sqlite:///x.db"
    assert resolve_tracking_uri(None, {}, cwd=tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"


def test_metric_names_follow_conventions():
    assert metric_name("entropy") == "train/entropy"
    assert metric_name("frac_reward_zero_std") == "train/frac_groups_zero_std"
    assert metric_name("rewards/accuracy/mean") == "reward/accuracy"
    assert metric_name("clip_ratio/low_mean") == "train/clip_ratio/low_mean"
    assert metric_name("draft/reward_mean") == "draft/reward_mean"
    assert metric_name("step_time") == "perf/step_time"
    assert metric_name("weird@key") == "train/weird_key"


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": None}}, "e": [1, 2]}) == {"a.b": "1", "a.c.d": "None", "e": "[1, 2]"}


def test_group_options_read_from_conf():
    groups = group_options()
    assert {"grpo", "igrpo"} <= set(groups["variant"])
    assert "grpo" in groups["algo"]


def test_bad_group_choice_is_named_with_choices():
    error = find_bad_group_choice(["variant=foo"])
    assert error == "variant=foo is not a known option; choose one of: critique_grpo, grpo, igrpo, self_verify"
    assert "algo=foo" in find_bad_group_choice(["-m", "algo=grpo,foo"])
    assert find_bad_group_choice(["variant=igrpo", "variant.num_drafts=3", "seed=0,1"]) is None


def test_conf_dir_is_the_projects():
    assert (Path(__file__).parent.parent / "conf" / "config.yaml").exists()


def test_parent_keys_and_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_sqlite("sqlite:///optuna.db") == f"sqlite:///{tmp_path.resolve() / 'optuna.db'}"
    assert absolute_sqlite("sqlite:////abs/o.db") == "sqlite:////abs/o.db"
    assert absolute_sqlite("postgresql://u:p@h/db") == "postgresql://u:p@h/db"
    assert optuna_parent_key("s", "sqlite:///optuna.db") == f"optuna:s@sqlite:///{tmp_path.resolve() / 'optuna.db'}"
    assert optuna_parent_key("s", "postgresql://u:secret@h/db") == "optuna:s@postgresql://***@h/db"
    assert sweep_parent_key("sweep") == f"sweep:{tmp_path.resolve() / 'sweep'}"
    assert read_parent_run_id(None) is None and read_parent_run_id(tmp_path) is None
    (tmp_path / PARENT_RUN_FILE).write_text("abc\n")
    assert read_parent_run_id(tmp_path) == "abc"
    assert ui_runs_url("7") == "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    assert ui_runs_url("7", "http://h:5077/").startswith("http://h:5077/#/experiments/7/runs?")


# ----------------------------------------------------------------------------- the wing on a real SQLite store


@pytest.fixture
def store(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_experiments_are_model_training_experiments(store):
    from igrpo.tracking.runs import client, ensure_experiment

    exp = ensure_experiment(store, "fresh")
    assert client(store).get_experiment(exp).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    old = client(store).create_experiment("made-before-the-tag")  # e.g. a store from an older version
    assert ensure_experiment(store, "made-before-the-tag") == old
    assert client(store).get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_runs_end_finished_failed_or_killed(store):
    from igrpo.tracking.runs import mlflow_run, run_state

    with mlflow_run(store, "igrpo", "ok", {"phase": "train"}) as ok:
        ok.params({"a.b": "1"})
        ok.metrics({"train/loss": 0.5, "train/kl": 0.1}, step=3, skip=frozenset({("train/kl", 3)}))
        ok.tags({"extra": "x"})
        ok.table([{"step": 0, "prompt": "p"}], "rollouts.json")
        ok.text("k: v\n", "config.yaml")
    for error, status in ((RuntimeError, "FAILED"), (KeyboardInterrupt, "KILLED")):
        with pytest.raises(error):
            with mlflow_run(store, "igrpo", "bad", {"phase": "train"}) as bad:
                raise error("boom")
        assert run_state(store, bad.run_id).status == status
    from igrpo.tracking.resume import run_contents

    held = run_contents(store, ok.run_id)
    assert run_state(store, ok.run_id).status == "FINISHED" and ok.experiment_id
    assert held.history == {"train/loss": {3: 0.5}} and held.params == {"a.b": "1"}
    assert {"rollouts.json", "config.yaml"} <= held.artifacts
    with mlflow_run(store, "igrpo", "ignored", {}, run_id=ok.run_id) as again:  # a resumed run: the same run
        assert again.run_id == ok.run_id and run_state(store, ok.run_id).status == "RUNNING"
    assert run_state(store, "0" * 32) is None


def test_builds_go_to_their_own_experiment(store):
    from igrpo.tracking.builds import log_build
    from igrpo.tracking.runs import client

    run_id = log_build(store, "judge_build", "judge-x", {"cache_key": "k"}, {"judge": {"steps": 2}},
                       {"judge/dev_auroc": [(1, 0.5), (2, 0.75)]}, {"judge/heldout_auroc": 0.8}, 2)
    run = client(store).get_run(run_id)
    assert client(store).get_experiment(run.info.experiment_id).name == BUILDS_EXPERIMENT
    assert run.data.tags["phase"] == "judge_build" and run.data.params == {"judge.steps": "2"}
    assert [m.value for m in client(store).get_metric_history(run_id, "judge/dev_auroc")] == [0.5, 0.75]


def test_finished_run_with_hash(store):
    from igrpo.tracking.parent import finished_run_with_hash
    from igrpo.tracking.runs import mlflow_run

    assert finished_run_with_hash(store, "exp", "h1") is None  # no such experiment
    with pytest.raises(RuntimeError), mlflow_run(store, "exp", "failed", {"config_hash": "h1"}):
        raise RuntimeError
    assert finished_run_with_hash(store, "exp", "h1") is None
    with mlflow_run(store, "exp", "done", {"config_hash": "h1", "experiment": "exp"}) as done:
        pass
    assert finished_run_with_hash(store, "exp", "h1") == (done.run_id, "done")
    assert finished_run_with_hash(store, "exp", "h1", tags={"experiment": "exp"}) == (done.run_id, "done")
    assert finished_run_with_hash(store, "exp", "h1", tags={"experiment": "other"}) is None
    assert finished_run_with_hash(store, "exp", "h2") is None


def _multirun_config(store, sweep_dir, **extra):
    cfg = {"tracking": {"uri": store, "experiment": "igrpo", "tags": {}, "parent_key": None, "parent_name": None},
           "hydra": {"sweep": {"dir": str(sweep_dir)}, "sweeper": {}, "overrides": {"task": ["seed=0,1"]}}}
    return OmegaConf.merge(cfg, extra)


def test_the_callback_finds_or_creates_the_parent_by_its_key(store, tmp_path):
    from igrpo.tracking.parent import MlflowParentRunCallback, find_parent_run
    from igrpo.tracking.runs import client, run_state

    config = _multirun_config(store, tmp_path / "sweep")
    first = MlflowParentRunCallback()
    first.on_multirun_start(config)
    parent = read_parent_run_id(tmp_path / "sweep")
    run = client(store).get_run(parent)
    assert run.info.status == "RUNNING" and run.data.tags["phase"] == "sweep"
    assert run.data.tags[TAG_PARENT_KEY] == sweep_parent_key(tmp_path / "sweep")
    first.on_multirun_end(config)
    assert run_state(store, parent).status == "FINISHED"
    first._fail_if_open()  # the exit hook after a normal end: nothing to do
    assert run_state(store, parent).status == "FINISHED"

    again = MlflowParentRunCallback()  # the same sweep dir again: the same parent, reopened; then a crash
    again.on_multirun_start(config)
    assert read_parent_run_id(tmp_path / "sweep") == parent and run_state(store, parent).status == "RUNNING"
    again._fail_if_open()  # what the exit hook does when the multirun never reached its end
    assert run_state(store, parent).status == "FAILED"

    experiment = _multirun_config(store, tmp_path / "other", tracking={"parent_key": "experiment:t1:cpu",
                                                                        "parent_name": "t1-cpu",
                                                                        "tags": {"experiment": "t1"}})
    for _ in range(2):  # two multiruns of one experiment: one parent
        callback = MlflowParentRunCallback()
        callback.on_multirun_start(experiment)
        callback.on_multirun_end(experiment)
    exp_parent = find_parent_run(store, "igrpo", "experiment:t1:cpu")
    run = client(store).get_run(exp_parent)
    assert run.info.run_name == "t1-cpu" and run.info.status == "FINISHED"
    assert run.data.tags["phase"] == "experiment" and run.data.tags["experiment"] == "t1"
    assert exp_parent != parent and read_parent_run_id(tmp_path / "other") == exp_parent
    assert find_parent_run(store, "igrpo", "experiment:none") is None
    assert find_parent_run(store, "nope", "experiment:t1:cpu") is None

    study = _multirun_config(store, tmp_path / "s1",
                             hydra={"sweeper": {"study_name": "st", "storage": "sqlite:///o.db"}})
    callback = MlflowParentRunCallback()
    callback.on_multirun_start(study)
    study_parent = read_parent_run_id(tmp_path / "s1")
    assert client(store).get_run(study_parent).info.run_name == "study-st"
    assert find_parent_run(store, "igrpo", optuna_parent_key("st", "sqlite:///o.db")) == study_parent
    callback.on_multirun_end(study)


def test_summary_says_where_the_runs_table_is():
    from igrpo.job.cli import summary
    from igrpo.job.runner import RunResult

    cfg = OmegaConf.create({"variant": {"name": "grpo"}, "algo": {"name": "grpo"}, "reward": {"name": "binary"},
                            "seed": 0, "objective": "eval/mean/avg_at_k"})
    metrics = {"eval/mean/avg_at_k": 0.5}
    local = RunResult("r1", "sqlite:////tmp/m.db", "igrpo", 0.5, metrics, metrics, experiment_id="3")
    text = summary(local, cfg)
    assert "view: mlflow ui --backend-store-uri sqlite:////tmp/m.db --workers 1" in text
    assert "then open http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning" in text
    server = RunResult("r1", "http://127.0.0.1:5055", "igrpo", 0.5, metrics, metrics, experiment_id="3")
    assert "view: http://127.0.0.1:5055/#/experiments/3/runs?workflowType=machine_learning" in summary(server, cfg)
