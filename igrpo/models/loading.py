"""Resolve the policy to a directory that loads with ``from_pretrained``.

``model.path`` set: a hub id or local directory, used as given (TRL loads it, so the same path serves
as the reference model when ``beta > 0``). ``model.path`` unset: the embedded tiny model, built and
warm-started once, then cached under a key that hashes every input of the build.
"""

from __future__ import annotations

import json
import os
import random
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from omegaconf import ListConfig

from igrpo.core.critique import REFINE_TEMPLATES as CRITIQUE_TEMPLATES
from igrpo.core.self_verify import TINY_VERIFY_TEMPLATE
from igrpo.core.drafts import resolve_template
from igrpo.models.shipped import atomic_directory, cache_key, restore_shipped  # noqa: F401  (cache_key re-exported)
from igrpo.tasks.arith import LEVELS as ARITH_LEVELS
from igrpo.tasks.arith import WARMSTART_HOLDOUT, build_arith_task, max_solution_chars

BUILD_FORMAT_VERSION = 2  # bump when the build procedure changes, to invalidate old caches
# 2: the warm start draws from model.warmstart_levels (not the task's levels) and always holds out the first
#    WARMSTART_HOLDOUT eval problems of every level, so one base serves every task level and eval size
BUILD_INFO_FILE = "igrpo_build.json"
# The base model never depends on the variant (GRPO and iGRPO must start from the same weights), so
# its draft-conditioned examples always use the tiny template and the model's own draft cap.
WARMSTART_TEMPLATE = "tiny"
DEV_MAX_NEW_TOKENS = 64  # at least; longer levels (harder, hardest) get their longest worked solution + end token


@dataclass
class BuildInfo:
    path: str
    cache_key: str
    built_now: bool
    steps: int
    dev_accuracy: float
    history: list
    final_loss: float
    num_parameters: int
    seconds: float
    torch_threads: int | None = None  # the thread count it was built with (the weights depend on it); None: unknown


def default_cache_root() -> Path:
    return Path(os.environ.get("IGRPO_CACHE", Path.cwd() / ".cache" / "igrpo"))


# Config keys that do not change the built weights (prompting and real-data fields included, so adding such
# fields never invalidates existing caches); the build reads only the embedded arithmetic task's keys.
_UNBUILT_MODEL_KEYS = ("name", "path", "cache_dir", "dtype", "chat_template", "system_prompt", "prompt_template")
# The task's levels and eval size are not among them: the pool comes from model.warmstart_levels, minus a fixed
# hold-out (WARMSTART_HOLDOUT) that covers every eval suite.
_ARITH_TASK_KEYS = ("name", "data_seed", "first_digits", "step_digits")


def tiny_build_spec(model_cfg, task_cfg) -> dict:
    """Everything that determines the built weights; its hash is the cache key."""
    fields = {k: list(v) if isinstance(v, (list, tuple, ListConfig)) else v for k, v in dict(model_cfg).items()
              if k not in _UNBUILT_MODEL_KEYS}
    if fields.get("warmstart_seed") == 0:  # the seed every build used before the field existed: same key, same cache
        del fields["warmstart_seed"]
    task_fields = {k: v for k, v in dict(task_cfg).items() if k in _ARITH_TASK_KEYS}
    return {
        "format": BUILD_FORMAT_VERSION,
        "model": fields,
        "task": {k: list(v) if not isinstance(v, (int, float, str, bool)) else v for k, v in task_fields.items()},
        "refine_template": resolve_template(WARMSTART_TEMPLATE),
        "critique_template": CRITIQUE_TEMPLATES["tiny"],
        "verify_template": TINY_VERIFY_TEMPLATE,
        "torch": torch.__version__.split("+")[0],
    }


def build_tiny(model_cfg, task_cfg, cache_root: Path, progress=None, use_shipped: bool = True) -> BuildInfo:
    """Return the cached tiny model directory; when absent, the shipped build of the same recipe is copied in
    (``use_shipped``, igrpo.models.shipped), else the model is built and warm-started first."""
    spec = tiny_build_spec(model_cfg, task_cfg)
    key = cache_key(spec)
    target = Path(cache_root) / f"tiny-{key}"

    def cached() -> BuildInfo | None:
        info_file = target / BUILD_INFO_FILE
        if not info_file.exists():
            return None
        info = json.loads(info_file.read_text())
        info.update(path=str(target), built_now=False)
        return BuildInfo(**info)

    found = cached()
    if found is not None:
        return found
    with build_lock(target):
        if cached() is None and use_shipped:
            restore_shipped(target, key)
        return cached() or _build_tiny(model_cfg, task_cfg, spec, key, target, progress)


