"""The per-GPU memory of each part of a run, in bytes: pure arithmetic on the architecture and the batch.

What each estimate assumes is written beside it and in docs/scaling.md ("Memory plan"). Sizes are bytes; GiB only
when shown. Nothing is measured here: these are the sizes of the tensors the code keeps alive, rounded up where the
code's exact buffers are not worth tracking (small terms are folded into the runtime allowance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from igrpo.plan.arch import DTYPE_BYTES, Architecture, billions

GIB = 2**30
# CUDA context, NCCL buffers, cuBLAS workspaces and the caching allocator's slack, per process: a rule of thumb
RUNTIME_BYTES = 1 * GIB
# what vLLM's share holds besides the weights and the K/V cache: the activations of its profiling run (TRL asks
# for 4,096 batched tokens), CUDA graphs and non-torch allocations. A rule of thumb for 7B-14B models, not measured
VLLM_OVERHEAD_BYTES = 2 * GIB
# TRL's fused LM head (trl.kernels.chunked_logprob) scores this many tokens x vocabulary entries per tile
LOGPROB_TOKEN_TILE, LOGPROB_VOCAB_TILE = 4096, 32768
# the layers whose parameters ZeRO-3 / FSDP hold gathered at once: the one computed and the one prefetched
GATHERED_LAYERS = 2


@dataclass(frozen=True)
class Part:
    """One row of the budget: what it is, its bytes per GPU, and the arithmetic that gives them."""

    label: str
    bytes: float
    how: str


@dataclass(frozen=True)
class Sharding:
    """How the training state is split over the GPUs. ``stage``: 1 splits the optimizer state, 2 the gradients too,
    3 the weights too (ZeRO's stages; FSDP's FULL_SHARD is 3, SHARD_GRAD_OP 2, NO_SHARD 0)."""

    label: str
    framework: str  # none (one process) | ddp | deepspeed | fsdp
    stage: int
    source: str = ""  # where it was read from (an accelerate config, the environment), shown with the table


NO_SHARDING = Sharding("none", "ddp", 0)


def gib(n: float) -> str:
    return f"{n / GIB:.1f}"


def _split(n: float, gpus: int, split: bool) -> tuple[float, str]:
    return (n / gpus, f" / {gpus} GPUs") if split and gpus > 1 else (n, "")


SHORT_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def keeps_own_master(sharding: Sharding) -> bool:
    """DeepSpeed and FSDP keep the optimizer's fp32 copy themselves; one process and DDP load the policy in fp32."""
    return sharding.framework in ("deepspeed", "fsdp")


def loaded_weight_bytes(dtype: str, sharding: Sharding) -> int:
    """Bytes per parameter of the trainable policy as it loads (igrpo.training.precision.weights_dtype): fp32 where
    nothing else keeps a master copy (one process, DDP), else ``model.dtype``."""
    return DTYPE_BYTES[dtype] if keeps_own_master(sharding) else 4


def training_state(params: int, dtype: str, sharding: Sharding, gpus: int) -> list[Part]:
    """Weights, gradients and AdamW's state on one GPU, for ``model.dtype`` = ``dtype`` (the compute dtype).

    * DeepSpeed: weights and gradients in the model's dtype; the optimizer holds fp32 m and v, and an fp32 master
      copy of the weights when the model is in half precision (12 B per parameter).
    * FSDP: accelerate upcasts the sharded parameters to fp32 under mixed precision, so weights, gradients and
      m, v are all fp32 (16 B per parameter); layers are computed on bf16 copies gathered per layer.
    * DDP or one process: the policy loads in fp32 (the master copy AdamW updates) and computes under autocast, so
      weights, gradients (autocast's backward casts them to the parameters' dtype) and m, v are fp32: 16 B per
      parameter (``autocast_copies``: the forward's half-precision casts). DDP adds its reduction buckets, a second
      copy of the gradients.
    """
    fw, stage = sharding.framework, sharding.stage
    dtype_bytes = DTYPE_BYTES[dtype]
    half = dtype_bytes < 4
    name = SHORT_DTYPES[dtype]
    if fw == "fsdp":
        w, g, o, w_name, o_name = 4, 4, 8, "fp32, upcast by accelerate", "fp32 m, v"
    elif fw == "deepspeed":
        w, g, o, w_name = dtype_bytes, dtype_bytes, 8 + (4 if half else 0), name
        o_name = "fp32 master, m, v" if half else "fp32 m, v"
    else:
        w, g, o, o_name = 4, 4, 8, "fp32 m, v"
        w_name = f"fp32 master, {name} autocast" if half else "fp32"
    if fw == "ddp" and gpus > 1:
        g *= 2  # the gradients and DDP's buckets
    p = billions(params)
    weights, ws = _split(params * w, gpus, stage >= 3)
    grads, gs = _split(params * g, gpus, stage >= 2)
    optim, os_ = _split(params * o, gpus, stage >= 1)
    grad_how = f"{p} x {g} B{gs}" + (" (the gradients and DDP's buckets)" if fw == "ddp" and gpus > 1 else "")
    return [Part(f"weights ({w_name})", weights, f"{p} x {w} B{ws}"),
            Part("gradients", grads, grad_how),
            Part(f"optimizer ({o_name})", optim, f"{p} x {o} B{os_}")]


