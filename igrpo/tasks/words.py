"""Generated word problems in plain English with ``\\boxed{}`` answers: the real-model stand-in for MATH on a CPU.

The embedded arithmetic task is written for a character model (``47+8-5 #### 50``); a pretrained instruction model
reads sentences, so ``task=words`` asks the same kind of question in words ("Sam has 12 marbles and finds 7 more.
How many marbles does Sam have now?"), with a worked solution ending in ``The answer is \\boxed{19}.``.

Levels, one eval suite each:

- ``sum``: "What is a + b?" with a, b <= 20: one operation, no story.
- ``story``: one addition or subtraction inside a story, numbers <= 30.
- ``story2``: two operations inside a story (buys some, then gives some away), numbers <= 30.

The problems are written as MATH records (``problem``, ``solution``, ``level``, ``type``; the answer is the last
``\\boxed{}`` of ``solution``) to JSONL files, then read back by the same loader as MATH itself
(``igrpo.tasks.sources``), so the real-data path runs whatever the task. ``python -m igrpo.tasks words <dir>`` writes
the files for use as ``task=math task.path=<dir>/train.jsonl``. Train and eval are disjoint: a training problem
whose text is an eval problem's is drawn again.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path

from igrpo.errors import ConfigError, choice_error
from igrpo.tasks.base import TaskData

LEVELS = ("sum", "story", "story2")
LEVEL_NUMBERS = {"sum": "Level 1", "story": "Level 2", "story2": "Level 3"}
RECORD_TYPE = "Word arithmetic"
NAMES = ("Sam", "Ana", "Lee", "Maya", "Omar", "Kim", "Noah", "Ivy")
THINGS = ("marbles", "apples", "stickers", "books", "coins", "shells", "pencils", "cards")


def _sum_problem(rng: random.Random) -> tuple[str, str, int]:
    a, b = rng.randint(0, 20), rng.randint(0, 20)
    return f"What is {a} + {b}?", f"{a} + {b} = {a + b}.", a + b


def _story_problem(rng: random.Random) -> tuple[str, str, int]:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    a = rng.randint(2, 30)
    if rng.random() < 0.5:
        b = rng.randint(1, 30)
        return (f"{name} has {a} {thing} and finds {b} more. How many {thing} does {name} have now?",
                f"{name} starts with {a} {thing} and finds {b} more, so {a} + {b} = {a + b}.", a + b)
    b = rng.randint(1, a)
    return (f"{name} has {a} {thing} and gives {b} of them away. How many {thing} does {name} have left?",
            f"{name} starts with {a} {thing} and gives away {b}, so {a} - {b} = {a - b}.", a - b)


def _story2_problem(rng: random.Random) -> tuple[str, str, int]:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    friend = rng.choice([n for n in NAMES if n != name])
    a, b = rng.randint(2, 30), rng.randint(1, 30)
    c = rng.randint(1, a + b)
    return (f"{name} has {a} {thing}, buys {b} more, then gives {c} to {friend}. How many {thing} does {name} have "
            "now?",
            f"After buying, {name} has {a} + {b} = {a + b} {thing}. After giving {c} away, {a + b} - {c} = "
            f"{a + b - c}.", a + b - c)


MAKERS = {"sum": _sum_problem, "story": _story_problem, "story2": _story2_problem}


def record(level: str, rng: random.Random) -> dict:
    """One MATH-schema record of ``level`` drawn from ``rng``."""
    if level not in MAKERS:
        raise choice_error("task level", level, LEVELS)
    problem, work, answer = MAKERS[level](rng)
    return {"problem": problem, "solution": f"{work} The answer is \\boxed{{{answer}}}.",
            "level": LEVEL_NUMBERS[level], "type": RECORD_TYPE}


def eval_records(level: str, size: int, seed: int) -> list[dict]:
    """The first ``size`` distinct problems of ``level``'s seeded eval sequence."""
    rng, seen, out = random.Random(f"words-eval-{level}-{seed}"), set(), []
    for _ in range(size * 50):
        rec = record(level, rng)
        if rec["problem"] not in seen:
            seen.add(rec["problem"])
            out.append(rec)
            if len(out) == size:
                return out
    return out  # a level with fewer distinct problems than asked: all it has


def train_records(levels: list[str], size: int, seed: int, held_out: set[str]) -> list[dict]:
    """``size`` training problems, levels in turn, none of whose text is in ``held_out``."""
    rng, out = random.Random(f"words-train-{'-'.join(levels)}-{seed}"), []
    while len(out) < size:
        rec = record(levels[len(out) % len(levels)], rng)
        if rec["problem"] not in held_out:
            out.append(rec)
    return out


def write_jsonl(path: Path, records: list[dict]) -> None:
    """Write ``records`` to ``path`` whole or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    tmp.replace(path)


def write_task_files(out_dir: Path, train_levels: list[str], eval_levels: list[str], train_size: int,
                     eval_size: int, seed: int) -> dict[str, Path]:
    """``train.jsonl`` and ``eval_<level>.jsonl`` in ``out_dir``; returns ``{"train": path, level: path, ...}``."""
    for level in [*train_levels, *eval_levels]:
        if level not in LEVELS:
            raise choice_error("task level", level, LEVELS)
    suites = {level: eval_records(level, eval_size, seed) for level in dict.fromkeys([*eval_levels, *train_levels])}
    held_out = {r["problem"] for recs in suites.values() for r in recs}
    paths = {"train": out_dir / "train.jsonl"}
    write_jsonl(paths["train"], train_records(list(train_levels), train_size, seed, held_out))
    for level in eval_levels:
        paths[level] = out_dir / f"eval_{level}.jsonl"
        write_jsonl(paths[level], suites[level])
    return paths


def build_words_task(task_cfg) -> TaskData:
    """``task=words``: the records written to a temporary directory and read back by the MATH loader, one eval suite
    per ``task.eval_suites`` level. Generation is seeded by ``task.data_seed`` and takes milliseconds, so nothing is
    cached."""
    from igrpo.tasks.math_data import MATH_PROMPT
    from igrpo.tasks.sources import SourceSpec, load_problems

    with tempfile.TemporaryDirectory(prefix="igrpo-words-") as tmp:
        paths = write_task_files(Path(tmp), list(task_cfg.train_levels), list(task_cfg.eval_suites),
                                 int(task_cfg.train_size), int(task_cfg.eval_size), int(task_cfg.data_seed))

        def read(key: str, label: str, prefix: str):
            spec = SourceSpec(label=label, path=str(paths[key]), problem_field="problem", answer_field=None,
                              solution_field="solution", answer_format="plain", max_bad_fraction=0.0)
            return load_problems(spec, id_prefix=prefix, quiet=True)

        train = read("train", "task", "words")
        suites = {level: read(level, f"task.eval_suites.{level}", level) for level in task_cfg.eval_suites}
    if not train:
        raise ConfigError("task=words produced no training problems; set task.train_size > 0")
    return TaskData(train=train, eval_suites=suites, prompt_template=task_cfg.prompt_template or MATH_PROMPT,
                    extra={"source": "generated word problems", "train_rows": len(train)})
