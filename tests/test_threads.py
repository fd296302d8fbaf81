"""The CPU-thread share rule (igrpo/job/threads.py): pure, no training."""

import os

import pytest

from igrpo.job import threads
from igrpo.errors import ConfigError
from igrpo.job.threads import decide, resolve


def test_alone_a_process_takes_every_core():
    assert decide(cores=2) == 2
    assert decide(cores=16, concurrent_jobs=1, local_processes=1) == 16


def test_sharing_processes_split_the_cores_at_least_one_each():
    assert decide(cores=2, concurrent_jobs=2) == 1
    assert decide(cores=16, concurrent_jobs=2, local_processes=4) == 2
    assert decide(cores=2, concurrent_jobs=3) == 1  # never 0
    assert decide(cores=7, concurrent_jobs=2) == 3  # floor: never more threads than cores in all


def test_explicit_wins_then_the_environment():
    assert decide(cores=2, concurrent_jobs=2, explicit=4, env_threads=1) == 4
    assert decide(cores=2, concurrent_jobs=2, env_threads=3) == 3
    assert decide(cores=2, concurrent_jobs=2, env_threads=None) == 1
    with pytest.raises(ConfigError, match="cpu_threads=-1 is not valid"):
        decide(cores=2, explicit=-1)


def test_resolve_reads_jobs_and_local_processes_from_the_environment():
    assert resolve(env={}, cores=8) == 8
    assert resolve(env={"IGRPO_CONCURRENT_JOBS": "2"}, cores=8) == 4
    assert resolve(env={"IGRPO_CONCURRENT_JOBS": "2", "LOCAL_WORLD_SIZE": "2"}, cores=8) == 2
    assert resolve(env={"IGRPO_CONCURRENT_JOBS": "2", "OMP_NUM_THREADS": "3"}, cores=8) == 3
    assert resolve(explicit=5, env={"OMP_NUM_THREADS": "3"}, cores=8) == 5
    assert resolve(env={"OMP_NUM_THREADS": "junk", "IGRPO_CONCURRENT_JOBS": "x"}, cores=8) == 8


def test_a_value_this_process_exported_is_not_mistaken_for_the_users(monkeypatch):
    monkeypatch.setattr(threads, "_exported", {"OMP_NUM_THREADS": "1"})
    assert resolve(env={"OMP_NUM_THREADS": "1"}, cores=8) == 8  # we wrote it (an earlier job asked for 1)
    assert resolve(env={"OMP_NUM_THREADS": "2"}, cores=8) == 2  # someone else changed it since


def test_joblib_multirun_job_sees_n_jobs(monkeypatch):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    node = OmegaConf.create({"hydra": {"mode": RunMode.MULTIRUN, "launcher": {
        "_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 2}}})
    monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: True))
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: node.hydra))
    assert threads.joblib_n_jobs(cores=2) == 2
    assert resolve(env={}, cores=2) == 1
    node.hydra.launcher.n_jobs = -1  # joblib: all cores
    assert threads.joblib_n_jobs(cores=4) == 4
    node.hydra.mode = RunMode.RUN  # a single run with the launcher selected: alone
    assert threads.joblib_n_jobs(cores=2) is None


def test_apply_sets_torch_and_the_childrens_environment(monkeypatch):
    import torch

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "IGRPO_TORCH_THREADS"):
        monkeypatch.setenv(name, "")  # so that monkeypatch restores the variable after apply() sets it
        monkeypatch.delenv(name)
    monkeypatch.setattr(threads, "_exported", {})
    monkeypatch.setattr(threads, "_inherited", {})
    before = torch.get_num_threads()
    try:
        assert threads.apply(1) == 1
        assert torch.get_num_threads() == 1
        assert os.environ["OMP_NUM_THREADS"] == os.environ["IGRPO_TORCH_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)


def test_child_env_drops_only_what_this_process_exported(monkeypatch):
    monkeypatch.setattr(threads, "_exported", {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "IGRPO_TORCH_THREADS": "2"})
    ours = threads.child_env(2, env={"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "IGRPO_TORCH_THREADS": "2"})
    assert ours == {"IGRPO_CONCURRENT_JOBS": "2"}
    users = threads.child_env(2, env={"OMP_NUM_THREADS": "1"})  # set by the user since: kept, and it wins
    assert users == {"OMP_NUM_THREADS": "1", "IGRPO_CONCURRENT_JOBS": "2"}


def test_a_users_thread_setting_holds_for_every_job_of_a_reused_process(monkeypatch):
    """A joblib worker runs several jobs: OMP_NUM_THREADS=1 set by the user must win on the second job too, even
    though apply() wrote the same value back (it is the user's, not this process's export)."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("IGRPO_CONCURRENT_JOBS", "1")
    for name in ("MKL_NUM_THREADS", "IGRPO_TORCH_THREADS"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(threads, "_exported", {})
    monkeypatch.setattr(threads, "_inherited", {})
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    before = torch.get_num_threads()
    try:
        assert [threads.apply(), threads.apply()] == [1, 1]
        assert threads.apply(2) == 2  # an explicit cpu_threads wins for its job ...
        assert threads.apply() == 1  # ... and the next job is back on the user's setting
    finally:
        torch.set_num_threads(before)
