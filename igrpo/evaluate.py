"""Held-out evaluation: single-shot (no draft), k samples per problem -> avg@k, plus greedy accuracy.

Each suite has its own k (``eval.suites.<name>.samples``, default ``eval.samples_per_problem``): the paper's
protocol is avg@64 on AIME and avg@8 elsewhere. Metric names (``eval_metric_names`` lists them, and
``igrpo.validate.objective_choices`` offers exactly these as objectives):

* ``eval/<suite>/avg_at_<k>`` with the suite's own k, and ``eval/<suite>/greedy`` when ``eval.greedy``;
* ``eval/mean/avg_at_k``: the mean over suites of each suite's avg@k, whatever the k's (the paper's "Avg"
  column) -- always logged, so one objective name works for every eval config;
* ``eval/mean/avg_at_<k>``: the same number, also logged when every suite shares one k (eval=toy), the name
  earlier runs and sweeps use;
* ``eval/mean/greedy`` when ``eval.greedy``.

Answers are graded with ``igrpo.verify.MathVerifier`` (``eval.verifier=math_verify``: symbolic equivalence
with a time budget) or exact normalised text (``exact``, enough for the embedded integer task). Sampling is
seeded inside a forked RNG, so an evaluation returns the same numbers for the same weights and never shifts
the training run's random stream (periodic evals do not change training).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from igrpo.answers import answers_match, extract_final_answer
from igrpo.generation import generate_texts
from igrpo.metrics import avg_at_k
from igrpo.tasks.base import TaskData

MEAN_AVG_KEY = "avg_at_k"  # eval/mean/avg_at_k: mean of each suite's avg@k (the paper's Avg column)
VERIFIERS = ("math_verify", "exact")


def avg_key(k: int) -> str:
    """MLflow rejects '@' in metric names, so avg@k is logged as avg_at_<k>."""
    return f"avg_at_{k}"


def suite_samples(eval_cfg, suite: str) -> int:
    """k of a suite's avg@k: its own ``samples`` when it sets one, else ``eval.samples_per_problem``."""
    suites = getattr(eval_cfg, "suites", None) or {}
    own = suites[suite].samples if suite in suites else None
    return int(own) if own else int(eval_cfg.samples_per_problem)


def eval_metric_names(eval_cfg, suites: list[str]) -> list[str]:
    """Every ``eval/...`` metric an evaluation of these suites logs."""
    ks = {s: suite_samples(eval_cfg, s) for s in suites}
    tail = ["greedy"] if eval_cfg.greedy else []
    names = [f"eval/{s}/{m}" for s in suites for m in [avg_key(ks[s]), *tail]]
    mean = [MEAN_AVG_KEY] + ([avg_key(next(iter(ks.values())))] if len(set(ks.values())) == 1 else []) + tail
    return names + [f"eval/mean/{m}" for m in mean]


@lru_cache(maxsize=4)
def _shared_verifier(time_budget_s: float):
    """One verifier (one worker process) per budget for the whole process: evals before, during and after
    training share it, so sympy is imported once."""
    from igrpo.verify import MathVerifier

    return MathVerifier(time_budget_s=time_budget_s)


def answer_grader(eval_cfg):
    """``grade(predicted_or_None, gold) -> bool`` for the configured verifier."""
    if getattr(eval_cfg, "verifier", "exact") == "exact":
        return answers_match
    verifier = _shared_verifier(float(eval_cfg.verify_time_budget_s))
    return verifier.equivalent


def _generate_by_suite(model, tokenizer, task: TaskData, eval_cfg, groups: dict[int, list[str]],
                       do_sample: bool) -> dict[str, list[str]]:
    """Completions per suite (k per problem, prompt-major). Suites sharing a k are generated together, so
    many small suites cost a few large batches instead of one small batch each."""
    out: dict[str, list[str]] = {}
    sampling = {"temperature": eval_cfg.temperature, "top_p": eval_cfg.top_p} if do_sample else {}
    for k, group in groups.items():
        prompts = [task.prompt(p) for suite in group for p in task.eval_suites[suite]]
        texts = generate_texts(model, tokenizer, prompts, max_new_tokens=eval_cfg.max_new_tokens, do_sample=do_sample,
                               num_return_sequences=k, batch_size=eval_cfg.batch_size, **sampling)
        start = 0
        for suite in group:
            end = start + len(task.eval_suites[suite]) * k
            out[suite], start = texts[start:end], end
    return out


def evaluate_suites(model, tokenizer, task: TaskData, eval_cfg, seed: int, suites: list[str] | None = None,
                    ) -> tuple[dict[str, float], list[dict]]:
    """The metrics named by ``eval_metric_names`` and sample rows (suite, problem, completion, correct)."""
    grade = answer_grader(eval_cfg)
    names = suites if suites is not None else list(task.eval_suites)
    ks = {suite: suite_samples(eval_cfg, suite) for suite in names}
    by_k: dict[int, list[str]] = {}
    for suite in names:
        by_k.setdefault(ks[suite], []).append(suite)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sampled = _generate_by_suite(model, tokenizer, task, eval_cfg, by_k, do_sample=True)
        greedy = _generate_by_suite(model, tokenizer, task, eval_cfg, {1: names}, do_sample=False) \
            if eval_cfg.greedy else {}
    metrics: dict[str, float] = {}
    samples: list[dict] = []
    for suite in names:
        k, problems, texts = ks[suite], task.eval_suites[suite], sampled[suite]
        correct = [[grade(extract_final_answer(texts[i * k + j]), p.answer) for j in range(k)]
                   for i, p in enumerate(problems)]
        metrics[f"eval/{suite}/{avg_key(k)}"] = avg_at_k(correct)
        samples.extend({"suite": suite, "problem": p.problem, "completion": texts[i * k], "correct": correct[i][0]}
                       for i, p in enumerate(problems[:5]))
        if eval_cfg.greedy:
            metrics[f"eval/{suite}/greedy"] = sum(
                grade(extract_final_answer(g), p.answer) for g, p in zip(greedy[suite], problems)) / len(problems)
    per_suite = [metrics[f"eval/{suite}/{avg_key(ks[suite])}"] for suite in names]
    metrics[f"eval/mean/{MEAN_AVG_KEY}"] = sum(per_suite) / len(per_suite)
    if len(by_k) == 1:
        metrics[f"eval/mean/{avg_key(next(iter(by_k)))}"] = metrics[f"eval/mean/{MEAN_AVG_KEY}"]
    if eval_cfg.greedy:
        metrics["eval/mean/greedy"] = sum(metrics[f"eval/{suite}/greedy"] for suite in names) / len(names)
    return metrics, samples
