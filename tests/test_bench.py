import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT, tiny_overrides


@pytest.mark.slow  # two training subprocesses: run with `pytest -m slow`
def test_bench_prints_numbers_and_ratios(model_cache, tmp_path):
    overrides = [o for o in tiny_overrides(model_cache) if not o.startswith("train.steps")]
    proc = subprocess.run([sys.executable, "-m", "experiments.tools.bench", "--steps", "3", *overrides], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for variant in ("grpo", "igrpo"):
        r = report["results"][variant]
        assert r["median_step_seconds"] > 0 and r["rollout_tokens_per_second"] > 0 and r["peak_rss_mb"] > 0
        assert r["steps_timed"] == 2
    g, i = report["results"]["grpo"], report["results"]["igrpo"]
    assert report["ratios"]["step_time_igrpo_over_grpo"] == i["median_step_seconds"] / g["median_step_seconds"]
    assert "step_time_igrpo_over_grpo:" in proc.stdout


def test_concurrent_workers_are_told_how_many_share_the_machine(monkeypatch):
    from experiments.tools.bench import worker_env

    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # an inherited setting would override the share: dropped
    shared, unshared = worker_env(2, share_threads=True), worker_env(2, share_threads=False)
    assert shared["IGRPO_CONCURRENT_JOBS"] == "2" and "OMP_NUM_THREADS" not in shared
    assert "IGRPO_CONCURRENT_JOBS" not in unshared and "OMP_NUM_THREADS" not in unshared


@pytest.mark.slow  # three short training subprocesses (one alone, two at once)
def test_bench_concurrent_prints_walls_threads_and_ratio(model_cache):
    from igrpo.job.threads import available_cores

    overrides = [o for o in tiny_overrides(model_cache) if not o.startswith("train.steps")]
    proc = subprocess.run([sys.executable, "-m", "experiments.tools.bench", "--concurrent", "2", "--steps", "2", *overrides],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    cores = available_cores()
    assert report["alone"]["torch_threads"] == [cores]
    assert report["shared"]["torch_threads"] == [max(1, cores // 2)] * 2
    assert len(report["shared"]["wall_seconds"]) == 2 and "unshared" not in report
    assert report["ratio_shared"] == report["shared"]["all_done_seconds"] / report["alone"]["all_done_seconds"]
    assert "-> ratio" in proc.stdout
