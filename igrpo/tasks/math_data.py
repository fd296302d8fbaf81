"""Real math training data: ``task=math`` (MATH train, 7,500 problems) and ``task=acereason`` (AceReason-Math).

Both are the same loader (``igrpo.tasks.sources``) with different sources and column mappings, set in
``conf/task/<name>.yaml``: from the HF hub by name (``task.hub``) or from a local file
(``task.path=/data/math_train.jsonl`` or ``.parquet``). MATH ships full solutions only, so its reference
answer is the last ``\\boxed{}`` of ``solution``; AceReason-Math has an ``answer`` column.

These tasks bring no eval suites of their own: held-out benchmarks come from the eval config
(``eval=paper``), and any training problem whose text equals an eval problem's is dropped
(``igrpo.tasks.benchmarks.hold_out``).
"""

from __future__ import annotations

import random
import sys

from igrpo.errors import ConfigError
from igrpo.tasks.base import TaskData
from igrpo.tasks.sources import SourceSpec, load_report

REAL_TASKS = ("math", "acereason")
# The user message when neither task.prompt_template nor model.prompt_template is set: DeepSeek-R1's
# recommended math instruction (the paper's "reason step by step, final answer in \boxed{}").
MATH_PROMPT = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{}."


def build_math_task(task_cfg) -> TaskData:
    """Training problems of a real math dataset, optionally a seeded subset of ``task.max_train_size``."""
    report = load_report(SourceSpec.from_cfg(task_cfg, "task"), id_prefix=task_cfg.name)
    if report.skipped:
        print(f"warning: {report.summary()}", file=sys.stderr, flush=True)
    problems = report.problems
    size = task_cfg.max_train_size
    if size is not None:
        if size <= 0:
            raise ConfigError(f"task.max_train_size={size} is not valid; it must be > 0 (or null for all)")
        if size < len(problems):
            keep = sorted(random.Random(f"{task_cfg.name}-subset-{task_cfg.data_seed}").sample(range(len(problems)),
                                                                                                 size))
            problems = [problems[i] for i in keep]
    return TaskData(train=problems, eval_suites={}, prompt_template=MATH_PROMPT,
                    extra={"source": SourceSpec.from_cfg(task_cfg, "task").where, "train_rows": len(problems),
                           "skipped_rows": len(report.skipped)})
