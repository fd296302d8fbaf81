"""Schemas of the ``model`` group: the embedded tiny model and any Hugging Face causal LM."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from omegaconf import MISSING

from igrpo.config.fields import FACT, choice, number
from igrpo.errors import ConfigError, choice_error
from igrpo.models.packaged import check_packaged, packaged_name

DTYPES = ("float32", "bfloat16", "float16")
ATTENTION = ("sdpa", "flash_attention_2", "eager")


def model_path(model_cfg) -> str | None:
    """The base model's hub id or directory; None for the embedded tiny model (built in-project)."""
    return model_cfg.get("path") if "path" in model_cfg else None


# what makes a directory loadable by ``from_pretrained`` (igrpo.models.loading.load_policy): its config, its weights
# (one file, or a sharded index whose shards are all there) and its tokenizer
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")


def check_model_path_here(model_cfg) -> None:
    """The base model's ``model.path`` is usable on this machine (``check_model_here``)."""
    check_model_here("model.path", model_path(model_cfg))


def looks_local(path: str) -> bool:
    """A path written as a path (or naming something that exists here), not a hub id."""
    return path.startswith(("/", "./", "../", "~")) or os.path.exists(os.path.expanduser(path))


def hub_model_id(path: str | None) -> str | None:
    """``path`` when it is a Hugging Face hub id (``org/name``) rather than a local path or a package-shipped model
    (``package:<name>``), else None."""
    return path if path and not looks_local(path) and packaged_name(path) is None else None


