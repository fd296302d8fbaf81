"""``python -m igrpo.eval``: evaluate a model on an eval config, resumably, and log into its training run.

What is evaluated (``eval.checkpoint``): a model directory or hub id; else, with ``eval.run_id``, that run's
saved policy (its ``model/`` artifact, from ``tracking.log_model=true`` or ``eval.mode=job``); else the
configured base model (``model=...``). Where it is logged: with ``eval.run_id``, into that run at
``eval.step`` (default the run's ``train.steps``: where its final evaluation belongs), without touching its
status; else into a new run tagged ``phase=eval``.

Resumable: every chunk's graded samples go to ``<eval.store_root>/<key>/<suite>.jsonl`` as it finishes
(``igrpo.eval.store``); the key hashes what determines the numbers (model, eval and task config, seed, prompt
format), so the same command after a kill finds them, regenerates nothing already graded and says so
(``eval job: N problems already graded (reused), M generated``). The per-sample table (suite, problem id,
sample index, answer, correct, tokens) becomes the run's ``eval_job/samples_step<step>.json``.

Training hands its final evaluation to this path with ``eval.mode=job`` (``evaluate_saved_model``): the final
policy is saved (``igrpo.training.final_policy``) and evaluated from disk through the same store, so a run killed
during it resumes the evaluation too. The numbers equal the inline evaluation's (same chunks, same seeds, same
weights) in an fp32 run; in a bf16 run the inline evaluation computes under autocast over the fp32 training weights
(igrpo.training.precision) and the job on the saved weights loaded in bf16, so they agree to bf16 rounding, not bit
for bit.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from igrpo.errors import ConfigError
from igrpo.eval.backends import HFBackend, VLLMBackend
from igrpo.eval.store import SampleStore
from igrpo.eval.suites import EvalOutcome, per_sample_table, run_chunks, sample_rows
from igrpo.tracking.names import EVAL_JOB_SAMPLES

# eval fields that say where and how to run, not what the numbers are: left out of the store key
BOOKKEEPING = ("mode", "process", "store_root", "checkpoint", "run_id", "step", "refine")


def store_key(cfg, model_ref: str) -> str:
    """What fixes an evaluation's numbers, hashed: the store directory's name."""
    from omegaconf import OmegaConf

    eval_cfg = {k: v for k, v in OmegaConf.to_container(cfg.eval, resolve=True).items() if k not in BOOKKEEPING}
    model = cfg.model
    identity = {"model": model_ref, "eval": eval_cfg, "task": OmegaConf.to_container(cfg.task, resolve=True),
                "seed": int(cfg.seed), "dtype": model.get("dtype"), "prompt": model.get("prompt_template"),
                "chat": model.get("chat_template"), "system": model.get("system_prompt"),
                "generation": cfg.generation.name}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def make_backend(cfg, model_dir: str, task=None):
    """HF generate (``generation=hf``) or one vLLM engine (``generation=vllm``) over the model, after checking that
    ``eval.max_new_tokens`` fits the model's context (with ``task``: plus its longest prompt). With several processes
    on GPUs each rank's HF model goes to its own GPU (``LOCAL_RANK``)."""
    import os

    from igrpo.eval.context import check_eval_context, longest_prompt_tokens, model_context
    from igrpo.training.distributed import world_size
    from igrpo.models.loading import load_policy

    context = model_context(model_dir)
    check_eval_context(int(cfg.eval.max_new_tokens), context, f"the model ({model_dir})")  # before any load
    if cfg.generation.name == "vllm":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        prompt = longest_prompt_tokens(task, tokenizer) if task is not None else 0
        check_eval_context(int(cfg.eval.max_new_tokens), context, f"the model ({model_dir})", prompt)
        need = prompt + int(cfg.eval.max_new_tokens)
        return VLLMBackend(model_dir, tokenizer, cfg.generation, cfg.model.dtype, cfg.device,
                           max_model_len=min(need, context) if context else need)
    device = cfg.device
    if device == "cuda" and world_size() > 1:
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    model, tokenizer = load_policy(model_dir, cfg.model.dtype, device, cfg.model.get("attn_implementation"))
    if task is not None:
        check_eval_context(int(cfg.eval.max_new_tokens), context, f"the model ({model_dir})",
                           longest_prompt_tokens(task, tokenizer))
    return HFBackend(model, tokenizer)


