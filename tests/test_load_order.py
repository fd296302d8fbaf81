"""The training arguments exist before the trainable policy loads (``factory.build_training``): under DeepSpeed ZeRO-3,
building them makes transformers' DeepSpeed config live, and only then does ``from_pretrained`` partition the weights
as they load. Any other load (the base model's evaluation, the evaluation job) loads whole even while that config is
live: a partitioned load is a collective the other processes would not join.

DeepSpeed is not installed here (and GRPOConfig refuses a DeepSpeed launch without it), so the live config is a
stand-in registered the way transformers registers its own (``set_hf_deepspeed_config``, a weak reference the
training arguments keep alive); what is checked is the order, what the loader asks for, and what
``from_pretrained`` would see. Not covered: DeepSpeed's partitioned load itself."""

from __future__ import annotations

import pytest
from transformers import AutoModelForCausalLM
from transformers.integrations import is_deepspeed_zero3_enabled
from transformers.integrations.deepspeed import set_hf_deepspeed_config, unset_hf_deepspeed_config

from igrpo.job import factory
from igrpo.models.loading import load_policy
from igrpo.tasks import load_task


class Zero3Config:
    """What transformers asks of its live DeepSpeed config."""

    def is_zero3(self) -> bool:
        return True


@pytest.fixture
def no_live_config():
    yield
    unset_hf_deepspeed_config()


def test_the_policy_loads_after_the_training_arguments_with_zero3_live(compose, smoke_model_dir, tmp_path,
                                                                        monkeypatch, no_live_config):
    events = []
    build_args = factory.build_grpo_args

    def args_making_zero3_live(cfg, output_dir):
        args = build_args(cfg, output_dir)
        args.zero3_stand_in = Zero3Config()  # kept alive by the arguments, as accelerate keeps its own

        set_hf_deepspeed_config(args.zero3_stand_in)
        events.append("arguments")
        return args

    def recording_load(path, dtype, device, attn=None, partitioned=False):
        events.append(("load", partitioned, is_deepspeed_zero3_enabled()))
        unset_hf_deepspeed_config()  # the rest of the build would otherwise call into DeepSpeed, absent here
        return load_policy(path, dtype, device, attn)

    monkeypatch.setattr(factory, "build_grpo_args", args_making_zero3_live)
    monkeypatch.setattr(factory, "load_policy", recording_load)
    cfg = compose("variant=grpo")
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    trainer, _, model, _ = factory.build_training(cfg, str(smoke_model_dir), task, tmp_path / "out")
    assert events == ["arguments", ("load", True, True)]  # partitioned, while ZeRO-3's config is live
    assert trainer.model is model and isinstance(trainer.args.zero3_stand_in, Zero3Config)  # still alive


def test_an_evaluation_load_is_whole_while_zero3_is_live(smoke_model_dir, monkeypatch, no_live_config):
    seen = []
    real = AutoModelForCausalLM.from_pretrained.__func__

    def recording(cls, *args, **kwargs):
        seen.append(is_deepspeed_zero3_enabled())
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(recording))
    live = Zero3Config()
    set_hf_deepspeed_config(live)
    model, _ = load_policy(str(smoke_model_dir))
    assert seen == [False] and next(model.parameters()).numel() > 0  # loaded whole on this process
    assert is_deepspeed_zero3_enabled()  # the training's config is live again afterwards
