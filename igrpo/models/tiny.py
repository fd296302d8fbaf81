"""The embedded tiny policy: a ~1M-parameter Llama-architecture model with a character tokenizer.

Both are plain Hugging Face objects (``LlamaForCausalLM`` and a ``PreTrainedTokenizerFast`` backed
by a ``tokenizers`` character-level model), so once saved with ``save_pretrained`` they load from a
path like any hub model, and TRL treats them like any other policy.
"""

from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]
# Every printable ASCII character plus newline: enough for the embedded tasks and any template text.
CHARACTERS = sorted(set(string.printable) - set("\r\x0b\x0c\t"))


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character; ``<bos>`` is prepended to every encoded text, ``<eos>`` ends completions."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    # A BPE model with no merges tokenizes into single characters and round-trips spaces and newlines.
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.add_special_tokens(SPECIAL_TOKENS)
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
    )
    return tok


def build_tiny_model(tokenizer, hidden_size: int, num_layers: int, num_heads: int, intermediate_size: int,
                     max_positions: int, seed: int) -> LlamaForCausalLM:
    """A freshly initialised Llama model sized for the character vocabulary (seeded init)."""
    import torch

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model
