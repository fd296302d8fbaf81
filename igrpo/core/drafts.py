"""The iGRPO-specific logic, as pure functions: draft selection, draft truncation, the refinement
template and the matched-budget check. The trainer only glues these to TRL.

Departures from / choices where the paper (arXiv 2602.09000) is silent:

* Tie-break among equal-reward drafts: ``first`` (lowest sample index) by default. Drafts are i.i.d.
  samples, so the first of the tied ones is a uniformly random pick that needs no extra RNG, and the
  choice is reproducible. ``shortest`` prefers the shortest tied draft (less context for Stage 2).
* When every draft scores 0 (``on_all_zero``): ``keep`` appends the selected draft anyway (what the
  paper appears to do); ``plain`` falls back to the plain prompt for that group.
* Ungradeable drafts (reward ``None``) rank below every scored draft.
* Long drafts are cut to ``max_draft_tokens``; ``keep="tail"`` keeps the end (where the final answer
  is), ``keep="head"`` the beginning.
* Prompt budget (``train.max_prompt_tokens``, the paper's 1,024): the plain problem and the template are
  never cut; the draft is cut, per row, to what remains (``fit_draft``). A problem that leaves no room at
  all gets the plain prompt (no draft), and is counted.
* What of a draft enters the prompt (``variant.draft_content``; open in the paper): ``full`` is the whole
  completion (the embedded tiny model's drafts: a short worked sum). ``answer_section`` is, for reasoning
  models that think inside ``<think>...</think>``, the text after the last ``</think>`` with any think tags
  removed: the model's own write-up of its solution, which fits the prompt cap whole, where the last 640 tokens
  of a 4,096-token completion are the middle of its scratch work. A draft with no ``</think>`` (cut off while
  still thinking, or a base model that never thinks) falls back to its tail, and is counted. The paper-scale
  preset (``experiment=paper``) uses ``answer_section``; it also keeps a literal ``</think>`` out of the user
  turn, where a reasoning model's chat template would otherwise see a closed think block it never opened.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from igrpo.errors import ConfigError, choice_error

SELECTION_RULES = ("best", "worst", "random", "first")
TIE_BREAKS = ("first", "shortest")
ALL_ZERO_POLICIES = ("keep", "plain")
TRUNCATION_SIDES = ("tail", "head")
DRAFT_CONTENTS = ("full", "answer_section")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

# Named refinement templates. Placeholders: {problem} (the plain problem text), {prompt} (the full
# plain prompt the policy would see without a draft) and {draft} (the selected, truncated draft).
TEMPLATES: dict[str, str] = {
    # The embedded tiny model's format; its warm start is trained on exactly this layout.
    "tiny": "Q:{problem}\nDraft:{draft}\nA:",
    # For instruction-tuned LLMs: the paper's system instruction, paraphrased, with the draft delimited.
    "paper": (
        "{problem}\n\n"
        "A previous draft solution is given below between <draft> tags. Treat it as guidance, not ground "
        "truth: produce a strictly better solution (fix mistakes, fill gaps, improve clarity), do not copy "
        "it, and correct it if it is wrong. Reason step by step and put the final answer in \\boxed{{}}.\n"
        "<draft>\n{draft}\n</draft>"
    ),
}


def _ranking_key(reward: float | None, worst: bool) -> float:
    if reward is None:
        return float("inf") if worst else float("-inf")
    return reward


def select_draft(
    rewards: Sequence[float | None],
    rule: str = "best",
    tie_break: str = "first",
    lengths: Sequence[int] | None = None,
    rng: random.Random | None = None,
    formatted: Sequence[bool] | None = None,
) -> int:
    """Index of the draft to condition Stage 2 on.

    ``best``: highest reward. ``worst``: lowest reward among well-formatted drafts (``formatted``),
    falling back to all drafts when none is formatted. ``random``: uniform (needs ``rng``). ``first``:
    index 0. Ties are broken by ``tie_break`` (``shortest`` needs ``lengths``; remaining ties go to
    the lowest index).
    """
    if not rewards:
        raise ValueError("select_draft needs at least one draft")
    if rule not in SELECTION_RULES:
        raise choice_error("variant.selection", rule, SELECTION_RULES)
    if tie_break not in TIE_BREAKS:
        raise choice_error("variant.tie_break", tie_break, TIE_BREAKS)
    if rule == "first":
        return 0
    if rule == "random":
        if rng is None:
            raise ValueError("selection 'random' needs an rng")
        return rng.randrange(len(rewards))

    candidates = list(range(len(rewards)))
    worst = rule == "worst"
    if worst and formatted is not None and any(formatted):
        candidates = [i for i in candidates if formatted[i]]
    keys = {i: _ranking_key(rewards[i], worst) for i in candidates}
    target = min(keys.values()) if worst else max(keys.values())
    tied = [i for i in candidates if keys[i] == target]
    if tie_break == "shortest":
        if lengths is None:
            raise ValueError("tie_break 'shortest' needs draft lengths")
        return min(tied, key=lambda i: (lengths[i], i))
    return tied[0]


def all_zero(rewards: Sequence[float | None]) -> bool:
    """True when no draft earned any reward (every score is 0 or ungradeable)."""
    return all((r or 0.0) <= 0.0 for r in rewards)


@dataclass(frozen=True)
class DraftHealth:
    """Stage 1's degenerate outputs in one step: drafts with no text, and groups whose drafts are all the same."""

    drafts: int
    empty: int  # drafts that are empty or whitespace only
    groups: int  # groups of two or more drafts
    identical_groups: int  # of those, groups whose drafts are all the same text (whitespace at the ends ignored)


