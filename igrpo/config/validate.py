"""The checks of a composed run config, before anything is written (no MLflow run, no files) or loaded. Each failure
is a ConfigError with one line naming the bad value and what is allowed.

This module only composes: every option's rules are defined beside its fields, in the schema of the option
(``igrpo.config.*``; the variant's in its module under ``igrpo.variants``); the checks over the whole config (unknown
keys, non-finite numbers, the seed, the tracking store, the hub) are ``igrpo.config.checks``. What only the machine
that runs the job can answer (a CUDA device, the vllm package, usable model directories, the hub or its local cache,
a writable tracking store) is checked last and can be left out (``machine=False``: a paper-scale plan checked
elsewhere).
"""

from __future__ import annotations

from igrpo.config.checks import (
    check_finite_numbers,
    check_hub_reachable,
    check_known_keys,
    check_required,
    check_seed,
    check_tracking_reachable,
)
from igrpo.config.data import data_hub_needs, evaluated_model
from igrpo.config.fields import check_fields, check_option
from igrpo.config.model import check_model_here, check_model_path_here, model_hub_needs, model_path
from igrpo.config.reward import check_judge_here, judge_model_ref
from igrpo.errors import ConfigError, choice_error
from igrpo.tracking.names import eval_metric_names

# the groups whose node is checked against its schema, in this order (the variant first: budget errors name it)
GROUPS = ("algo", "reward", "entropy", "generation", "task", "train", "eval", "tracking", "model")
# Timings logged with the final metrics; a multi-objective search can trade quality against them.
PERF_OBJECTIVES = ("perf/train_seconds", "perf/run_seconds")


def validate(cfg, machine: bool = True) -> None:
    """Raise ConfigError on the first invalid value."""
    from igrpo.variants import variant_of

    _check_whole(cfg)
    if machine:  # a model that is not there is the first thing to say (the variant's rules depend on which model)
        check_model_path_here(cfg.model)
    variant_of(cfg).check(cfg)
    check_fields(cfg, "")  # the run's own top-level fields (rollout_budget, device, ...)
    for group in GROUPS:
        check_option(cfg[group], group, cfg)
    objectives = objective_choices(cfg)
    for name in objective_names(cfg.objective):
        if name not in objectives:
            raise choice_error("objective", name, objectives)
    if machine:
        _check_machine(cfg, training=True)


def validate_for_eval(cfg) -> None:
    """The checks of what an evaluation uses (``python -m igrpo.eval``), not the training-only ones: a job may
    evaluate a hub model under a config whose variant settings only fit the tiny model."""
    _check_whole(cfg)
    for group in ("task", "eval", "model"):
        check_option(cfg[group], group, cfg)
    _check_machine(cfg, training=False)


def _check_whole(cfg) -> None:
    check_required(cfg)
    check_known_keys(cfg)  # +foo=1 is refused, not ignored
    check_finite_numbers(cfg)  # nan / inf anywhere
    check_seed(cfg.seed)


def _check_machine(cfg, training: bool) -> None:
    """What only this machine can answer: a CUDA device, the vllm package, the models it loads (usable directories
    or hub ids), whether what it fetches from the hub can be had, and last the tracking store (the checks that wait,
    seconds at most)."""
    from igrpo.tracking.names import resolve_tracking_uri

    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device=cuda is not valid here: no CUDA device is visible; use device=cpu")
    if cfg.generation.name == "vllm":
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise ConfigError("generation=vllm needs vLLM: pip install -e '.[vllm]' on a GPU machine, or "
                              "python -m igrpo.models install-real for its CPU build")
    if training:  # the policy's model.path was checked first (validate)
        check_judge_here(cfg)
        models = [("model.path", model_path(cfg.model)), ("reward.judge.model", judge_model_ref(cfg))]
    else:
        models = [evaluated_model(cfg)]
        check_model_here(*models[0])
    model_needs = [need for label, path in models for need in model_hub_needs(label, path)]
    check_hub_reachable([*data_hub_needs(cfg), *model_needs])
    check_tracking_reachable(resolve_tracking_uri(cfg.tracking.uri))


def objective_names(objective) -> list[str]:
    """``objective`` as a list: one metric name, or several for a multi-objective sweep."""
    if isinstance(objective, str):
        return [objective]
    return [str(name) for name in objective]


def eval_suite_names(cfg) -> list[str]:
    """The suites a run evaluates: the eval config's own (eval=paper), else the task's (eval=toy)."""
    return [str(s) for s in cfg.eval.suites] if cfg.eval.suites else [str(s) for s in cfg.task.get("eval_suites", [])]


def objective_choices(cfg) -> list[str]:
    """The final metrics a run logs, any of which a sweeper can optimise: every eval metric (each suite with
    its own k, the means) as ``eval/...`` and as its gain over the base model ``eval_gain/...``, and timings."""
    evals = eval_metric_names(cfg.eval, eval_suite_names(cfg))
    gains = [name.replace("eval/", "eval_gain/", 1) for name in evals]
    return evals + gains + list(PERF_OBJECTIVES)
