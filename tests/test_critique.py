"""Critique-GRPO (variant=critique_grpo): the pure pieces (critique target, critique text, templates, kept
refinements, metrics), the refinement rows' shaping against the published formula, the trainer's loss and
gradient on fixed tensors against a hand computation (1e-6), and one real training batch: every row trained under
the plain prompt, advantages = reward - mixed-group mean."""

from __future__ import annotations

import random

import pytest
import torch

from igrpo.variants import variant_of
from igrpo.core.critique import (
    best_indices,
    critique_text,
    fill,
    pick_target,
    refinement_stats,
    resolve_refine_template,
    row_positions,
)
from igrpo.variants.critique_grpo.shaping import refinement_token_loss, shaping
from igrpo.errors import ConfigError
from tests.helpers import compose_config


class TestPieces:
    def test_target_is_an_incorrect_answer_when_there_is_one(self):
        rng = random.Random(0)
        picks = {pick_target([True, False, True, None, True], "random_incorrect", rng) for _ in range(50)}
        assert picks == {1, 3}  # wrong or ungradeable answers only, each reachable

    def test_target_falls_back_to_a_random_correct_answer(self):
        rng = random.Random(0)
        assert {pick_target([True, True, True], "random_incorrect", rng) for _ in range(50)} == {0, 1, 2}

    def test_target_is_reproducible_from_the_seed(self):
        a = [pick_target([False] * 7, "random_incorrect", random.Random(5)) for _ in range(3)]
        assert len(set(a)) == 1
        assert pick_target([True, False], "first", random.Random(0)) == 0

    def test_unknown_target_rule(self):
        with pytest.raises(ConfigError, match="random_incorrect, random, first"):
            pick_target([True], "worst", random.Random(0))

    def test_critique_texts(self):
        assert critique_text("indicative_gt", False, "96") == \
            "The generated solution is incorrect, the ground truth is 96."
        assert critique_text("indicative_gt", True, "7") == "The generated solution is correct, the ground truth is 7."
        assert critique_text("indicative", False, "96") == "The generated solution is incorrect."

    def test_fill_never_rescans_inserted_text(self):
        template = resolve_refine_template("tiny")
        out = fill(template, "1+{critique}", "x={problem} \\boxed{3}", "wrong {solution}")
        assert out == "Q:1+{critique}\nDraft:x={problem} \\boxed{3}\nCritique:wrong {solution}\nA:"

    def test_paper_template_keeps_its_boxed_braces(self):
        assert "\\boxed{}" in fill(resolve_refine_template("paper"), "p", "s", "c")

    def test_literal_template_needs_solution_and_critique(self):
        assert resolve_refine_template("S={solution} C={critique}") == "S={solution} C={critique}"
        with pytest.raises(ConfigError, match="tiny, paper"):
            resolve_refine_template("only {solution}")

    def test_best_refinements_kept(self):
        assert best_indices([0.0, 1.0, None, 1.0], 1) == [1]  # first of the perfect ones (released code)
        assert best_indices([0.0, 1.0, None, 1.0], 2) == [1, 3]
        assert best_indices([None, 0.0], 1) == [1]

    def test_row_layout_of_mixed_groups(self):
        assert row_positions(8, 0, 4, 3) == [False, False, False, True] * 2
        assert row_positions(4, 4, 4, 3) == [False, False, False, True]  # second process, global rows 4..7

    def test_refinement_stats(self):
        stats = refinement_stats([False, False, True, None], [True, False, False, True])
        assert stats["fixed_frac"] == pytest.approx(2 / 3)  # of the 3 refinements of wrong/ungradeable answers
        assert stats["broken_frac"] == 1.0
        assert refinement_stats([True], [True]) == {"fixed_frac": None, "broken_frac": 0.0}


