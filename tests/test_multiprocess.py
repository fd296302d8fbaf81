"""Two processes (``accelerate launch``, gloo on CPU): every copy of a prompt, on whichever rank, is conditioned
on the same selected draft, and the run is logged once, to one MLflow run."""

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
    # 3 prompts x 4 refinements = 12 completions per step, 6 per process: the second prompt's group spans both.
    overrides = [*tiny_overrides(model_cache), "variant=igrpo", "train.steps=3", "train.prompts_per_step=3",
                 f"output_dir={tmp / 'out'}", f"hydra.run.dir={tmp / 'hydra'}", f"tracking.uri={db}"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    cmd = [str(ACCELERATE if ACCELERATE.exists() else shutil.which("accelerate")), "launch", "--multi_gpu",
           "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", "29517", str(ROOT / "run.py"), *overrides]
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp, db, proc


def _refinement_prompts(path: Path) -> dict[tuple, set]:
    prompts: dict[tuple, set] = {}
    for row in json.loads(path.read_text()):
        if row["stage"] == "refinement":
            prompts.setdefault((row["step"], row["prompt_id"]), set()).add(row["prompt"])
    return prompts


def test_copies_of_a_prompt_on_both_ranks_share_one_draft(two_process_run):
    tmp, _, _ = two_process_run
    rank0 = _refinement_prompts(tmp / "out" / "rollouts-rank0.json")
    rank1 = _refinement_prompts(tmp / "out" / "rollouts-rank1.json")
    shared = set(rank0) & set(rank1)
    assert len(shared) == 3  # one prompt per step is split across the ranks (steps 0, 1, 2)
    for key in shared:
        assert len(rank0[key]) == 1 and rank0[key] == rank1[key], key
        assert "Draft:" in next(iter(rank0[key]))
    for prompts in (*rank0.values(), *rank1.values()):  # within a rank too, one draft per prompt
        assert len(prompts) == 1


def test_metrics_are_logged_once_to_one_run(two_process_run):
    _, db, proc = two_process_run
    client = mlflow.MlflowClient(db)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.phase = 'train'")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["num_processes"] == "2"
    for key in ("train/loss", "train/reward", "draft/reward_mean", "draft/frac_groups_zero_std"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2, 3], key
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/mean/greedy")] == [0, 3]
    assert proc.stdout.count("view: mlflow ui") == 1  # one summary, from the main process
