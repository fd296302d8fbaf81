"""``python -m igrpo.eval`` (issue #12 acceptance 1, 2, 6): the job reproduces a training run's final evaluation
exactly and logs into that run; SIGKILLed and relaunched it regenerates nothing already graded; training hands
its final evaluation to the job path with ``eval.mode=job``. Real CLI, real tiny model, real MLflow store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from igrpo.core.answers import extract_final_answer
from tests.helpers import run_cli, subprocess_env, tiny_overrides


def eval_cli(args: list[str], cwd, timeout: int = 600):
    return subprocess.run([sys.executable, "-m", "igrpo.eval", *args], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def runs_with(client: MlflowClient, phase: str):
    return client.search_runs([e.experiment_id for e in client.search_experiments()], f"tags.phase = '{phase}'")


def table(client: MlflowClient, run_id: str, name: str, dst) -> list[dict]:
    data = json.loads(open(client.download_artifacts(run_id, name, str(dst))).read())
    return [dict(zip(data["columns"], row)) for row in data["data"]]


def test_eval_job_reproduces_the_runs_final_evaluation_and_logs_into_it(tmp_path, model_cache):
    from igrpo.eval.suites import eval_metric_names

    db = tmp_path / "mlflow.db"
    common = [*tiny_overrides(model_cache), "variant=grpo", f"tracking.uri=sqlite:///{db}", "seed=3"]
    trained = run_cli([*common, "tracking.log_model=true"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{db}")
    (run,) = runs_with(client, "train")
    run_id = run.info.run_id
    job = eval_cli([*common, f"eval.run_id={run_id}", f"eval.store_root={tmp_path / 'store'}"], cwd=tmp_path)
    assert job.returncode == 0, job.stderr[-3000:]
    assert "eval job: 0 problems already graded (reused), 8 generated" in job.stdout
    assert f"logged into run {run_id} at step 2" in job.stdout
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["eval_checkpoint"] == f"run:{run_id}"
    from tests.helpers import compose_config

    names = eval_metric_names(compose_config("debug=smoke").eval, ["easy", "hard"])
    for name in names:  # the run's own final evaluation and the job's, both at the last step, equal
        values = [m.value for m in client.get_metric_history(run_id, name) if m.step == 2]
        assert len(values) == 2 and values[0] == values[1], (name, values)
    # the same completions, not only the same rates: the job's first sample of each problem is the run's
    per_sample = table(client, run_id, "eval_job/samples_step2.json", tmp_path)
    assert len(per_sample) == 8 * 2 and set(per_sample[0]) == {"suite", "problem_id", "sample", "answer", "correct",
                                                             "tokens"}
    first = [r["answer"] for r in per_sample if r["sample"] == 0]
    logged = table(client, run_id, "eval_samples.json", tmp_path)  # the run's own first samples (4 per suite)
    assert [extract_final_answer(r["completion"]) or "" for r in logged] == first
    stored = [json.loads(line) for suite in ("easy", "hard")
              for line in next((tmp_path / "store").glob(f"*/{suite}.jsonl")).read_text().splitlines()]
    assert [r["completion"] for r in stored] == [r["completion"] for r in logged]
    assert len({r["completion"] for r in logged}) == 8  # eight different texts, so the match means something


def _complete_lines(store) -> int:
    return sum(p.read_bytes().count(b"\n") for p in store.rglob("*.jsonl"))


def test_sigkilled_eval_job_resumes_without_regenerating_graded_problems(tmp_path, model_cache):
    db, store = tmp_path / "mlflow.db", tmp_path / "store"
    # 8 problems, one per chunk (batch 8 / k 8), long generations: a window to kill it mid-way
    args = [*tiny_overrides(model_cache), f"tracking.uri=sqlite:///{db}", f"eval.store_root={store}",
            "eval.samples_per_problem=8", "eval.batch_size=8", "eval.max_new_tokens=120", "eval.greedy=false"]
    with open(tmp_path / "killed.out", "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "igrpo.eval", *args], cwd=tmp_path, env=subprocess_env(),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and _complete_lines(store) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"ended before the kill: {(tmp_path / 'killed.out').read_text()[-2000:]}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    done = _complete_lines(store)
    assert 2 <= done < 8, done
    again = eval_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"eval job: {done} problems already graded (reused), {8 - done} generated" in again.stdout
    client = MlflowClient(f"sqlite:///{db}")
    (run,) = runs_with(client, "eval")  # the killed job's own run, continued
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "eval_job/reused_problems")
    assert [m.value for m in history] == [done]
    assert len(table(client, run.info.run_id, "eval_job/samples_step0.json", tmp_path)) == 8 * 8
    # graded once: every problem has one line on disk
    assert _complete_lines(store) == 8


@pytest.mark.parametrize("mode", ["bogus"])
def test_eval_job_mistakes_are_one_line_errors(tmp_path, model_cache, mode):
    db = tmp_path / "mlflow.db"
    proc = eval_cli([*tiny_overrides(model_cache), f"tracking.uri=sqlite:///{db}", f"eval.mode={mode}"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: eval.mode='bogus' is not valid; choose one of: inline, job"]
    proc = eval_cli([*tiny_overrides(model_cache), f"tracking.uri=sqlite:///{db}", "eval.temperature=nan"], tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: eval.temperature=nan is not valid")
    proc = eval_cli([*tiny_overrides(model_cache), f"tracking.uri=sqlite:///{db}", "eval.run_id=nosuchrun"],
                    tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: eval.run_id=nosuchrun is not a run of tracking store sqlite:///{db}"]


@pytest.mark.slow  # two processes over gloo (~1-2 min on a loaded machine): run with `pytest -m slow`
def test_two_processes_share_the_chunks_and_log_once(tmp_path, model_cache):
    import shutil
    from pathlib import Path


    db, store = tmp_path / "mlflow.db", tmp_path / "store"
    args = [*tiny_overrides(model_cache), f"tracking.uri=sqlite:///{db}", f"eval.store_root={store}",
            "eval.batch_size=2", f"hydra.run.dir={tmp_path / 'hydra'}"]
    single = eval_cli([*args, f"eval.store_root={tmp_path / 'single'}"], tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate if accelerate.exists() else shutil.which("accelerate")), "launch", "--multi_gpu",
           "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", "29519", "-m", "igrpo.eval", *args]
    env = {**subprocess_env(share=2), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("eval job: 0 problems already graded (reused), 8 generated") == 1  # main, summed
    (key,) = [p for p in store.iterdir() if p.is_dir()]
    assert sorted(p.name for p in key.glob("*.jsonl")) == ["easy.rank0.jsonl", "easy.rank1.jsonl",
                                                           "hard.rank0.jsonl", "hard.rank1.jsonl"]
    client = MlflowClient(f"sqlite:///{db}")
    runs = runs_with(client, "eval")
    assert len(runs) == 2  # the single-process run and the two-process one (logged once, by the main rank)
    metrics = [r.data.metrics for r in runs]
    names = [k for k in metrics[0] if k.startswith("eval/")]
    assert names and all(metrics[0][k] == metrics[1][k] for k in names)
