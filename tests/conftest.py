"""Shared fixtures: smoke-size end-to-end runs with the real tiny model, TRL, Hydra and MLflow.
Plain helpers (no fixtures) live in ``tests/helpers.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import compose_config, smoke_overrides, test_workers


def pytest_configure(config):
    """Under pytest-xdist each worker is one of the jobs sharing the machine's cores: its in-process runs take
    their share of the threads (IGRPO_CONCURRENT_JOBS, as any job beside another does), and its subprocesses
    count the other workers too (tests/helpers.subprocess_env)."""
    workers = test_workers()
    if workers > 1 and os.environ.get("PYTEST_XDIST_WORKER"):
        from igrpo.job import threads

        os.environ[threads.CONCURRENT_JOBS_ENV] = str(workers)
        threads.apply()


# Test files whose runs take the longest (the suite's slowest tests live in them), handed to the xdist workers
# first: with a file per worker, a long file started last would leave the other worker idle at the end. Only the
# order changes; a file missing from the list runs after these, as collected.
LONG_FILES_FIRST = ("test_real_model_runs.py", "test_real_model_vllm.py", "test_vllm_training.py", "test_vllm_cpu.py",
                    "test_experiments.py", "test_optuna_sweeper.py", "test_cli.py",
                    "test_judge_score.py", "test_analysis.py", "test_judge_runs.py", "test_eval_job.py", "test_launchers.py",
                    "test_config_schemas.py", "test_variants_runs.py", "test_resume.py", "test_multiprocess.py",
                    "test_report_browser.py", "test_smollm2.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its own order


@pytest.fixture(autouse=True)
def hub_answers_in_process(monkeypatch):
    """In-process validation treats the Hugging Face hub as answering (no test reaches a real host; the paper
    presets name hub models and datasets). Tests of the unreachable hub reset the probe themselves, and test
    subprocesses point HF_ENDPOINT at a closed loopback port (tests/helpers.subprocess_env)."""
    from igrpo.config import checks

    monkeypatch.setattr(checks, "_HUB_PROBE", {"reason": None})


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One tiny-model cache for the whole session: the smoke model is built once."""
    return tmp_path_factory.mktemp("model_cache")


def composer(model_cache: Path, root: Path):
    """compose(*overrides): the real config at smoke size, writing under ``root`` (its own MLflow store)."""

    def _compose(*overrides: str):
        return compose_config(*smoke_overrides(model_cache), f"output_dir={root / 'out'}",
                              f"tracking.uri=sqlite:///{root / 'mlflow.db'}", *overrides)

    return _compose


@pytest.fixture
def compose(model_cache, tmp_path):
    """Compose with smoke settings into this test's own directory and MLflow store."""
    return composer(model_cache, tmp_path)


@pytest.fixture(scope="module")
def module_compose(model_cache, tmp_path_factory):
    """Compose into one directory and MLflow store shared by a module's tests (runs shared via fixtures)."""
    return composer(model_cache, tmp_path_factory.mktemp("module"))


@pytest.fixture(scope="session")
def smoke_model_dir(model_cache, tmp_path_factory) -> Path:
    """The smoke-size tiny model, built (once) into the session cache: a local HF model directory."""
    from igrpo.job.builds import resolve_policy_path

    cfg = composer(model_cache, tmp_path_factory.mktemp("smoke_build"))()
    path, _ = resolve_policy_path(cfg, quiet=True)
    return Path(path)
