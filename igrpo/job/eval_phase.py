"""Training's own evaluations through the evaluation job (``eval.mode=job``): the base model at step 0 and the
final policy at the end, each through the job's resumable sample store (``igrpo.eval.store``) and the configured
generation backend (``generation=hf``, or ``vllm``: one call per suite, ``igrpo.eval.backends``).

Every training process takes part: each generates its share of the chunks (every ``processes``-th one) into its
own file of the store, then waits, by reading the store (a file poll, no collective), until every chunk of every
rank is there; only then does it join the short collective that sums the counters. So no rank sits in a collective
(NCCL's default timeout is 10 minutes) while another is still generating a long sample. With
``generation.tensor_parallel_size > 1`` one engine spans the GPUs, so the main process evaluates alone and the
others wait on the store the same way.

Where the evaluation runs (``eval.process``):

* ``same``: in the training process, on a model loaded from disk (what CPU runs and tests use).
* ``own``: in a process of its own (``python -m igrpo.job.eval_phase <spec.json>``), started and awaited by each
  training process, with that rank's GPU only. At step 0 nothing of training is loaded yet, and the process's
  vLLM engine is gone when it exits (vLLM cannot unload an engine inside a process that then starts TRL's own).
  At the end the training process first frees what training held (``release_training_memory``).
* ``auto`` (default): ``own`` on CUDA or with ``generation=vllm``, else ``same``.

The base model's store is keyed by what fixes its numbers (``igrpo.job.eval_job.store_key``), so a sweep whose runs
share a base model and evaluation evaluates it once; the final policy's store is keyed by the MLflow run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from igrpo.errors import ConfigError

POLL_SECONDS = 1.0
# what makes a process part of an accelerate / torchrun launch: the evaluation's own process is a single one
LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "MASTER_ADDR",
              "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def in_own_process(cfg) -> bool:
    """Whether training's evaluations through the job run in a process of their own (``eval.process``)."""
    choice = str(cfg.eval.get("process", "auto"))
    if choice == "auto":
        return cfg.device == "cuda" or cfg.generation.name == "vllm"
    return choice == "own"


def evaluating_processes(cfg, processes: int) -> int:
    """How many training processes generate a share: all of them, or only the main one when one vLLM engine spans
    several GPUs (tensor parallelism)."""
    if cfg.generation.name == "vllm" and int(cfg.generation.get("tensor_parallel_size", 1)) > 1:
        return 1
    return processes


def base_store_dir(cfg, model_dir: str) -> Path:
    from igrpo.job.eval_job import store_key

    return Path(cfg.eval.store_root) / store_key(cfg, model_dir)


def final_store_dir(cfg, run_id: str) -> Path:
    return Path(cfg.eval.store_root) / f"run-{run_id}"


def evaluate_in_training(cfg, model_dir: str, task, store_dir: Path, backend=None):
    """Called by every process of a launch at the same point: its share, a wait on the store, the counters summed;
    every rank returns the merged ``EvalOutcome`` (the main one prints the counter). ``backend``: one already loaded
    in this process, used for its share instead of a new one."""
    from igrpo.eval.store import SampleStore
    from igrpo.eval.suites import run_chunks
    from igrpo.training.distributed import gather_objects, is_main_process, process_index, world_size

    rank, shards = process_index(), evaluating_processes(cfg, world_size())
    counts = (0, 0, 0)
    if rank < shards:
        if backend is None and in_own_process(cfg):
            counts = _share_in_own_process(cfg, model_dir, store_dir, rank, shards)
        else:
            counts = generate_share(cfg, model_dir, task, store_dir, rank, shards, backend)
    wait_for_store(task, cfg.eval, store_dir)
    gathered = gather_objects(counts)  # every rank is done generating: a short collective
    outcome = run_chunks(None, task, cfg.eval, cfg.seed, store=SampleStore(store_dir, writer="reader"))
    outcome.reused, outcome.generated, outcome.calls = (sum(c[i] for c in gathered) for i in range(3))
    if is_main_process():
        print(f"eval job: {outcome.reused} problems already graded (reused), {outcome.generated} generated "
              f"(store {store_dir})", flush=True)
    return outcome