def autocast_copies(params: int, dtype: str, sharding: Sharding) -> Part | None:
    """One process or DDP with a half-precision ``model.dtype``: autocast casts each fp32 weight to the compute dtype
    as the forward uses it and keeps the cast until the forward returns (torch's autocast weight cache), so a whole
    forward (training's, the log-probs', a generate() step's) holds a compute-dtype copy of every weight. None where
    the weights already are in the compute dtype (fp32 runs, DeepSpeed, FSDP's gathered layers)."""
    b = DTYPE_BYTES[dtype]
    if keeps_own_master(sharding) or b >= 4:
        return None
    return Part(f"autocast's {SHORT_DTYPES[dtype]} weight copies", params * b,
                f"{billions(params)} x {b} B, cached during a forward")


def gathered_layers(arch: Architecture, dtype_bytes: int) -> Part:
    """ZeRO-3 / FSDP full sharding: the parameters of the layers being computed, gathered whole."""
    n = GATHERED_LAYERS * arch.layer_parameters()
    return Part("gathered layers (ZeRO-3 / FSDP)", n * dtype_bytes,
                f"{GATHERED_LAYERS} layers x {billions(arch.layer_parameters())} x {dtype_bytes} B")


def layer_saved_per_token(arch: Architecture, b: int) -> int:
    """Bytes one decoder layer saves for its backward pass, per token (activations in dtype bytes ``b``):
    two RMSNorms (each its fp32 input and its output: (4 + b) x hidden), attention (q, k, v, their rotary copies and
    rotated forms, the attention output and o's input: b x (5 x q_width + 4 x kv_width)), and the gated MLP (gate,
    up, silu(gate) and down's input: 4 x b x intermediate). Fused attention (sdpa, flash) keeps no score matrix."""
    h, q, kv, i = arch.hidden_size, arch.q_width, arch.kv_width, arch.intermediate_size
    return 2 * (4 + b) * h + b * (5 * q + 4 * kv) + 4 * b * i


def layer_backward_per_token(arch: Architecture, b: int) -> int:
    """The gradients alive during one layer's backward, per token: the residual stream's in and out (2 x hidden)
    and three MLP-width gradients (down's input, then silu(gate) and up)."""
    return b * (2 * arch.hidden_size + 3 * arch.intermediate_size)


def activations(arch: Architecture, sequences: int, seq_len: int, b: int, checkpointing: bool,
                attention: str) -> list[Part]:
    """The activations of one micro-step's forward and backward on one GPU.

    With gradient checkpointing (transformers checkpoints each decoder layer): one hidden state per layer per token
    (the layer's input, b x hidden) is kept, and the layer being back-propagated is recomputed, so one layer's full
    working set (what it saves plus its gradients) is alive at a time. Without: every layer's saved tensors."""
    tokens = sequences * seq_len
    saved, back = layer_saved_per_token(arch, b), layer_backward_per_token(arch, b)
    L, h = arch.num_layers, arch.hidden_size
    parts = []
    if checkpointing:
        parts.append(Part("activations: checkpointed hidden states", L * tokens * h * b,
                          f"{tokens:,} tokens x {L} layers x {h:,} x {b} B"))
        parts.append(Part("activations: one layer's working set", tokens * (saved + back),
                          f"{tokens:,} tokens x {(saved + back) / 1024:.0f} KiB (one layer's saved tensors and "
                          "gradients)"))
    else:
        parts.append(Part("activations: every layer's saved tensors", tokens * (L * saved + back),
                          f"{tokens:,} tokens x ({L} layers x {saved / 1024:.0f} KiB + {back / 1024:.0f} KiB "
                          "of gradients)"))
    if attention == "eager":
        layers = 1 if checkpointing else L
        parts.append(Part("attention scores (eager)", 2 * b * arch.num_heads * seq_len**2 * sequences * layers,
                          f"{sequences} x {arch.num_heads} heads x {seq_len:,}^2 x 2 x {b} B x {layers} layer(s)"))
    if attention != "flash_attention_2":  # a boolean padding mask, sequences x length^2 (flash-attn takes none)
        parts.append(Part("attention mask", sequences * seq_len**2, f"{sequences} x {seq_len:,}^2 x 1 B"))
    return parts


