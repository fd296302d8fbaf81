"""CPU threads shared fairly: how many torch threads this process uses, and setting them.

Two torch processes on one 2-core machine, each with torch's default of one thread per core, slow each
other down 2-17x (``python -m experiments.tools.bench --concurrent 2 --unshared``, default run, cached base: 10 steps 16.5 s
alone, 39 s as a pair; 20 steps 24.6 s alone, 409 s as a pair); with one thread each the pair takes 1.3-1.4x of one
alone (23.3 s; 31.3 s). So every process that shares the machine takes its share of the cores.

The rule (``decide``, pure), first match wins:

1. an explicit setting (``cpu_threads: N`` in the run config, N > 0): exactly N;
2. ``OMP_NUM_THREADS`` already in the environment (set by the user or by a launcher for its children): that;
3. otherwise the share: ``cores // (concurrent jobs x local processes)``, at least 1, where
   * cores: the cores this process may run on (``os.sched_getaffinity``, so taskset/cgroup cpusets count);
   * concurrent jobs: ``IGRPO_CONCURRENT_JOBS`` if set (how many independent jobs share this machine: e.g. 2
     for a judge server beside one training run, or for two test subprocesses at once), else, inside a Hydra
     multirun with the joblib launcher (``hydra/launcher=local_parallel``), its ``n_jobs``; else 1;
   * local processes: ``LOCAL_WORLD_SIZE`` (one process per device under ``accelerate launch``/``torchrun``).

What each situation gets:

* joblib launcher: loky starts each worker with ``OMP_NUM_THREADS = cpu_count // n_jobs`` (unless the parent
  had one), so rule 2 applies and agrees with rule 3's ``n_jobs`` share.
* ``accelerate launch`` (and ``torchrun`` with several processes) exports ``OMP_NUM_THREADS`` to every process
  (accelerate: 1 by default; with ``--cpu``, physical cores / local processes; ``--num_cpu_threads_per_process``
  sets it): rule 2. Rule 3's ``LOCAL_WORLD_SIZE`` covers launchers that do not.
* a judge server next to training, or several test subprocesses: ``IGRPO_CONCURRENT_JOBS=<how many>`` in
  each one's environment (``child_env(jobs)`` builds it, dropping the thread settings this process exported for
  itself, which would otherwise win); ``python -m experiments.tools.judge_server --threads N`` sets it outright.

``apply`` sets torch's intra-op threads (and inter-op threads, which torch allows once, before any parallel
work), exports ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` for child processes, and records the value in
``IGRPO_TORCH_THREADS`` (logged with the run). Values this process exported itself do not count as "already in
the environment" for a later ``apply`` in the same process (sequential multirun jobs), but children inherit them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

CONCURRENT_JOBS_ENV = "IGRPO_CONCURRENT_JOBS"  # how many independent jobs share this machine
RESOLVED_ENV = "IGRPO_TORCH_THREADS"  # the value ``apply`` chose (read by the runner to log it)
CHILD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # exported for child processes

_exported: dict[str, str] = {}  # what apply() wrote into os.environ in this process (values the user had not set)
_inherited: dict[str, str | None] = {}  # the environment's values before this process's first apply()
_interop_set = False


def _positive_int(value) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def decide(cores: int, concurrent_jobs: int = 1, local_processes: int = 1, explicit: int = 0,
           env_threads: int | None = None) -> int:
    """Torch threads for one process: ``explicit`` if > 0, else ``env_threads`` (an ``OMP_NUM_THREADS`` already
    in the environment) if set, else ``cores // (concurrent_jobs * local_processes)``, at least 1."""
    if explicit < 0:
        from igrpo.errors import ConfigError

        raise ConfigError(f"cpu_threads={explicit} is not valid; use 0 (this process's share of the cores) "
                          "or a positive number of threads")
    if explicit > 0:
        return explicit
    if env_threads is not None and env_threads > 0:
        return env_threads
    return max(1, cores // (max(1, concurrent_jobs) * max(1, local_processes)))


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def joblib_n_jobs(cores: int) -> int | None:
    """``n_jobs`` of the Hydra joblib launcher when this is one of its multirun jobs, else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:
        return None
    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    launcher = hc.get("launcher") or {}
    if hc.mode != RunMode.MULTIRUN or "joblib" not in str(launcher.get("_target_", "")).lower():
        return None
    n_jobs = launcher.get("n_jobs")
    if n_jobs is None:
        return None
    n_jobs = int(n_jobs)
    return n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)  # joblib: -1 = all cores, -2 = all but one


def resolve(explicit: int = 0, env: Mapping[str, str] | None = None, cores: int | None = None) -> int:
    """``decide`` with its inputs read from this process: affinity, environment, Hydra's launcher."""
    env = os.environ if env is None else env
    cores = available_cores() if cores is None else cores
    omp = env.get("OMP_NUM_THREADS")
    if omp is not None and _exported.get("OMP_NUM_THREADS") == omp:  # our own export, not the user's setting
        omp = _inherited.get("OMP_NUM_THREADS")
    env_threads = None if omp is None else _positive_int(omp)
    jobs = _positive_int(env.get(CONCURRENT_JOBS_ENV)) or joblib_n_jobs(cores) or 1
    local = _positive_int(env.get("LOCAL_WORLD_SIZE")) or 1
    return decide(cores, jobs, local, int(explicit or 0), env_threads)


def apply(explicit: int = 0) -> int:
    """Resolve this process's torch threads, set them, export them for children; return the number."""
    global _interop_set
    import torch

    threads = resolve(explicit)
    torch.set_num_threads(threads)
    if not _interop_set:
        _interop_set = True  # torch accepts this once, and only before any inter-op work has started
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:
            pass
    for name in (*CHILD_ENV, RESOLVED_ENV):
        _inherited.setdefault(name, os.environ.get(name))
        value = str(threads)
        if _inherited[name] == value:
            _exported.pop(name, None)  # the user's own value (a reused joblib worker must keep honouring it)
        else:
            _exported[name] = value
        os.environ[name] = value
    return threads


def child_env(jobs: int, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process that is one of ``jobs`` sharing this machine (test subprocesses, a
    judge server beside training): ``IGRPO_CONCURRENT_JOBS=jobs``, without the thread settings this process
    exported for itself (they would win over the share); settings the user made stay."""
    env = dict(os.environ if env is None else env)
    for name in (*CHILD_ENV, RESOLVED_ENV):
        if name in _exported and env.get(name) == _exported[name]:
            del env[name]
    env[CONCURRENT_JOBS_ENV] = str(jobs)
    return env


def apply_cpu_threads(cfg) -> int:
    """``apply`` with the run config's ``cpu_threads`` (0 or absent = the share of the cores)."""
    from omegaconf import OmegaConf

    return apply(int(OmegaConf.select(cfg, "cpu_threads", default=0) or 0))
