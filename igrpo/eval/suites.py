"""Held-out evaluation: single-shot (no draft), k samples per problem -> avg@k, plus greedy accuracy.

Each suite has its own k (``eval.suites.<name>.samples``, default ``eval.samples_per_problem``): the paper's
protocol is avg@64 on AIME and avg@8 elsewhere. Metric names (``eval_metric_names`` lists them, and
``igrpo.config.validate.objective_choices`` offers exactly these as objectives):

* ``eval/<suite>/avg_at_<k>`` with the suite's own k, and ``eval/<suite>/greedy`` when ``eval.greedy``;
* ``eval/mean/avg_at_k``: the mean over suites of each suite's avg@k, whatever the k's (the paper's "Avg"
  column) -- always logged, so one objective name works for every eval config;
* ``eval/mean/avg_at_<k>``: the same number, also logged when every suite shares one k (eval=toy);
* ``eval/mean/greedy`` when ``eval.greedy``.

Work is cut into *chunks*: consecutive problems of one suite, ``eval.batch_size // k`` at a time (k samples
each), the unit the sample store records (``igrpo.eval.store``). How chunks reach the generator depends on the
backend (``igrpo.eval.backends``):

* HF ``generate`` (``calls = "chunk"``): one call per chunk, drawing its samples from the chunk's own seed, derived
  from (run seed, suite, first problem), inside a forked RNG.
* vLLM (``calls = "suite"``): one call per suite with every pending chunk of this process, so vLLM's scheduler sees
  the whole suite (a call per chunk would wait for each chunk's longest sample). Every sample is its own request with
  its own seed, derived from (run seed, suite, problem, sample index): sample j of one problem never shares noise
  with sample j of another, and no sample depends on which others are in the call.

Either way a sample does not depend on which chunks ran before it: the in-training evaluation, the
``python -m igrpo.eval`` job (``igrpo.job.eval_job``) and a job resumed after a kill all give the same numbers for
the same weights and backend, and an evaluation never shifts the training run's random stream. A kill loses the
call in flight: a chunk for HF, the rest of a suite for vLLM.

Every evaluation's per-problem scores (fraction of a problem's k samples correct, in problem order, with the
problem ids) ride on its sample rows as ``per_problem``; ``log_per_problem`` writes them to the run as
``eval/per_problem_step<step>.json``, which ``analysis`` reads for its paired bootstrap intervals.

Answers are graded with ``igrpo.rewards.verify.MathVerifier`` (``eval.verifier=math_verify``: symbolic equivalence
with a time budget) or exact normalised text (``exact``, enough for the embedded integer task).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from igrpo.core.answers import answers_match, extract_final_answer
from igrpo.config.data import EVAL_MODES  # noqa: F401  (re-exported)
from igrpo.core.metrics import avg_at_k
from igrpo.rewards import VERIFIERS  # noqa: F401  (re-exported)
from igrpo.tasks.base import TaskData
from igrpo.tracking.names import (  # noqa: F401  (avg_key .. eval_metric_names re-exported)
    MEAN_AVG_KEY,
    PER_PROBLEM_ARTIFACT,
    avg_key,
    eval_metric_names,
    suite_samples,
)

SAMPLE_ROWS_PER_SUITE = 5  # completions kept per suite in the run's eval_samples.json


@lru_cache(maxsize=4)
def _shared_verifier(time_budget_s: float):
    """One verifier (one worker process) per budget for the whole process: evals before, during and after
    training share it, so sympy is imported once."""
    from igrpo.rewards.verify import MathVerifier

    return MathVerifier(time_budget_s=time_budget_s)


def answer_grader(eval_cfg) -> Callable[[str | None, str], bool]:
    """``grade(predicted_or_None, gold) -> bool`` for the configured verifier."""
    if getattr(eval_cfg, "verifier", "exact") == "exact":
        return answers_match
    verifier = _shared_verifier(float(eval_cfg.verify_time_budget_s))
    return verifier.equivalent


@dataclass(frozen=True)
class Chunk:
    """Problems ``start:end`` of one suite, generated together with ``k`` samples each."""

    suite: str
    start: int
    end: int
    k: int

    def seed(self, run_seed: int) -> int:
        """The chunk's own sampling seed: stable across processes, Python versions and resumes."""
        return _stable_seed(f"{run_seed}:{self.suite}:{self.start}")

    def sample_seeds(self, run_seed: int) -> list[list[int]]:
        """One seed per sample of each of the chunk's problems (backends that seed every request)."""
        return [[sample_seed(run_seed, self.suite, index, j) for j in range(self.k)]
                for index in range(self.start, self.end)]


def _stable_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % (2**63)


def sample_seed(run_seed: int, suite: str, index: int, sample: int) -> int:
    """Sample ``sample`` of problem ``index``'s own seed (vLLM's per-request seed)."""
    return _stable_seed(f"{run_seed}:{suite}:{index}:{sample}") % (2**31)


