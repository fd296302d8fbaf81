"""Critique-GRPO's loss on refinement rows (arXiv 2506.03106, Eq. for the refinement term), as tensor functions.

A refinement was sampled from the refinement prompt but is trained as an answer to the plain question q, so it is
off-policy for pi(.|q). The paper's policy shaping replaces the clipped ratio by f(p) = p / (p + gamma) of the
current token probability p = pi_theta(o_t | q, o_<t):

    loss_t = -A * f(p_t),      d loss_t / d log p_t = -A * gamma * p_t / (p_t + gamma)^2

with no ratio to the old policy, no clipping (the paper writes a clipped form, which would remove the gradient
of wrong refinements; the released code does not clip, ``loss_remove_clip=True``) and no vLLM importance weight
(its weight is 1 on refinement rows). Low-probability tokens of a good refinement get a larger weight than under
plain log-likelihood. Initial rows keep the algo's own clipped surrogate; the released script also removes the
clip there, which makes no difference while the ratio is 1 (``algo.num_iterations=1``: one update per
generation batch, as every variant here runs).

The aggregation over tokens and rows is the algo's own (``algo.loss_type``), the same for both row kinds, so the
comparison with the other variants stays fair; ``algo=dr_grpo`` (sum over tokens / constant) is what the released
code does (``loss_remove_token_mean=True``). ``aggregate`` mirrors TRL 1.16's aggregation for each loss type.
"""

from __future__ import annotations

import torch

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


def shaping(p: torch.Tensor, gamma: float) -> torch.Tensor:
    """f(p) = p / (p + gamma)."""
    return p / (p + gamma)


def refinement_token_loss(logps: torch.Tensor, advantages: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-token loss of refinement rows, -A f(exp(logp)); ``logps`` (B, T) with gradient, ``advantages`` (B,)."""
    return -advantages.unsqueeze(1) * shaping(torch.exp(logps), gamma)


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, loss_type: str, *, max_completion_length: int,
              num_items_in_batch: torch.Tensor | float, num_processes: int = 1, accumulation_steps: int = 1,
              steps_per_generation: int = 1, training: bool = True) -> torch.Tensor:
    """A per-token loss (B, T) reduced as TRL reduces its policy loss for ``loss_type`` (``grpo``: mean over each
    row's tokens, then over rows; ``bnpo``: mean over the batch's tokens; ``dr_grpo``: sum / (B x max completion
    length); ``dapo``: sum / the generation batch's tokens per accumulation window), scaled for gradient
    accumulation like TRL. Linear in ``per_token``: the loss of initial rows plus this of refinement rows equals
    the algo's aggregation of the combined per-token loss."""
    mask = mask.to(per_token.dtype)
    accumulation = accumulation_steps if training else 1
    if loss_type == "grpo":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean() / accumulation
    if loss_type == "bnpo":
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0) / accumulation
    if loss_type == "dr_grpo":
        return (per_token * mask).sum() / (per_token.size(0) * max_completion_length) / accumulation
    if loss_type == "dapo":
        items = torch.as_tensor(num_items_in_batch, dtype=per_token.dtype, device=per_token.device)
        normalizer = items.clamp(min=1.0) / num_processes
        if training:
            normalizer = normalizer * accumulation_steps / steps_per_generation
        return (per_token * mask).sum() / normalizer
    raise ValueError(f"Critique-GRPO's refinement loss supports loss types {', '.join(LOSS_TYPES)}, not {loss_type!r}")
