"""Value checks that the typed schemas cannot express. Each failure is a ConfigError with one line
naming the bad value and what is allowed. Runs before anything is written (no MLflow run, no files)."""

from __future__ import annotations

import os
import re

from igrpo.variants import BASELINE_VARIANTS
from igrpo.variants.budget import check_baseline_variant
from igrpo.config import model_path
from igrpo.core.drafts import ALL_ZERO_POLICIES, SELECTION_RULES, TIE_BREAKS, TRUNCATION_SIDES, check_budget, resolve_template
from igrpo.core.entropy import check_schedule
from igrpo.errors import ConfigError, choice_error
from igrpo.eval.checks import check_eval_job
from igrpo.eval.suites import VERIFIERS as EVAL_VERIFIERS
from igrpo.eval.suites import eval_metric_names
from igrpo.rewards import REWARDS, VERIFIERS
from igrpo.tasks.arith import LEVELS, WARMSTART_HOLDOUT, check_level_fits
from igrpo.tasks.registry import TASKS
from igrpo.tasks.sources import SourceSpec, check_spec
from igrpo.config.checks import (
    check_finite_numbers,
    check_format_placeholders,
    check_known_keys,
    check_seed,
    check_tracking_reachable,
)

VARIANTS = ("grpo", "igrpo", *BASELINE_VARIANTS)
LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "bnpo")
SCALE_REWARDS = ("group", "batch", "none")
IMPORTANCE_LEVELS = ("token", "sequence")
GENERATION_BACKENDS = ("hf", "vllm")
VLLM_MODES = ("colocate", "server")
DEVICES = ("cpu", "cuda")
DTYPES = ("float32", "bfloat16", "float16")


def _choice(field: str, value, choices) -> None:
    if value not in choices:
        raise choice_error(field, value, choices)


def _positive(field: str, value, strict: bool = True) -> None:
    if value is None or (value <= 0 if strict else value < 0):
        bound = "> 0" if strict else ">= 0"
        raise ConfigError(f"{field}={value} is not valid; it must be {bound}")


