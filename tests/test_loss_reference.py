"""Each algo's loss, as the trainer computes it, against an independent implementation of the
published formula on fixed tensors (log-probs, old log-probs, advantages, masks)."""

from __future__ import annotations

import pytest
import torch

from igrpo.job.builds import resolve_policy_path
from igrpo.models.loading import load_policy
from igrpo.tasks import load_task
from igrpo.job.factory import make_trainer


def reference_loss(logp, old_logp, adv, mask, algo, max_len, num_items):
    """Clipped surrogate -min(r A, clip(r) A) with each algo's ratio level and aggregation."""
    a = adv.unsqueeze(1)
    if algo.importance_sampling_level == "sequence":  # GSPO: length-normalised sequence log-ratio
        log_ratio = ((logp - old_logp) * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
    else:
        log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1 - algo.epsilon, 1 + algo.epsilon_high)
    per_token = -torch.minimum(ratio * a, clipped * a).expand_as(logp)
    if algo.loss_type == "grpo":  # mean over each sequence's tokens, then over sequences
        return ((per_token * mask).sum(1) / mask.sum(1)).mean()
    if algo.loss_type == "bnpo":  # mean over all tokens of the batch
        return (per_token * mask).sum() / mask.sum()
    if algo.loss_type == "dr_grpo":  # constant normaliser: batch size x max completion length
        return (per_token * mask).sum() / (logp.shape[0] * max_len)
    if algo.loss_type == "dapo":  # token-level over the whole generation batch
        return (per_token * mask).sum() / num_items
    raise AssertionError(algo.loss_type)


@pytest.mark.parametrize("algo_name", ["grpo", "dapo", "dr_grpo", "gspo", "bnpo"])
def test_trainer_loss_matches_published_formula(algo_name, compose):
    cfg = compose("variant=grpo", f"algo={algo_name}")
    path, _ = resolve_policy_path(cfg, quiet=True)
    model, tokenizer = load_policy(path)
    trainer, _ = make_trainer(cfg, model, tokenizer, load_task(cfg.task, cfg.seed), cfg.output_dir)
    trainer.current_gradient_accumulation_steps = 1
    model.train()

    gen = torch.Generator().manual_seed(0)
    batch, prompt_len, comp_len = 4, 5, 7
    vocab = model.config.vocab_size
    prompt_ids = torch.randint(4, vocab, (batch, prompt_len), generator=gen)
    completion_ids = torch.randint(4, vocab, (batch, comp_len), generator=gen)
    prompt_mask = torch.ones(batch, prompt_len, dtype=torch.long)
    completion_mask = torch.ones(batch, comp_len, dtype=torch.long)
    completion_mask[1, 5:] = 0  # ragged completions
    completion_mask[3, 3:] = 0
    advantages = torch.tensor([1.0, -0.5, 0.3, -1.2])

    with torch.no_grad():
        ids = torch.cat([prompt_ids, completion_ids], 1)
        logits = model(input_ids=ids, attention_mask=torch.cat([prompt_mask, completion_mask], 1)).logits
        logp = torch.log_softmax(logits[:, prompt_len - 1 : -1].float(), -1).gather(-1, completion_ids.unsqueeze(-1))
        logp = logp.squeeze(-1)
    # old policy: perturbed so that some ratios fall outside every algo's clip range
    old_logp = logp + 0.3 * torch.randn(batch, comp_len, generator=gen)
    num_items = completion_mask.sum()
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
              "completion_mask": completion_mask, "advantages": advantages, "old_per_token_logps": old_logp,
              "num_items_in_batch": num_items}
    with torch.no_grad():
        ours = trainer._compute_loss(model, inputs)
    expected = reference_loss(logp, old_logp, advantages, completion_mask.float(), cfg.algo,
                              cfg.generation.max_completion_length, num_items.float())
    assert ours.item() == pytest.approx(expected.item(), abs=1e-6)
