"""Batched text generation with a causal LM (left padding), shared by the warm start and evaluation.
Training rollouts go through TRL's own generation path instead."""

from __future__ import annotations

import torch


@torch.no_grad()
def generate_texts(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    do_sample: bool,
    temperature: float = 1.0,
    top_p: float = 1.0,
    num_return_sequences: int = 1,
    batch_size: int = 256,
) -> list[str]:
    """Completions for each prompt, ``num_return_sequences`` per prompt, in prompt order (prompt-major).
    Decoding stops at EOS; special tokens are stripped."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    tokenizer.padding_side = "left"
    per_call = max(1, batch_size // num_return_sequences)
    outputs: list[str] = []
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if do_sample else {"do_sample": False}
    try:
        for start in range(0, len(prompts), per_call):
            chunk = prompts[start : start + per_call]
            enc = tokenizer(chunk, return_tensors="pt", padding=True).to(device)
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                num_return_sequences=num_return_sequences,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                top_k=None,
                **sampling,
            )
            completions = out[:, enc["input_ids"].shape[1] :]
            outputs.extend(tokenizer.batch_decode(completions, skip_special_tokens=True))
    finally:
        if was_training:
            model.train()
    return outputs