def draft_health(groups: Sequence[Sequence[str]]) -> DraftHealth:
    """Count the empty drafts and the all-identical groups (of two or more drafts) among ``groups``."""
    texts = [[t.strip() for t in group] for group in groups]
    multi = [g for g in texts if len(g) > 1]
    return DraftHealth(drafts=sum(len(g) for g in texts), empty=sum(t == "" for g in texts for t in g),
                       groups=len(multi), identical_groups=sum(len(set(g)) == 1 for g in multi))


def truncate_draft(token_ids: Sequence[int], max_tokens: int, keep: str = "tail") -> tuple[list[int], bool]:
    """Cut a draft to at most ``max_tokens`` tokens. Returns (ids, was_truncated)."""
    if max_tokens <= 0:
        raise ValueError(f"max_draft_tokens must be positive, got {max_tokens}")
    if keep not in TRUNCATION_SIDES:
        raise choice_error("variant.draft_truncation", keep, TRUNCATION_SIDES)
    ids = list(token_ids)
    if len(ids) <= max_tokens:
        return ids, False
    return (ids[-max_tokens:] if keep == "tail" else ids[:max_tokens]), True


def draft_content(text: str, mode: str = "full") -> tuple[str, bool]:
    """The part of a decoded draft that enters the Stage-2 prompt, and whether ``answer_section`` had to fall
    back (no ``</think>`` in the draft: the whole text, think tags removed, is kept for truncation to cut)."""
    if mode not in DRAFT_CONTENTS:
        raise choice_error("variant.draft_content", mode, DRAFT_CONTENTS)
    if mode == "full":
        return text, False
    head, found, answer = text.rpartition(THINK_CLOSE)
    kept = answer if found else text
    return kept.replace(THINK_OPEN, "").replace(THINK_CLOSE, "").strip(), not found


@dataclass(frozen=True)
class FittedDraft:
    """A draft-conditioned prompt within the prompt budget (``prompt`` None: no room for any draft)."""

    prompt: str | None
    draft_tokens: int  # tokens of the draft that were kept
    prompt_tokens: int  # tokens of ``prompt`` as the trainer tokenizes it (of the draft-free one when None)
    truncated: bool  # the draft was cut (by max_draft_tokens or by the budget)


def fit_draft(draft_ids: Sequence[int], render: Callable[[list[int]], str], count: Callable[[str], int],
              max_draft_tokens: int, keep: str = "tail", max_prompt_tokens: int | None = None) -> FittedDraft:
    """Cut a draft to ``max_draft_tokens`` and then to what ``max_prompt_tokens`` leaves once the draft-free
    refinement prompt is counted. ``render(ids)`` is the refinement prompt holding those draft tokens;
    ``count(prompt)`` its length as the trainer tokenizes it. Tokens can merge across the draft's edges, so the
    rendered prompt is counted again; when it is still over, the longest cut that fits is found by bisection."""
    ids, truncated = truncate_draft(draft_ids, max_draft_tokens, keep)
    if max_prompt_tokens is None:
        prompt = render(ids)
        return FittedDraft(prompt, len(ids), count(prompt), truncated)
    room = max_prompt_tokens - count(render([]))
    if room <= 0:
        return FittedDraft(None, 0, max_prompt_tokens - room, len(draft_ids) > 0)
    if len(ids) > room:
        ids, truncated = truncate_draft(ids, room, keep)[0], True
    prompt = render(ids)
    length = count(prompt)
    if length <= max_prompt_tokens:
        return FittedDraft(prompt, len(ids), length, truncated)

    def cut(n: int) -> list[int]:
        return truncate_draft(ids, n, keep)[0] if n > 0 else []

    fits, over = 0, len(ids)  # the empty draft fits (room > 0); the whole one does not
    while over - fits > 1:
        middle = (fits + over) // 2
        if count(render(cut(middle))) <= max_prompt_tokens:
            fits = middle
        else:
            over = middle
    prompt = render(cut(fits))
    return FittedDraft(prompt, fits, count(prompt), True)


