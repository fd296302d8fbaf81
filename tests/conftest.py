"""Shared fixtures: tiny settings for end-to-end runs with the real tiny model, TRL, Hydra and MLflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def tiny_overrides(cache_dir: Path) -> list[str]:
    """Seconds-long runs: a barely warm-started model, 2 steps, 4 eval problems per suite."""
    return [
        f"model.cache_dir={cache_dir}",
        "model.warmstart_steps=20",
        "model.warmstart_eval_every=20",
        "model.warmstart_first_check=0",
        "model.warmstart_pool_size=300",
        "model.hidden_size=64",
        "model.intermediate_size=128",
        "model.num_layers=2",
        "task.train_size=64",
        "task.eval_size=4",
        "train.steps=2",
        "train.prompts_per_step=2",
        "eval.samples_per_problem=2",
        "eval.max_new_tokens=24",
        "generation.max_completion_length=24",
        "tracking.rollout_log_every=1",
        "quiet=true",
    ]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("model_cache")


@pytest.fixture
def compose(model_cache, tmp_path):
    """Compose the real Hydra config with tiny settings (plus extra overrides)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from igrpo.config import register_configs

    register_configs()

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return hydra_compose(
                "config",
                overrides=[*tiny_overrides(model_cache), f"output_dir={tmp_path / 'out'}",
                           f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", *overrides],
            )

    return _compose


def run_cli(args: list[str], cwd: Path, env_extra: dict | None = None, timeout: int = 600):
    """``python run.py ...`` as a user types it, from ``cwd``."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