def evaluate_model_dir(cfg, model_dir: str, task, store_dir: Path, backend=None, sharded: bool = True
                       ) -> EvalOutcome:
    """Every suite of the task, resumably through the store in ``store_dir``; prints the resume counter.

    Under ``accelerate launch`` (several processes) every rank generates its share of the chunks into its own
    file, waits on the store for the others and returns the merged outcome (``igrpo.job.eval_phase``), counters
    summed over ranks. ``sharded=False``: this process alone evaluates everything."""
    from igrpo.job.eval_phase import evaluate_in_training
    from igrpo.training.distributed import world_size

    if sharded and world_size() > 1:
        return evaluate_in_training(cfg, model_dir, task, store_dir, backend=backend)
    store = SampleStore(store_dir)
    outcome = run_chunks(backend or make_backend(cfg, model_dir, task), task, cfg.eval, cfg.seed, store=store)
    print(f"eval job: {outcome.reused} problems already graded (reused), {outcome.generated} generated "
          f"(store {store_dir})", flush=True)
    return outcome


def job_counters(outcome: EvalOutcome) -> dict[str, int]:
    """The job's counters as metrics: problems reused from the store and generated now, generate calls made."""
    return {"eval_job/reused_problems": outcome.reused, "eval_job/generated_problems": outcome.generated,
            "eval_job/generate_calls": outcome.calls}


def _log_outcome(log, outcome: EvalOutcome, step: int, seconds: float) -> None:
    log.metrics({**outcome.metrics, **job_counters(outcome), "eval_job/seconds": seconds}, step=step)
    log.table(per_sample_table(outcome.records), EVAL_JOB_SAMPLES.format(step=step))


def evaluate_saved_model(cfg, model_dir: Path, task, mlrun) -> tuple[dict, list[dict]]:
    """``eval.mode=job`` at the end of training: evaluate the saved final policy (``model_dir``, saved once by every
    process: igrpo.training.final_policy) from disk through the job's resumable store (keyed by the run), every
    process taking its share (igrpo.job.eval_phase); log the per-sample table; the caller logs the metrics."""
    from igrpo.job.eval_phase import evaluate_in_training, final_store_dir

    start = time.perf_counter()
    outcome = evaluate_in_training(cfg, str(model_dir), task, final_store_dir(cfg, mlrun.run_id))
    mlrun.metrics({**job_counters(outcome), "eval_job/seconds": time.perf_counter() - start}, step=cfg.train.steps)
    mlrun.table(per_sample_table(outcome.records), EVAL_JOB_SAMPLES.format(step=cfg.train.steps))
    return outcome.metrics, sample_rows(outcome.records, task)


def _model_to_evaluate(cfg, tracking_uri: str, run_id: str | None) -> tuple[str, str]:
    """(model directory or hub id, its reference in the store key and tags)."""
    import os

    from igrpo.tracking.evals import download_saved_model

    if cfg.eval.checkpoint:
        from igrpo.job.builds import model_cache_root
        from igrpo.models.packaged import local_model

        path = os.path.expanduser(str(cfg.eval.checkpoint))
        return local_model(path, model_cache_root(cfg), "eval.checkpoint", quiet=cfg.quiet), path
    if run_id:
        saved = download_saved_model(tracking_uri, run_id, Path(cfg.eval.store_root) / "models")
        if saved is None:
            raise ConfigError(f"run {run_id} has no saved model (train with tracking.log_model=true or "
                              "eval.mode=job); set eval.checkpoint=<model dir>")
        return str(saved), f"run:{run_id}"
    from igrpo.job.builds import resolve_policy_path

    path, _ = resolve_policy_path(cfg, quiet=cfg.quiet)
    return path, cfg.model.get("path") or path


def _loaded_backend(cfg, model_dir: str, model_ref: str, task):
    """``make_backend``, with a model that transformers cannot load (a damaged file, an unknown architecture)
    reported in one line: validation checked the files are there, not what is in them."""
    from safetensors import SafetensorError

    try:
        return make_backend(cfg, model_dir, task)
    except ConfigError:
        raise
    except (OSError, ValueError, SafetensorError) as err:
        detail = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise ConfigError(f"the model to evaluate ({model_ref}) could not be loaded: {detail}") from None


def run_eval_job(cfg) -> dict[str, float]:
    """The whole ``python -m igrpo.eval`` job; returns the metrics it logged. With several processes every rank
    leaves together, after the main one has logged (``finish_processes``)."""
    from igrpo.training.distributed import finish_processes

    metrics = _evaluate_and_log(cfg)
    finish_processes()
    return metrics