def hub_model_cached(hub_id: str) -> bool:
    """Whether this machine's Hugging Face cache holds the hub model ``hub_id`` (its config.json, at least)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)


def model_hub_needs(label: str, path: str | None) -> list:
    """The hub model a reference fetches (``igrpo.config.checks.check_hub_reachable``); none for a local one."""
    from igrpo.config.checks import HubNeed

    hub_id = hub_model_id(path)
    return [HubNeed(label, hub_id, lambda: hub_model_cached(hub_id))] if hub_id else []


def check_model_here(label: str, path: str | None) -> None:
    """A model reference (``model.path``, ``eval.checkpoint``, ``reward.judge.model``) is usable here, checked without
    loading anything: a hub id, or a directory that ``from_pretrained`` can load (a config.json naming its
    model_type, the weights (every shard of a sharded index), a tokenizer). Whether the hub can be reached is
    ``igrpo.config.checks.check_hub_reachable``'s question. A package-shipped model (``package:<name>``) must be
    installed (``igrpo.models.packaged.check_packaged``)."""
    if path is None:
        return
    if packaged_name(path) is not None:  # a model shipped in a package (igrpo.models.packaged), converted when used
        check_packaged(label, path)
        return
    if not looks_local(path):
        from huggingface_hub.utils import HFValidationError, validate_repo_id

        try:
            validate_repo_id(path)
        except HFValidationError:
            raise ConfigError(f"{label}={path!r} is neither a model directory here nor a hub id (org/name); give an "
                              "existing model directory or a hub id") from None
        return
    where = Path(os.path.expanduser(path))
    if not where.exists():
        raise ConfigError(f"{label}={path!r} does not exist; give an existing model directory or a hub id")
    if not where.is_dir():
        kind = "a GGUF file" if where.suffix == ".gguf" else "a file"
        raise ConfigError(f"{label}={path!r} is {kind}, not a model directory; give the directory that holds "
                          "config.json, the weights (.safetensors or .bin) and the tokenizer")
    problem = _unloadable(where)
    if problem:
        raise ConfigError(f"{label}={path!r} is not a loadable model directory: {problem}")


def _unloadable(where: Path) -> str | None:
    """What keeps ``from_pretrained`` from loading the directory, or None."""
    try:
        names = {p.name for p in where.iterdir()}
    except OSError as err:
        return f"it cannot be read ({err.strerror or err})"
    if "config.json" not in names:
        found = f" (it holds {', '.join(sorted(names)[:5])}{', ...' if len(names) > 5 else ''})" if names else \
            " (it is empty)"
        return f"no config.json{found}"
    try:
        config = json.loads((where / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"config.json cannot be read as JSON ({err})"
    if not isinstance(config, dict) or "model_type" not in config:
        return "config.json names no model_type"
    for index in WEIGHT_INDEXES:
        if index in names:
            try:
                shards = set(json.loads((where / index).read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                return f"{index} cannot be read (no weight_map)"
            missing = sorted(shards - names)
            if missing:
                return f"{len(missing)} of {len(shards)} weight shards in {index} are missing, e.g. {missing[0]}"
            return _damaged([where / shard for shard in sorted(shards)]) or _tokenizer_missing(names)
    weights = [p for pattern in WEIGHT_PATTERNS for p in where.glob(pattern) if p.is_file()]
    if not weights:
        return "no weights (model.safetensors, pytorch_model.bin or a sharded index)"
    if all(p.stat().st_size == 0 for p in weights):
        return f"the weights file {weights[0].name} is empty"
    return _damaged(weights) or _tokenizer_missing(names)


def _damaged(weights: list[Path]) -> str | None:
    """The first .safetensors file whose header does not read (an interrupted download, another format renamed):
    its first 8 bytes give the length of a JSON header that must follow. Other formats are left to the loader."""
    import struct

    for path in weights:
        if path.suffix != ".safetensors":
            continue
        try:
            with open(path, "rb") as handle:
                head = handle.read(8)
                size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
                if not 0 < size <= min(path.stat().st_size - 8, 100 * 2**20):
                    raise ValueError
                if not isinstance(json.loads(handle.read(size)), dict):
                    raise ValueError
        except (OSError, ValueError):
            return f"the weights file {path.name} is not a readable safetensors file (damaged or incomplete)"
    return None


def _tokenizer_missing(names: set[str]) -> str | None:
    if not names & set(TOKENIZER_FILES):
        return f"no tokenizer ({', '.join(TOKENIZER_FILES[:2])}, ...)"
    return None


@dataclass
class ModelCommon:
    name: str = MISSING  # label used in run names and tags
    dtype: str = choice(*DTYPES)  # the half types need device=cuda
    cache_dir: str | None = MISSING  # where built models (policy, tiny judge) are cached; None = .cache/igrpo

    @staticmethod
    def check(m, cfg) -> None:
        if cfg.device == "cpu" and m.dtype != "float32":
            raise ConfigError(f"model.dtype={m.dtype} is not valid with device=cpu (half precision needs a GPU); "
                              "use device=cuda, or model.dtype=float32 on CPU")


@dataclass
class ModelTiny(ModelCommon):
    """The embedded ~1M-parameter Llama with a character tokenizer, built and warm-started in-project."""

    hidden_size: int = MISSING  # width of the Llama blocks
    num_layers: int = MISSING  # transformer blocks
    num_heads: int = MISSING  # attention heads (no grouped-query attention)
    intermediate_size: int = MISSING  # MLP width
    max_positions: int = MISSING  # longest prompt + completion, in characters
    # warm start: a short supervised phase so the base is partially correct
    warmstart_steps: int = MISSING  # hard cap on supervised steps
    warmstart_target_accuracy: float = MISSING  # stop early once greedy dev accuracy reaches this
    warmstart_eval_every: int = MISSING  # steps between dev-accuracy checks
    warmstart_first_check: int = MISSING  # no dev checks before this step
    warmstart_batch_size: int = MISSING
    warmstart_lr: float = MISSING
    # auxiliary prompt formats made in-distribution (igrpo.models.warmstart.FORMATS): refine | critique | verify;
    # one base for every variant, so each method's own prompt is known to it
    warmstart_formats: list[str] = MISSING
    warmstart_format_fraction: float = number(ge=0, le=1)  # share of batches in an auxiliary format (split equally among them)
    warmstart_corrupt_fraction: float = number(ge=0, le=1)  # share of shown drafts / critiqued answers that are corrupted
    warmstart_pool_size: int = MISSING  # distinct training problems drawn for the warm start
    # the base's own seed (initial weights, warm-start batches, dev draw): vary it with the run seed to count the
    # base's variance in a seed interval (experiments' specs say when they do); 0 = the default base
    warmstart_seed: int = number(ge=0, lt=2**32)
    # drafts in warm-start prompts are cut to their last N characters; null = whole drafts (iGRPO as the paper defines it)
    warmstart_max_draft_tokens: Optional[int] = number(gt=0)
    # arithmetic levels the warm start teaches (one base for every task level: a task's harder levels are harder
    # for the same base); its dev accuracy is measured on their mix
    warmstart_levels: list[str] = MISSING

    @staticmethod
    def check(m, cfg) -> None:
        from igrpo.models.warmstart import check_formats  # the warm start's formats (imports torch: only here)
        from igrpo.tasks.arith import LEVELS, WARMSTART_HOLDOUT

        ModelCommon.check(m, cfg)
        check_formats(m.warmstart_formats)
        for level in m.warmstart_levels:
            if level not in LEVELS:
                raise choice_error("model.warmstart_levels entry", level, LEVELS)
        if not m.warmstart_levels:
            raise ConfigError(f"model.warmstart_levels=[] is not valid; give at least one of {', '.join(LEVELS)}")
        if cfg.task.name == "arith" and cfg.task.eval_size > WARMSTART_HOLDOUT:
            raise ConfigError(f"task.eval_size={cfg.task.eval_size} is not valid with the tiny model: the warm start "
                              f"holds out only the first {WARMSTART_HOLDOUT} eval problems of each level; "
                              f"use task.eval_size<={WARMSTART_HOLDOUT}")
        _check_shown_solution_cap(cfg)


@dataclass
class Architecture:
    """The shape of a Hugging Face model, under the names of its config.json: what the memory plan (``python -m
    igrpo.plan``) reads where ``model.path`` is a hub id (no network needed). A local directory's config.json wins.
    Numbers may be null for a model the plan does not cover (it says so in one line)."""

    model_type: str = MISSING  # transformers' model_type: qwen2, llama, mistral (planned); others are refused
    hidden_size: int | None = number(gt=0)
    num_hidden_layers: int | None = number(gt=0)
    num_attention_heads: int | None = number(gt=0)
    num_key_value_heads: int | None = number(gt=0)  # grouped-query attention: fewer K/V heads than query heads
    head_dim: int | None = number(gt=0)  # null = hidden_size / num_attention_heads
    intermediate_size: int | None = number(gt=0)  # the gated MLP's width
    vocab_size: int | None = number(gt=0)
    tie_word_embeddings: bool | None = MISSING  # the LM head shares the input embedding's weights
    attention_bias: bool | None = MISSING  # biases on the q/k/v projections (Qwen2: true, Llama: false)

    @staticmethod
    def check(a) -> None:
        from igrpo.config.fields import check_fields

        check_fields(a, "model.architecture", Architecture)
        heads, kv = a.num_attention_heads, a.num_key_value_heads
        if heads and kv and heads % kv:
            raise ConfigError(f"model.architecture.num_key_value_heads={kv} does not divide num_attention_heads="
                              f"{heads}; give the model's config.json values")
        if a.head_dim is None and heads and a.hidden_size and a.hidden_size % heads:
            raise ConfigError(f"model.architecture.hidden_size={a.hidden_size} is not a multiple of "
                              f"num_attention_heads={heads}; give head_dim (the model's config.json value)")


@dataclass
class ModelHF(ModelCommon):
    """Any Hugging Face causal LM by hub id or local directory (the paper's base models included)."""

    path: str = MISSING  # HF hub id or local directory
    chat_template: bool = MISSING  # wrap every prompt (plain, draft-conditioned, eval) in the tokenizer's template
    system_prompt: str | None = MISSING  # system message when chat_template is true; None = no system turn
    prompt_template: str | None = MISSING  # user message with {problem}; None = the task's own
    attn_implementation: str = choice(*ATTENTION)  # transformers attention kernel (flash_attention_2 needs flash-attn)
    # the model's shape for the memory plan, where no local config.json gives it (null: none known); a fact about
    # the weights model.path names, so never in the config hash
    architecture: Architecture | None = field(default=MISSING, metadata=FACT)

    @staticmethod
    def check(m, cfg) -> None:
        ModelCommon.check(m, cfg)
        if m.architecture is not None:
            Architecture.check(m.architecture)
        if m.attn_implementation == "flash_attention_2" and cfg.device != "cuda":
            raise ConfigError("model.attn_implementation=flash_attention_2 needs device=cuda; use "
                              "model.attn_implementation=sdpa on CPU")
        if m.prompt_template is not None and "{problem}" not in m.prompt_template:
            raise ConfigError(f"model.prompt_template={m.prompt_template!r} is not valid: it must contain {{problem}} "
                              "(where the problem goes)")


def _check_shown_solution_cap(cfg) -> None:
    """The tiny base is warm-started on drafts cut to ``model.warmstart_max_draft_tokens`` characters (null: whole
    drafts): the cap of a variant that shows a previous solution must be that one (with null: one that cuts
    nothing, i.e. at least the completion cap), or its Stage-2 prompts are out of the distribution the base knows."""
    from igrpo.variants import variant_of

    field = variant_of(cfg).shown_solution_cap
    if field is None:
        return
    cap, v = cfg.model.warmstart_max_draft_tokens, cfg.variant
    longest = cfg.generation.max_completion_length
    if cap is None and v[field] < longest:
        raise ConfigError(f"variant.{field}={v[field]} cuts drafts the tiny base was warm-started on whole "
                          f"(model.warmstart_max_draft_tokens=null); set variant.{field}>={longest} (the completion "
                          f"cap), or cut both: variant.{field}={v[field]} model.warmstart_max_draft_tokens={v[field]}")
    if cap is not None and v[field] != cap:
        raise ConfigError(f"variant.{field}={v[field]} differs from model.warmstart_max_draft_tokens={cap}, the draft "
                          f"cap the tiny base is warm-started with; set both to the same value "
                          f"(variant.{field}={v[field]} model.warmstart_max_draft_tokens={v[field]})")