def _build_tiny(model_cfg, task_cfg, spec: dict, key: str, target: Path, progress) -> BuildInfo:
    import time

    from igrpo.models.tiny import build_char_tokenizer, build_tiny_model
    from igrpo.models.warmstart import warm_start

    start = time.perf_counter()
    tokenizer = build_char_tokenizer()
    seed = int(model_cfg.get("warmstart_seed", 0))  # initial weights, warm-start batches and dev draw
    model = build_tiny_model(tokenizer, model_cfg.hidden_size, model_cfg.num_layers, model_cfg.num_heads,
                             model_cfg.intermediate_size, model_cfg.max_positions, seed=seed)
    # The warm-start pool is drawn from the warm-start levels with every level's first WARMSTART_HOLDOUT eval
    # problems excluded (any task.eval_size up to it, any task levels).
    levels = list(model_cfg.warmstart_levels)
    data = build_arith_task(levels, list(ARITH_LEVELS), model_cfg.warmstart_pool_size, WARMSTART_HOLDOUT,
                            task_cfg.data_seed, task_cfg.first_digits, task_cfg.step_digits, train_salt="warmstart")
    rng = random.Random(seed)
    dev = rng.sample(data.train, k=min(128, len(data.train)))
    result = warm_start(model, tokenizer, data.train, dev, data.prompt_template, resolve_template(WARMSTART_TEMPLATE),
                        max_steps=model_cfg.warmstart_steps, target_accuracy=model_cfg.warmstart_target_accuracy,
                        eval_every=model_cfg.warmstart_eval_every, batch_size=model_cfg.warmstart_batch_size,
                        lr=model_cfg.warmstart_lr, format_fraction=model_cfg.warmstart_format_fraction,
                        corrupt_fraction=model_cfg.warmstart_corrupt_fraction, seed=seed,
                        first_check=model_cfg.warmstart_first_check,
                        max_draft_chars=model_cfg.warmstart_max_draft_tokens, draft_truncation="tail",
                        formats=tuple(model_cfg.warmstart_formats),
                        max_new_tokens=_dev_max_new_tokens(levels, task_cfg),
                        progress=progress)
    info = BuildInfo(path=str(target), cache_key=key, built_now=True, steps=result.steps,
                     dev_accuracy=result.dev_accuracy, history=result.history, final_loss=result.final_loss,
                     num_parameters=sum(p.numel() for p in model.parameters()),
                     seconds=time.perf_counter() - start, torch_threads=torch.get_num_threads())
    saved = {k: v for k, v in asdict(info).items() if k not in ("path", "built_now")}
    save_build(target, model, tokenizer, spec, saved)
    return info


def _dev_max_new_tokens(levels: list[str], task_cfg) -> int:
    """The warm start's dev check generates up to the longest worked solution of its levels (+ the end token)."""
    longest = max(max_solution_chars(level, task_cfg.first_digits, task_cfg.step_digits) for level in levels)
    return max(DEV_MAX_NEW_TOKENS, longest + 1)


@contextmanager
def build_lock(target: Path):
    """One build of a cache entry at a time across processes: parallel jobs that start with a cold cache
    (joblib, several ranks) would otherwise all build it; the others wait, then find the first one's build."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save_build(target: Path, model, tokenizer, spec: dict, info: dict) -> None:
    """Save a built model under ``target`` atomically: written to a temporary sibling and renamed, so an
    interrupted build never leaves a half-written cache entry (and a concurrent identical build wins once)."""
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "igrpo_build_spec.json").write_text(json.dumps(spec, indent=2, sort_keys=True))
        (tmp / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2))


def looks_like_local_path(path: str) -> bool:
    """Local directories are absolute, relative with ./ or ../, or start with ~; hub ids are 'org/name'."""
    return path.startswith(("/", "./", "../", "~")) or os.path.isdir(path)


def load_policy(model_path: str, dtype: str = "float32", device: str = "cpu", attn_implementation: str | None = None,
                partitioned: bool = False):
    """Load a causal LM and its tokenizer from a hub id or a local directory (``attn_implementation``: the
    attention kernel, ``model.attn_implementation``; None = transformers' default).

    ``partitioned``: the policy to train, loaded by every process at once; under DeepSpeed ZeRO-3 (its config made live
    by the training arguments) ``from_pretrained`` partitions it across the processes as it loads, and DeepSpeed places
    the shards. Otherwise (evaluation) the model loads whole on this process even while ZeRO-3's config is live: a
    partitioned load is a collective that the other processes, done training, would never join."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kernel = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    with nullcontext() if partitioned else outside_zero3():
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype), **kernel)
    if not (partitioned and zero3_live()):
        model = model.to(device)
    return model, tokenizer


def zero3_live() -> bool:
    """transformers' DeepSpeed ZeRO-3 config is live: ``from_pretrained`` partitions what it loads."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    return is_deepspeed_zero3_enabled()


@contextmanager
def outside_zero3():
    """transformers' ZeRO-3 config set aside for the duration (a no-op when none is live). transformers keeps it as a
    weak reference that its public ``unset_hf_deepspeed_config`` / ``set_hf_deepspeed_config`` clear and set."""
    from transformers.integrations import deepspeed as hf_deepspeed

    ref = hf_deepspeed._hf_deepspeed_config_weak_ref
    live = ref() if ref is not None else None
    if live is None:
        yield
        return
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed.set_hf_deepspeed_config(live)
