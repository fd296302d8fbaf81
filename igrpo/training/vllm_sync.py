"""TRL's weight sync to its vLLM engine (``generation=vllm``), observed, and done the way vLLM's CPU build allows.

**Observed.** Every sync and every rollout generation is recorded with the optimizer step it happened at, with the
engine's context and stop tokens (``SyncLog``); the run logs it as ``vllm_sync.json``. ``sync_problems`` (pure)
reads such a log for what the paper-scale path depends on:

* one weight sync per optimizer step, before that step's first generation (iGRPO's drafts), so every generation of
  a step (drafts and refinements alike) samples from the same, current weights;
* every request's prompt + ``max_tokens`` within the engine's ``max_model_len``;
* the stop tokens vLLM is given equal training's (``igrpo.training.generation.stop_token_ids``).

**CPU build.** After loading, vLLM's CPU build packs each linear layer's weight into its GEMM kernel's layout and
drops the original parameter, so TRL's colocated sync (``model.load_weights`` one parameter at a time) finds nothing
to write into. On CPU the sync goes through vLLM's own reload path instead (``reload_weights`` with the training
weights given): it restores the layers, loads every weight and packs them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SyncLog:
    """What a run's vLLM engine did, in order: ``{"event": "sync"|"generate", "step": n, ...}``."""

    events: list[dict] = field(default_factory=list)
    max_model_len: int | None = None
    stop_token_ids: list[int] = field(default_factory=list)  # what vLLM is given
    training_stop_ids: list[int] = field(default_factory=list)  # what training and evaluation stop at

    def as_json(self) -> dict:
        return {"events": self.events, "max_model_len": self.max_model_len, "stop_token_ids": self.stop_token_ids,
                "training_stop_ids": self.training_stop_ids}


def sync_problems(log: dict) -> list[str]:
    """Every way the log departs from the rules in the module docstring (empty: none)."""
    problems = []
    synced: dict[int, int] = {}  # step -> syncs at it
    for event in log["events"]:
        step = event["step"]
        if event["event"] == "sync":
            synced[step] = synced.get(step, 0) + 1
        elif not synced.get(step):
            problems.append(f"step {step}: generated before any weight sync at this step")
        elif log.get("max_model_len") and event["longest_prompt"] + event["max_tokens"] > log["max_model_len"]:
            problems.append(f"step {step}: a prompt of {event['longest_prompt']} tokens + max_tokens "
                            f"{event['max_tokens']} exceeds max_model_len {log['max_model_len']}")
    problems += [f"step {step}: {count} weight syncs" for step, count in synced.items() if count > 1]
    if sorted(log["stop_token_ids"]) != sorted(log["training_stop_ids"]):
        problems.append(f"vLLM stops at {log['stop_token_ids']}, training at {log['training_stop_ids']}")
    return problems


def install_sync_log(trainer, device: str, training_stop_ids: list[int]) -> SyncLog | None:
    """Record the trainer's vLLM syncs and generations (and sync the CPU build's way on CPU); None without vLLM."""
    engine = getattr(trainer, "vllm_generation", None)
    if engine is None:
        return None
    log = SyncLog(max_model_len=getattr(engine, "max_model_length", None),
                  stop_token_ids=[int(i) for i in engine.generation_kwargs.get("stop_token_ids", [])],
                  training_stop_ids=[int(i) for i in training_stop_ids])
    sync = engine.sync_weights if device != "cpu" else (lambda: _reload_weights(engine))
    generate = engine.generate

    def sync_weights():
        sync()
        log.events.append({"event": "sync", "step": int(trainer.state.global_step)})

    def generate_recorded(prompts, *args, **kwargs):
        if log.max_model_len is None and getattr(engine, "llm", None) is not None:  # colocated: the engine's own
            log.max_model_len = int(engine.llm.llm_engine.model_config.max_model_len)
        log.events.append({"event": "generate", "step": int(trainer.state.global_step), "prompts": len(prompts),
                           "longest_prompt": max((len(p) for p in prompts), default=0),
                           "max_tokens": int(engine.max_completion_length)})
        return generate(prompts, *args, **kwargs)

    engine.sync_weights = sync_weights
    engine.generate = generate_recorded
    return log


def _reload_weights(engine) -> None:
    """The CPU build's sync: vLLM reloads (and re-packs) every layer from the training weights; then a tied LM head
    is tied again and re-packed (see ``_repack_tied_head``)."""
    runner = engine.llm.llm_engine.model_executor.driver_worker.model_runner
    runner.reload_weights(weights_iterator=list(engine._iter_named_params()), is_checkpoint_format=True)
    _repack_tied_head(runner.get_model())
    engine.llm.reset_prefix_cache()


def _repack_tied_head(model) -> None:
    """A model whose LM head shares the input embedding (``tie_word_embeddings``): the checkpoint has no head weight,
    so the reload never touches the head, while the CPU build keeps a packed copy of the embedding for it, made at
    load time. Without this the logits would come from the step-0 embedding forever (measured: the sampling log-prob
    gap grew from 0.001 to 0.09 nats per token in two steps at lr 1e-2)."""
    head = getattr(model, "lm_head", None)
    embed = getattr(getattr(model, "model", None), "embed_tokens", None)
    if head is None or embed is None or not getattr(getattr(model, "config", None), "tie_word_embeddings", False):
        return
    head.tie_weights(embed)
    head.quant_method.process_weights_after_loading(head)
