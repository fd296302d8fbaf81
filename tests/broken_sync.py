"""``python tests/broken_sync.py <run.py overrides>``: run.py with the CPU build's weight sync made a no-op (it is still
recorded), so the training weights never reach vLLM: what tests/test_vllm_training.py shows its checks catch."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if __name__ == "__main__":
    import runpy

    import igrpo.training.vllm_sync as vllm_sync

    vllm_sync._reload_weights = lambda engine: None
    sys.argv = [str(Path(__file__).resolve().parents[1] / "run.py"), *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
