"""Gradient accumulation (``train.gradient_accumulation_steps`` = k, with TRL's ``steps_per_generation`` = k): one
optimizer step taken in k micro-batches accumulates the same gradient as one micro-batch on the same batch, for
GRPO and iGRPO, and rollouts (iGRPO's drafts and refinements alike) are generated once per optimizer step, not
once per micro-batch. Real TRL trainer, real smoke model; a callback reads the gradient before the optimizer
step, and a counting wrapper around TRL's single-turn generation records every generate call. The smoke model
almost never answers right, so the exact-answer reward would give all-zero advantages (a zero gradient, equal for
any k): the reward here is the share of digits in a completion, which varies within every group."""

from __future__ import annotations

import pytest
import torch
from transformers import TrainerCallback

from igrpo.models.loading import load_policy
from igrpo.tasks import load_task
from igrpo.job.factory import build_grpo_args, make_trainer


class FirstStepGradient(TrainerCallback):
    """The accumulated gradient of the first optimizer step, flattened (clipping is off: max_grad_norm is huge)."""

    def __init__(self, model):
        self.model, self.gradient = model, None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.gradient is None:
            self.gradient = torch.cat([p.grad.detach().flatten().clone() for p in self.model.parameters()
                                       if p.grad is not None])


def digit_share(prompts, completions, **_):
    return [sum(c.isdigit() for c in text) / max(len(text), 1) for text in completions]


def _train(cfg, model_dir, out):
    model, tokenizer = load_policy(str(model_dir), cfg.model.dtype, cfg.device)
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    trainer, _ = make_trainer(cfg, model, tokenizer, task, out)
    gradient = FirstStepGradient(model)
    trainer.add_callback(gradient)
    calls, generate = [], trainer.generate_single_turn  # the seam's public hook: TRL's generation and iGRPO's drafts

    def counted(prompt_ids, *args, **kwargs):
        calls.append((trainer.state.global_step, len(prompt_ids)))
        return generate(prompt_ids, *args, **kwargs)

    trainer.generate_single_turn = counted
    trainer.train()
    return gradient.gradient, calls


@pytest.mark.parametrize("variant", ["grpo", "igrpo"])
def test_four_micro_batches_accumulate_the_gradient_of_one(variant, compose, smoke_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("igrpo.job.factory.build_reward_funcs", lambda reward, judge=None: ([digit_share], [1.0]))
    common = (f"variant={variant}", "train.steps=2", "train.prompts_per_step=2", "algo.max_grad_norm=1e9")
    one = compose(*common, "train.gradient_accumulation_steps=1")
    four = compose(*common, "train.gradient_accumulation_steps=4")
    args = build_grpo_args(four, tmp_path)
    completions = 2 * (4 if variant == "igrpo" else 8)  # prompts x G (iGRPO: 4 drafts + 4 refinements)
    assert (args.gradient_accumulation_steps, args.steps_per_generation) == (4, 4)
    assert args.per_device_train_batch_size * 4 == completions == build_grpo_args(one, tmp_path).per_device_train_batch_size

    g1, calls1 = _train(one, smoke_model_dir, tmp_path / "k1")
    g4, calls4 = _train(four, smoke_model_dir, tmp_path / "k4")
    relative = ((g4 - g1).norm() / g1.norm()).item()
    print(f"{variant}: |g1| = {g1.norm():.4g}, relative difference k=4 vs k=1 = {relative:.2e}")
    assert g1.norm() > 0 and relative < 1e-5, relative

    # generation once per optimizer step: iGRPO drafts (2 prompts x 4) then refinements (2 x 4); GRPO 2 x 8
    per_step = [(8,), (8,)] if variant == "igrpo" else [(16,)]
    expected = [(step, *sizes) for step in (0, 1) for sizes in per_step]
    assert calls4 == calls1 == expected
