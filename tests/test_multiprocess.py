"""Two processes (``accelerate launch``, gloo on CPU): every prompt's group sits on one rank, so each prompt is
drafted once, by one rank, and all its copies are conditioned on the same selected draft (with gradient
accumulation too); a prompt count that would split a group over the ranks is refused; the run is logged once, to
one MLflow run; the final policy is saved once, by every rank (a collective under ZeRO-3 and FSDP), and both the
evaluation job and the MLflow model artifact read that one save."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from tests.helpers import ROOT, tiny_overrides

ACCELERATE = Path(sys.executable).with_name("accelerate")


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, model_cache):
    tmp = tmp_path_factory.mktemp("two_procs")
    db = f"sqlite:///{tmp / 'mlflow.db'}"
    # 4 prompts x 4 refinements = 16 completions per step, 8 per process (2 whole groups), in 2 micro-batches of 4.
    # The final policy goes to the evaluation job and to MLflow (one save for both); tests/save_spy.py records who
    # saves it.
    overrides = [*tiny_overrides(model_cache), "variant=igrpo", "train.steps=3", "train.prompts_per_step=4",
                 "train.gradient_accumulation_steps=2", "eval.mode=job", f"eval.store_root={tmp / 'eval_store'}",
                 "tracking.log_model=true",
                 f"output_dir={tmp / 'out'}", f"hydra.run.dir={tmp / 'hydra'}", f"tracking.uri={db}"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["IGRPO_TEST_SAVE_LOG"] = str(tmp / "saves")
    cmd = [str(ACCELERATE if ACCELERATE.exists() else shutil.which("accelerate")), "launch", "--multi_gpu",
           "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", "29517", str(ROOT / "tests" / "save_spy.py"), *overrides]
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp, db, proc


def _rows(path: Path, stage: str) -> dict[tuple, list]:
    rows: dict[tuple, list] = {}
    for row in json.loads(path.read_text()):
        if row["stage"] == stage:
            rows.setdefault((row["step"], row["prompt_id"]), []).append(row)
    return rows


def test_each_prompt_is_drafted_once_by_the_rank_holding_its_whole_group(two_process_run):
    tmp, _, _ = two_process_run
    ranks = [tmp / "out" / f"rollouts-rank{r}.json" for r in (0, 1)]
    drafts = [_rows(path, "draft") for path in ranks]
    refinements = [_rows(path, "refinement") for path in ranks]
    assert not set(drafts[0]) & set(drafts[1])  # no prompt drafted by both ranks
    assert not set(refinements[0]) & set(refinements[1])  # no group split across the ranks
    for rank in (0, 1):
        assert set(drafts[rank]) == set(refinements[rank])  # a rank drafts exactly the prompts it trains on
        assert len(drafts[rank]) == 3 * 2  # 2 prompts per rank per step, 3 steps
        for key, rows in drafts[rank].items():
            assert len(rows) == 4 and sum(r["selected"] for r in rows) == 1, key  # N = 4 drafts, one selected
        for key, rows in refinements[rank].items():
            assert len(rows) == 4 and len({r["prompt"] for r in rows}) == 1, key  # G = 4, one selected draft
            assert "Draft:" in rows[0]["prompt"]


def test_a_group_split_over_processes_is_refused(compose, monkeypatch):
    from igrpo.errors import ConfigError
    from igrpo.config.validate import validate

    monkeypatch.setenv("WORLD_SIZE", "2")
    validate(compose("train.prompts_per_step=4"))
    with pytest.raises(ConfigError, match=r"^train.prompts_per_step=3 is not valid with 2 processes: .* multiple of 2"):
        validate(compose("train.prompts_per_step=3"))
    with pytest.raises(ConfigError, match=r"^train.gradient_accumulation_steps=3 does not divide the 4 completions"):
        validate(compose("train.prompts_per_step=2", "variant=igrpo", "train.gradient_accumulation_steps=3"))


def test_metrics_are_logged_once_to_one_run(two_process_run):
    _, db, proc = two_process_run
    client = mlflow.MlflowClient(db)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.phase = 'train'")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["num_processes"] == "2"
    for key in ("train/loss", "train/reward", "draft/reward_mean", "draft/frac_groups_zero_std", "draft/truncated_frac",
                "draft/prompt_tokens_max"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2, 3], key
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/mean/greedy")] == [0, 3]
    assert proc.stdout.count("view: mlflow ui") == 1  # one summary, from the main process


def test_the_final_policy_is_saved_once_by_every_rank_and_read_by_the_eval_job_and_mlflow(two_process_run):
    tmp, db, _ = two_process_run
    final = str(tmp / "out" / "final")
    saves = {path.name: path.read_text().splitlines() for path in (tmp / "saves").iterdir()}
    assert saves == {"rank0.txt": [final], "rank1.txt": [final]}  # each rank once, into the same directory
    assert (tmp / "out" / "final" / "model.safetensors").is_file()
    client = mlflow.MlflowClient(db)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.phase = 'train'")
    assert "model/model.safetensors" in {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert run.data.metrics["eval_job/generated_problems"] > 0  # the evaluation job read the same save