def generate_share(cfg, model_dir: str, task, store_dir: Path, rank: int, shards: int, backend=None
                   ) -> tuple[int, int, int]:
    """Generate and grade this rank's chunks into the store; (reused, generated) problems and the generate calls
    made. Without ``backend`` one is built, only when something is left to generate."""
    from igrpo.eval.store import SampleStore
    from igrpo.eval.suites import plan_chunks, run_chunks
    from igrpo.job.eval_job import make_backend

    store = SampleStore(store_dir, writer=f"rank{rank}" if shards > 1 else None)
    chunks = plan_chunks(task, cfg.eval, list(task.eval_suites))
    missing = [c for n, c in enumerate(chunks) if n % shards == rank and store.completed(c) is None]
    if backend is None:
        backend = make_backend(cfg, model_dir, task) if missing else _NoBackend()
    outcome = run_chunks(backend, task, cfg.eval, cfg.seed, store=store, shard=(rank, shards))
    mine = sum(c.end - c.start for n, c in enumerate(chunks) if n % shards == rank)
    return mine - outcome.generated, outcome.generated, outcome.calls


class _NoBackend:
    """Stands in when every chunk of a share is already in the store (nothing loads)."""

    calls = "chunk"


def wait_for_store(task, eval_cfg, store_dir: Path, poll_seconds: float = POLL_SECONDS) -> None:
    """Return once every chunk of every suite is in the store (each rank writes its own file)."""
    from igrpo.eval.store import SampleStore
    from igrpo.eval.suites import plan_chunks

    chunks = plan_chunks(task, eval_cfg, list(task.eval_suites))
    while True:
        store = SampleStore(store_dir, writer="reader")  # a fresh read; writes nothing, truncates nothing
        if all(store.completed(chunk) is not None for chunk in chunks):
            return
        time.sleep(poll_seconds)


def _child_env(cfg, rank: int, shards: int) -> dict:
    """The evaluation process's environment: a single process (no launch variables), on this rank's GPU only."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV and not k.startswith("ACCELERATE_")}
    if cfg.device == "cuda" and shards > 1:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        gpus = visible.split(",") if visible else [str(i) for i in range(shards)]
        env["CUDA_VISIBLE_DEVICES"] = gpus[int(os.environ.get("LOCAL_RANK", rank)) % len(gpus)]
    return env


def _share_in_own_process(cfg, model_dir: str, store_dir: Path, rank: int, shards: int) -> tuple[int, int, int]:
    from omegaconf import OmegaConf

    with tempfile.TemporaryDirectory(prefix="igrpo-eval-phase-") as tmp:
        config, result = Path(tmp) / "config.yaml", Path(tmp) / "result.json"
        OmegaConf.save(OmegaConf.create(OmegaConf.to_container(cfg, resolve=True)), config)
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"config": str(config), "model_dir": str(model_dir), "store_dir": str(store_dir),
                                    "rank": rank, "shards": shards, "result": str(result)}))
        done = subprocess.run([sys.executable, "-m", "igrpo.job.eval_phase", str(spec)], env=_child_env(cfg, rank,
                              shards), check=False, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            last = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "no output")
            raise ConfigError(f"the evaluation's own process failed (exit {done.returncode}): "
                              f"{last.removeprefix('error: ')}")
        counts = json.loads(result.read_text())
    return int(counts["reused"]), int(counts["generated"]), int(counts["calls"])


def release_training_memory(trainer) -> None:
    """Drop what training holds (optimizer state, model, TRL's colocated vLLM engine) and return the GPU's cached
    memory, before the final evaluation's own process starts on the same GPU."""
    import gc

    import torch

    for name in ("optimizer", "lr_scheduler", "model", "model_wrapped", "ref_model", "vllm_generation", "llm"):
        if getattr(trainer, name, None) is not None:
            setattr(trainer, name, None)
    accelerator = getattr(trainer, "accelerator", None)
    if accelerator is not None:
        accelerator.free_memory()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def main(spec_path: str) -> int:
    """The evaluation's own process: this rank's share into the store; its counters to the spec's result file."""
    from omegaconf import OmegaConf

    from igrpo.job.builds import resolve_model_dir
    from igrpo.job.threads import apply_cpu_threads
    from igrpo.tasks import load_task

    from igrpo.training.vllm_engine import keep_vllm_out_unless_used

    spec = json.loads(Path(spec_path).read_text())
    cfg = OmegaConf.load(spec["config"])
    keep_vllm_out_unless_used(cfg, argv=[])
    apply_cpu_threads(cfg)
    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval,
                     model_dir=resolve_model_dir(cfg, quiet=True))
    reused, generated, calls = generate_share(cfg, spec["model_dir"], task, Path(spec["store_dir"]),
                                              int(spec["rank"]), int(spec["shards"]))
    Path(spec["result"]).write_text(json.dumps({"reused": reused, "generated": generated, "calls": calls}))
    return 0


if __name__ == "__main__":
    from igrpo.job.cli import job_errors

    with job_errors():
        sys.exit(main(sys.argv[1]))
