"""What identifies a run: its default name and its config hash (the tag ``config_hash``). Light imports only
(no torch), so ``experiments`` can hash a whole plan quickly."""

from __future__ import annotations

from igrpo.config import to_container


def default_run_name(cfg) -> str:
    return f"{cfg.variant.name}-{cfg.algo.name}-{cfg.reward.name}-s{cfg.seed}"


# Fields that do not change what a run computes: excluded from its config hash.
_UNHASHED_KEYS = ("output_dir", "quiet", "tracking", "objective", "cpu_threads")
_UNHASHED_TRAIN_KEYS = ("save_every", "save_total_limit", "resume", "checkpoint_root")


def config_hash(cfg) -> str:
    """Stable hash of everything that determines a run's results (tag ``config_hash``): two runs with the
    same hash are the same experiment, which is how ``experiments`` skips runs that already FINISHED."""
    import hashlib
    import json

    resolved = {k: v for k, v in to_container(cfg).items() if k not in _UNHASHED_KEYS}
    if isinstance(resolved.get("train"), dict):
        resolved["train"] = {k: v for k, v in resolved["train"].items() if k not in _UNHASHED_TRAIN_KEYS}
    _drop_unhashed(cfg, resolved)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _drop_unhashed(node, resolved: dict) -> None:
    """Leave out the fields whose schema says they do not change this run (``igrpo.config.fields``: a field at its
    ``neutral`` value, added after runs were recorded, or one that ``needs`` a sibling value the node lacks), in
    every typed node."""
    from omegaconf import DictConfig

    from igrpo.config.fields import unhashed_fields

    for name in unhashed_fields(node):
        resolved.pop(name, None)
    for key, value in resolved.items():
        child = node.get(key) if isinstance(node, DictConfig) else None
        if isinstance(value, dict) and isinstance(child, DictConfig):
            _drop_unhashed(child, value)
