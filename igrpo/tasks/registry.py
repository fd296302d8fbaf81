"""Name-keyed task registry: maps ``task.name`` to a builder, then applies the run's prompt format and,
when the eval config names its own suites (``eval=paper``), loads them and holds them out from training."""

from __future__ import annotations

from igrpo.errors import ConfigError, choice_error
from igrpo.tasks.arith import LEVELS as ARITH_LEVELS
from igrpo.tasks.arith import build_arith_task
from igrpo.tasks.base import TaskData
from igrpo.tasks.math_data import REAL_TASKS, build_math_task
from igrpo.tasks.words import LEVELS as WORD_LEVELS
from igrpo.tasks.words import build_words_task

TASKS = ("arith", "words", *REAL_TASKS)
# the generated tasks' levels (each also an eval suite); the real datasets have none to choose
TASK_LEVELS = {"arith": tuple(ARITH_LEVELS), "words": WORD_LEVELS}


def _build(task_cfg) -> TaskData:
    if task_cfg.name == "arith":
        return build_arith_task(
            train_levels=list(task_cfg.train_levels),
            eval_levels=list(task_cfg.eval_suites),
            train_size=task_cfg.train_size,
            eval_size=task_cfg.eval_size,
            seed=task_cfg.data_seed,
            first_digits=task_cfg.first_digits,
            step_digits=task_cfg.step_digits,
        )
    if task_cfg.name == "words":
        return build_words_task(task_cfg)
    if task_cfg.name in REAL_TASKS:
        return build_math_task(task_cfg)
    raise choice_error("task.name", task_cfg.name, TASKS)


def load_task(task_cfg, seed: int, model_cfg=None, eval_cfg=None, model_dir: str | None = None) -> TaskData:
    """Build the task named by ``task_cfg.name``. The task's own ``data_seed`` fixes the data; the run seed
    does not, so that runs with different seeds are scored on the same eval suites.

    ``model_cfg`` sets the prompt format (``model.prompt_template``, ``model.chat_template``,
    ``model.system_prompt``); the chat template is read from ``model_dir`` (where ``model.path`` loads from, when it
    is not the path itself: a package-shipped model's converted directory), else from ``model.path``.
    ``eval_cfg.suites`` (when non-empty) replaces the task's own eval suites.
    Data errors raise ``ConfigError`` (one line) before anything is written.
    """
    data = _build(task_cfg)
    template = getattr(task_cfg, "prompt_template", None) or getattr(model_cfg, "prompt_template", None)
    if template:
        data.prompt_template = template
    if eval_cfg is not None and getattr(eval_cfg, "suites", None):
        from igrpo.tasks.benchmarks import hold_out, load_suites

        data.eval_suites = load_suites(eval_cfg)
        data.train, removed = hold_out(data.train, data.eval_suites)
        data.extra["held_out_removed"] = removed
        if getattr(task_cfg, "decontaminate", False):
            from igrpo.tasks.decontaminate import decontaminate

            data.train, overlaps = decontaminate(data.train, data.eval_suites, int(task_cfg.decontaminate_ngram))
            data.extra["decontaminated"] = len(overlaps)
    if not data.eval_suites:
        raise ConfigError(f"task={task_cfg.name} has no eval suites of its own; use eval=paper (or set eval.suites)")
    if not data.train:
        raise ConfigError(f"task={task_cfg.name}: no training problems left once the eval problems are held out")
    if model_cfg is not None and getattr(model_cfg, "chat_template", False):
        from igrpo.tasks.prompts import chat_frame, load_tokenizer

        data.chat_prefix, data.chat_suffix = chat_frame(load_tokenizer(model_dir or model_cfg.path), model_cfg.system_prompt,
                                                        where=f"model.path={model_cfg.path}")
    return data