def loss_logprobs(arch: Architecture, completion_tokens: int, b: int, head_gathered: bool) -> Part:
    """The policy loss's log-probabilities through TRL's fused LM head (``add_fused_lm_head``, always on in
    TRL 1.16): the vocab x tokens logits are never materialised; tiles of 4,096 tokens x 32,768 vocabulary entries
    are. Alive in its backward: the scored hidden states (a compact copy), their fp32 gradient and its cast, and the
    LM head's fp32 gradient accumulator and its cast; under ZeRO-3 the LM head gathered whole."""
    h, V = arch.hidden_size, arch.vocab_size
    tile = min(completion_tokens, LOGPROB_TOKEN_TILE) * min(V, LOGPROB_VOCAB_TILE) * b
    tokens = completion_tokens * h * (2 * b + 4)
    head = V * h * (4 + b) + (V * h * b if head_gathered else 0)
    return Part("loss: log-probs (TRL's fused LM head)", tile + tokens + head,
                f"{completion_tokens:,} completion tokens in {LOGPROB_TOKEN_TILE:,} x {LOGPROB_VOCAB_TILE:,} tiles; "
                f"LM head's fp32 gradient {gib(V * h * 4)} GiB")


@dataclass(frozen=True)
class VllmPlan:
    """vLLM colocated on every training GPU: its share of the memory and what the share holds."""

    share: float
    share_bytes: float
    engine_weights: float
    overhead: float
    kv_cache: float
    kv_per_token: int
    seq_len: int
    sequences_held: int
    queued: int  # sequences one engine is given at once (TRL's max_num_seqs)

    @property
    def one_sequence(self) -> int:
        return self.kv_per_token * self.seq_len


def vllm_colocate(arch: Architecture, params: int, b: int, share: float, gpu_memory: float, tensor_parallel: int,
                  seq_len: int, queued: int) -> VllmPlan:
    """vLLM takes ``share`` x the GPU's memory (``generation.gpu_memory_utilization``); in it the engine's copy of the
    weights (split over its tensor-parallel GPUs), its overhead, and the K/V cache: what is left. Its cache holds
    ``cache // (kv bytes per token x (prompt cap + completion cap))`` whole sequences at once; the rest wait."""
    share_bytes = share * gpu_memory
    engine = params * b / tensor_parallel
    kv = share_bytes - engine - VLLM_OVERHEAD_BYTES
    per_token = arch.kv_bytes_per_token(b, tensor_parallel)
    held = max(0, math.floor(kv / (per_token * seq_len))) if kv > 0 else 0
    return VllmPlan(share=share, share_bytes=share_bytes, engine_weights=engine, overhead=VLLM_OVERHEAD_BYTES,
                    kv_cache=kv, kv_per_token=per_token, seq_len=seq_len, sequences_held=held, queued=queued)


def hf_generation(arch: Architecture, b: int, sequences: int, seq_len: int) -> Part:
    """``generation=hf``: transformers' generate() over every sequence the process generates at once (TRL generates
    a whole optimizer step's rollouts together): their K/V cache at full length, and fp32 logits of one position."""
    kv = sequences * seq_len * arch.kv_bytes_per_token(b)
    logits = sequences * arch.vocab_size * 4
    return Part("generate(): K/V cache", kv + logits,
                f"{sequences} sequences x {seq_len:,} tokens x {arch.kv_bytes_per_token(b) / 1024:.0f} KiB")
