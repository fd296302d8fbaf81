"""The one-off builds a run may need before training: the base policy (the embedded tiny model is built
and warm-started once, then cached) and, for reward=judge, the judge (the embedded tiny judge likewise).
A build done now is logged as its own MLflow run (tag ``phase``: base_model or judge_build), in the builds
experiment (``igrpo.tracking.names.BUILDS_EXPERIMENT``) of the run's tracking store."""

from __future__ import annotations

import os
from pathlib import Path

from igrpo.config import to_container
from igrpo.config.model import model_path
from igrpo.models.loading import build_tiny, default_cache_root
from igrpo.models.packaged import local_model
from igrpo.tracking.builds import log_base_model_build, log_judge_build
from igrpo.tracking.names import resolve_tracking_uri


def model_cache_root(cfg) -> Path:
    """Where built and converted models are cached: ``model.cache_dir``, else the default cache."""
    return Path(cfg.model.cache_dir) if cfg.model.cache_dir else default_cache_root()


def resolve_model_dir(cfg, quiet: bool) -> str | None:
    """``model.path`` as ``from_pretrained`` takes it (a package-shipped model converted once, then cached:
    ``igrpo.models.packaged``); None for the embedded tiny model, which ``resolve_policy_path`` builds."""
    path = model_path(cfg.model)
    if path is None:
        return None
    return local_model(os.path.expanduser(path), model_cache_root(cfg), quiet=quiet)


def resolve_policy_path(cfg, quiet: bool) -> tuple[str, object | None]:
    """Directory or hub id of the base policy, building the tiny model when needed."""
    path = resolve_model_dir(cfg, quiet)
    if path is not None:
        return path, None
    cache_root = model_cache_root(cfg)
    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.model.warmstart_steps, desc="warm-start tiny model", leave=False)

    def progress(step, loss, acc):
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", dev_acc=f"{acc:.2f}")

    info = build_tiny(cfg.model, cfg.task, cache_root, progress=progress)
    if bar is not None:
        bar.close()
    if info.built_now:
        log_base_model_build(resolve_tracking_uri(cfg.tracking.uri), to_container(cfg.model), to_container(cfg.task),
                             info)
    return info.path, info


def resolve_judge(cfg, quiet: bool):
    """The judge backend for reward=judge (building the embedded judge when needed), else None."""
    if cfg.reward.name != "judge":
        return None
    from igrpo.rewards.judge import build_judge

    cache_root = model_cache_root(cfg)
    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.reward.judge.build_steps, desc="build tiny judge", leave=False)

    def progress(step, loss, auc):
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", dev_auroc=f"{auc:.3f}")

    handle = build_judge(cfg.reward.judge, cfg.task, cfg.device, cache_root, progress=progress)
    if bar is not None:
        bar.close()
    info = handle.build_info
    if info is not None:
        if info.built_now:
            log_judge_build(resolve_tracking_uri(cfg.tracking.uri), to_container(cfg.reward.judge), cfg.task.name, info)
        if not quiet:
            from igrpo.rewards.judge.tiny import build_summary

            print(build_summary(info) if info.built_now else
                  f"judge: AUROC {info.heldout_auroc:.3f} on {info.heldout_size} held-out candidates, hack max score "
                  f"{info.hack_max_score:.4f} (built in {info.steps} steps, cached)")
    return handle

