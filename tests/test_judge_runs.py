"""reward=judge end to end: the real Hydra CLI, the embedded judge at its default settings (its AUROC is
asserted), GRPO and iGRPO runs with a tiny policy, and a run whose HTTP judge only answers 500s."""

from __future__ import annotations

import json

import mlflow
import pytest
from tests.helpers import run_cli, tiny_overrides


@pytest.fixture(scope="module")
def judge_sweep(tmp_path_factory, model_cache):
    """``python run.py -m variant=grpo,igrpo reward=judge`` (the embedded judge at its default settings)."""
    tmp = tmp_path_factory.mktemp("judge_sweep")
    db = f"sqlite:///{tmp / 'mlflow.db'}"
    proc = run_cli(["-m", "variant=grpo,igrpo", "reward=judge", *tiny_overrides(model_cache), "quiet=false",
                    f"tracking.uri={db}", f"hydra.sweep.dir={tmp / 'sweep'}"], cwd=tmp, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return db, proc


def test_judge_is_measured_logged_and_printed(judge_sweep):
    """The judge (the shipped build of this recipe, igrpo.models.shipped) carries the AUROC measured when it was
    built on held-out candidates; every run logs it and its cache key, and the console prints it."""
    db, proc = judge_sweep
    client = mlflow.MlflowClient(db)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.phase = 'train'")
    aurocs = {r.data.metrics["judge/heldout_auroc"] for r in runs}
    assert len(aurocs) == 1 and len({r.data.tags["judge_cache_key"] for r in runs}) == 1  # one judge for both jobs
    auroc = aurocs.pop()
    assert auroc >= 0.9
    assert f"judge: AUROC {auroc:.3f}" in proc.stdout


def test_both_variants_finish_with_judge_metrics(judge_sweep):
    db, _ = judge_sweep
    client = mlflow.MlflowClient(db)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.phase = 'train'")
    assert sorted(r.data.tags["variant"] for r in runs) == ["grpo", "igrpo"]
    for r in runs:
        assert r.info.status == "FINISHED" and r.data.tags["reward"] == "judge"
        for key in ("reward/judge", "reward/accuracy", "reward/judge_parse_failures", "train/reward"):
            history = client.get_metric_history(r.info.run_id, key)
            assert [m.step for m in history] == [1, 2], (r.info.run_name, key)
        judge = [m.value for m in client.get_metric_history(r.info.run_id, "reward/judge")]
        assert all(0.0 <= v <= 1.0 for v in judge)
        # the trained reward is the judge (accuracy has weight 0): train/reward equals the judge's mean
        reward = [m.value for m in client.get_metric_history(r.info.run_id, "train/reward")]
        assert reward == pytest.approx(judge, abs=1e-5)
        assert r.data.metrics["judge/heldout_auroc"] >= 0.9


def test_drafts_are_ranked_by_the_judge(judge_sweep, tmp_path):
    """iGRPO's Stage 1 uses the same judge: every selected draft has its group's highest judge score."""
    db, _ = judge_sweep
    client = mlflow.MlflowClient(db)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                "tags.variant = 'igrpo' and tags.phase = 'train'")
    data = json.loads(open(client.download_artifacts(run.info.run_id, "rollouts.json", str(tmp_path))).read())
    rows = [dict(zip(data["columns"], row)) for row in data["data"]]
    drafts = [r for r in rows if r["stage"] == "draft"]
    assert drafts and all(0.0 <= r["reward"] <= 1.0 for r in drafts)
    scores = {r["reward"] for r in drafts}
    assert len(scores) > 2  # graded scores, not 0/1
    for key in {(r["step"], r["prompt_id"]) for r in drafts}:
        group = [r for r in drafts if (r["step"], r["prompt_id"]) == key]
        chosen = [r for r in group if r["selected"]]
        assert len(chosen) == 1 and chosen[0]["reward"] == max(r["reward"] for r in group)


def test_http_judge_that_fails_does_not_crash_the_run(tmp_path, model_cache):
    """A judge server answering only 500s: the run FINISHES and the failures are counted."""
    from tests.test_judge_http import _Server

    server = _Server(lambda body: (500, b"down for maintenance"))
    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    try:
        proc = run_cli(["reward=judge", "reward/judge=http", f"reward.judge.url={server.url}",
                        "reward.judge.max_retries=1", "reward.judge.backoff_s=0.01", "reward.judge.timeout_s=2",
                        *tiny_overrides(model_cache), f"tracking.uri={db}"], cwd=tmp_path)
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(db)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.phase = 'train'")
    assert run.info.status == "FINISHED"
    failures = [m.value for m in client.get_metric_history(run.info.run_id, "reward/judge_request_failures")]
    assert len(failures) == 2 and all(f > 0 for f in failures)
    assert server.posts > 0
