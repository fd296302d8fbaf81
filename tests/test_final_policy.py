"""The final policy's one save (igrpo.training.final_policy): when it happens, FSDP's state-dict type during it, and the
in-memory evaluations a sharded launch refuses. The multi-process save (every rank once, read by the evaluation job and
MLflow) runs in tests/test_multiprocess.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from torch.distributed.fsdp import StateDictType

from igrpo.errors import ConfigError
from igrpo.training.final_policy import check_in_memory_eval, full_state_dict, save_final_policy

ZERO3 = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}
ZERO2 = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}
FSDP = {"ACCELERATE_USE_FSDP": "true", "FSDP_SHARDING_STRATEGY": "FULL_SHARD"}


class RecordingTrainer:
    """What ``save_model`` sees: the target and FSDP's state-dict type at the time (transformers writes weights only
    under FULL_STATE_DICT)."""

    def __init__(self, fsdp_type=None):
        self.is_fsdp_enabled = fsdp_type is not None
        plugin = SimpleNamespace(state_dict_type=fsdp_type) if fsdp_type is not None else None
        self.accelerator = SimpleNamespace(state=SimpleNamespace(fsdp_plugin=plugin))
        self.saves = []

    def save_model(self, output_dir):
        plugin = self.accelerator.state.fsdp_plugin
        self.saves.append((output_dir, plugin.state_dict_type if plugin is not None else None))


def _cfg(mode="inline", log_model=False, every_steps=0):
    return SimpleNamespace(eval=SimpleNamespace(mode=mode, every_steps=every_steps),
                           tracking=SimpleNamespace(log_model=log_model))


@pytest.mark.parametrize("mode, log_model, saved", [("inline", False, False), ("job", False, True),
                                                    ("inline", True, True), ("job", True, True)])
def test_one_save_when_the_eval_job_or_mlflow_reads_it(mode, log_model, saved, tmp_path):
    trainer = RecordingTrainer()
    target = save_final_policy(trainer, _cfg(mode, log_model), tmp_path)
    assert trainer.saves == ([(str(tmp_path / "final"), None)] if saved else [])
    assert target == (tmp_path / "final" if saved else None)


def test_fsdp_saves_the_final_policy_as_a_full_state_dict_and_keeps_sharded_checkpoints(tmp_path):
    """conf/accelerate/fsdp.yaml checkpoints with SHARDED_STATE_DICT, under which transformers' save_model writes no
    weights; the final save switches to FULL_STATE_DICT for its duration only."""
    trainer = RecordingTrainer(fsdp_type=StateDictType.SHARDED_STATE_DICT)
    save_final_policy(trainer, _cfg("job"), tmp_path)
    assert trainer.saves == [(str(tmp_path / "final"), StateDictType.FULL_STATE_DICT)]
    assert trainer.accelerator.state.fsdp_plugin.state_dict_type == StateDictType.SHARDED_STATE_DICT
    with full_state_dict(RecordingTrainer()):  # without FSDP: nothing to switch
        pass


def test_the_fsdp_config_keeps_sharded_checkpoints():
    from igrpo.plan.setup import read_accelerate

    assert read_accelerate("fsdp")["fsdp_config"]["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"


@pytest.mark.parametrize("env, how", [(ZERO3, "DeepSpeed ZeRO-3"), (FSDP, "FSDP full sharding")])
def test_a_sharded_launch_refuses_evaluating_the_policy_in_memory(env, how):
    with pytest.raises(ConfigError, match=rf"^eval.mode=inline is not valid under {how} \(accelerate launch\): .*"
                                          "use eval.mode=job"):
        check_in_memory_eval(_cfg("inline"), env)
    with pytest.raises(ConfigError, match=rf"^eval.every_steps=5 is not valid under {how} .*use eval.every_steps=0$"):
        check_in_memory_eval(_cfg("job", every_steps=5), env)
    check_in_memory_eval(_cfg("job"), env)


@pytest.mark.parametrize("env", [{}, {"WORLD_SIZE": "8"}, ZERO2, {**FSDP, "FSDP_SHARDING_STRATEGY": "SHARD_GRAD_OP"}])
def test_launches_that_keep_whole_weights_evaluate_in_memory(env):
    check_in_memory_eval(_cfg("inline", every_steps=5), env)
