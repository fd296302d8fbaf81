"""The new fields of issue #26 (``algo.dynamic_sampling``, ``algo.overlong_*``, ``variant.draft_budget``): their
rules fail in one line, and a config at their neutral values hashes exactly as it did before they existed."""

from __future__ import annotations

import hashlib
import json

import pytest
from omegaconf import OmegaConf

from igrpo.config import to_container
from igrpo.config.validate import validate
from igrpo.errors import ConfigError
from igrpo.job.identity import config_hash
from tests.helpers import compose_config

NEW_ALGO = ("dynamic_sampling", "max_resample_rounds", "overlong_shaping", "overlong_buffer", "overlong_penalty")
NEW_IGRPO = ("draft_budget", "draft_probe", "max_drafts_per_prompt", "draft_history")
NEW_EVAL = ("process",)  # eval.process (issue #25): where eval.mode=job evaluates; at auto it stays out of the hash


def _hash_without_new_fields(cfg) -> str:
    """The config hash as ``igrpo.job.identity`` computed it before the fields existed (same rule, fewer keys)."""
    resolved = {k: v for k, v in to_container(cfg).items()
                if k not in ("output_dir", "quiet", "tracking", "objective", "cpu_threads")}
    resolved["train"] = {k: v for k, v in resolved["train"].items()
                         if k not in ("save_every", "save_total_limit", "resume", "checkpoint_root")}
    for key in NEW_ALGO:
        resolved["algo"].pop(key)
    for key in NEW_IGRPO:
        resolved["variant"].pop(key, None)
    for key in NEW_EVAL:
        resolved["eval"].pop(key)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:16]


@pytest.mark.parametrize("arm", [("variant=igrpo",), ("variant=grpo", "algo=dapo"), ("variant=critique_grpo",)])
def test_existing_runs_keep_their_config_hash(arm):
    cfg = compose_config(*arm)
    assert config_hash(cfg) == _hash_without_new_fields(cfg)
    # a setting that only matters while its switch is on does not move the hash either
    assert config_hash(compose_config(*arm, "algo.max_resample_rounds=9", "algo.overlong_buffer=8")) == \
        config_hash(cfg)


def test_switching_a_new_axis_on_changes_the_hash_and_its_settings_count():
    base = config_hash(compose_config())
    on = config_hash(compose_config("algo.dynamic_sampling=true"))
    assert on != base and config_hash(compose_config("algo.dynamic_sampling=true", "algo.max_resample_rounds=9")) != on
    adaptive = config_hash(compose_config("variant.draft_budget=adaptive"))
    assert adaptive != base and config_hash(compose_config("variant.draft_budget=adaptive",
                                                           "variant.draft_probe=1")) != adaptive
    assert config_hash(compose_config("variant.draft_probe=1")) == base


@pytest.mark.parametrize(("overrides", "message"), [
    (("variant=self_verify", "algo.dynamic_sampling=true"), "algo.dynamic_sampling=true is not valid with "
                                                            "variant=self_verify"),
    (("algo.max_resample_rounds=0",), "algo.max_resample_rounds=0 is not valid"),
    (("algo.overlong_shaping=true", "algo.overlong_buffer=64"), "algo.overlong_buffer=64 is not valid with "
                                                                "generation.max_completion_length=64"),
    (("algo.overlong_penalty=0",), "algo.overlong_penalty=0.0 is not valid"),
    (("variant.draft_budget=even",), "variant.draft_budget"),
    (("variant.draft_budget=adaptive", "variant.rounds=2", "rollout_budget=12"), "variant.rounds=2"),
    (("variant.draft_budget=adaptive", "variant.draft_probe=5"), "variant.draft_probe=5 is not valid"),
    (("variant.draft_budget=adaptive", "variant.max_drafts_per_prompt=3"), "variant.max_drafts_per_prompt=3"),
])
def test_rules_fail_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as err:
        validate(compose_config(*overrides), machine=False)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_every_algo_option_leaves_the_new_axes_off():
    for option in ("grpo", "dapo", "dr_grpo", "gspo", "bnpo"):
        algo = compose_config(f"algo={option}").algo
        assert algo.dynamic_sampling is False and algo.overlong_shaping is False, option
    assert compose_config("variant=igrpo").variant.draft_budget == "fixed"
    assert "draft_budget" not in OmegaConf.to_container(compose_config("variant=grpo").variant)
