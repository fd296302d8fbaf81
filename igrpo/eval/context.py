"""What a model's context allows an evaluation: checked before any model loads (its ``config.json``), so a sample
is never cut silently at the model's last position.

A run or job whose ``eval.max_new_tokens`` (plus its longest prompt, where the prompts are known) exceeds the
model's ``max_position_embeddings`` stops with one line naming the largest value that fits. HF ``generate`` would
run past the positions the model was trained on; vLLM refuses a ``max_model_len`` beyond them.
"""

from __future__ import annotations

import json
from pathlib import Path

from igrpo.errors import ConfigError


def model_context(model_dir: str | None) -> int | None:
    """The model's context (``max_position_embeddings`` of its config, or of its text config), or None where the
    directory has no readable config (a hub id: checked by the backend once it loads)."""
    if not model_dir:
        return None
    path = Path(str(model_dir)).expanduser() / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    config = config.get("text_config") or config
    value = config.get("max_position_embeddings")
    return int(value) if isinstance(value, int) and value > 0 else None


def check_eval_context(max_new_tokens: int, context: int | None, where: str, prompt_tokens: int = 0) -> None:
    """One ConfigError line when ``prompt_tokens + max_new_tokens`` exceeds ``context`` (None: unknown, passes)."""
    if context is None or prompt_tokens + max_new_tokens <= context:
        return
    prompt = f" + the longest prompt ({prompt_tokens} tokens)" if prompt_tokens else ""
    raise ConfigError(f"eval.max_new_tokens={max_new_tokens}{prompt} exceeds the context of {where} "
                      f"({context} tokens): its samples would be cut; set eval.max_new_tokens="
                      f"{max(context - prompt_tokens, 1)} or less")


def longest_prompt_tokens(task, tokenizer, names: list[str] | None = None) -> int:
    """The longest evaluation prompt of these suites, in the tokenizer's tokens (special tokens included)."""
    names = list(task.eval_suites) if names is None else names
    prompts = [task.prompt(p) for suite in names for p in task.eval_suites[suite]]
    if not prompts:
        return 0
    return max(len(ids) for ids in tokenizer(prompts)["input_ids"])
