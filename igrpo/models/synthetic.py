"""A DeepSeek-R1-Distill-Qwen look-alike built on the machine, with nothing downloaded: a randomly initialised Qwen2
model behind a byte-level BPE tokenizer trained here, with Qwen's and R1's special tokens, ``<think>`` tags and an
R1-style chat template.

The paper's base models tokenize bytes (any UTF-8 text round-trips), mark turns with special tokens that must never
be split or generated as text, and open the assistant turn inside a ``<think>`` block. The embedded tiny model has
none of this (characters, no template), so code that only ever met it can break on the first real model: the GPU
smoke check (``experiments/gpu_smoke.sh``) and the tests train and evaluate this model instead. It learns nothing
useful; what it tests is the path, and at real width (``hidden_size=3584`` with a few layers) the memory plan.

The token names are R1-Distill-Qwen's own, including its full-width bars (``<｜User｜>``); the vocabulary is small
(``vocab_size`` merges learned from ``corpus``), while the model's embedding may be larger, as R1-Distill-Qwen's
(152,064 rows for 151,665 tokens) is.
"""

from __future__ import annotations

from collections.abc import Iterable

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SPECIAL_TOKENS = [BOS, EOS, USER, ASSISTANT, *QWEN_SPECIAL]
THINK_TAGS = ["<think>", "</think>"]  # added tokens that are not special: they decode as text, as in R1
# R1-Distill-Qwen's layout: BOS, the system text, user turns after <｜User｜>, the assistant turn opened with
# <｜Assistant｜><think>\n; an earlier assistant turn keeps only what follows its </think>.
R1_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}{% endif %}{% endfor %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}" + USER + "{{ m['content'] }}"
    "{% elif m['role'] == 'assistant' %}" + ASSISTANT + "{{ m['content'].split('</think>')[-1] }}" + EOS
    + "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "<think>\n{% endif %}"
)


def build_r1_tokenizer(corpus: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE tokenizer with ``vocab_size`` entries learned from ``corpus`` (every byte is in its alphabet,
    so any text round-trips), R1's and Qwen's special tokens, the think tags and the R1-style chat template. Like
    R1-Distill-Qwen's it prepends BOS to every encoded text although its template writes BOS too (a prompt rendered
    by the template and then encoded must not start with two), and pads with the end token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(list(corpus), trainer=trainer)
    core.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A $B",
                                                        special_tokens=[(BOS, core.token_to_id(BOS))])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=EOS,
                                  padding_side="left")
    tok.add_tokens(THINK_TAGS)
    tok.chat_template = R1_CHAT_TEMPLATE
    return tok


def qwen2_config(tokenizer, hidden_size: int, num_layers: int, num_heads: int, num_kv_heads: int,
                 intermediate_size: int, vocab_size: int | None = None, max_positions: int = 4096):
    """A ``Qwen2Config`` whose embedding holds at least the tokenizer's tokens, the LM head untied as in the 7B and
    14B models, the tokenizer's special ids."""
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=max(vocab_size or 0, len(tokenizer)), hidden_size=hidden_size,
                       intermediate_size=intermediate_size, num_hidden_layers=num_layers,
                       num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
                       max_position_embeddings=max_positions, tie_word_embeddings=False, use_sliding_window=False,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)


def save_r1_like(directory, corpus: Iterable[str], hidden_size: int, num_layers: int, num_heads: int,
                 num_kv_heads: int, intermediate_size: int, vocab_size: int | None = None, max_positions: int = 4096,
                 tokenizer_vocab: int = 512, seed: int = 0, weights: bool = True) -> None:
    """The tokenizer and a freshly initialised (seeded) ``Qwen2ForCausalLM`` saved as one model directory
    (``model=hf model.path=<directory>`` loads it), its end token as every stop token. ``weights=False`` saves the
    config and tokenizer only: enough for the memory plan, which reads the architecture from config.json."""
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    tok = build_r1_tokenizer(corpus, tokenizer_vocab)
    config = qwen2_config(tok, hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size, vocab_size,
                          max_positions)
    tok.save_pretrained(directory)
    generation = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                  pad_token_id=tok.pad_token_id)
    if not weights:
        config.save_pretrained(directory)
        generation.save_pretrained(directory)
        return
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = generation
    model.save_pretrained(directory)
