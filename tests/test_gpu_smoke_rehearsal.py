"""``experiments/gpu_smoke.sh --cpu-rehearsal``: the GPU smoke test's checks on this CPU (the paper preset scaled down,
GRPO and iGRPO through the project's own trainer build), so the script a GPU machine runs cannot rot unseen."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT, subprocess_env


def test_the_gpu_smoke_checks_pass_in_their_cpu_rehearsal(tmp_path):
    env = subprocess_env({"PYTHON": sys.executable, "OUT_DIR": str(tmp_path / "gpu_smoke")})
    done = subprocess.run(["bash", str(ROOT / "experiments" / "gpu_smoke.sh"), "--cpu-rehearsal"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    total = sum(line.startswith("check ") for line in lines)
    assert total >= 20 and lines[-1] == f"gpu_smoke: {total}/{total} checks ok", lines[-5:]
    assert "check device: ok (cpu)" in lines
