from pathlib import Path

from igrpo.cli import find_bad_group_choice, group_options
from igrpo.tracking import flatten, metric_name, resolve_tracking_uri


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
    assert error == "variant=foo is not a known option; choose one of: grpo, igrpo"
    assert "algo=foo" in find_bad_group_choice(["-m", "algo=grpo,foo"])
    assert find_bad_group_choice(["variant=igrpo", "variant.num_drafts=3", "seed=0,1"]) is None


def test_conf_dir_is_the_projects():
    assert (Path(__file__).parent.parent / "conf" / "config.yaml").exists()