class TestBudget:
    def test_default_is_seven_plus_one(self):
        cfg = compose_config("variant=critique_grpo")
        assert (cfg.variant.num_initial, cfg.variant.num_refinements) == (7, 1)
        assert _spent(cfg) == 8
        assert _spent(compose_config("variant=critique_grpo", "rollout_budget=16")) == 16

    def test_every_variant_spends_the_budget(self):
        for variant in ("grpo", "igrpo", "critique_grpo", "self_verify"):
            assert _spent(compose_config(f"variant={variant}")) == 8, variant

    @pytest.mark.parametrize("overrides, spent", [
        (["variant.refine_from=all"], 14),  # 7 initial + a refinement of each
        (["variant.critique=self_cot"], 9),  # + the generated critique
    ])
    def test_code_faithful_modes_need_allow_budget_mismatch(self, overrides, spent):
        cfg = compose_config("variant=critique_grpo", *overrides)
        assert _spent(cfg) == spent
        with pytest.raises(ConfigError, match=f"generates {spent} completions per prompt"):
            variant_of(cfg).check(cfg)
        allowed = compose_config("variant=critique_grpo", *overrides, "variant.allow_budget_mismatch=true")
        variant_of(allowed).check(allowed)

    def test_self_cot_matched_by_one_initial_answer_less(self):
        _check(compose_config("variant=critique_grpo", "variant.critique=self_cot",
                                              "variant.num_initial=6"))

    @pytest.mark.parametrize("override, message", [
        ("variant.critique=judge_cot", "indicative_gt, indicative, self_cot"),
        ("variant.shaping_gamma=0", "shaping_gamma=0.0 is not valid"),
        ("variant.scale_rewards=rank", "none, group, batch"),
        ("variant.num_refinements=0", "num_refinements=0"),
    ])
    def test_bad_values(self, override, message):
        with pytest.raises(ConfigError, match=message):
            _check(compose_config("variant=critique_grpo", override,
                                                  "variant.allow_budget_mismatch=true"))


def test_shaping_gradient_is_the_published_weight():
    """d/d log p of f(p) = p / (p + gamma) is gamma p / (p + gamma)^2: loss = -A f(p) has that weight on log p."""
    logp = torch.log(torch.tensor([[0.9, 0.1, 0.02], [0.5, 0.3, 0.7]], dtype=torch.float64)).requires_grad_()
    adv = torch.tensor([1.5, -0.5], dtype=torch.float64)
    loss = refinement_token_loss(logp, adv, 0.1)
    p = logp.detach().exp()
    assert torch.allclose(loss.detach(), -adv[:, None] * p / (p + 0.1))
    loss.sum().backward()
    assert torch.allclose(logp.grad, -adv[:, None] * 0.1 * p / (p + 0.1) ** 2, atol=1e-12)
    assert torch.allclose(shaping(torch.tensor(0.1), 0.1), torch.tensor(0.5))


# --- the trainer's loss on fixed tensors ----------------------------------------------------------------------


def _trainer(compose, *overrides):
    from igrpo.job.builds import resolve_policy_path
    from igrpo.models.loading import load_policy
    from igrpo.tasks import load_task
    from igrpo.job.factory import make_trainer

    cfg = compose("variant=critique_grpo", *overrides)
    path, _ = resolve_policy_path(cfg, quiet=True)
    model, tokenizer = load_policy(path)
    trainer, recorder = make_trainer(cfg, model, tokenizer, load_task(cfg.task, cfg.seed), cfg.output_dir)
    return cfg, model, trainer, recorder


