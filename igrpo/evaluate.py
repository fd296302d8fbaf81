"""Held-out evaluation: single-shot (no draft), k samples per problem -> avg@k, plus greedy accuracy.

Sampling is seeded inside a forked RNG, so an evaluation returns the same numbers for the same weights
and never shifts the training run's random stream (periodic evals do not change training).
"""

from __future__ import annotations

import torch

from igrpo.answers import answers_match, extract_final_answer
from igrpo.generation import generate_texts
from igrpo.metrics import avg_at_k
from igrpo.tasks.base import TaskData


def avg_key(k: int) -> str:
    """MLflow rejects '@' in metric names, so avg@k is logged as avg_at_<k>."""
    return f"avg_at_{k}"


def evaluate_suites(model, tokenizer, task: TaskData, eval_cfg, seed: int, suites: list[str] | None = None,
                    ) -> tuple[dict[str, float], list[dict]]:
    """Metrics ``eval/<suite>/avg_at_<k>`` and ``eval/<suite>/greedy`` (plus their means over suites under
    ``eval/mean/...``) and sample rows (suite, problem, completion, correct) for inspection."""
    k = eval_cfg.samples_per_problem
    metrics: dict[str, float] = {}
    samples: list[dict] = []
    names = suites if suites is not None else list(task.eval_suites)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for suite in names:
            problems = task.eval_suites[suite]
            prompts = [task.prompt(p) for p in problems]
            sampled = generate_texts(model, tokenizer, prompts, max_new_tokens=eval_cfg.max_new_tokens, do_sample=True,
                                     temperature=eval_cfg.temperature, top_p=eval_cfg.top_p, num_return_sequences=k,
                                     batch_size=eval_cfg.batch_size)
            correct = [[answers_match(extract_final_answer(sampled[i * k + j]), p.answer) for j in range(k)]
                       for i, p in enumerate(problems)]
            metrics[f"eval/{suite}/{avg_key(k)}"] = avg_at_k(correct)
            samples.extend({"suite": suite, "problem": p.problem, "completion": sampled[i * k], "correct": correct[i][0]}
                           for i, p in enumerate(problems[:5]))
            if eval_cfg.greedy:
                greedy = generate_texts(model, tokenizer, prompts, max_new_tokens=eval_cfg.max_new_tokens,
                                        do_sample=False, batch_size=eval_cfg.batch_size)
                metrics[f"eval/{suite}/greedy"] = sum(
                    answers_match(extract_final_answer(g), p.answer) for g, p in zip(greedy, problems)) / len(problems)
    for metric in [avg_key(k), "greedy"]:
        values = [metrics[f"eval/{s}/{metric}"] for s in names if f"eval/{s}/{metric}" in metrics]
        if values:
            metrics[f"eval/mean/{metric}"] = sum(values) / len(values)
    return metrics, samples
