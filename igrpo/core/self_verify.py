"""Self-Verification (Zhang et al. 2025, "Incentivizing LLMs to Self-Verify Their Answers", arXiv 2506.01369)
as pure functions: verdict parsing, the online buffer, the verify prompt, the (dynamic) verify reward and the
verify rows' advantages. ``igrpo.variants.self_verify.trainer`` glues them to TRL.

The method: the policy solves problems (ordinary GRPO groups) and, on a share of each step's prompts, grades one
of its own recent solutions drawn from an online buffer, answering "Is the answer correct (Yes/No)? X". Both
kinds of completion are trained with the same GRPO-family objective.

Where the sources are silent or disagree (every choice is a field of ``variant=self_verify``):

* Buffer age (``buffer_steps``): the paper evicts entries after 60 of its 1,000-2,000 steps; our runs have ~60
  steps, so the default keeps the last 4 steps. ``buffer_max`` caps it (oldest first out).
* Dynamic verify reward (``verify_reward_weight``). The paper's description reconstructs it as G/(2 G_c) for a correct
  solution and G/(2 G_i) for a wrong one (``inverse_frequency``, each class weighted by its inverse frequency
  in its solve group). The released training code (``math_verification.py``, reward type ``fix_imbalance``)
  instead pays 2 x (share of the *other* class): 2 G_i/G for a correct solution verified Yes, 2 G_c/G for a wrong
  one verified No (``fix_imbalance``, the default here: it is what the authors ran). Both pay more for
  hard-problem correct and easy-problem wrong solutions. ``none`` = the plain 0/1 reward (the released script's
  ``baseline`` type).
* The weight is constant within a verify group (all its rows grade the same solution), so per-group std scaling
  divides it out again. Verify rows therefore use batch scaling by default (``verify_scale_rewards=batch``:
  reward minus the group mean, divided by the std over all verify rows of the step); solve rows keep the algo's.
* Unparseable verdicts get ``unparseable_reward`` (0 by default, like a wrong verdict). The released code also
  falls back to phrases such as "is correct" and penalises inconsistent or short verifications; we parse the
  verdict line only (the issue's contract) and leave those shaping terms out.
* Reasoning blocks (``<think>...</think>``) are stripped from the solution before it is shown for grading, as
  the released evaluation code does.
* Eval: single shot from the plain prompt, no verification-weighted voting (the paper's test-time scaling is not
  part of iGRPO's protocol).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from igrpo.errors import ConfigError

VERIFY_MODES = ("replace", "add")
LAYOUTS = ("tiny", "turns")
REWARD_WEIGHTS = ("fix_imbalance", "inverse_frequency", "none")
SCALE_REWARDS = ("batch", "group", "none")

# The paper's verification request (third turn), verbatim in meaning: grade step by step, end with the verdict line.
INSTRUCTIONS = {
    "paper": ("Please verify the solution step by step. At the end of the solution verification, when you give "
              "your final grade, write it in the form 'Is the answer correct (Yes/No)? X', where X is either Yes "
              "or No."),
}

# The verdict line. Linear-time: no nested quantifiers, so 50 KB of near-misses parse quickly. Case-insensitive;
# markdown emphasis around the word is allowed ("? **Yes**"); the word must end there ("Nope" is not "No").
_VERDICT = re.compile(r"is\s+the\s+answer\s+correct\s*\(\s*yes\s*/\s*no\s*\)\s*\?[\s*_]*(yes|no)(?![a-z])",
                      re.IGNORECASE)


# The embedded tiny model's verify prompt (``variant.layout=tiny``): its plain-prompt layout with the graded solution
# as the answer and a short request; its warm start (igrpo.models.warmstart) knows this layout and the verdict line.
# The paper's three turns with the long instruction do not fit its 256 positions. Real models use ``layout=turns``.
TINY_VERIFY_TEMPLATE = "Q:{problem}\nA:{solution}\nVerify:"


def verdict_line(correct: bool) -> str:
    """The verdict line a verifier ends with (what ``parse_verdict`` reads)."""
    return f"Is the answer correct (Yes/No)? {'Yes' if correct else 'No'}"


def tiny_verify_prompt(problem: str, solution: str) -> str:
    """``TINY_VERIFY_TEMPLATE`` filled in one pass: braces in the problem or the solution are never placeholders."""
    head, _, rest = TINY_VERIFY_TEMPLATE.partition("{problem}")
    middle, _, tail = rest.partition("{solution}")
    return head + problem + middle + solution + tail


def parse_verdict(text: str) -> bool | None:
    """The verifier's verdict: True (Yes), False (No) or None when no verdict line is found. When the completion
    holds several verdict lines (it quotes the solution, or changes its mind), the last one wins."""
    last = None
    for match in _VERDICT.finditer(text):
        last = match
    if last is None:
        return None
    return last.group(1).lower() == "yes"


def strip_reasoning(text: str) -> str:
    """The solution without its reasoning: ``<think>...</think>`` blocks removed, and for templates that open the
    block in the prompt (a closing tag without an opening one) everything up to the last ``</think>``."""
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.DOTALL)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    return text.strip()


def resolve_instruction(name_or_text: str) -> str:
    """A named instruction (``paper``) or literal text."""
    text = INSTRUCTIONS.get(name_or_text, name_or_text)
    if not text.strip():
        raise ConfigError("variant.instruction='' is not valid; name one of: paper, or give the request text")
    return text


def plain_verify_prompt(user_message: str, solution: str, instruction: str) -> str:
    """The three turns as labelled plain text, for base models without a chat template."""
    return f"User: {user_message}\n\nAssistant: {solution}\n\nUser: {instruction}\n\nAssistant:"


def verify_messages(user_message: str, solution: str, instruction: str, system: str | None = None) -> list[dict]:
    """The three turns for a chat template: user = the problem, assistant = the solution, user = the request."""
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": "user", "content": user_message}, {"role": "assistant", "content": solution},
                   {"role": "user", "content": instruction}]


def verify_weight(correct: bool, g_correct: int, g_incorrect: int, mode: str) -> float:
    """The dynamic weight of a verify reward for a solution from a solve group with ``g_correct`` correct and
    ``g_incorrect`` incorrect scored completions (see the module docstring for the forms)."""
    total = g_correct + g_incorrect
    if mode == "none":
        return 1.0
    if total <= 0 or (correct and g_correct <= 0) or (not correct and g_incorrect <= 0):
        raise ValueError(f"a {'correct' if correct else 'wrong'} solution cannot come from a group with "
                         f"{g_correct} correct and {g_incorrect} incorrect completions")
    if mode == "inverse_frequency":
        return total / (2 * g_correct) if correct else total / (2 * g_incorrect)
    if mode == "fix_imbalance":
        return 2 * g_incorrect / total if correct else 2 * g_correct / total
    raise ConfigError(f"variant.verify_reward_weight={mode!r} is not valid; choose one of: {', '.join(REWARD_WEIGHTS)}")


def verify_reward(verdict: bool | None, label: bool, weight: float, unparseable_reward: float) -> float:
    """``weight`` when the verdict matches the solution's correctness, 0 when it does not, ``unparseable_reward``
    when there is no verdict line."""
    if verdict is None:
        return unparseable_reward
    return weight if verdict == label else 0.0


def group_advantages(rewards: Sequence[float | None], group_size: int, scale: str, eps: float = 1e-4) -> list[float]:
    """Advantages of consecutive groups of ``group_size`` rows, as TRL computes them: reward minus the group mean
    (ungradeable rows ignored), divided by the group's std (``group``), by the std over all rows (``batch``) or
    by nothing (``none``) plus ``eps``; Bessel-corrected stds; ungradeable rows and undefined values give 0."""
    if group_size <= 0 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    values = [float("nan") if r is None else float(r) for r in rewards]
    out: list[float] = []
    batch_std = _std(values)
    for start in range(0, len(values), group_size):
        group = values[start:start + group_size]
        mean = _mean(group)
        std = {"group": _std(group), "batch": batch_std, "none": None}[scale]
        for r in group:
            a = r - mean
            if std is not None:
                a = a / (std + eps)
            out.append(0.0 if a != a else a)
    return out


def _mean(values: Sequence[float]) -> float:
    scored = [v for v in values if v == v]
    return sum(scored) / len(scored) if scored else float("nan")


def _std(values: Sequence[float]) -> float:
    scored = [v for v in values if v == v]
    if len(scored) < 2:
        return float("nan")
    mean = sum(scored) / len(scored)
    return (sum((v - mean) ** 2 for v in scored) / (len(scored) - 1)) ** 0.5


def num_verify_groups(prompts_per_step: int, fraction: float) -> int:
    """Verify prompts per step: the fraction of the step's prompts, rounded half up (0.375 x 8 = 3)."""
    return int(fraction * prompts_per_step + 0.5)