def plan_chunks(task: TaskData, eval_cfg, names: list[str]) -> list[Chunk]:
    """Every chunk of these suites, suite by suite in problem order."""
    chunks = []
    for suite in names:
        k = suite_samples(eval_cfg, suite)
        per_chunk = max(1, int(eval_cfg.batch_size) // k)
        total = len(task.eval_suites[suite])
        chunks += [Chunk(suite, start, min(start + per_chunk, total), k) for start in range(0, total, per_chunk)]
    return chunks


def grade_chunk(chunk: Chunk, task: TaskData, samples: list[list[str]], greedy: list[str] | None, grade,
                count_tokens: Callable[[str], int]) -> list[dict]:
    """One record per problem of the chunk: its answers, grades and token counts (JSON-ready)."""
    problems = task.eval_suites[chunk.suite][chunk.start:chunk.end]
    records = []
    for offset, (problem, texts) in enumerate(zip(problems, samples)):
        answers = [extract_final_answer(t) for t in texts]
        record = {"suite": chunk.suite, "chunk": chunk.start, "index": chunk.start + offset,
                  "problem_id": problem.id, "gold": problem.answer, "answers": answers,
                  "correct": [bool(grade(a, problem.answer)) for a in answers],
                  "tokens": [count_tokens(t) for t in texts], "completion": texts[0] if texts else ""}
        if greedy is not None:
            record["greedy_correct"] = bool(grade(extract_final_answer(greedy[offset]), problem.answer))
        records.append(record)
    return records


def metrics_from_records(records: dict[str, list[dict]], eval_cfg, names: list[str]) -> dict[str, float]:
    """The metrics named by ``eval_metric_names`` from every suite's records (in problem order)."""
    metrics: dict[str, float] = {}
    ks = {suite: suite_samples(eval_cfg, suite) for suite in names}
    for suite in names:
        rows = sorted(records[suite], key=lambda r: r["index"])
        metrics[f"eval/{suite}/{avg_key(ks[suite])}"] = avg_at_k([r["correct"] for r in rows])
        if eval_cfg.greedy:
            metrics[f"eval/{suite}/greedy"] = sum(r["greedy_correct"] for r in rows) / len(rows)
    per_suite = [metrics[f"eval/{suite}/{avg_key(ks[suite])}"] for suite in names]
    metrics[f"eval/mean/{MEAN_AVG_KEY}"] = sum(per_suite) / len(per_suite)
    if len(set(ks.values())) == 1:
        metrics[f"eval/mean/{avg_key(next(iter(ks.values())))}"] = metrics[f"eval/mean/{MEAN_AVG_KEY}"]
    if eval_cfg.greedy:
        metrics["eval/mean/greedy"] = sum(metrics[f"eval/{suite}/greedy"] for suite in names) / len(names)
    return metrics


@dataclass
class EvalOutcome:
    metrics: dict[str, float]
    records: dict[str, list[dict]]  # suite -> one record per problem
    reused: int = 0  # problems whose graded samples came from the store (a resumed job)
    generated: int = 0  # problems generated and graded now
    calls: int = 0  # generate calls made now (one per chunk with HF, one per suite with vLLM)


def run_chunks(backend, task: TaskData, eval_cfg, seed: int, names: list[str] | None = None,
               store=None, shard: tuple[int, int] = (0, 1)) -> EvalOutcome:
    """Generate and grade every chunk not already in ``store`` (an ``igrpo.eval.store.SampleStore``, or None);
    each chunk is written to the store as soon as it is graded.

    ``shard=(rank, processes)``: this process generates only every ``processes``-th chunk (from ``rank``); the
    metrics are then left empty, for the caller to merge once every rank is done (``igrpo.job.eval_job``).
    ``backend=None`` only reads: every chunk must already be in the store."""
    rank, processes = shard
    grade = answer_grader(eval_cfg)
    names = list(task.eval_suites) if names is None else names
    records: dict[str, list[dict]] = {suite: [] for suite in names}
    outcome = EvalOutcome(metrics={}, records=records)
    pending = []
    for number, chunk in enumerate(plan_chunks(task, eval_cfg, names)):
        done = store.completed(chunk) if store is not None else None
        if done is not None:
            records[chunk.suite].extend(done)
            outcome.reused += len(done)
            continue
        if number % processes != rank:
            continue  # another rank's chunk
        if backend is None:
            raise RuntimeError(f"{chunk} is missing from the sample store after every rank finished")
        pending.append(chunk)
    for call in generation_calls(pending, getattr(backend, "calls", "chunk")):
        outcome.calls += 1
        for chunk, (samples, greedy) in zip(call, _generate(backend, call, task, eval_cfg, seed)):
            graded = grade_chunk(chunk, task, samples, greedy, grade, backend.count_tokens)
            if store is not None:
                store.write(chunk, graded)
            records[chunk.suite].extend(graded)
            outcome.generated += len(graded)
    if processes == 1:
        outcome.metrics = metrics_from_records(records, eval_cfg, names)
    return outcome



def generation_calls(chunks: list[Chunk], calls: str) -> list[list[Chunk]]:
    """The pending chunks grouped into generate calls: one per chunk (``calls="chunk"``), or one per suite with all
    of that suite's pending chunks (``"suite"``), in order."""
    if calls == "chunk":
        return [[chunk] for chunk in chunks]
    groups: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        groups.setdefault(chunk.suite, []).append(chunk)
    return list(groups.values())


def _generate(backend, call: list[Chunk], task: TaskData, eval_cfg, seed: int) -> list[tuple[list, list | None]]:
    """(samples per problem, greedy completions or None) for each chunk of one generate call."""
    prompts = [[task.prompt(p) for p in task.eval_suites[c.suite][c.start:c.end]] for c in call]
    if getattr(backend, "calls", "chunk") == "chunk":
        (chunk,), (chunk_prompts,) = call, prompts
        samples = backend.sample(chunk_prompts, chunk.k, eval_cfg, chunk.seed(seed))
        return [(samples, backend.greedy(chunk_prompts, eval_cfg) if eval_cfg.greedy else None)]
    flat = [prompt for chunk_prompts in prompts for prompt in chunk_prompts]
    seeds = [seeds for chunk in call for seeds in chunk.sample_seeds(seed)]
    samples = backend.sample_seeded(flat, seeds, eval_cfg)
    greedy = backend.greedy(flat, eval_cfg) if eval_cfg.greedy else None
    out, start = [], 0
    for chunk in call:
        end = start + chunk.end - chunk.start
        out.append((samples[start:end], greedy[start:end] if greedy is not None else None))
        start = end
    return out


def per_problem_scores(records: dict[str, list[dict]]) -> dict:
    """{suite: {"ids": problem ids, "scores": fraction of its k samples correct}} in problem order: each score is
    the problem's contribution to the suite's avg@k (their mean), the unit a paired bootstrap resamples."""
    out = {}
    for suite, rows in records.items():
        rows = sorted(rows, key=lambda r: r["index"])
        out[suite] = {"ids": [r["problem_id"] for r in rows],
                      "scores": [sum(map(bool, r["correct"])) / len(r["correct"]) for r in rows]}
    return out


class SampleRows(list):
    """``sample_rows``'s rows (a plain list for every existing caller), carrying ``per_problem``: the evaluation's
    ``per_problem_scores``, for ``log_per_problem``."""

    per_problem: dict


def log_per_problem(mlrun, rows, step: int) -> None:
    """Log an evaluation's per-problem scores as the run's ``eval/per_problem_step<step>.json`` (``mlrun``: a
    tracking RunLog); nothing when ``rows`` carries none."""
    per_problem = getattr(rows, "per_problem", None)
    if per_problem:
        mlrun.json({"step": int(step), "suites": per_problem}, PER_PROBLEM_ARTIFACT.format(step=int(step)))


def sample_rows(records: dict[str, list[dict]], task: TaskData) -> SampleRows:
    """A few completions per suite for the run's ``eval_samples.json`` (suite, problem, completion, correct); the
    list also carries every problem's score (``per_problem``)."""
    rows = SampleRows()
    rows.per_problem = per_problem_scores(records)
    for suite, suite_records in records.items():
        problems = task.eval_suites[suite]
        for record in sorted(suite_records, key=lambda r: r["index"])[:SAMPLE_ROWS_PER_SUITE]:
            rows.append({"suite": suite, "problem": problems[record["index"]].problem,
                         "completion": record["completion"], "correct": record["correct"][0]})
    return rows


def per_sample_table(records: dict[str, list[dict]]) -> list[dict]:
    """Every sample as one row (suite, problem id, sample index, answer, correct, tokens): the eval job's
    MLflow table."""
    return [{"suite": suite, "problem_id": r["problem_id"], "sample": j, "answer": r["answers"][j] or "",
             "correct": r["correct"][j], "tokens": r["tokens"][j]}
            for suite, rows in records.items() for r in sorted(rows, key=lambda r: r["index"])
            for j in range(len(r["answers"]))]


def evaluate_suites(model, tokenizer, task: TaskData, eval_cfg, seed: int, suites: list[str] | None = None,
                    ) -> tuple[dict[str, float], list[dict]]:
    """In-process evaluation of a loaded HF model (training's base, periodic and inline final evaluations):
    the metrics named by ``eval_metric_names`` and a few sample rows (suite, problem, completion, correct) whose
    ``per_problem`` holds every problem's score (``log_per_problem`` logs it)."""
    from igrpo.eval.backends import HFBackend

    outcome = run_chunks(HFBackend(model, tokenizer), task, eval_cfg, seed, suites)
    return outcome.metrics, sample_rows(outcome.records, task)
