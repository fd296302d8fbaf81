"""Checkpoint/resume (``train.save_every``): a run SIGKILLed mid-training and launched again with the same
command continues the same MLflow run from its last complete checkpoint, and ends FINISHED with every step's
metrics logged exactly once. Real CLI, real tiny model, real SQLite MLflow store."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import mlflow
import pytest
from tests.helpers import ROOT, run_cli, tiny_overrides
from mlflow.tracking import MlflowClient

from igrpo.config.fields import check_fields
from igrpo.training.checkpoints import STATE_FILE, RunCheckpoints, open_checkpoints
from igrpo.errors import ConfigError

STEPS = 24
PROGRESS = re.compile(rf"(\d+)/{STEPS} \[")  # the training progress bar on stderr (quiet=false)
STEP_KEYS = ("train/loss", "train/reward", "train/entropy", "train/entropy_coef", "train/learning_rate",
             "train/frac_groups_zero_std", "perf/step_time", "draft/reward_mean", "draft/best_reward_mean",
             "reward/accuracy")


def _args(tmp, model_cache) -> list[str]:
    tiny = [o for o in tiny_overrides(model_cache) if o != "quiet=true"]
    return ["variant=igrpo", *tiny, f"train.steps={STEPS}", "train.save_every=2", "quiet=false",
            "generation.max_completion_length=48", "eval.max_new_tokens=48", "reward.verifier=exact",
            "eval.verifier=exact",
            f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}", f"train.checkpoint_root={tmp / 'ckpt'}"]


def _complete_steps(root) -> list[int]:
    return sorted(int(p.parent.name.rsplit("-", 1)[1]) for p in root.glob(f"*/checkpoint-*/{STATE_FILE}"))


def _progress(stderr_file) -> int:
    return max(map(int, PROGRESS.findall(stderr_file.read_text(errors="ignore"))), default=0)


def _train_runs(client):
    return client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.phase = 'train'")


def _steps(client, run_id, key) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))  # duplicates stay visible


def _kill_mid_training(args, tmp, timeout=300) -> int:
    """Start the run; SIGKILL it once a step past its newest complete checkpoint has finished (that step's
    metrics are held in memory, not yet in MLflow). Returns the step the progress bar had reached."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out, err = tmp / "killed.out", tmp / "killed.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=tmp, env=env, stdout=stdout,
                                stderr=stderr, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            complete, reached = _complete_steps(tmp / "ckpt"), _progress(err)
            # mid-training, past a complete checkpoint (the progress bar is only a hint: it lags)
            if complete and complete[-1] >= 4 and reached < STEPS - 4:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
                return reached
            time.sleep(0.2)
        pytest.fail(f"no kill point reached (exit {proc.poll()}): {err.read_text()[-3000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_sigkilled_run_resumes_into_the_same_mlflow_run(tmp_path, model_cache):
    args = _args(tmp_path, model_cache)
    killed_at = _kill_mid_training(args, tmp_path)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (killed,) = _train_runs(client)
    run_id = killed.info.run_id
    assert killed.info.status == "RUNNING"  # SIGKILL: nothing could close it
    logged = _steps(client, run_id, "train/loss")
    newest = _complete_steps(tmp_path / "ckpt")[-1]
    # Only steps committed with a complete checkpoint reach MLflow (the progress bar may lag the kill by a
    # step, so the invariant is stated against the checkpoints, not against killed_at).
    assert logged == list(range(1, len(logged) + 1)) and len(logged) <= newest and len(logged) % 2 == 0
    assert killed.data.tags["checkpoint_dir"].startswith(str(tmp_path / "ckpt"))

    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    resumed = re.search(rf"resumed MLflow run {run_id} from checkpoint step (\d+)", again.stdout)
    assert resumed, again.stdout
    assert int(resumed.group(1)) == newest and killed_at >= 1

    (run,) = _train_runs(client)
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert run.data.tags["resumed_from_step"] == resumed.group(1)
    per_step = {k for k in run.data.metrics if 1 in _steps(client, run_id, k)}
    assert set(STEP_KEYS) <= per_step
    for key in per_step:  # every step exactly once, before and after the kill
        assert _steps(client, run_id, key) == list(range(1, STEPS + 1)), key
    for key in (k for k in run.data.metrics if k.startswith("eval/")):
        assert _steps(client, run_id, key) == [0, STEPS], key  # base (read back, not re-run) and final
    assert _steps(client, run_id, "perf/eval_seconds") == [0, STEPS]
    assert _steps(client, run_id, "train/train_runtime") == [STEPS]

    table = json.loads(open(client.download_artifacts(run_id, "rollouts.json", str(tmp_path))).read())
    rows = [dict(zip(table["columns"], row)) for row in table["data"]]
    counts = Counter((row["step"], row["stage"]) for row in rows)
    assert set(counts) == {(s, stage) for s in range(STEPS) for stage in ("draft", "refinement")}
    assert set(counts.values()) == {2 * 4}  # 2 prompts x 4 drafts / refinements, each step's rows once
    assert not list((tmp_path / "ckpt").glob("*/checkpoint-*"))  # FINISHED: its checkpoints are gone


def test_no_checkpoints_without_save_every(compose, tmp_path):
    from igrpo.job.runner import run

    cfg = compose("variant=grpo", "train.steps=1", f"train.checkpoint_root={tmp_path / 'ckpt'}")
    assert cfg.train.save_every == 0
    result = run(cfg)
    assert not (tmp_path / "ckpt").exists()
    r = MlflowClient(cfg.tracking.uri).get_run(result.run_id)
    assert r.info.status == "FINISHED" and "checkpoint_dir" not in r.data.tags


# --- the resume decisions, on a real SQLite store without training -----------------------------------------------


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'm.db'}"
    return uri, MlflowClient(uri)


