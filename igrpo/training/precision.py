"""Mixed precision: which dtype the trainable policy's parameters hold, and which dtype it computes in.

``model.dtype`` is the compute dtype. A half-precision compute dtype (bf16, fp16) needs an fp32 copy of the weights
for the optimizer: AdamW's update at the paper's learning rate (1e-6) is far below half a bf16 ulp of a typical
weight (0.02 has an ulp of 2^-13, about 1.2e-4), so an optimizer that updates bf16 weights in place loses almost
every update to rounding. DeepSpeed and FSDP keep that fp32 copy themselves (DeepSpeed's optimizer holds fp32
masters of half-precision weights; accelerate upcasts FSDP's sharded parameters to fp32 under mixed precision), so
there the policy loads in the compute dtype. Everywhere else (one process, DDP) nothing would, so the trainable policy
loads in fp32 and trains under autocast in the compute dtype (TrainingArguments' ``bf16``/``fp16``, which is
accelerate's mixed precision: the forward casts to bf16 per op, the parameters, gradients and AdamW's state stay
fp32), as TRL does with a model it loads itself. Once the trainer has prepared the policy, accelerate wraps its
``forward`` in that autocast, so generation (TRL's rollouts, iGRPO's drafts) and the in-process evaluations after it
compute in the compute dtype too.
"""

from __future__ import annotations

from igrpo.training.distributed import sharding_framework

HALF_DTYPES = ("bfloat16", "float16")


def optimizer_keeps_fp32_master(env=None) -> bool:
    """DeepSpeed or FSDP (as ``accelerate launch`` exported them) keep fp32 weights for the optimizer themselves."""
    return sharding_framework(env) is not None


def weights_dtype(compute_dtype: str, env=None) -> str:
    """The dtype to load the trainable policy in: fp32 where the optimizer would otherwise update half-precision
    weights directly (one process, DDP), else the compute dtype (fp32 runs; DeepSpeed and FSDP, which keep their own
    fp32 copy: loading in half precision there halves the memory of the load)."""
    if compute_dtype in HALF_DTYPES and not optimizer_keeps_fp32_master(env):
        return "float32"
    return compute_dtype


def mixed_precision_args(compute_dtype: str) -> dict:
    """TrainingArguments' autocast switches for the compute dtype (both off for fp32)."""
    return {"bf16": compute_dtype == "bfloat16", "fp16": compute_dtype == "float16"}


def reference_model_args(compute_dtype: str, beta: float) -> dict:
    """TRL builds the reference model (``algo.beta > 0``) from the policy's path in the policy's parameter dtype unless
    ``model_init_kwargs`` names one: it is frozen (no optimizer, no master copy needed), so it loads in the compute
    dtype, half the memory of an fp32 copy (TRL warns that ``model_init_kwargs`` is ignored for the policy, which it
    is: only the reference reads it)."""
    return {"model_init_kwargs": {"dtype": compute_dtype}} if beta > 0 else {}
