"""DAPO's dynamic sampling and iGRPO's adaptive draft budget on the real TRL trainer and smoke model, one step each,
with rewards that fix which groups are flat and which drafts are right:

* the first batch's prompts are rewarded a constant (every group flat): they are dropped, a round of new prompts
  replaces them, the trained batch is exactly that round's rows, and the spend counts both rounds;
* a reward that is always constant: the cap of extra rounds is reached and flat groups fill the batch;
* the adaptive budget: a prompt whose probe drafts are all right keeps its probe only, an uncertain one takes the
  rest of the step's drafts, and the step logs the drafts-per-prompt histogram."""

from __future__ import annotations

import pytest
import torch

from igrpo.job.factory import make_trainer
from igrpo.models.loading import load_policy
from igrpo.tasks import load_task


class FirstCallFlat:
    """Constant for every prompt of the first call (so those groups are flat), else 0/1 alternating by row (so
    every group of a later prompt has both). ``always``: constant for every prompt."""

    __name__ = "first_call_flat"

    def __init__(self, always: bool = False):
        self.always, self.flat = always, None

    def __call__(self, prompts, completions, prompt_id, **_):
        if self.flat is None:
            self.flat = set(prompt_id)
        return [0.5 if self.always or pid in self.flat else float(i % 2) for i, pid in enumerate(prompt_id)]


class OneSolvedOneUncertain:
    """As the accuracy reward: always right on the first prompt of the first call, alternating on the others."""

    __name__ = "accuracy"

    def __init__(self):
        self.solved = None

    def __call__(self, prompts, completions, prompt_id, **_):
        if self.solved is None:
            self.solved = prompt_id[0]
        return [1.0 if pid == self.solved else float(i % 2) for i, pid in enumerate(prompt_id)]


def _one_step(cfg, model_dir, out):
    """Train one step; every round's inputs and TRL outputs, the trained batch, and the step's logged values (whose
    token count is checked against every generation call's)."""
    model, tokenizer = load_policy(str(model_dir), cfg.model.dtype, cfg.device)
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    trainer, _ = make_trainer(cfg, model, tokenizer, task, out)
    rounds, batches, tokens = [], [], []
    generate, fill, sample = trainer.generate_and_score, trainer.fill_batch, trainer.generate_single_turn

    def recorded_round(inputs):
        output = generate(inputs)
        rounds.append(([row["prompt_id"] for row in inputs], output))
        return output

    def recorded_fill(inputs):
        batches.append(fill(inputs))
        return batches[-1]

    def counted(*args, **kwargs):  # every generation call (drafts included), counted apart from the trainer
        completion_ids, logprobs = sample(*args, **kwargs)
        tokens.append(sum(len(ids) for ids in completion_ids))
        return completion_ids, logprobs

    trainer.generate_and_score, trainer.fill_batch = recorded_round, recorded_fill
    trainer.generate_single_turn = counted
    trainer.train()
    logged = next(e for e in trainer.state.log_history if "rollouts/generated" in e)
    assert logged["rollouts/generated_tokens"] == logged["rollouts/generated_tokens_total"] == sum(tokens)
    return rounds, batches[0], logged


@pytest.mark.parametrize("variant", ["grpo", "igrpo"])
def test_flat_groups_are_dropped_and_replaced_and_the_spend_counts_the_replacements(
        variant, compose, smoke_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("igrpo.job.factory.build_reward_funcs", lambda reward, judge=None: ([FirstCallFlat()], [1.0]))
    cfg = compose(f"variant={variant}", "algo=dapo", "algo.dynamic_sampling=true", "train.steps=1")
    rounds, batch, logged = _one_step(cfg, smoke_model_dir, tmp_path)

    (first_ids, first), (second_ids, second) = rounds  # one extra round, then the batch was full
    assert not set(first_ids) & set(second_ids) and len(set(second_ids)) == 2
    for key in ("prompt_ids", "completion_ids", "completion_mask", "advantages"):  # the batch is round 2's rows
        assert torch.equal(batch[key], second[key]), key
    assert batch["num_items_in_batch"] == second["completion_mask"].sum()
    assert logged["dynamic_sampling/extra_rounds"] == 1 and logged["dynamic_sampling/kept_frac"] == 0.5
    assert logged["dynamic_sampling/filled_frac"] == 0
    # 2 prompts x 8 (GRPO: 8 completions; iGRPO: 4 drafts + 4 refinements) per round, two rounds
    assert logged["rollouts/generated_per_prompt"] == 16 and logged["rollouts/generated"] == 32


def test_at_the_cap_flat_groups_fill_the_batch(compose, smoke_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("igrpo.job.factory.build_reward_funcs",
                        lambda reward, judge=None: ([FirstCallFlat(always=True)], [1.0]))
    cfg = compose("variant=grpo", "algo.dynamic_sampling=true", "algo.max_resample_rounds=1", "train.steps=1")
    rounds, batch, logged = _one_step(cfg, smoke_model_dir, tmp_path)
    assert len(rounds) == 2 and torch.equal(batch["completion_ids"], rounds[0][1]["completion_ids"])
    assert logged["dynamic_sampling/filled_frac"] == 1 and logged["dynamic_sampling/kept_frac"] == 0
    assert logged["rollouts/generated_per_prompt"] == 16


def test_adaptive_drafts_go_to_the_uncertain_prompt_and_the_histogram_is_logged(
        compose, smoke_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("igrpo.job.factory.build_reward_funcs",
                        lambda reward, judge=None: ([OneSolvedOneUncertain()], [1.0]))
    cfg = compose("variant=igrpo", "variant.draft_budget=adaptive", "train.steps=1")
    _, _, logged = _one_step(cfg, smoke_model_dir, tmp_path)
    # probe 2 each: the solved prompt is settled (2 drafts), the uncertain one takes the other 8 - 4 (6 drafts)
    shares = {k: logged[f"draft/prompts_with_{k}_drafts"] for k in range(9)}
    assert shares == {**dict.fromkeys(range(9), 0.0), 2: 0.5, 6: 0.5}
    assert logged["rollouts/generated"] == 16 and logged["rollouts/generated_per_prompt"] == 8  # the matched spend