def _hand_loss(model, ids, attention, prompt_len, completion_ids, old_logp, adv, refinement, mask, cfg, num_items):
    """The published formulas, written out: initial rows -min(r A, clip(r, 1-eps, 1+eps_high) A) with r the ratio to
    the old policy; refinement rows -A p / (p + gamma) on the current probability (no ratio, no clip); then the
    algo's aggregation over the mixed batch."""
    logits = model(input_ids=ids, attention_mask=attention).logits[:, prompt_len - 1:-1] / cfg.generation.temperature
    logp = torch.log_softmax(logits.float(), -1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    a = adv.unsqueeze(1)
    ratio = torch.exp(logp - old_logp)
    clipped = torch.clamp(ratio, 1 - cfg.algo.epsilon, 1 + cfg.algo.epsilon_high)
    initial = -torch.minimum(ratio * a, clipped * a)
    p = torch.exp(logp)
    refined = -a * p / (p + cfg.variant.shaping_gamma)
    per_token = torch.where(refinement.unsqueeze(1), refined, initial)
    loss_type = cfg.algo.loss_type
    if loss_type == "grpo":
        return ((per_token * mask).sum(1) / mask.sum(1)).mean()
    if loss_type == "bnpo":
        return (per_token * mask).sum() / mask.sum()
    if loss_type == "dr_grpo":
        return (per_token * mask).sum() / (logp.shape[0] * cfg.generation.max_completion_length)
    return (per_token * mask).sum() / num_items  # dapo


@pytest.mark.parametrize("algo", ["grpo", "dapo", "dr_grpo", "bnpo"])
def test_loss_and_gradient_match_the_published_formulas(algo, compose):
    cfg, model, trainer, _ = _trainer(compose, f"algo={algo}")
    trainer.current_gradient_accumulation_steps = 1
    model.train()
    gen = torch.Generator().manual_seed(0)
    batch, prompt_len, comp_len = 6, 5, 7
    vocab = model.config.vocab_size
    prompt_ids = torch.randint(4, vocab, (batch, prompt_len), generator=gen)
    completion_ids = torch.randint(4, vocab, (batch, comp_len), generator=gen)
    prompt_mask = torch.ones(batch, prompt_len, dtype=torch.long)
    mask = torch.ones(batch, comp_len, dtype=torch.long)
    mask[1, 5:] = 0
    mask[4, 2:] = 0
    # two mixed groups of 3 (2 initial + 1 refinement); a wrong refinement (A < 0) must keep its gradient
    refinement = torch.tensor([False, False, True, False, False, True])
    adv = torch.tensor([0.8, -0.4, -0.4, 1.2, -0.6, -0.6])
    ids = torch.cat([prompt_ids, completion_ids], 1)
    attention = torch.cat([prompt_mask, mask], 1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention).logits[:, prompt_len - 1:-1]
        logp = torch.log_softmax(logits.float() / cfg.generation.temperature, -1)
        logp = logp.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    old_logp = logp + 0.3 * torch.randn(batch, comp_len, generator=gen)  # some ratios outside the clip range
    num_items = mask.sum()
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
              "completion_mask": mask, "advantages": adv, "old_per_token_logps": old_logp,
              "num_items_in_batch": num_items, "refinement_rows": refinement}

    model.zero_grad()
    ours = trainer._compute_loss(model, inputs)
    ours.backward()
    ours_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    expected = _hand_loss(model, ids, attention, prompt_len, completion_ids, old_logp, adv, refinement, mask.float(),
                          cfg, num_items.float())
    expected.backward()
    assert ours.item() == pytest.approx(expected.item(), abs=1e-6)
    worst = max((a - p.grad).abs().max().item() for a, p in zip(ours_grads, model.parameters()))
    assert worst < 1e-6
    assert any(g.abs().sum() > 0 for g in ours_grads)
    assert trainer._metrics["train"]["critique/shaping_mean"]  # logged with the loss


def test_a_training_batch_is_trained_under_the_plain_prompt(compose):
    """One real batch through TRL (smoke model): refinement rows carry the plain prompt's tokens, their completions
    were sampled from the refinement prompt, and the advantages are reward - mixed-group mean (no std division)."""
    cfg, model, trainer, recorder = _trainer(compose, "variant.num_initial=3", "variant.num_refinements=1",
                                             "rollout_budget=4")

    def parity(prompts, completions, **_):  # a reward with variance even for the barely trained smoke model
        return [float(len(c) % 2) for c in completions]

    trainer.reward_funcs = [parity]
    trainer.reward_func_names = ["accuracy"]
    trainer.reward_weights = torch.tensor([1.0])
    trainer.reward_processing_classes = [None]
    model.train()
    rows = [trainer.train_dataset[i] for i in (0, 1) for _ in range(4)]
    out = trainer._generate_and_score_completions(rows)

    plain = trainer.processing_class(text=[rows[0]["prompt"], rows[4]["prompt"]])["input_ids"]
    tokens = [out["prompt_ids"][i][out["prompt_mask"][i].bool()].tolist() for i in range(8)]
    assert tokens[:4] == [plain[0]] * 4 and tokens[4:] == [plain[1]] * 4  # every row under q, refinements too
    assert out["refinement_rows"].tolist() == [False, False, False, True] * 2
    texts = [trainer.processing_class.decode(c[m.bool()], skip_special_tokens=True)
             for c, m in zip(out["completion_ids"], out["completion_mask"])]
    rewards = torch.tensor(parity(None, texts)).view(2, 4)
    expected = (rewards - rewards.mean(1, keepdim=True)).flatten()
    assert torch.allclose(out["advantages"], expected, atol=1e-6)
    stages = {row["stage"] for row in recorder.rows}
    assert stages == {"initial", "refinement"}
    refined = [row for row in recorder.rows if row["stage"] == "refinement"]
    assert all("\nCritique:The generated solution is" in row["prompt"] for row in refined)


def _check(cfg) -> None:
    variant_of(cfg).check(cfg)


def _spent(cfg) -> int:
    return variant_of(cfg).generated_per_prompt(cfg)
