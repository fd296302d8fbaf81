"""Schemas of the data-bearing groups: ``task`` (training problems) and ``eval`` (held-out suites)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from omegaconf import MISSING

from igrpo.config.fields import choice, number
from igrpo.errors import ConfigError, choice_error
from igrpo.rewards import VERIFIERS

EVAL_MODES = ("inline", "job")
EVAL_PROCESSES = ("auto", "same", "own")  # where eval.mode=job evaluates inside training
_SUITE_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def _check_source(node, label: str) -> None:
    from igrpo.tasks.sources import SourceSpec, check_spec

    check_spec(SourceSpec.from_cfg(node, label))


def data_hub_needs(cfg) -> list:
    """The datasets the job fetches from the hub (``igrpo.config.checks.check_hub_reachable``): the task's and every
    eval suite's source without a local ``path``."""
    from igrpo.config.checks import HubNeed
    from igrpo.tasks.sources import hub_dataset_cached

    nodes = [("task", cfg.task)] if "hub" in cfg.task else []
    nodes += [(f"eval.suites.{name}", suite) for name, suite in (cfg.eval.get("suites") or {}).items()]
    return [HubNeed(f"{label}.path", str(node.hub), lambda hub=str(node.hub): hub_dataset_cached(hub))
            for label, node in nodes if not node.path and node.hub]


@dataclass
class DataSource:
    """Where a real dataset's rows come from and which columns hold what (training tasks and eval suites)."""

    path: str | None = MISSING  # local .jsonl or .parquet file; wins over hub
    hub: str | None = MISSING  # HF dataset id for datasets.load_dataset (needs network or a warm HF cache)
    hub_config: str | None = MISSING  # dataset config name, if the dataset has several
    hub_revision: str | None = MISSING  # hub commit sha / tag / branch to pin (datasets change schema); None = latest
    split: str = MISSING
    problem_field: str = MISSING  # column holding the problem text
    answer_field: str | None = MISSING  # column holding the reference answer; None = from solution_field
    solution_field: str | None = MISSING  # worked solution whose last \boxed{} is the answer
    answer_format: str = MISSING  # how answer_field holds the answer: plain | boxed | hash (after ####)
    max_bad_fraction: float = MISSING  # share of rows that may be skipped as unusable (reported); more fails the load


def _check_levels(t, cfg, levels) -> None:
    """A generated task's levels: at least one suite (its own or the eval config's), every level a known one."""
    if not t.eval_suites and not cfg.eval.suites:
        raise ConfigError("task.eval_suites=[] is not valid; name at least one suite")
    if not t.train_levels:
        raise ConfigError(f"task.train_levels=[] is not valid; name at least one of: {', '.join(levels)}")
    for level in [*t.train_levels, *t.eval_suites]:
        if level not in levels:
            raise choice_error("task level", level, levels)


def _check_prompt_template(t) -> None:
    if t.prompt_template is not None and "{problem}" not in t.prompt_template:
        raise ConfigError(f"task.prompt_template={t.prompt_template!r} is not valid: it must contain {{problem}} "
                          "(where the problem goes)")


@dataclass
class GeneratedTask:
    """The fields of a task generated from a seed, in levels (each level is also an eval suite)."""

    name: str = MISSING
    data_seed: int = MISSING  # fixes the problems, independent of the run seed
    train_levels: list[str] = MISSING
    eval_suites: list[str] = MISSING  # the held-out suites under eval=toy
    train_size: int = number(gt=0)
    eval_size: int = number(gt=0)  # problems per eval suite


@dataclass
class TaskArith(GeneratedTask):
    """Seeded multi-step integer arithmetic (igrpo/tasks/arith.py); each level is also an eval suite."""

    first_digits: int = MISSING  # the chain starts from a number of up to this many digits
    step_digits: int = MISSING  # each step adds or subtracts a number of up to this many digits

    @staticmethod
    def check(t, cfg) -> None:
        from igrpo.tasks.arith import LEVELS, check_level_fits

        _check_levels(t, cfg, LEVELS)
        if "warmstart_formats" in cfg.model:  # the tiny model: one character per token, so lengths are exact
            # the longest worked solution of every level (+ its end token) must fit the completion caps
            check_level_fits([*t.train_levels, *t.eval_suites], t.first_digits, t.step_digits,
                             {"generation.max_completion_length": cfg.generation.max_completion_length,
                              "eval.max_new_tokens": cfg.eval.max_new_tokens})


@dataclass
class TaskWords(GeneratedTask):
    """Generated word problems with \\boxed{} answers (igrpo/tasks/words.py): a real model's CPU-sized task."""

    prompt_template: str | None = MISSING  # user message with {problem}; None = model's, else the MATH instruction

    @staticmethod
    def check(t, cfg) -> None:
        from igrpo.tasks.words import LEVELS

        _check_levels(t, cfg, LEVELS)
        _check_prompt_template(t)
        if "warmstart_formats" in cfg.model:
            raise ConfigError(f"task={t.name} is not valid with model={cfg.model.name}: the word problems are for "
                              "a pretrained model that reads English (e.g. model=smollm2_135m); the tiny model "
                              "knows task=arith only")


