"""Chat formatting for real models: every prompt is a *string* with the chat template already applied.

Why strings and not TRL's conversational prompts (lists of ``{role, content}``, which TRL would template
itself): iGRPO's Stage 1 (``igrpo/training/trainer.py``) rewrites ``row["prompt"]`` as a string built from a
refinement template (``build_refinement_prompt``), and TRL decides once per batch whether prompts are
conversational, so plain and draft-conditioned prompts must have the same form. With strings, plain prompts,
Stage-2 prompts and eval prompts all go through one path.

How: the chat template is rendered once around a sentinel user message (after an optional system message,
with the generation prompt added); the text before the sentinel is the *prefix*, the text after it the
*suffix*. A prompt is ``prefix + user message + suffix`` (``TaskData.prompt``), and the iGRPO refinement
template is framed the same way (``TaskData.refinement_template``): the draft goes in the user turn.

BOS: TRL and our evaluation tokenize string prompts with ``add_special_tokens=True``, so a tokenizer that adds
its own BOS would see it twice; a BOS rendered by the template is then dropped from the prefix.
"""

from __future__ import annotations

import os

from igrpo.errors import ConfigError

_SENTINEL = "IGRPO-USER-MESSAGE-7f3a9c"


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(os.path.expanduser(path))


def _adds_bos(tokenizer) -> bool:
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id


def chat_frame(tokenizer, system_prompt: str | None = None, where: str = "model.path") -> tuple[str, str]:
    """(prefix, suffix) of the tokenizer's chat template around one user message."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"model.chat_template=true but the tokenizer at {where} has no chat template; "
                          "set model.chat_template=false (plain prompts) for a base model")
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": _SENTINEL}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as err:  # noqa: BLE001  (jinja raises for roles a template does not support)
        hint = "; this template may not accept a system message: set model.system_prompt=null" if system_prompt else ""
        raise ConfigError(f"the chat template at {where} failed to render ({err}){hint}") from None
    prefix, found, suffix = text.partition(_SENTINEL)
    if not found:
        raise ConfigError(f"the chat template at {where} does not keep the user message verbatim; "
                          "set model.chat_template=false")
    bos = tokenizer.bos_token
    if bos and prefix.startswith(bos) and _adds_bos(tokenizer):
        prefix = prefix[len(bos):]
    return prefix, suffix


def completion_cue(prompt_template: str) -> str | None:
    """A base model's completion cue: the last line of its prompt template when that line is a label the model
    continues after (``Solution:`` for Nemotron-H, ``A:`` for the embedded tiny model), else None."""
    last = prompt_template.rstrip("\n").rpartition("\n")[2].strip()
    return last if last.endswith(":") and "{problem}" not in last else None


def refinement_template(task, template: str) -> str:
    """The iGRPO Stage-2 prompt template for ``task``'s prompt format (still filled by
    ``igrpo.core.drafts.build_refinement_prompt``). With a chat template the named template is the user message, framed
    like every plain prompt (``TaskData.refinement_template``). Without one (a base model), the prompt must end
    where the model's answer starts, as its plain prompt does: the model's own prompt is kept around the problem
    and draft, and its completion cue (``Solution:``) ends it; a template that already ends with the cue (the tiny
    model's ``...\\nA:``) is used as it is."""
    framed = task.refinement_template(template)
    cue = None if (task.chat_prefix or task.chat_suffix) else completion_cue(task.prompt_template)
    if cue is None:
        return framed
    from igrpo.core.drafts import resolve_template
    from igrpo.tasks.base import escape_braces

    framed = resolve_template(framed)
    if framed.rstrip().endswith(cue):
        return framed
    body = task.prompt_template.rstrip("\n").rpartition("\n")[0]  # the model's prompt without its cue line
    before, found, after = body.partition("{problem}")
    if found and "{problem}" in framed:
        framed = escape_braces(before) + framed + escape_braces(after)
    return framed + "\n" + escape_braces(cue)
