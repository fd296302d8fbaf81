"""The trained policy's one final save: ``<output_dir>/final``, read by the evaluation job (``eval.mode=job``) and
logged as the run's ``model`` artifact (``tracking.log_model``).

Every process calls ``save_final_policy`` once, at the same point (right after training): under DeepSpeed ZeRO-3 and
FSDP the whole weights are gathered from every rank (a collective; transformers' ``save_model`` gathers on every rank
and writes on the main one only), so a save on the main process alone waits forever for the others, and a second
save is a second collective the others never join. Hence one save, whose directory both readers use.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

FINAL_DIR = "final"


def final_policy_wanted(cfg) -> bool:
    """The evaluation job or the MLflow model artifact reads the saved policy."""
    return cfg.eval.mode == "job" or bool(cfg.tracking.log_model)


def save_final_policy(trainer, cfg, output_dir: Path) -> Path | None:
    """Save the policy to ``<output_dir>/final`` when something reads it (every process calls this); its directory,
    or None."""
    if not final_policy_wanted(cfg):
        return None
    target = Path(output_dir) / FINAL_DIR
    with full_state_dict(trainer):
        trainer.save_model(str(target))
    return target


@contextmanager
def full_state_dict(trainer):
    """FSDP's state-dict type set to FULL_STATE_DICT for the duration. conf/accelerate/fsdp.yaml keeps
    SHARDED_STATE_DICT for the periodic checkpoints (each rank writes its shard: fast, and resumable), but with it
    transformers' ``save_model`` writes no weights at all (it saves only under FULL_STATE_DICT), which would leave
    ``final/`` without the model the evaluation job loads. A no-op without FSDP."""
    state = getattr(getattr(trainer, "accelerator", None), "state", None)
    plugin = getattr(state, "fsdp_plugin", None) if getattr(trainer, "is_fsdp_enabled", False) else None
    if plugin is None:
        yield
        return
    from torch.distributed.fsdp import StateDictType

    previous = plugin.state_dict_type
    plugin.state_dict_type = StateDictType.FULL_STATE_DICT
    try:
        yield
    finally:
        plugin.state_dict_type = previous


def check_in_memory_eval(cfg, env=None) -> None:
    """One line, before any model loads, when this launch shards the policy's weights (DeepSpeed ZeRO-3, FSDP's full
    or hybrid sharding) and the config evaluates the policy in memory: no process holds the whole weights, so the main
    process cannot generate with them (the final evaluation of ``eval.mode=inline``, ``eval.every_steps``). The
    evaluation job reads the final save instead, which gathers the weights whole."""
    from igrpo.errors import ConfigError
    from igrpo.training.distributed import sharding_framework, shards_weights

    if not shards_weights(env):
        return
    how = {"deepspeed": "DeepSpeed ZeRO-3", "fsdp": "FSDP full sharding"}[sharding_framework(env)]
    if cfg.eval.mode == "inline":
        raise ConfigError(f"eval.mode=inline is not valid under {how} (accelerate launch): no process holds the "
                          "whole policy to generate with; use eval.mode=job (the final policy is saved whole and "
                          "evaluated from disk)")
    if cfg.eval.every_steps:
        raise ConfigError(f"eval.every_steps={cfg.eval.every_steps} is not valid under {how} (accelerate launch): "
                          "no process holds the whole policy to generate with; use eval.every_steps=0")