@dataclass
class TaskDataset(DataSource):
    """A real math dataset (task=math, task=acereason): problems with reference answers, no eval suites."""

    name: str = MISSING
    data_seed: int = MISSING  # fixes the max_train_size subset
    prompt_template: str | None = MISSING  # user message with {problem}; None = model's, else the task's own
    max_train_size: int | None = number(gt=0)  # seeded random subset of this many problems; None = all
    decontaminate: bool = MISSING  # drop training problems sharing an n-gram with any eval problem
    decontaminate_ngram: int = MISSING  # n of those n-grams (words); open-r1 uses 8

    @staticmethod
    def check(t, cfg) -> None:
        _check_source(t, "task")
        if not cfg.eval.suites:
            raise ConfigError(f"eval={cfg.eval.name} is not valid with task={t.name}: a real dataset has no eval "
                              "suites of its own; use eval=paper (or set eval.suites)")
        _check_prompt_template(t)


@dataclass
class EvalSuite(DataSource):
    """One named held-out benchmark (eval=paper): its source and its k."""

    samples: int | None = number(gt=0)  # k of this suite's avg@k; None = eval.samples_per_problem
    max_problems: int | None = number(gt=0)  # keep only the first N problems (quick looks); None = all


def evaluated_model(cfg) -> tuple[str, str | None]:
    """What ``python -m igrpo.eval`` loads, as (the key that names it, its path or hub id): ``eval.checkpoint``; else,
    without ``eval.run_id`` (whose saved model is downloaded), the configured model (None: the tiny model, built)."""
    from igrpo.config.model import model_path

    if cfg.eval.checkpoint:
        return "eval.checkpoint", str(cfg.eval.checkpoint)
    return "model.path", None if cfg.eval.run_id else model_path(cfg.model)


@dataclass
class Eval:
    name: str = MISSING
    samples_per_problem: int = number(gt=0)  # k of avg@k for every suite that does not set its own samples
    temperature: float = number(gt=0)
    top_p: float = number(gt=0, le=1)
    max_new_tokens: int = number(gt=0)
    batch_size: int = number(gt=0)  # sequences generated at once
    every_steps: int = number(ge=0)  # also evaluate every k training steps (0 = only before and after)
    greedy: bool = MISSING  # also report greedy accuracy
    verifier: str = choice(*VERIFIERS)  # answer equivalence: math_verify (symbolic) | exact (text)
    verify_time_budget_s: float = number(gt=0)  # math_verify: per-answer limit (killable worker process)
    suites: dict[str, EvalSuite] = MISSING  # named benchmarks; empty = the task's own suites (eval=toy)
    # where a training run evaluates at its end: inline (in the training process) | job (the resumable
    # `python -m igrpo.eval` path on the saved final model, igrpo/job/eval_job.py)
    mode: str = choice(*EVAL_MODES)
    # eval.mode=job inside training: where its evaluations run. same: in the training process; own: a process of
    # its own per training process (the GPU memory it needs is free there); auto: own on CUDA or with
    # generation=vllm, else same (igrpo/job/eval_phase.py). It never changes the numbers.
    process: str = choice(*EVAL_PROCESSES, neutral="auto")
    store_root: str = MISSING  # eval jobs keep each suite's graded samples here (JSONL), so a relaunch resumes
    # `python -m igrpo.eval` only: what to evaluate and where to log it
    checkpoint: str | None = MISSING  # model directory or hub id; None = the run's saved model, else model.path
    run_id: str | None = MISSING  # MLflow run to log into (a training run); None = a new run tagged phase=eval
    step: int | None = number(ge=0, why="(or null: the run's train.steps)")  # None = the checkpoint's step, else train.steps
    # variant=igrpo: also the draft-conditioned evaluation (igrpo.eval.refine): eval/<suite>/refine_avg_at_<k>
    refine: bool = MISSING

    @staticmethod
    def check(e, cfg) -> None:
        from igrpo.config.fields import check_fields

        for name, suite in e.suites.items():
            if not _SUITE_NAME.fullmatch(str(name)) or name == "mean":
                raise ConfigError(f"eval.suites.{name} is not a valid suite name; use letters, digits, _ - . "
                                  "(it becomes part of metric names; 'mean' is reserved)")
            _check_source(suite, f"eval.suites.{name}")
            check_fields(suite, f"eval.suites.{name}", EvalSuite)
        if not str(e.store_root).strip():
            raise ConfigError("eval.store_root is empty; name a directory for the eval job's graded samples")
