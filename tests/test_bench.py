import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, tiny_overrides


@pytest.mark.slow  # two training subprocesses: run with `pytest -m slow`
def test_bench_prints_numbers_and_ratios(model_cache, tmp_path):
    overrides = [o for o in tiny_overrides(model_cache) if not o.startswith("train.steps")]
    proc = subprocess.run([sys.executable, "-m", "igrpo.bench", "--steps", "3", *overrides], cwd=ROOT,
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
