"""End-to-end runs with the real tiny model, real TRL trainer and a real SQLite MLflow store."""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from igrpo.job.runner import run


def _client(cfg) -> MlflowClient:
    mlflow.set_tracking_uri(cfg.tracking.uri)
    return MlflowClient(cfg.tracking.uri)


def _rollouts(client, run_id, tmp_path) -> list[dict]:
    path = client.download_artifacts(run_id, "rollouts.json", str(tmp_path))
    data = json.loads(open(path).read())
    return [dict(zip(data["columns"], row)) for row in data["data"]]


@pytest.fixture(scope="module")
def igrpo_run(module_compose):
    """One iGRPO run shared by the tests that only read it."""
    cfg = module_compose("variant=igrpo")
    return cfg, run(cfg)


def test_igrpo_run_is_fully_tracked(igrpo_run, tmp_path):
    cfg, result = igrpo_run
    client = _client(cfg)
    r = client.get_run(result.run_id)
    assert r.info.status == "FINISHED"
    for tag in ("variant", "algo", "reward", "model", "task", "seed", "git_commit"):
        assert tag in r.data.tags
    assert r.data.tags["variant"] == "igrpo" and r.data.params["variant.num_drafts"] == "4"
    for key in ("train/reward", "train/entropy", "train/frac_groups_zero_std", "train/completion_length",
                "train/clip_ratio/region_mean", "perf/step_time", "draft/reward_mean", "draft/best_reward_mean",
                "draft/frac_groups_zero_std", "reward/accuracy"):
        history = client.get_metric_history(result.run_id, key)
        assert [m.step for m in history] == [1, 2], key
    for suite in ("easy", "hard", "mean"):
        for metric in ("avg_at_2", "greedy"):
            steps = [m.step for m in client.get_metric_history(result.run_id, f"eval/{suite}/{metric}")]
            assert steps == [0, 2]  # base model (step 0) and after training
    assert "config.yaml" in [a.path for a in client.list_artifacts(result.run_id)]


def test_refinements_are_conditioned_on_the_best_draft(igrpo_run, tmp_path):
    cfg, result = igrpo_run
    rows = _rollouts(_client(cfg), result.run_id, tmp_path)
    assert {r["stage"] for r in rows} == {"draft", "refinement"}
    for step in {r["step"] for r in rows}:
        drafts = [r for r in rows if r["step"] == step and r["stage"] == "draft"]
        refinements = [r for r in rows if r["step"] == step and r["stage"] == "refinement"]
        assert len(drafts) == cfg.train.prompts_per_step * cfg.variant.num_drafts
        assert len(refinements) == cfg.train.prompts_per_step * cfg.variant.num_refinements
        for pid in {r["prompt_id"] for r in drafts}:
            group = [r for r in drafts if r["prompt_id"] == pid]
            selected = [r for r in group if r["selected"]]
            assert len(selected) == 1
            assert selected[0]["reward"] == max(r["reward"] for r in group)
            # issue #14 acceptance 1: the default cap cuts nothing, so the selected draft is in the prompt whole
            assert cfg.variant.max_draft_tokens >= cfg.generation.max_completion_length
            whole = selected[0]["completion"]
            for ref in (r for r in refinements if r["prompt_id"] == pid):
                assert whole in ref["prompt"]
                assert ref["prompt"] != group[0]["prompt"]  # the plain prompt was rewritten


def test_same_seed_same_final_metrics(module_compose, igrpo_run):
    cfg, first = igrpo_run
    second = run(module_compose("variant=igrpo"))
    assert second.run_id != first.run_id
    eval_keys = [k for k in first.final_metrics if k.startswith("eval/")]
    assert {k: first.final_metrics[k] for k in eval_keys} == {k: second.final_metrics[k] for k in eval_keys}


