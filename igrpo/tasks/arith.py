"""The embedded default task: seeded multi-step integer arithmetic with worked solutions.

A problem is a chain that starts from a 1-2 digit number and adds or subtracts single digits
(e.g. ``47+8-5+9``). The worked solution evaluates left to right, one partial result per step, and
ends with the final answer after ``####``: ``47+8=55,55-5=50,50+9=59 #### 59``. Running results
stay non-negative. Levels differ in chain length (one level per eval suite): every step is easy on
its own, but one slip anywhere spoils the answer, so long chains leave headroom for RL. A level's longest
worked solution (``max_solution_chars``: every step an addition of the largest terms) must fit the
completion caps; ``check_level_fits`` says so in one line (7 terms: up to 67 characters, 9 terms: 87).

(Multi-digit sums written in one go are the opposite trade-off: a ~1M character model needs
thousands of steps to learn carries, so its base accuracy stays near 0 for minutes, and plain
column-wise addition is learned to ~100% in a minute.) Train and eval splits are disjoint: every
eval problem's text is excluded from training.
"""

from __future__ import annotations

import random
import re

from igrpo.errors import ConfigError, choice_error
from igrpo.tasks.base import Problem, TaskData

# level name -> number of terms in the chain
LEVELS: dict[str, int] = {"easy": 3, "hard": 5, "harder": 7, "hardest": 9}
PROMPT_TEMPLATE = "Q:{problem}\nA:"
# Eval suites are prefixes of one seeded sequence per level (build_arith_task): the tiny model's warm start holds out
# the first WARMSTART_HOLDOUT problems of every level, so any task.eval_size up to it stays out of its pool.
WARMSTART_HOLDOUT = 1000


def max_solution_chars(level: str, first_digits: int = 2, step_digits: int = 1) -> int:
    """Worst-case length in characters of a worked solution of ``level`` (the tiny model's character tokenizer:
    one token per character, the end token not counted): every step adds the largest term, so every partial
    result is as long as it can be, e.g. ``99+9=108,108+9=117 #### 117`` (27) for ``easy`` at 2 / 1 digits."""
    if level not in LEVELS:
        raise choice_error("task level", level, LEVELS)
    total, length = 10**first_digits - 1, 0
    step = 10**step_digits - 1
    for _ in range(LEVELS[level] - 1):
        length += len(str(total)) + 1 + len(str(step)) + 1 + len(str(total + step)) + 1  # "a+b=c" and "," or " "
        total += step
    return length - 1 + len(" #### ") + len(str(total))


def check_level_fits(levels, first_digits: int, step_digits: int, caps: dict[str, int]) -> None:
    """One-line ConfigError when the longest worked solution of a level (+1 end token) is longer than a completion
    cap, e.g. ``caps={"generation.max_completion_length": 64, "eval.max_new_tokens": 64}``."""
    for level in dict.fromkeys(levels):
        need = max_solution_chars(level, first_digits, step_digits) + 1
        for field, cap in caps.items():
            if cap < need:
                raise ConfigError(f"{field}={cap} is too short for task level {level!r} ({LEVELS[level]} terms): its "
                                  f"longest worked solution needs {need} tokens with its end token; "
                                  f"set {field}>={need}")


def _random_term(rng: random.Random, min_digits: int, max_digits: int) -> int:
    digits = rng.randint(min_digits, max_digits)
    return rng.randint(10 ** (digits - 1), 10**digits - 1)


def make_problem(rng: random.Random, level: str, first_digits: int = 2, step_digits: int = 1) -> Problem:
    """Draw one problem of ``level``, rejecting chains whose running result would go negative."""
    if level not in LEVELS:
        raise choice_error("task.levels", level, LEVELS)
    n_terms = LEVELS[level]
    while True:
        terms = [_random_term(rng, 1, first_digits)] + [_random_term(rng, 1, step_digits) for _ in range(n_terms - 1)]
        ops = [rng.choice("+-") for _ in range(n_terms - 1)]
        steps, total, ok = [], terms[0], True
        for op, term in zip(ops, terms[1:]):
            result = total + term if op == "+" else total - term
            if result < 0:
                ok = False
                break
            steps.append(f"{total}{op}{term}={result}")
            total = result
        if ok:
            break
    text = str(terms[0]) + "".join(f"{op}{t}" for op, t in zip(ops, terms[1:]))
    solution = ",".join(steps) + f" #### {total}"
    return Problem(id=f"{level}:{text}", problem=text, answer=str(total), solution=solution, level=level)


def _unique_problems(rng: random.Random, level: str, count: int, exclude: set[str], **kw) -> list[Problem]:
    out: list[Problem] = []
    seen = set(exclude)
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > 100 * count + 1000:
            raise ValueError(f"cannot draw {count} distinct '{level}' problems; lower the split size")
        p = make_problem(rng, level, **kw)
        if p.problem in seen:
            continue
        seen.add(p.problem)
        out.append(p)
    return out


def build_arith_task(
    train_levels: list[str],
    eval_levels: list[str],
    train_size: int,
    eval_size: int,
    seed: int,
    first_digits: int = 2,
    step_digits: int = 1,
    train_salt: str = "",
) -> TaskData:
    """Disjoint train and eval splits. Eval suites depend only on (seed, level), never on the train size."""
    for level in [*train_levels, *eval_levels]:
        if level not in LEVELS:
            raise choice_error("task level", level, LEVELS)
    kw = {"first_digits": first_digits, "step_digits": step_digits}
    suites: dict[str, list[Problem]] = {}
    held_out: set[str] = set()
    for level in eval_levels:
        rng = random.Random(f"arith-eval-{seed}-{level}")
        suites[level] = _unique_problems(rng, level, eval_size, held_out, **kw)
        held_out.update(p.problem for p in suites[level])
    train: list[Problem] = []
    rng = random.Random(f"arith-train-{seed}{train_salt}")
    per_level = [train_size // len(train_levels)] * len(train_levels)
    per_level[0] += train_size - sum(per_level)
    for level, count in zip(train_levels, per_level):
        train.extend(_unique_problems(rng, level, count, held_out | {p.problem for p in train}, **kw))
    rng.shuffle(train)
    return TaskData(train=train, eval_suites=suites, prompt_template=PROMPT_TEMPLATE)


def corrupt_solution(solution: str, rng: random.Random) -> str:
    """A plausible wrong draft: one digit of one partial result is wrong, and the later steps carry the
    error forward consistently, as a real model's slip would. Used to teach the tiny model to repair
    drafts during its warm start."""
    body, _, _ = solution.partition(" #### ")
    steps = [re.fullmatch(r"(\d+)([+-])(\d+)=(\d+)", step) for step in body.split(",")]
    if not steps or any(m is None for m in steps):
        return solution
    parsed = [(int(m[1]), m[2], int(m[3]), m[4]) for m in steps]
    which = rng.randrange(len(parsed))
    left, op, right, result = parsed[which]
    pos = rng.randrange(len(result))
    digits = "123456789" if pos == 0 and len(result) > 1 else "0123456789"
    wrong = result[:pos] + rng.choice([d for d in digits if d != result[pos]]) + result[pos + 1 :]
    out = [f"{a}{o}{b}={r}" for a, o, b, r in parsed[:which]] + [f"{left}{op}{right}={wrong}"]
    total = int(wrong)
    for _, o, b, _ in parsed[which + 1 :]:
        new_total = total + b if o == "+" else total - b
        out.append(f"{total}{o}{b}={new_total}")
        total = new_total
    return ",".join(out) + f" #### {total}"
