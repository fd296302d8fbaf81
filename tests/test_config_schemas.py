"""Every option of every config group composes to exactly its own schema's fields, with every value set in
YAML (conf/ is the only place defaults live), and a run's config hash covers only what it uses."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from igrpo.config import SCHEMAS, variant_schemas
from igrpo.job.identity import config_hash
from igrpo.tracking.names import flatten
from tests.helpers import compose_config, run_cli

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
GROUPS = ("model", "task", "variant", "algo", "reward", "entropy", "generation", "eval", "tracking")
# Fields an option leaves to the user (``???``): filled here so the rest of the node can be checked.
REQUIRED = {"model.path": "/models/any", "reward.judge.model": "/models/judge"}


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _compose(*overrides: str, conf: Path = CONF):
    cfg = compose_config(*overrides, conf_dir=conf)
    for key, value in REQUIRED.items():
        if OmegaConf.select(cfg, key, throw_on_missing=False) == "???" or key in OmegaConf.missing_keys(cfg):
            OmegaConf.update(cfg, key, value)
    return cfg


def _check_node(node, where: str) -> None:
    schema = OmegaConf.get_type(node)
    assert dataclasses.is_dataclass(schema), f"{where}: composed without a schema ({schema})"
    known = {s for options in (*SCHEMAS.values(), variant_schemas()) for s in options.values()}
    assert schema in known, where
    fields = [f.name for f in dataclasses.fields(schema)]
    assert list(node.keys()) == fields or set(node.keys()) == set(fields), f"{where}: {list(node.keys())} != {fields}"


ALL_OPTIONS = [(g, o) for g in GROUPS for o in _options(g)] + [("reward/judge", o) for o in _options("reward/judge")]


@pytest.mark.parametrize(("group", "option"), ALL_OPTIONS, ids=[f"{g}={o}" for g, o in ALL_OPTIONS])
def test_every_option_composes_to_its_own_schema_with_every_value_in_yaml(group, option):
    extra = ["reward=judge"] if group == "reward/judge" else []
    cfg = _compose(*extra, f"{group}={option}")
    assert not OmegaConf.missing_keys(cfg), f"{group}={option}: no value in YAML for {OmegaConf.missing_keys(cfg)}"
    for name in GROUPS:
        _check_node(cfg[name], f"{group}={option}: {name}")
    if "judge" in cfg.reward:
        _check_node(cfg.reward.judge, f"{group}={option}: reward.judge")
        assert cfg.reward.judge.backend == (option if group == "reward/judge" else "tiny")


def test_no_foreign_fields():
    grpo = _compose("variant=grpo")
    assert "num_drafts" not in grpo.variant and "num_drafts" not in OmegaConf.to_yaml(grpo)
    assert not [k for k in flatten(OmegaConf.to_container(grpo, resolve=True)) if k.startswith("variant.")
                and k != "variant.name"]
    binary = _compose("reward=binary")
    assert "judge" not in binary.reward
    real = _compose("model=r1_distill_qwen_7b")
    assert not [k for k in real.model if k.startswith("warmstart") or k in ("hidden_size", "num_layers")]
    tiny = _compose()
    assert "path" not in tiny.model and "chat_template" not in tiny.model
    http = _compose("reward=judge", "reward/judge=http")
    assert "build_steps" not in http.reward.judge and "url" in http.reward.judge
    assert "entropy" in _compose("entropy=none") and list(_compose("entropy=none").entropy) == ["name"]
    assert "vllm_mode" not in _compose("generation=hf").generation


def test_cli_shows_no_foreign_fields(tmp_path):
    shown = run_cli(["variant=grpo", "--cfg", "job"], cwd=tmp_path)
    assert shown.returncode == 0 and "num_drafts" not in shown.stdout and "name: grpo" in shown.stdout
    shown = run_cli(["reward=binary", "--cfg", "job"], cwd=tmp_path)
    assert shown.returncode == 0 and "judge" not in shown.stdout


def test_changing_an_igrpo_default_leaves_grpo_hashes_unchanged(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    igrpo_yaml = conf / "variant" / "igrpo.yaml"
    text = igrpo_yaml.read_text()
    assert "draft_truncation: tail" in text
    igrpo_yaml.write_text(text.replace("draft_truncation: tail", "draft_truncation: head"))
    for arm in (["variant=grpo"], ["variant=grpo", "algo=dapo", "seed=3"], ["variant=grpo", "reward=judge"]):
        assert config_hash(_compose(*arm)) == config_hash(_compose(*arm, conf=conf)), arm
    assert config_hash(_compose("variant=igrpo")) != config_hash(_compose("variant=igrpo", conf=conf))
    # and a judge default moves only judge runs
    judge_yaml = conf / "reward" / "judge" / "tiny.yaml"
    judge_yaml.write_text(judge_yaml.read_text().replace("build_lr: 0.003", "build_lr: 0.004"))
    arm = ("variant=grpo", "reward=binary")  # (the default variant is igrpo, whose default changed above)
    assert config_hash(_compose(*arm)) == config_hash(_compose(*arm, conf=conf))
    assert config_hash(_compose("variant=grpo", "reward=judge")) != config_hash(
        _compose("variant=grpo", "reward=judge", conf=conf))


def test_bookkeeping_fields_stay_out_of_the_hash():
    base = config_hash(_compose())
    for override in ("tracking.experiment=other", "quiet=true", "train.save_every=5", "cpu_threads=1",
                     "tracking.parent_key=experiment:x:cpu"):
        assert config_hash(_compose(override)) == base, override
    assert config_hash(_compose("seed=1")) != base


def test_debug_smoke_profile_keeps_command_line_choices():
    smoke = _compose("debug=smoke")
    assert smoke.train.steps == 2 and smoke.model.name == "tiny-smoke" and smoke.task.eval_size == 4
    real = _compose("debug=smoke", "model=hf", "model.path=/m")
    assert real.model.name == "hf" and real.train.steps == 2


def test_every_experiment_arm_composes_at_every_scale():
    from experiments.plan import plan_runs
    from experiments.spec import SCALES, load_spec, spec_names

    for name in spec_names():
        spec = load_spec(name)
        for scale in SCALES:
            for run in plan_runs(spec, scale, seeds=[0]):
                overrides = [o for o in run.overrides if not o.startswith(("hydra.", "hydra/"))]
                cfg = _compose(*overrides)
                assert not OmegaConf.missing_keys(cfg), (name, scale, run.describe())
                for group in GROUPS:
                    _check_node(cfg[group], f"{name}/{scale}/{run.describe()}: {group}")