def test_grpo_on_a_local_hf_model_with_periodic_eval(compose, smoke_model_dir, tmp_path):
    """GRPO on any HF model given by path (here the smoke build), evaluated every step."""
    cfg = compose("variant=grpo", "model=hf", f"model.path={smoke_model_dir}", "eval.every_steps=1", "train.steps=3")
    result = run(cfg)
    client = _client(cfg)
    assert client.get_run(result.run_id).info.status == "FINISHED"
    assert "eval/mean/avg_at_2" in result.final_metrics
    rows = _rollouts(client, result.run_id, tmp_path)
    assert {r["stage"] for r in rows} == {"grpo"}
    assert len([r for r in rows if r["step"] == 0]) == cfg.train.prompts_per_step * cfg.rollout_budget
    assert len(client.get_metric_history(result.run_id, "train/entropy")) == 3
    assert not client.get_metric_history(result.run_id, "draft/reward_mean")
    # periodic eval (every step) on top of the base (step 0) and final (last step) evaluations
    assert [m.step for m in client.get_metric_history(result.run_id, "eval/hard/avg_at_2")] == [0, 1, 2, 3]


def test_base_model_build_is_cached_and_logged(compose, tmp_path):
    """A recipe no build is shipped for (another warm-start seed) is built, cached and logged."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from igrpo.job.builds import resolve_policy_path

    cfg = compose(f"model.cache_dir={tmp_path / 'fresh_cache'}", "model.warmstart_seed=7")
    path, info = resolve_policy_path(cfg, quiet=True)  # logs the build to cfg's tracking store
    assert info.built_now
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == "llama" and tokenizer.eos_token == "<eos>"
    assert info.steps <= cfg.model.warmstart_steps and 0.0 <= info.dev_accuracy <= 1.0
    from igrpo.tracking.names import BUILDS_EXPERIMENT

    client = MlflowClient(cfg.tracking.uri)  # the build is a run of the builds experiment, not the training one
    builds = client.search_runs([client.get_experiment_by_name(BUILDS_EXPERIMENT).experiment_id],
                                "tags.phase = 'base_model'")
    assert len(builds) == 1 and builds[0].data.metrics["base/dev_greedy_final"] == pytest.approx(info.dev_accuracy)
    training = client.get_experiment_by_name(cfg.tracking.experiment)
    assert training is None or not client.search_runs([training.experiment_id], "tags.phase = 'base_model'")
    again_path, again = resolve_policy_path(cfg, quiet=True)  # second call: from the cache, not rebuilt
    assert again_path == path and not again.built_now


def test_failed_run_is_marked_failed(tmp_path):
    from igrpo.tracking.runs import mlflow_run

    uri = f"sqlite:///{tmp_path / 'f.db'}"
    with pytest.raises(RuntimeError):
        with mlflow_run(uri, "igrpo", "boom", {"phase": "train"}) as active:
            run_id = active.run_id
            raise RuntimeError("boom")
    assert MlflowClient(uri).get_run(run_id).info.status == "FAILED"


def test_two_draft_rounds_with_kl_to_the_reference_model(compose, tmp_path):
    cfg = compose("variant=igrpo", "variant.num_drafts=2", "variant.rounds=2", "algo.beta=0.01")
    assert cfg.variant.num_refinements == 4  # 8 - 2 x 2
    result = run(cfg)
    client = _client(cfg)
    assert len(client.get_metric_history(result.run_id, "draft/round_2/best_reward_mean")) == 2
    rows = _rollouts(client, result.run_id, tmp_path)
    step0 = [r for r in rows if r["step"] == 0]
    assert len([r for r in step0 if r["stage"] == "draft"]) == 2 * 2 * cfg.train.prompts_per_step
    second_round = [r for r in step0 if r["stage"] == "draft" and "Draft:" in r["prompt"]]
    assert len(second_round) == 2 * cfg.train.prompts_per_step  # round 2 is conditioned on round 1
    kl = client.get_metric_history(result.run_id, "train/kl")
    assert len(kl) == 2 and all(m.value >= 0 for m in kl)
