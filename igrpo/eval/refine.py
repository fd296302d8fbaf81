"""Draft-conditioned evaluation (variant=igrpo, ``eval.refine``): did the model learn to refine?

For every problem of every eval suite: sample N drafts (``variant.num_drafts``) from the plain prompt, select one
as training does (``variant.selection`` by the *training reward*, scored against the reference answer), build the
Stage-2 prompt exactly as training does (``igrpo.core.drafts.condition_on_drafts``: draft content, ``max_draft_tokens``,
truncation side, ``on_all_zero``, the prompt budget ``train.max_prompt_tokens``), then sample the suite's k
refinements of that prompt and grade them as the single-shot evaluation grades (``eval.verifier``).

This is a diagnostic, not a benchmark score: the selection looks at the reference answer (as Stage 1 does in
training), so ``refine_avg_at_<k>`` is not comparable to a method that never sees the reference. Read it beside
the single-shot ``avg_at_<k>`` and ``refine_draft_correct`` (how often the shown draft was right): refinement
that only copies a right draft scores about ``refine_draft_correct``; one that repairs wrong drafts scores above.

Metrics (``eval/<suite>/...``; a rate with nothing to count is left out, never 0):

* ``refine_avg_at_<k>``: avg@k of the refinements, k the suite's own (``igrpo.eval.suites.suite_samples``);
* ``refine_draft_correct``: share of problems whose shown (selected) draft is right;
* ``refine_copy_rate``, ``refine_fix_rate``: as the training metrics ``refine/copy_rate`` and
  ``refine/fix_rate`` (``igrpo.core.metrics.refine_rates``);
* ``eval/mean/refine_avg_at_k``: the mean over suites of ``refine_avg_at_<k>``.

Sampling uses the evaluation's settings (``eval.temperature``, ``eval.top_p``, ``eval.max_new_tokens``) for drafts
and refinements alike. Problems are taken in chunks; every chunk's draft sampling, selection (``random``) and
refinement sampling draw from seeds derived from (run seed, suite, first problem, stage) inside forked RNGs, so
this evaluation never shifts the training run's random stream and gives the same numbers for the same weights.
"""

from __future__ import annotations

import hashlib
import random

import torch

from igrpo.core.answers import extract_final_answer
from igrpo.core.drafts import condition_on_drafts
from igrpo.eval.backends import HFBackend
from igrpo.eval.suites import answer_grader, avg_key, suite_samples
from igrpo.training.generation import generate_ids
from igrpo.core.metrics import add_counts, avg_at_k, refine_counts, refine_rates
from igrpo.rewards import build_reward_funcs, combine_scores

PREFIX = "refine_"
MEAN_KEY = f"{PREFIX}avg_at_k"  # eval/mean/refine_avg_at_k


def refine_eval_enabled(cfg) -> bool:
    """The draft-conditioned evaluation runs for a variant that trains on draft-conditioned prompts (iGRPO) with
    ``eval.refine`` on."""
    from igrpo.variants import variant_of

    return variant_of(cfg).draft_conditioned and bool(cfg.eval.get("refine", False))


def refine_metrics(cfg, model, tokenizer, task, judge=None) -> dict[str, float]:
    """What the runner adds to an in-process evaluation (base and inline final): the draft-conditioned metrics
    when ``refine_eval_enabled(cfg)``, else nothing. ``judge``: the run's resolved judge (reward=judge), or None."""
    if not refine_eval_enabled(cfg):
        return {}
    backend = judge.backend if judge is not None else None
    return evaluate_refinement(model, tokenizer, task, cfg, seed=int(cfg.seed), judge_backend=backend)


def refine_metric_names(eval_cfg, suites: list[str]) -> list[str]:
    """The metrics every draft-conditioned evaluation logs (the rates, logged only when defined, are not listed)."""
    names = [f"eval/{s}/{PREFIX}{avg_key(suite_samples(eval_cfg, s))}" for s in suites]
    return names + [f"eval/{s}/{PREFIX}draft_correct" for s in suites] + [f"eval/mean/{MEAN_KEY}"]