# --- the online buffer ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BufferEntry:
    """One scored solve completion: what a later verify prompt shows and the label it is graded against."""

    prompt_id: str
    problem: str  # the plain problem text
    reference: str
    solution: str  # reasoning blocks already stripped
    correct: bool
    g_correct: int  # correct / incorrect scored completions in its solve group
    g_incorrect: int
    step: int


def entries_from_groups(rows: Sequence[dict], correct: Sequence[bool | None], group_size: int, step: int
                        ) -> list[BufferEntry]:
    """Buffer entries for one step's solve rows, given in global order as consecutive groups of ``group_size``
    (``rows[i]``: prompt_id, problem, reference, completion). Ungradeable rows (``None``) enter no entry and
    count in neither G_c nor G_i."""
    if len(rows) != len(correct) or len(rows) % group_size:
        raise ValueError(f"{len(rows)} solve rows with {len(correct)} labels do not form groups of {group_size}")
    entries = []
    for start in range(0, len(rows), group_size):
        labels = correct[start:start + group_size]
        g_c = sum(1 for c in labels if c is True)
        g_i = sum(1 for c in labels if c is False)
        for row, label in zip(rows[start:start + group_size], labels):
            if label is None:
                continue
            entries.append(BufferEntry(prompt_id=str(row["prompt_id"]), problem=str(row["problem"]),
                                       reference=str(row["reference"]), solution=strip_reasoning(row["completion"]),
                                       correct=bool(label), g_correct=g_c, g_incorrect=g_i, step=step))
    return entries


