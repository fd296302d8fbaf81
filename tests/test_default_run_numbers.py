"""The default run's step-0 evaluation, from the shipped default base, is the number docs/measurements.md
documents (the same weights on every machine; the sampling and grading run here as in the default run)."""

from __future__ import annotations

from igrpo.job.threads import apply_cpu_threads
from igrpo.eval.suites import evaluate_suites
from igrpo.models.loading import build_tiny, load_policy
from igrpo.tasks import load_task
from tests.helpers import compose_config

# docs/measurements.md, "The shipped bases": python run.py, step 0, eval/hard (100 problems x 8 samples)
DOCUMENTED_STEP0 = {"eval/hard/avg_at_8": 0.16875, "eval/hard/greedy": 0.2}


def test_the_default_runs_step0_evaluation_is_the_documented_one(tmp_path):
    cfg = compose_config(f"model.cache_dir={tmp_path}", f"output_dir={tmp_path / 'out'}")
    apply_cpu_threads(cfg)  # the default run's thread share
    info = build_tiny(cfg.model, cfg.task, tmp_path)
    assert not info.built_now, "the default base must come from igrpo/models/shipped, not a build"
    model, tokenizer = load_policy(info.path, cfg.model.dtype, cfg.device)
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval)
    metrics, _ = evaluate_suites(model, tokenizer, task, cfg.eval, seed=cfg.seed)
    assert {key: metrics[key] for key in DOCUMENTED_STEP0} == DOCUMENTED_STEP0
