"""Critique-GRPO (Zhang et al. 2025, arXiv 2506.03106) as pure functions: which answer gets critiqued, the
critique text, the refinement prompt, which refinement rows are kept and the refinement metrics.
``igrpo.variants.critique_grpo.trainer`` glues them to TRL; the loss of refinement rows is in
``igrpo.variants.critique_grpo.shaping``.

Per prompt q: ``num_initial`` answers from q, one of them critiqued, ``num_refinements`` refinements generated from
a prompt holding q, that answer and the critique; the initial answers and the refinements form one mixed group,
**all trained under q** (a refinement's tokens are scored as if the model had answered q directly). Advantages are
reward minus the mixed group's mean; refinement rows use the shaping p/(p + gamma) instead of the clipped ratio.

Where the sources are silent or disagree (every choice is a field of ``variant=critique_grpo``):

* Which answer is critiqued (``critique_target``): by default ``random_incorrect`` (a random incorrect
  answer if any, else a random correct one), seeded and agreed across ranks. The released code refines *every*
  initial answer and keeps the best refinement (``refine_from=all``: 2x the generations, so it needs
  ``allow_budget_mismatch``); ``refine_from=one`` (default) critiques one answer: 7 + 1 = 8 completions.
* Critique (``critique``): ``indicative_gt`` "The generated solution is correct/incorrect, the ground truth is X."
  (the released script's ``simple_gt``, rule-based, no generation); ``indicative`` without the ground truth (the
  code's ``simple``); ``self_cot``: the policy writes the critique, which then counts toward the budget. The
  paper's ``judge_cot`` (GPT-4o critiques) is not offered: this project's judge backends return scores, not text.
* "Correct" means the accuracy reward is 1 (the checker's verdict, also under ``reward=judge``, whose accuracy is
  computed with weight 0); an ungradeable answer counts as incorrect.
* Previous solutions are cut to their last ``max_solution_tokens`` tokens before entering the refinement prompt
  (the final answer is at the end), as iGRPO cuts drafts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from igrpo.errors import choice_error

CRITIQUES = ("indicative_gt", "indicative", "self_cot")
TARGETS = ("random_incorrect", "random", "first")
REFINE_FROM = ("one", "all")
SCALE_REWARDS = ("none", "group", "batch")

# Named templates: the refinement prompt, and (critique=self_cot) the prompt for the policy's own critique.
# Placeholders: {problem}, {solution} (the previous answer, cut), {critique}. Filled in one pass, so braces in
# model output or problems are never read as placeholders.
REFINE_TEMPLATES: dict[str, str] = {
    # The embedded tiny model's layout (its warm start knows Q:/Draft:/A:; the critique line is new to it).
    "tiny": "Q:{problem}\nDraft:{solution}\nCritique:{critique}\nA:",
    # For instruction-tuned LLMs: the released code's refinement request, paraphrased.
    "paper": (
        "Question: {problem}\n\nPrevious solution:\n{solution}\n\nCritique: {critique}\n\n"
        "Answer the question again: correct the errors the critique points out, if there are any, reason step by "
        "step, and put the final answer in \\boxed{}. Make sure the new solution addresses every issue the "
        "critique raises."
    ),
}
SELF_CRITIQUE_TEMPLATES: dict[str, str] = {
    "tiny": "Q:{problem}\nDraft:{solution}\nCritique:",
    "paper": (
        "Question: {problem}\n\nA student's solution:\n{solution}\n\nCritique this solution step by step: identify "
        "any errors and explain them. End with 'Conclusion: right' or 'Conclusion: wrong'."
    ),
}
_PLACEHOLDER = re.compile(r"\{(problem|solution|critique)\}")


def resolve_refine_template(name_or_text: str) -> str:
    """A named refinement template or literal text holding ``{solution}`` and ``{critique}``."""
    if name_or_text in REFINE_TEMPLATES:
        return REFINE_TEMPLATES[name_or_text]
    if "{solution}" in name_or_text and "{critique}" in name_or_text:
        return name_or_text
    raise choice_error("variant.template", name_or_text,
                       [*REFINE_TEMPLATES, "<literal text containing {solution} and {critique}>"])


def self_critique_template(name_or_text: str) -> str:
    """The critique request for ``critique=self_cot``: the named template's, or for a literal refinement template
    the paper's."""
    return SELF_CRITIQUE_TEMPLATES.get(name_or_text, SELF_CRITIQUE_TEMPLATES["paper"])


def fill(template: str, problem: str, solution: str = "", critique: str = "") -> str:
    """Fill a template's placeholders in one pass (inserted text is never scanned again)."""
    values = {"problem": problem, "solution": solution, "critique": critique}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def critique_text(mode: str, correct: bool, reference: str) -> str:
    """The rule-based critique of one answer (``self_cot`` critiques are generated, not built here)."""
    verdict = "correct" if correct else "incorrect"
    if mode == "indicative_gt":
        return f"The generated solution is {verdict}, the ground truth is {reference}."
    if mode == "indicative":
        return f"The generated solution is {verdict}."
    raise choice_error("variant.critique", mode, [c for c in CRITIQUES if c != "self_cot"])


def pick_target(correct: Sequence[bool | None], rule: str, rng: random.Random) -> int:
    """Index of the initial answer to critique. ``random_incorrect``: a random incorrect (or ungradeable) answer
    if any, else a random correct one; ``random``: any; ``first``: index 0. Uses ``rng`` the same number of
    times for the same input, so ranks holding the same RNG state agree."""
    if not correct:
        raise ValueError("pick_target needs at least one initial answer")
    if rule == "first":
        return 0
    if rule == "random":
        return rng.randrange(len(correct))
    if rule == "random_incorrect":
        wrong = [i for i, c in enumerate(correct) if c is not True]
        pool = wrong or list(range(len(correct)))
        return pool[rng.randrange(len(pool))]
    raise choice_error("variant.critique_target", rule, TARGETS)


def best_indices(rewards: Sequence[float | None], k: int) -> list[int]:
    """The ``k`` highest-rewarded indices (ungradeable lowest; ties to the lower index), in index order: which of
    the refinements of every initial answer are kept (``refine_from=all``; the released code keeps the first
    perfect one, else the best)."""
    order = sorted(range(len(rewards)), key=lambda i: (-(rewards[i] if rewards[i] is not None else float("-inf")), i))
    return sorted(order[:k])


def row_positions(num_rows: int, offset: int, group_size: int, num_initial: int) -> list[bool]:
    """For each of a process's ``num_rows`` rows starting at global row ``offset``: is it a refinement row? In every
    mixed group of ``group_size`` rows the first ``num_initial`` are initial answers, the rest refinements."""
    return [(offset + i) % group_size >= num_initial for i in range(num_rows)]


def refinement_stats(source_correct: Sequence[bool | None], refined_correct: Sequence[bool | None]) -> dict:
    """``fixed_frac``: refinements of a wrong answer that are right (None when no refinement had a wrong source);
    ``broken_frac``: refinements of a right answer that are wrong (None likewise)."""
    from_wrong = [r for s, r in zip(source_correct, refined_correct, strict=True) if s is not True]
    from_right = [r for s, r in zip(source_correct, refined_correct, strict=True) if s is True]
    return {"fixed_frac": sum(r is True for r in from_wrong) / len(from_wrong) if from_wrong else None,
            "broken_frac": sum(r is not True for r in from_right) / len(from_right) if from_right else None}