def validate(cfg, machine: bool = True) -> None:
    """Raise ConfigError on the first invalid value. ``machine=False`` leaves out what only the machine that runs
    it can answer (a CUDA device, the vllm package, a local model directory): a paper-scale plan checked elsewhere."""
    from igrpo.config import paper_checks
    from igrpo.training.distributed import world_size
    _check_required(cfg)
    check_known_keys(cfg)  # +foo=1 is refused, not ignored
    check_finite_numbers(cfg)  # nan / inf anywhere
    check_seed(cfg.seed)
    if not str(cfg.tracking.experiment or "").strip():
        raise ConfigError(f"tracking.experiment={cfg.tracking.experiment!r} is not valid; give the MLflow experiment "
                          "a non-empty name")
    _choice("variant", cfg.variant.name, VARIANTS)
    check_baseline_variant(cfg)  # critique_grpo / self_verify: choices and the matched budget (igrpo.variants)
    if cfg.variant.name == "igrpo":
        v = cfg.variant
        _check_derived_refinements(cfg)
        check_budget(cfg.rollout_budget, v.num_drafts, v.num_refinements, v.allow_budget_mismatch, v.rounds)
        _choice("variant.selection", v.selection, SELECTION_RULES)
        _choice("variant.tie_break", v.tie_break, TIE_BREAKS)
        _choice("variant.on_all_zero", v.on_all_zero, ALL_ZERO_POLICIES)
        _choice("variant.draft_truncation", v.draft_truncation, TRUNCATION_SIDES)
        _positive("variant.max_draft_tokens", v.max_draft_tokens)
        template = resolve_template(v.template)
        check_format_placeholders("variant.template", template, ("draft", "problem", "prompt"))
    if cfg.rollout_budget < 2:
        raise ConfigError(f"rollout_budget={cfg.rollout_budget} is not valid; it must be >= 2")

    a = cfg.algo
    _choice("algo.loss_type", a.loss_type, LOSS_TYPES)
    _choice("algo.scale_rewards", a.scale_rewards, SCALE_REWARDS)
    _choice("algo.importance_sampling_level", a.importance_sampling_level, IMPORTANCE_LEVELS)
    _positive("algo.learning_rate", a.learning_rate)
    _positive("algo.epsilon", a.epsilon, strict=False)
    _positive("algo.epsilon_high", a.epsilon_high, strict=False)
    _positive("algo.beta", a.beta, strict=False)
    _positive("algo.max_grad_norm", a.max_grad_norm)
    _positive("algo.num_iterations", a.num_iterations)
    if not 0 <= a.warmup_ratio < 1:
        raise ConfigError(f"algo.warmup_ratio={a.warmup_ratio} is not valid; it must be in [0, 1)")

    _choice("reward", cfg.reward.name, REWARDS)
    _positive("reward.format_weight", cfg.reward.format_weight, strict=False)
    _choice("reward.verifier", cfg.reward.verifier, VERIFIERS)
    _positive("reward.verify_time_budget_s", cfg.reward.verify_time_budget_s)
    _positive("reward.verify_workers", cfg.reward.verify_workers)
    if cfg.reward.name == "judge":
        _validate_judge(cfg.reward.judge)
    check_schedule(cfg.entropy)
    _choice("generation", cfg.generation.name, GENERATION_BACKENDS)
    _positive("generation.temperature", cfg.generation.temperature)
    _positive("generation.max_completion_length", cfg.generation.max_completion_length)
    if not 0 < cfg.generation.top_p <= 1:
        raise ConfigError(f"generation.top_p={cfg.generation.top_p} is not valid; it must be in (0, 1]")
    _validate_vllm(cfg, machine)

    _validate_task(cfg)
    _positive("train.steps", cfg.train.steps)
    _positive("train.prompts_per_step", cfg.train.prompts_per_step)
    _validate_eval(cfg)
    check_eval_job(cfg)  # eval.mode=inline|job and the job's settings
    _positive("tracking.rollout_log_every", cfg.tracking.rollout_log_every, strict=False)

    objectives = objective_choices(cfg)
    for name in objective_names(cfg.objective):
        if name not in objectives:
            raise choice_error("objective", name, objectives)

    _choice("device", cfg.device, DEVICES)
    _choice("model.dtype", cfg.model.dtype, DTYPES)
    if cfg.device == "cuda" and machine:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device=cuda is not valid here: no CUDA device is visible; use device=cpu")
    _validate_model(cfg, machine)
    paper_checks.check(cfg, world_size())  # tiny-model settings on real models; recipe fields; whole groups per rank
    if machine:  # last: the only check that waits (seconds at most), and before any model is loaded
        from igrpo.tracking.names import resolve_tracking_uri

        check_tracking_reachable(resolve_tracking_uri(cfg.tracking.uri))


def validate_for_eval(cfg) -> None:
    """The checks of what an evaluation uses (``python -m igrpo.eval``), not the training-only ones: a job may
    evaluate a hub model under a config whose variant settings only fit the tiny model."""
    _check_required(cfg)
    check_known_keys(cfg)
    check_finite_numbers(cfg)
    check_seed(cfg.seed)
    _validate_task(cfg)
    _validate_eval(cfg)
    _validate_model(cfg, machine=True)
    check_eval_job(cfg)


def _check_derived_refinements(cfg) -> None:
    """When G is derived (N x rounds + G = rollout_budget), a G below 2 is the fault of what the user set."""
    from omegaconf import OmegaConf

    v = cfg.variant
    if not OmegaConf.is_interpolation(v, "num_refinements") or v.allow_budget_mismatch:
        return
    left = cfg.rollout_budget - v.num_drafts * v.rounds
    if left < 2:
        most = (cfg.rollout_budget - 2) // max(v.rounds, 1)
        raise ConfigError(f"variant.num_drafts={v.num_drafts} is not valid with rollout_budget={cfg.rollout_budget} "
                          f"and variant.rounds={v.rounds}: it leaves {left} refinements (rollout_budget - num_drafts x "
                          f"rounds) and iGRPO needs at least 2; use variant.num_drafts<={most} or raise rollout_budget")


def _check_required(cfg) -> None:
    """A field an option leaves to the user (``???`` in its YAML, e.g. model=hf's path) must be given."""
    from omegaconf import OmegaConf

    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]} is required by the chosen options and has no value; set it on the "
                          f"command line, e.g. {missing[0]}=<value>")