def _evaluate_and_log(cfg) -> dict[str, float]:
    from igrpo.config import to_container
    from igrpo.tasks import load_task
    from igrpo.tracking.evals import PHASE_EVAL, TAG_EVAL_CHECKPOINT, existing_run, run_status
    from igrpo.tracking.names import TAG_PHASE, flatten, resolve_tracking_uri
    from igrpo.tracking.runs import FINISHED, mlflow_run

    from igrpo.training.distributed import init_processes, is_main_process, wait_for_everyone, world_size

    from igrpo.config.validate import validate_for_eval

    validate_for_eval(cfg)
    if cfg.device == "cuda" and cfg.generation.name == "hf":  # HF's unpaged cache at eval.max_new_tokens
        import torch

        from igrpo.plan.setup import check_eval_fits

        check_eval_fits(cfg, torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory)
    if world_size() > 1 and cfg.generation.name == "vllm" and int(cfg.generation.tensor_parallel_size) > 1:
        raise ConfigError(f"generation.tensor_parallel_size={cfg.generation.tensor_parallel_size}: one vLLM engine "
                          "spans that many GPUs, so run python -m igrpo.eval in one process (without accelerate "
                          "launch), or set generation.tensor_parallel_size=1 to shard over the processes")
    tracking_uri = resolve_tracking_uri(cfg.tracking.uri)
    from igrpo.job.builds import resolve_model_dir

    task = load_task(cfg.task, cfg.seed, model_cfg=cfg.model, eval_cfg=cfg.eval,  # data errors before any write
                     model_dir=resolve_model_dir(cfg, cfg.quiet))
    run_id = cfg.eval.run_id
    target = existing_run(tracking_uri, run_id) if run_id else None
    step = int(cfg.eval.step) if cfg.eval.step is not None else (int(cfg.train.steps) if run_id else 0)
    init_processes(cpu=cfg.device == "cpu")
    main = is_main_process()
    if not main:
        wait_for_everyone()  # the main process downloads (or builds) the model first
    model_dir, model_ref = _model_to_evaluate(cfg, tracking_uri, run_id)
    if main:
        wait_for_everyone()
    from igrpo.eval.context import check_eval_context, model_context

    check_eval_context(int(cfg.eval.max_new_tokens), model_context(model_dir), f"the model ({model_ref})")
    store_dir = Path(cfg.eval.store_root) / store_key(cfg, model_ref)
    start = time.perf_counter()
    if not main:  # a worker rank: its share of the chunks; the main process logs
        return evaluate_model_dir(cfg, model_dir, task, store_dir).metrics
    backend = None  # several vLLM processes: each rank's engine starts in a process of its own, on its own GPU
    if not (world_size() > 1 and cfg.generation.name == "vllm"):
        backend = _loaded_backend(cfg, model_dir, model_ref, task)  # a model that does not load opens no MLflow run
    if target is not None:
        outcome = evaluate_model_dir(cfg, model_dir, task, store_dir, backend=backend)
        _log_outcome(target, outcome, step, time.perf_counter() - start)
        target.tags({TAG_EVAL_CHECKPOINT: model_ref})
        print(f"logged into run {run_id} at step {step}")
        return outcome.metrics
    # a run of its own; a relaunch after a kill continues it (its id is kept beside the samples)
    marker = store_dir / "run.json"
    previous = json.loads(marker.read_text())["run_id"] if marker.exists() else None
    resume = previous if previous and run_status(tracking_uri, previous) not in (None, FINISHED) else None
    tags = {TAG_PHASE: PHASE_EVAL, TAG_EVAL_CHECKPOINT: model_ref, "task": cfg.task.name, "seed": str(cfg.seed),
            "model": cfg.model.name}
    name = cfg.tracking.run_name or f"eval-{cfg.eval.name}-{Path(model_ref).name or model_ref}-s{cfg.seed}"
    with mlflow_run(tracking_uri, cfg.tracking.experiment, name, tags, run_id=resume) as log:
        store_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"run_id": log.run_id}))
        if resume is None:
            log.params({k: v for k, v in flatten(to_container(cfg)).items()
                        if k.split(".")[0] in ("eval", "task", "model", "generation", "seed")})
        outcome = evaluate_model_dir(cfg, model_dir, task, store_dir, backend=backend)
        _log_outcome(log, outcome, step, time.perf_counter() - start)
        print(f"logged into run {log.run_id} (phase=eval) at step {step}")
    return outcome.metrics
