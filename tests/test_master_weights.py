"""bf16 training keeps fp32 master weights: one optimizer step at the paper's learning rate (1e-6) moves them, where
AdamW updating bf16 weights in place loses nearly every update to rounding (0.02 has a bf16 ulp of 2^-13, about
1.2e-4, so a step of ~1e-6 rounds away unless the weight is tiny).

Exercised on CPU, honestly: the config keeps CPU runs fp32 (model.dtype=bfloat16 needs device=cuda), so these tests
compose model.dtype=bfloat16 without validation and build the trainer the runner builds (``build_training``: the
training arguments, then the policy in ``weights_dtype``, then TRL's trainer). transformers accepts ``bf16=True`` with
``use_cpu``, and accelerate then wraps the policy's forward in torch's CPU bf16 autocast: the same code path as on a
GPU (fp32 parameters, gradients and AdamW state; the forward computing in bf16). Not covered: CUDA's bf16 kernels,
DDP's gradient all-reduce, and the DeepSpeed / FSDP branch (only its choice of dtype, from the launch environment).
The smoke model almost never answers right, so the reward is the share of digits plus a length term, which varies
within every group (all-equal rewards would give a zero gradient and no update at all).
"""

from __future__ import annotations

import pytest
import torch

from igrpo.models.loading import load_policy
from igrpo.tasks import load_task
from igrpo.training.precision import reference_model_args, weights_dtype

BF16_STEP = ("model.dtype=bfloat16", "algo.learning_rate=1e-6", "algo.warmup_ratio=0.0", "train.steps=1",
             "variant=grpo")


def varied_reward(prompts, completions, **_):
    return [sum(c.isdigit() for c in text) / max(len(text), 1) + 0.01 * len(text) for text in completions]


@pytest.fixture
def fixed_reward(monkeypatch):
    monkeypatch.setattr("igrpo.job.factory.build_reward_funcs", lambda reward, judge=None: ([varied_reward], [1.0]))


def _moved_fraction(model, trainer) -> float:
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer.train()
    after = model.state_dict()
    changed = sum((before[k] != after[k]).sum().item() for k in before)
    return changed / sum(v.numel() for v in before.values())


def _forward_dtypes(model) -> set:
    """The output dtypes of one MLP projection over the run (generation and the training forward alike)."""
    seen = set()
    model.model.layers[0].mlp.down_proj.register_forward_hook(lambda module, inputs, output: seen.add(output.dtype))
    return seen


def test_a_bf16_step_at_lr_1e6_moves_the_fp32_master_weights(compose, smoke_model_dir, tmp_path, fixed_reward):
    from igrpo.job.factory import build_training

    cfg = compose(*BF16_STEP)
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    trainer, _, model, _ = build_training(cfg, str(smoke_model_dir), task, tmp_path / "out")
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # the master copy the optimizer updates
    assert trainer.args.bf16 and trainer.accelerator.mixed_precision == "bf16"
    seen = _forward_dtypes(model)
    moved = _moved_fraction(model, trainer)
    print(f"fp32 master weights under bf16 autocast: {moved:.2%} of entries moved after one step at lr 1e-6")
    assert moved > 0.5, moved
    assert seen == {torch.bfloat16}  # the forward computed in bf16 (autocast), never in fp32


def test_bf16_weights_updated_in_place_lose_the_step_to_rounding(compose, smoke_model_dir, tmp_path, fixed_reward):
    """What the old path did (the policy loaded in bf16, no master copy): the reason for the test above."""
    from igrpo.job.factory import make_trainer

    cfg = compose(*BF16_STEP)
    model, tokenizer = load_policy(str(smoke_model_dir), "bfloat16", "cpu")
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    trainer, _ = make_trainer(cfg, model, tokenizer, task, tmp_path / "out")
    moved = _moved_fraction(model, trainer)
    print(f"bf16 weights, no master copy: {moved:.2%} of entries moved after one step at lr 1e-6")
    assert moved < 0.05, moved


@pytest.mark.parametrize("env, expected", [
    ({}, "float32"),  # one process
    ({"WORLD_SIZE": "8"}, "float32"),  # DDP: every rank's optimizer updates its own full copy
    ({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}, "bfloat16"),  # DeepSpeed's masters
    ({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, "bfloat16"),
    ({"ACCELERATE_USE_FSDP": "true"}, "bfloat16"),  # accelerate upcasts FSDP's shards to fp32
])
def test_the_policy_loads_in_fp32_where_no_framework_keeps_a_master_copy(env, expected):
    assert weights_dtype("bfloat16", env) == expected
    assert weights_dtype("float32", env) == "float32"


def test_the_reference_model_loads_in_the_compute_dtype(compose, smoke_model_dir, tmp_path):
    """algo.beta > 0: TRL's frozen reference needs no master copy, so it is not built in the policy's fp32."""
    from igrpo.job.factory import build_training

    assert reference_model_args("bfloat16", 0.0) == {}  # no reference model at all
    cfg = compose(*BF16_STEP, "algo.beta=0.04")
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    trainer, _, model, _ = build_training(cfg, str(smoke_model_dir), task, tmp_path / "out")
    assert next(model.parameters()).dtype == torch.float32
    assert {p.dtype for p in trainer.ref_model.parameters()} == {torch.bfloat16}