def _validate_task(cfg) -> None:
    """The task's own settings; a real task's data source is checked here, its rows when it is loaded."""
    t = cfg.task
    _choice("task", t.name, TASKS)
    if t.name == "arith":
        if not t.eval_suites and not cfg.eval.suites:
            raise ConfigError("task.eval_suites=[] is not valid; name at least one suite")
        for level in [*t.train_levels, *t.eval_suites]:
            _choice("task level", level, LEVELS)
        _positive("task.train_size", t.train_size)
        _positive("task.eval_size", t.eval_size)
        if "warmstart_formats" in cfg.model:  # the tiny model: one character per token, so lengths are exact
            # the longest worked solution of every level (+ its end token) must fit the completion caps
            check_level_fits([*t.train_levels, *t.eval_suites], t.first_digits, t.step_digits,
                             {"generation.max_completion_length": cfg.generation.max_completion_length,
                              "eval.max_new_tokens": cfg.eval.max_new_tokens})
    else:
        check_spec(SourceSpec.from_cfg(t, "task"))
        if t.max_train_size is not None:
            _positive("task.max_train_size", t.max_train_size)
        if not cfg.eval.suites:
            raise ConfigError(f"eval={cfg.eval.name} is not valid with task={t.name}: a real dataset has no eval "
                              "suites of its own; use eval=paper (or set eval.suites)")


def _validate_eval(cfg) -> None:
    e = cfg.eval
    _positive("eval.samples_per_problem", e.samples_per_problem)
    _positive("eval.temperature", e.temperature)
    if not 0 < e.top_p <= 1:
        raise ConfigError(f"eval.top_p={e.top_p} is not valid; it must be in (0, 1]")
    _positive("eval.max_new_tokens", e.max_new_tokens)
    _positive("eval.batch_size", e.batch_size)
    _positive("eval.every_steps", e.every_steps, strict=False)
    _choice("eval.verifier", e.verifier, EVAL_VERIFIERS)
    _positive("eval.verify_time_budget_s", e.verify_time_budget_s)
    for name, suite in e.suites.items():
        if not _SUITE_NAME.fullmatch(str(name)) or name == "mean":
            raise ConfigError(f"eval.suites.{name} is not a valid suite name; use letters, digits, _ - . "
                              "(it becomes part of metric names; 'mean' is reserved)")
        check_spec(SourceSpec.from_cfg(suite, f"eval.suites.{name}"))
        if suite.samples is not None:
            _positive(f"eval.suites.{name}.samples", suite.samples)
        if suite.max_problems is not None:
            _positive(f"eval.suites.{name}.max_problems", suite.max_problems)


def _validate_model(cfg, machine: bool) -> None:
    m = cfg.model
    if cfg.device == "cpu" and m.dtype != "float32":
        raise ConfigError(f"model.dtype={m.dtype} is not valid with device=cpu (half precision needs a GPU); "
                          "use device=cuda, or model.dtype=float32 on CPU")
    path = model_path(m)
    if path is not None and machine and _looks_like_local_path(path) and not os.path.isdir(os.path.expanduser(path)):
        raise ConfigError(f"model.path={path!r} does not exist; give an existing model directory or a hub id")
    if "warmstart_formats" in m:  # the embedded tiny model's warm start
        from igrpo.models.warmstart import check_formats

        check_formats(m.warmstart_formats)
        for name in ("warmstart_format_fraction", "warmstart_corrupt_fraction"):
            if not 0.0 <= m[name] <= 1.0:
                raise ConfigError(f"model.{name}={m[name]} is not valid; it must be in [0, 1]")
        for level in m.warmstart_levels:
            if level not in LEVELS:
                raise choice_error("model.warmstart_levels entry", level, LEVELS)
        if not m.warmstart_levels:
            raise ConfigError("model.warmstart_levels=[] is not valid; give at least one of "
                              f"{', '.join(LEVELS)}")
        if m.warmstart_max_draft_tokens is not None:
            _positive("model.warmstart_max_draft_tokens", m.warmstart_max_draft_tokens)
        if cfg.task.name == "arith" and cfg.task.eval_size > WARMSTART_HOLDOUT:
            raise ConfigError(f"task.eval_size={cfg.task.eval_size} is not valid with the tiny model: the warm start "
                              f"holds out only the first {WARMSTART_HOLDOUT} eval problems of each level; "
                              f"use task.eval_size<={WARMSTART_HOLDOUT}")
        if not 0 <= m.warmstart_seed < 2**32:
            raise ConfigError(f"model.warmstart_seed={m.warmstart_seed} is not valid; it must be in [0, 2**32)")
        _check_draft_caps(cfg)
    for node, field in ((m, "model.prompt_template"), (cfg.task, "task.prompt_template")):
        template = node.get("prompt_template")
        if template is not None and "{problem}" not in template:
            raise ConfigError(f"{field}={template!r} is not valid: it must contain {{problem}} (where the problem "
                              "goes)")


