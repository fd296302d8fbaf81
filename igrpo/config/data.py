"""Schemas of the data-bearing groups: ``task`` (training problems) and ``eval`` (held-out suites)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


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


@dataclass
class TaskArith:
    """Seeded multi-step integer arithmetic (igrpo/tasks/arith.py); each level is also an eval suite."""

    name: str = MISSING
    data_seed: int = MISSING  # fixes the problems, independent of the run seed
    train_levels: list[str] = MISSING
    eval_suites: list[str] = MISSING  # the held-out suites under eval=toy
    train_size: int = MISSING
    eval_size: int = MISSING  # problems per eval suite
    first_digits: int = MISSING  # the chain starts from a number of up to this many digits
    step_digits: int = MISSING  # each step adds or subtracts a number of up to this many digits


@dataclass
class TaskDataset(DataSource):
    """A real math dataset (task=math, task=acereason): problems with reference answers, no eval suites."""

    name: str = MISSING
    data_seed: int = MISSING  # fixes the max_train_size subset
    prompt_template: str | None = MISSING  # user message with {problem}; None = model's, else the task's own
    max_train_size: int | None = MISSING  # seeded random subset of this many problems; None = all
    decontaminate: bool = MISSING  # drop training problems sharing an n-gram with any eval problem
    decontaminate_ngram: int = MISSING  # n of those n-grams (words); open-r1 uses 8


@dataclass
class EvalSuite(DataSource):
    """One named held-out benchmark (eval=paper): its source and its k."""

    samples: int | None = MISSING  # k of this suite's avg@k; None = eval.samples_per_problem
    max_problems: int | None = MISSING  # keep only the first N problems (quick looks); None = all


@dataclass
class Eval:
    name: str = MISSING
    samples_per_problem: int = MISSING  # k of avg@k for every suite that does not set its own samples
    temperature: float = MISSING
    top_p: float = MISSING
    max_new_tokens: int = MISSING
    batch_size: int = MISSING  # sequences generated at once
    every_steps: int = MISSING  # also evaluate every k training steps (0 = only before and after)
    greedy: bool = MISSING  # also report greedy accuracy
    verifier: str = MISSING  # answer equivalence: math_verify | exact (text)
    verify_time_budget_s: float = MISSING  # math_verify: per-answer limit (killable worker process)
    suites: dict[str, EvalSuite] = MISSING  # named benchmarks; empty = the task's own suites (eval=toy)
    # where a training run evaluates at its end: inline (in the training process) | job (the resumable
    # `python -m igrpo.eval` path on the saved final model, igrpo/eval/job.py)
    mode: str = MISSING
    store_root: str = MISSING  # eval jobs keep each suite's graded samples here (JSONL), so a relaunch resumes
    # `python -m igrpo.eval` only: what to evaluate and where to log it
    checkpoint: str | None = MISSING  # model directory or hub id; None = the run's saved model, else model.path
    run_id: str | None = MISSING  # MLflow run to log into (a training run); None = a new run tagged phase=eval
    step: int | None = MISSING  # step to log at; None = the checkpoint's step, else the run's train.steps
    # variant=igrpo: also the draft-conditioned evaluation (igrpo.eval.refine): eval/<suite>/refine_avg_at_<k>
    refine: bool = MISSING