def stage_seed(run_seed: int, suite: str, start: int, stage: str) -> int:
    """A chunk's seed for one stage (``drafts``, ``selection``, ``refinements``): stable across processes and
    resumes, and distinct from the single-shot evaluation's chunk seeds."""
    digest = hashlib.sha256(f"{run_seed}:refine:{stage}:{suite}:{start}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**63)


def _forked_devices() -> list[int]:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def sample_draft_ids(model, tokenizer, prompts: list[str], n: int, eval_cfg, seed: int) -> list[list[int]]:
    """``n`` sampled completions per prompt (prompt-major) as token ids with special tokens removed, the form the
    trainer's Stage 1 hands to draft selection; stops at the training stop tokens (``igrpo.training.generation``)."""
    with torch.random.fork_rng(devices=_forked_devices()):
        torch.manual_seed(seed)
        return generate_ids(model, tokenizer, prompts, int(eval_cfg.max_new_tokens), do_sample=True,
                            temperature=float(eval_cfg.temperature), top_p=float(eval_cfg.top_p),
                            num_return_sequences=n, batch_size=int(eval_cfg.batch_size))


def _reward_rows(problems, prompts: list[str], n: int) -> dict[str, list]:
    """The reward functions' columns, as the training dataset has them (igrpo.job.factory.build_dataset)."""
    rows = [p for p in problems for _ in range(n)]
    return {"prompts": [q for q in prompts for _ in range(n)], "answer": [p.answer for p in rows],
            "problem": [p.problem for p in rows], "prompt_id": [p.id for p in rows], "level": [p.level for p in rows]}


def evaluate_refinement(model, tokenizer, task, cfg, seed: int, suites: list[str] | None = None,
                        judge_backend=None) -> dict[str, float]:
    """The draft-conditioned metrics (module docstring) of a loaded HF model over ``task``'s eval suites.

    ``cfg``: the run config (``variant``, ``reward``, ``eval``, ``train.max_prompt_tokens``); ``judge_backend``:
    the run's judge for reward=judge. Drafts are selected by the training reward built from ``cfg.reward`` (fresh
    reward objects, so the training reward's per-step counters are untouched)."""
    from igrpo.tasks.prompts import refinement_template

    variant, eval_cfg = cfg.variant, cfg.eval
    n = int(variant.num_drafts)
    template = refinement_template(task, variant.template)
    max_prompt_tokens = cfg.train.get("max_prompt_tokens")
    funcs, weights = build_reward_funcs(cfg.reward, judge_backend)
    grade = answer_grader(eval_cfg)
    backend = HFBackend(model, tokenizer)
    names = list(task.eval_suites) if suites is None else suites
    metrics: dict[str, float] = {}
    try:
        for suite in names:
            metrics.update(_suite_metrics(suite, task, eval_cfg, variant, template, max_prompt_tokens, funcs, weights,
                                          grade, backend, model, tokenizer, n, seed))
    finally:
        for func in funcs:  # math_verify workers of the reward objects built here
            verifier = getattr(func, "verifier", None)
            if verifier is not None:
                verifier.close()
    per_suite = [metrics[f"eval/{s}/{PREFIX}{avg_key(suite_samples(eval_cfg, s))}"] for s in names]
    if per_suite:
        metrics[f"eval/mean/{MEAN_KEY}"] = sum(per_suite) / len(per_suite)
    return metrics


def draft_and_condition(model, tokenizer, problems, plain: list[str], eval_cfg, variant, template: str,
                        max_prompt_tokens, funcs, weights, n: int, seed: int, suite: str, start: int):
    """Stage 1 for one chunk of problems, as training runs it: (drafts, their training rewards, one
    ``igrpo.core.drafts.Conditioned`` per problem). Drafts are prompt-major, ``n`` per problem."""
    ids = sample_draft_ids(model, tokenizer, plain, n, eval_cfg, stage_seed(seed, suite, start, "drafts"))
    drafts = tokenizer.batch_decode(ids, skip_special_tokens=True)
    columns = _reward_rows(problems, plain, n)
    prompts = columns.pop("prompts")
    rewards = combine_scores([f(prompts=prompts, completions=drafts, trainer_state=None, **columns) for f in funcs],
                             weights)
    rng = random.Random(stage_seed(seed, suite, start, "selection"))
    conditioned = [condition_on_drafts(variant, template, p.problem, plain[i], rewards[i * n:(i + 1) * n],
                                       ids[i * n:(i + 1) * n], drafts[i * n:(i + 1) * n], tokenizer, rng=rng,
                                       max_prompt_tokens=max_prompt_tokens)
                   for i, p in enumerate(problems)]
    return drafts, rewards, conditioned


def _suite_metrics(suite, task, eval_cfg, variant, template, max_prompt_tokens, funcs, weights, grade, backend,
                   model, tokenizer, n: int, seed: int) -> dict[str, float]:
    k = suite_samples(eval_cfg, suite)
    problems = task.eval_suites[suite]
    per_chunk = max(1, int(eval_cfg.batch_size) // max(n, k))
    correct: list[list[bool]] = []
    shown_right: list[bool] = []
    counts = []
    for start in range(0, len(problems), per_chunk):
        chunk = problems[start:start + per_chunk]
        plain = [task.prompt(p) for p in chunk]
        drafts, rewards, conditioned = draft_and_condition(model, tokenizer, chunk, plain, eval_cfg, variant,
                                                           template, max_prompt_tokens, funcs, weights, n,
                                                           seed, suite, start)
        refined = backend.sample([c.prompt for c in conditioned], k, eval_cfg,
                                 stage_seed(seed, suite, start, "refinements"))
        for i, (p, cond, texts) in enumerate(zip(chunk, conditioned, refined)):
            answers = [extract_final_answer(t) for t in texts]
            right = [bool(grade(a, p.answer)) for a in answers]
            correct.append(right)
            shown_answer = extract_final_answer(drafts[i * n + cond.choice])
            shown_ok = bool(grade(shown_answer, p.answer))
            shown_right.append(shown_ok)
            if cond.shown:
                counts.append(refine_counts([shown_answer] * k, [shown_ok] * k, answers, right))
    out = {f"eval/{suite}/{PREFIX}{avg_key(k)}": avg_at_k(correct),
           f"eval/{suite}/{PREFIX}draft_correct": sum(shown_right) / len(shown_right)}
    rates = refine_rates(add_counts(counts))
    for name in ("copy_rate", "fix_rate"):
        if name in rates:
            out[f"eval/{suite}/{PREFIX}{name}"] = rates[name]
    return out