def _check_draft_caps(cfg) -> None:
    """The tiny base is warm-started on drafts cut to ``model.warmstart_max_draft_tokens`` characters (null: whole
    drafts): the variant's own cap must be that one (with null: one that cuts nothing, i.e. at least the completion
    cap), or its Stage-2 prompts are out of the distribution the base knows."""
    cap, v = cfg.model.warmstart_max_draft_tokens, cfg.variant
    field = {"igrpo": "max_draft_tokens", "critique_grpo": "max_solution_tokens"}.get(v.name)
    if field is None:
        return
    longest = cfg.generation.max_completion_length
    if cap is None and v[field] < longest:
        raise ConfigError(f"variant.{field}={v[field]} cuts drafts the tiny base was warm-started on whole "
                          f"(model.warmstart_max_draft_tokens=null); set variant.{field}>={longest} (the completion "
                          f"cap), or cut both: variant.{field}={v[field]} model.warmstart_max_draft_tokens={v[field]}")
    if cap is not None and v[field] != cap:
        raise ConfigError(f"variant.{field}={v[field]} differs from model.warmstart_max_draft_tokens={cap}, the draft "
                          f"cap the tiny base is warm-started with; set both to the same value "
                          f"(variant.{field}={v[field]} model.warmstart_max_draft_tokens={v[field]})")


def _looks_like_local_path(path: str) -> bool:
    from igrpo.models.loading import looks_like_local_path  # imports torch: only when a model path is given

    return looks_like_local_path(path)


_SUITE_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


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


# Timings logged with the final metrics; a multi-objective search can trade quality against them.
PERF_OBJECTIVES = ("perf/train_seconds", "perf/run_seconds")


def _validate_vllm(cfg, machine: bool = True) -> None:
    """generation=vllm runs only on CUDA machines with the vllm extra installed."""
    gen = cfg.generation
    if gen.name != "vllm":
        return
    _choice("generation.vllm_mode", gen.vllm_mode, VLLM_MODES)
    if not 0 < gen.gpu_memory_utilization <= 1:
        raise ConfigError(f"generation.gpu_memory_utilization={gen.gpu_memory_utilization} is not valid; "
                          "it must be in (0, 1]")
    if cfg.device != "cuda":
        raise ConfigError(f"generation=vllm needs device=cuda (got device={cfg.device}); use generation=hf on CPU")
    if not machine:
        return
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise ConfigError("generation=vllm needs the vllm package: pip install -e '.[vllm]' (CUDA machines only)")


def _validate_judge(j) -> None:
    from igrpo.rewards.judge import BACKENDS
    from igrpo.rewards.judge.protocol import VERDICT_MODES

    _choice("reward.judge.backend", j.backend, BACKENDS)
    _choice("reward.judge.verdict", j.verdict, VERDICT_MODES)
    if not 0.0 <= j.fallback_score <= 1.0:
        raise ConfigError(f"reward.judge.fallback_score={j.fallback_score} is not valid; it must be in [0, 1]")
    # each backend's node holds only its own fields (igrpo.config.JudgeTiny / JudgeHF / JudgeHTTP)
    for name in ("max_candidate_chars", "batch_size", "concurrency", "timeout_s", "cache_size"):
        if name in j:
            _positive(f"reward.judge.{name}", j[name])
    for name in ("max_retries", "backoff_s", "max_candidate_tokens"):
        if name in j:
            _positive(f"reward.judge.{name}", j[name], strict=False)
    for name in ("build_augment_fraction", "build_target_hack_score", "build_target_hack_max"):
        if name in j and not 0.0 <= j[name] <= 1.0:
            raise ConfigError(f"reward.judge.{name}={j[name]} is not valid; it must be in [0, 1]")
    if "build_hack_problems" in j:
        _positive("reward.judge.build_hack_problems", j.build_hack_problems)
    if j.backend == "http" and not j.url:
        raise ConfigError("reward.judge.url is required for reward.judge.backend=http "
                          "(e.g. reward.judge.url=http://127.0.0.1:8000/v1)")
