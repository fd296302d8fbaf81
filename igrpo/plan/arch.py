"""A model's shape, and what follows from it: parameter count, per-layer parameters, K/V cache bytes per token.

The formulas cover dense decoder-only transformers with grouped-query attention and a gated (SwiGLU) MLP, the
Llama / Mistral / Qwen2 family the paper's base models belong to. Each layer holds:

* attention: q (hidden x heads*head_dim), k and v (hidden x kv_heads*head_dim each), o (heads*head_dim x hidden),
  plus biases on q, k and v where the model has them (Qwen2 does);
* MLP: gate and up (hidden x intermediate each), down (intermediate x hidden);
* two RMSNorm weights (hidden each).

Around the layers: the input embedding (vocab x hidden), a final RMSNorm (hidden) and the LM head (vocab x hidden)
unless it is tied to the embedding. Llama's ``attention_bias`` also puts a bias on o (hidden more per layer): left
out, a few parts per million.

No imports beyond the standard library: the planner runs before anything heavy loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from igrpo.errors import ConfigError

# model_type values (transformers' config.json) whose layers the formulas above describe
PLANNED_TYPES = ("llama", "mistral", "qwen2")
# model types known to have layers that are not attention + MLP (a fixed-size recurrent state instead of a K/V cache)
HYBRID_TYPES = {"nemotron_h": "a hybrid Mamba-Transformer", "jamba": "a hybrid Mamba-Transformer",
                "falcon_h1": "a hybrid Mamba-Transformer", "zamba2": "a hybrid Mamba-Transformer",
                "mamba": "a Mamba (state-space) model", "mamba2": "a Mamba (state-space) model"}

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}

# the embedded tiny model's character vocabulary: 4 special tokens + 96 printable characters (igrpo.models.tiny;
# a test checks it against the tokenizer, which this module may not import)
TINY_VOCAB = 100


@dataclass(frozen=True)
class Architecture:
    model_type: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    qkv_bias: bool
    head_dim: int

    @property
    def q_width(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.num_kv_heads * self.head_dim

    def layer_parameters(self) -> int:
        h, q, kv, i = self.hidden_size, self.q_width, self.kv_width, self.intermediate_size
        attention = h * q + 2 * h * kv + q * h + ((q + 2 * kv) if self.qkv_bias else 0)
        return attention + 3 * h * i + 2 * h

    def embedding_parameters(self) -> int:
        return self.vocab_size * self.hidden_size

    def parameters(self) -> int:
        head = 0 if self.tie_word_embeddings else self.embedding_parameters()
        return self.embedding_parameters() + self.num_layers * self.layer_parameters() + self.hidden_size + head

    def kv_bytes_per_token(self, dtype_bytes: int, tensor_parallel: int = 1) -> int:
        """K and V of every layer for one token on one GPU: layers x 2 x kv_heads x head_dim x bytes. Tensor
        parallelism splits the K/V heads over its GPUs (a head is replicated when there are more GPUs than heads)."""
        heads = max(1, self.num_kv_heads // tensor_parallel)
        return self.num_layers * 2 * heads * self.head_dim * dtype_bytes

    def describe(self) -> str:
        return (f"{self.model_type}: {self.num_layers} layers, hidden {self.hidden_size}, {self.num_heads} heads "
                f"({self.num_kv_heads} K/V) x {self.head_dim}, MLP {self.intermediate_size}, vocab {self.vocab_size}"
                f"{', tied embeddings' if self.tie_word_embeddings else ''}")


def _unplannable(model_type: str, where: str) -> ConfigError:
    kind = HYBRID_TYPES.get(model_type)
    what = f"{kind} (model_type={model_type})" if kind else f"model_type={model_type}"
    return ConfigError(f"cannot plan {where}: it is {what}, and the plan's formulas cover dense decoder-only "
                       f"transformers ({', '.join(PLANNED_TYPES)}); size its run by a measured step instead")


def from_config(config: dict, where: str) -> Architecture:
    """The architecture from a config.json's keys (or the run config's ``model.architecture``, which uses the same
    names); ``where`` names the source in errors."""
    model_type = str(config.get("model_type") or "")
    if model_type not in PLANNED_TYPES:
        raise _unplannable(model_type or "(none)", where)
    needed = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
    missing = [key for key in needed if not config.get(key)]
    if missing:
        raise ConfigError(f"cannot plan {where}: no {', '.join(missing)}; give the model's config.json values")
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    head_dim = config.get("head_dim") or hidden // heads
    qkv_bias = config.get("attention_bias")
    if qkv_bias is None:
        qkv_bias = model_type == "qwen2"  # Qwen2 always has q/k/v biases; its config.json does not say so
    return Architecture(model_type=model_type, hidden_size=hidden, num_layers=int(config["num_hidden_layers"]),
                        num_heads=heads, num_kv_heads=int(config.get("num_key_value_heads") or heads),
                        intermediate_size=int(config["intermediate_size"]), vocab_size=int(config["vocab_size"]),
                        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)), qkv_bias=bool(qkv_bias),
                        head_dim=int(head_dim))


def tiny_architecture(hidden_size: int, num_layers: int, num_heads: int, intermediate_size: int) -> Architecture:
    """The embedded tiny model as ``igrpo.models.tiny.build_tiny_model`` builds it: Llama, no grouped K/V heads,
    tied embeddings, the character vocabulary."""
    return Architecture(model_type="llama", hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                        num_kv_heads=num_heads, intermediate_size=intermediate_size, vocab_size=TINY_VOCAB,
                        tie_word_embeddings=True, qkv_bias=False, head_dim=hidden_size // num_heads)


def billions(count: int) -> str:
    """7615616512 -> '7.62B'; small models in millions."""
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.2f}M"
