"""Draft-conditioned evaluation (#14, ``igrpo.eval.refine``) on the real smoke-size tiny model: its metrics, the
Stage-2 prompt built as training builds it, reproducible numbers, and no shift of the training RNG."""

from __future__ import annotations

import random

import pytest
import torch

from igrpo.core.drafts import build_refinement_prompt
from igrpo.eval.refine import (
    MEAN_KEY,
    draft_and_condition,
    evaluate_refinement,
    refine_eval_enabled,
    refine_metric_names,
    refine_metrics,
    stage_seed,
)


@pytest.fixture(scope="module")
def setup(module_compose, smoke_model_dir):
    from igrpo.models.loading import load_policy
    from igrpo.tasks import load_task

    # 64 tokens: room for the barely trained smoke model to write some final answers
    cfg = module_compose("variant=igrpo", "eval.max_new_tokens=64")
    model, tokenizer = load_policy(str(smoke_model_dir), cfg.model.dtype, "cpu")
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    return cfg, model, tokenizer, task


def test_enabled_for_igrpo_only(module_compose):
    assert refine_eval_enabled(module_compose("variant=igrpo"))
    assert not refine_eval_enabled(module_compose("variant=igrpo", "eval.refine=false"))
    assert not refine_eval_enabled(module_compose("variant=grpo"))
    assert refine_metrics(module_compose("variant=grpo"), None, None, None) == {}  # nothing runs


def test_eval_refine_must_be_a_bool(module_compose):
    with pytest.raises(Exception, match="refine"):
        module_compose("eval.refine=sometimes")


def test_metrics_reproducible_and_training_rng_untouched(setup):
    cfg, model, tokenizer, task = setup
    torch.manual_seed(123)
    random.seed(123)
    before = torch.random.get_rng_state().clone(), random.getstate()
    first = evaluate_refinement(model, tokenizer, task, cfg, seed=cfg.seed)
    assert torch.equal(torch.random.get_rng_state(), before[0]) and random.getstate() == before[1]
    suites = list(task.eval_suites)
    for name in refine_metric_names(cfg.eval, suites):
        assert name in first and 0.0 <= first[name] <= 1.0, name
    assert f"eval/mean/{MEAN_KEY}" == "eval/mean/refine_avg_at_k"
    k = cfg.eval.samples_per_problem
    assert all(f"eval/{s}/refine_avg_at_{k}" in first for s in suites)
    assert set(first) <= {*refine_metric_names(cfg.eval, suites),
                          *(f"eval/{s}/refine_{r}" for s in suites for r in ("copy_rate", "fix_rate"))}
    # every shown draft in the smoke model's eval is wrong or right: fix_rate is there exactly when one was wrong
    for s in suites:
        assert (f"eval/{s}/refine_fix_rate" in first) == (first[f"eval/{s}/refine_draft_correct"] < 1.0)
    assert evaluate_refinement(model, tokenizer, task, cfg, seed=cfg.seed) == first  # same weights, same numbers
    other = evaluate_refinement(model, tokenizer, task, cfg, seed=cfg.seed + 1, suites=suites[:1])
    required = set(refine_metric_names(cfg.eval, suites[:1]))
    assert required <= set(other) <= required | {f"eval/{suites[0]}/refine_{r}" for r in ("copy_rate", "fix_rate")}
    assert other[f"eval/mean/{MEAN_KEY}"] == other[f"eval/{suites[0]}/refine_avg_at_{k}"]


def test_stage2_prompt_is_built_as_in_training(setup):
    """Best draft by the training reward, tail-cut to variant.max_draft_tokens (the default cuts nothing), in the tiny template: the rule
    the end-to-end training test checks on the rollout table."""
    from igrpo.rewards import build_reward_funcs
    from igrpo.tasks.prompts import refinement_template

    cfg, model, tokenizer, task = setup
    suite = next(iter(task.eval_suites))
    problems = task.eval_suites[suite]
    plain = [task.prompt(p) for p in problems]
    funcs, weights = build_reward_funcs(cfg.reward)
    n = cfg.variant.num_drafts
    template = refinement_template(task, cfg.variant.template)
    drafts, rewards, conditioned = draft_and_condition(model, tokenizer, problems, plain, cfg.eval, cfg.variant,
                                                       template, cfg.train.max_prompt_tokens, funcs, weights, n,
                                                       cfg.seed, suite, 0)
    assert len(drafts) == len(rewards) == n * len(problems) and len(conditioned) == len(problems)
    for i, (p, cond) in enumerate(zip(problems, conditioned)):
        group = rewards[i * n:(i + 1) * n]
        assert group[cond.choice] == max(group) and cond.choice == group.index(max(group))  # best, first of ties
        kept = drafts[i * n + cond.choice][-cfg.variant.max_draft_tokens:]  # 1 char = 1 token
        assert cond.shown
        assert cond.prompt == build_refinement_prompt(template, p.problem, kept, prompt=plain[i])
    again = draft_and_condition(model, tokenizer, problems, plain, cfg.eval, cfg.variant, template,
                                cfg.train.max_prompt_tokens, funcs, weights, n, cfg.seed, suite, 0)
    assert again[0] == drafts  # a chunk's drafts come from its own seed
    assert stage_seed(cfg.seed, suite, 0, "drafts") != stage_seed(cfg.seed, suite, 0, "refinements")


def test_an_igrpo_run_logs_the_draft_conditioned_eval_at_base_and_end(compose):
    from mlflow.tracking import MlflowClient

    from igrpo.job.runner import run

    cfg = compose("variant=igrpo")
    result = run(cfg)
    client = MlflowClient(result.tracking_uri)
    k = cfg.eval.samples_per_problem
    suites = ("easy", "hard")
    for name in [f"eval/{s}/refine_avg_at_{k}" for s in suites] + [f"eval/mean/{MEAN_KEY}"]:
        steps = sorted(m.step for m in client.get_metric_history(result.run_id, name))
        assert steps == [0, cfg.train.steps], name
    metrics = client.get_run(result.run_id).data.metrics
    assert f"eval_gain/mean/{MEAN_KEY}" in metrics
    grpo = client.get_run(run(compose("variant=grpo")).run_id).data.metrics
    assert not [m for m in grpo if "refine" in m]
