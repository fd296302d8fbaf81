"""Batched text generation with a causal LM (left padding), shared by the warm start and evaluation, and the
stop tokens shared with training.

Training rollouts go through TRL's own generation path, which stops at the tokenizer's EOS *and* every EOS id of
the model's generation config (chat models list several: Qwen-derived ones stop at ``<|im_end|>`` and
``<|endoftext|>``). ``stop_token_ids`` is that set plus the chat template's end-of-turn token (the special token its
template writes after an assistant message), which a model's files do not always list as an EOS; ``pin_stop_tokens``
writes it into the model's generation config before the trainer is built, so training and evaluation stop at the same
tokens by construction (an eval that ran past the real end could grade a later answer). vLLM does not see that
in-memory config (its engine reads the model's files), so the trainer also passes the set to generation explicitly
(``rollout_stop_kwargs``).
"""

from __future__ import annotations

import torch

_TURN_PROBE = "igrpo-end-of-turn-probe"  # an assistant message whose text cannot occur in a template


def chat_end_of_turn_id(tokenizer) -> int | None:
    """The special token the tokenizer's chat template writes right after an assistant message (``<|im_end|>``,
    ``<|eot_id|>``, DeepSeek's end of sentence), or None: no template, one that cannot render a user-assistant
    exchange, or no special token after the message."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    messages = [{"role": "user", "content": "1"}, {"role": "assistant", "content": _TURN_PROBE}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # noqa: BLE001  (a template may refuse any conversation it was not written for)
        return None
    if not isinstance(text, str) or _TURN_PROBE not in text:
        return None
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    tail = tokenizer(text.split(_TURN_PROBE, 1)[1], add_special_tokens=False)["input_ids"]
    return next((int(i) for i in tail if i in special), None)


def stop_token_ids(model, tokenizer) -> list[int]:
    """The tokenizer's EOS first, then every EOS id of the model's generation config (TRL's order), then the chat
    template's end-of-turn token, no repeats."""
    config = getattr(model, "generation_config", None)
    listed = getattr(config, "eos_token_id", None) if config is not None else None
    listed = [] if listed is None else [listed] if isinstance(listed, int) else list(listed)
    turn_end = chat_end_of_turn_id(tokenizer)
    ids = ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []) + listed
    ids += [turn_end] if turn_end is not None else []
    return list(dict.fromkeys(int(i) for i in ids))


def rollout_stop_kwargs(backend: str, stop_ids: list[int], pad_token_id: int | None) -> dict:
    """TRL's ``generation_kwargs`` that make rollouts stop at ``stop_ids``: for transformers' generate() the EOS ids
    and the pad id (a GenerationConfig's fields); for vLLM its SamplingParams' ``stop_token_ids`` (added to the EOS
    ids vLLM reads from the model's generation_config.json, in colocate and server mode alike)."""
    if backend == "vllm":
        return {"stop_token_ids": list(stop_ids)}
    return {"eos_token_id": list(stop_ids), "pad_token_id": pad_token_id}


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