class VerifyBuffer:
    """Recent scored solutions, newest last. Deterministic: the same adds and draws (with the same RNG state)
    give the same buffer and samples, which is how every rank holds the same buffer (each adds the gathered,
    globally ordered entries of every step)."""

    def __init__(self, max_age_steps: int, max_size: int):
        if max_age_steps < 1 or max_size < 1:
            raise ConfigError(f"variant.buffer_steps={max_age_steps} and variant.buffer_max={max_size} must be >= 1")
        self.max_age_steps = max_age_steps
        self.max_size = max_size
        self.entries: list[BufferEntry] = []

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, entries: Sequence[BufferEntry]) -> None:
        self.entries.extend(entries)
        if len(self.entries) > self.max_size:
            self.entries = self.entries[-self.max_size:]

    def evict(self, now: int) -> None:
        """Drop entries made more than ``max_age_steps`` steps before step ``now`` (at step t the buffer holds
        steps t - max_age_steps .. t - 1)."""
        self.entries = [e for e in self.entries if now - e.step <= self.max_age_steps]

    def sample(self, rng: random.Random, k: int) -> list[BufferEntry]:
        """``k`` entries drawn uniformly with replacement (none while the buffer is empty)."""
        if not self.entries:
            return []
        return [self.entries[rng.randrange(len(self.entries))] for _ in range(k)]

    def correct_frac(self) -> float:
        return sum(e.correct for e in self.entries) / len(self.entries) if self.entries else 0.0

    def state(self) -> list[dict]:
        return [asdict(e) for e in self.entries]

    def load_state(self, state: Sequence[dict]) -> None:
        self.entries = [BufferEntry(**e) for e in state]
