"""Batched text generation with a causal LM (left padding), shared by the warm start and evaluation, and the
stop tokens shared with training.

Training rollouts go through TRL's own generation path, which stops at the tokenizer's EOS *and* every EOS id of
the model's generation config (chat models list several: Qwen-derived ones stop at ``<|im_end|>`` and
``<|endoftext|>``). ``stop_token_ids`` is that set; ``pin_stop_tokens`` writes it into the model's generation
config before the trainer is built, so training and evaluation stop at the same tokens by construction (an eval
that ran past the real end could grade a later answer).
"""

from __future__ import annotations

import torch


def stop_token_ids(model, tokenizer) -> list[int]:
    """The tokenizer's EOS first, then every EOS id of the model's generation config (TRL's order), no repeats."""
    config = getattr(model, "generation_config", None)
    listed = getattr(config, "eos_token_id", None) if config is not None else None
    listed = [] if listed is None else [listed] if isinstance(listed, int) else list(listed)
    ids = ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []) + listed
    return list(dict.fromkeys(int(i) for i in ids))


def pin_stop_tokens(model, tokenizer) -> list[int]:
    """Write ``stop_token_ids`` into ``model.generation_config`` (what TRL's rollouts read) and return them."""
    ids = stop_token_ids(model, tokenizer)
    if getattr(model, "generation_config", None) is not None and ids:
        model.generation_config.eos_token_id = ids if len(ids) > 1 else ids[0]
    return ids


@torch.no_grad()
def generate_ids(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    do_sample: bool,
    temperature: float = 1.0,
    top_p: float = 1.0,
    num_return_sequences: int = 1,
    batch_size: int = 256,
) -> list[list[int]]:
    """Completions for each prompt as token ids, ``num_return_sequences`` per prompt, in prompt order
    (prompt-major). Decoding stops at any of ``stop_token_ids`` (the same tokens as training); special tokens
    (padding, the stop token) are removed."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    tokenizer.padding_side = "left"
    per_call = max(1, batch_size // num_return_sequences)
    stops = stop_token_ids(model, tokenizer)
    special = set(tokenizer.all_special_ids)
    outputs: list[list[int]] = []
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
                eos_token_id=stops,
                top_k=None,
                **sampling,
            )
            completions = out[:, enc["input_ids"].shape[1] :].tolist()
            outputs.extend([t for t in ids if t not in special] for ids in completions)
    finally:
        if was_training:
            model.train()
    return outputs


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
    """``generate_ids`` decoded: completions as text, special tokens stripped."""
    ids = generate_ids(model, tokenizer, prompts, max_new_tokens, do_sample, temperature, top_p,
                       num_return_sequences, batch_size)
    return tokenizer.batch_decode(ids, skip_special_tokens=True)