@pytest.fixture
def store(sqlite_store, tmp_path):
    uri, client = sqlite_store
    mlflow.set_tracking_uri(uri)
    return uri, client, client.create_experiment(tmp_path.name)


def _checkpoint(directory, step, metrics=None):
    folder = directory / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if metrics is not None:
        state = {"metrics": {str(s): {"timestamp": 1, "metrics": m} for s, m in metrics.items()},
                 "trainer": {"schedule": {"coef": 0.0, "triggered": False}, "last_entropy": None, "rollout_rows": []}}
        (folder / STATE_FILE).write_text(json.dumps(state))


def test_resume_point_is_the_newest_complete_checkpoint(store, tmp_path):
    uri, client, exp = store
    ckpt = RunCheckpoints(tmp_path / "c", uri)
    _checkpoint(ckpt.dir, 2, {1: {"train/loss": 1.0}, 2: {"train/loss": 2.0}})
    _checkpoint(ckpt.dir, 4, {3: {"train/loss": 3.0}, 4: {"train/loss": 4.0}})
    _checkpoint(ckpt.dir, 6)  # killed while transformers wrote it: incomplete
    run_id = client.create_run(exp).info.run_id
    ckpt.record_run(run_id)
    for step in (1, 2, 3):  # killed while logging checkpoint-4's metrics: step 4 never reached MLflow
        client.log_metric(run_id, "train/loss", float(step), step=step)
    client.log_metric(run_id, "eval/mean/greedy", 0.25, step=0)
    assert ckpt.resumable_run(exp) == run_id
    resume = ckpt.resume(run_id)
    assert resume.step == 4 and resume.checkpoint == ckpt.dir / "checkpoint-4"
    assert _steps(client, run_id, "train/loss") == [1, 2, 3, 4]  # the missing step, from the checkpoint
    assert sorted(p.name for p in ckpt.dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert resume.base_metrics() == {"eval/mean/greedy": 0.25}
    assert resume.logged_after() == frozenset()


def test_finished_run_is_not_resumed_and_abandoned_run_is_closed(store, tmp_path):
    uri, client, exp = store
    ckpt = RunCheckpoints(tmp_path / "c", uri)
    _checkpoint(ckpt.dir, 2, {})
    run_id = client.create_run(exp).info.run_id
    ckpt.record_run(run_id)
    assert ckpt.resumable_run("other-experiment") is None
    assert RunCheckpoints(ckpt.dir, "sqlite:///elsewhere.db").resumable_run(exp) is None
    client.set_terminated(run_id, status="FAILED")  # e.g. SIGTERM from a scheduler: resumable
    assert ckpt.resumable_run(exp) == run_id
    client.set_terminated(run_id, status="FINISHED")
    assert ckpt.resumable_run(exp) is None
    client.update_run(run_id, status="RUNNING")
    ckpt.start_fresh()  # train.resume=false: a new run; the killed one is closed, its checkpoints go
    assert client.get_run(run_id).info.status == "KILLED"
    assert not list(ckpt.dir.iterdir())


def test_trainer_extra_state_round_trips_through_json():
    """What a checkpoint saves of the trainer (igrpo_state.json) restores the same state: entropy schedule, last
    entropy, iGRPO's draft-selection RNG, the spend so far and the adaptive draft budget's histories (the methods
    alone, on trainers not built by TRL)."""
    import random
    from types import SimpleNamespace

    from igrpo.core.entropy import ScheduleState
    from igrpo.variants.igrpo.trainer import IGRPOTrainer

    def bare(seed):
        trainer = object.__new__(IGRPOTrainer)
        trainer._schedule_state, trainer._last_entropy = ScheduleState(), None
        trainer._selection_rng = random.Random(seed)
        trainer._rngs = {"selection_rng": trainer._selection_rng}
        trainer.generated_total, trainer._history = [0, 0], {}
        trainer.variant = SimpleNamespace(draft_budget="adaptive")
        return trainer

    saved = bare(1)
    saved.load_extra_state({"schedule": {"coef": 0.3, "triggered": True}, "last_entropy": 0.5,
                            "generated_total": [64, 2048], "draft_history": {"p1": [True, False]}})
    saved._selection_rng.random()
    state = json.loads(json.dumps(saved.extra_state()))
    restored = bare(2)
    restored.load_extra_state(state)
    assert json.loads(json.dumps(restored.extra_state())) == state and restored.entropy_coef == 0.3
    assert restored._selection_rng.random() == saved._selection_rng.random()
    assert restored.generated_total == [64, 2048] and restored._history == {"p1": [True, False]}


def test_one_process_per_checkpoint_dir(tmp_path):
    with open_checkpoints(tmp_path / "c", "uri") as first:
        assert first is not None
        with pytest.raises(ConfigError, match="another process"):
            with open_checkpoints(tmp_path / "c", "uri"):
                pass
    with open_checkpoints(tmp_path / "c", "uri"):  # released
        pass
    with open_checkpoints(None, "uri") as off:
        assert off is None


def test_checkpoint_settings_are_checked_and_left_out_of_the_config_hash(compose):
    from omegaconf import OmegaConf

    from igrpo.job.identity import config_hash

    cfg = compose()
    base = config_hash(cfg)

    def variant(**train):
        changed = OmegaConf.merge(cfg, {"train": train})
        return changed

    check_fields(variant(save_every=3).train, "train")
    check_fields(variant(save_every=3, save_total_limit=None).train, "train")
    with pytest.raises(ConfigError, match="save_total_limit=1"):
        check_fields(variant(save_every=3, save_total_limit=1).train, "train")
    with pytest.raises(ConfigError, match="save_every=-1"):
        check_fields(variant(save_every=-1).train, "train")
    assert config_hash(variant(save_every=5, resume=False, checkpoint_root="/x", save_total_limit=4)) == base
    assert config_hash(variant(steps=3)) != base