@dataclass(frozen=True)
class Conditioned:
    """One prompt's Stage-2 prompt after Stage 1: the selected draft and what of it the prompt shows."""

    prompt: str  # the Stage-2 prompt (the plain prompt when no draft is shown)
    choice: int  # index of the selected draft
    shown: bool  # a draft is in ``prompt`` (False: on_all_zero=plain fell back, or no room in the budget)
    fitted: FittedDraft | None  # None when on_all_zero=plain fell back
    answer_missing: bool  # draft_content=answer_section found no </think> and kept the tail


def condition_on_drafts(variant, template: str, problem: str, plain_prompt: str, rewards: Sequence[float | None],
                        draft_ids: Sequence[Sequence[int]], drafts: Sequence[str], tokenizer,
                        rng: random.Random | None = None, max_prompt_tokens: int | None = None) -> Conditioned:
    """Select one of a prompt's drafts and build its Stage-2 prompt: the one code path training
    (``igrpo.training.trainer.IGRPOTrainer``) and the draft-conditioned evaluation (``igrpo.eval.refine``) share.

    ``variant``: the igrpo variant node (selection, tie_break, on_all_zero, draft_content, max_draft_tokens,
    draft_truncation). ``template``: the refinement template resolved for the task. ``draft_ids``: each draft's
    sampled token ids (special tokens removed), ``drafts`` their decoded text. Prompts are counted as the trainer
    tokenizes string prompts (``tokenizer(text=...)``)."""
    from igrpo.core.answers import extract_final_answer

    formatted = [extract_final_answer(d) is not None for d in drafts]
    choice = select_draft(rewards, variant.selection, variant.tie_break, lengths=[len(x) for x in draft_ids],
                          rng=rng, formatted=formatted)
    if variant.on_all_zero == "plain" and all_zero(rewards):
        return Conditioned(plain_prompt, choice, False, None, False)
    content, fell_back = draft_content(drafts[choice], variant.draft_content)
    ids = list(draft_ids[choice])
    if variant.draft_content != "full":  # the kept section, re-tokenized (``full`` keeps the sampled ids)
        ids = tokenizer(text=content, add_special_tokens=False)["input_ids"]

    def render(kept: list[int]) -> str:
        return build_refinement_prompt(template, problem, tokenizer.decode(kept, skip_special_tokens=True),
                                       prompt=plain_prompt)

    def count(prompt: str) -> int:
        return len(tokenizer(text=prompt)["input_ids"])

    fitted = fit_draft(ids, render, count, variant.max_draft_tokens, variant.draft_truncation, max_prompt_tokens)
    if fitted.prompt is None:
        return Conditioned(plain_prompt, choice, False, fitted, fell_back)
    return Conditioned(fitted.prompt, choice, True, fitted, fell_back)


def resolve_template(name_or_text: str) -> str:
    """A named template from TEMPLATES, or a literal template containing ``{draft}``."""
    if name_or_text in TEMPLATES:
        return TEMPLATES[name_or_text]
    if "{draft}" in name_or_text:
        return name_or_text
    raise choice_error("variant.template", name_or_text, [*TEMPLATES, "<literal text containing {draft}>"])


def build_refinement_prompt(template: str, problem: str, draft: str, prompt: str | None = None) -> str:
    """Fill a refinement template. The draft is inserted verbatim: it is data, never a format string."""
    filled = resolve_template(template)
    # Substitute the draft last and by plain replacement, so braces inside model output cannot be
    # interpreted as placeholders.
    marker = "\x00DRAFT\x00"
    text = filled.replace("{draft}", marker).format(problem=problem, prompt=prompt if prompt is not None else problem)
    return text.replace(marker, draft)


def check_budget(rollout_budget: int, num_drafts: int, num_refinements: int, allow_mismatch: bool = False,
                 rounds: int = 1) -> None:
    """Matched rollout budget: iGRPO's N drafts x rounds + G refinements must equal GRPO's group size."""
    if rounds < 1:
        raise ConfigError(f"variant.rounds={rounds} is not valid; it must be an integer >= 1")
    if num_drafts < 1:
        raise ConfigError(f"variant.num_drafts={num_drafts} is not valid; it must be an integer >= 1")
    if num_refinements < 2:
        raise ConfigError(
            f"variant.num_refinements={num_refinements} is not valid; it must be >= 2 (advantages need a group)"
        )
    if num_drafts * rounds + num_refinements != rollout_budget and not allow_mismatch:
        raise ConfigError(
            f"budget mismatch: variant.num_drafts x variant.rounds + variant.num_refinements = {num_drafts} x "
            f"{rounds} + {num_refinements} != rollout_budget={rollout_budget}; make them add up, or set "
            "variant.allow_budget_mismatch=true"
        )
