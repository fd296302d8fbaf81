"""Names shared by the library, ``experiments/``, ``analysis/`` and the Hydra plugins; stdlib only.

Tracking URI precedence (as MLflow users expect, with an explicit choice winning):
``tracking.uri`` > ``MLFLOW_TRACKING_URI`` > a local SQLite store ``mlflow.db`` in the working directory.

Metric names: ``train/...`` per step, ``eval/<suite>/<metric>`` at the end, ``draft/...``
for Stage 1, ``perf/...`` timings, ``reward/...`` reward components, ``rollouts/...`` the rollout spend,
``critique/...`` and ``verify/...``/``buffer/...`` the Critique-GRPO and Self-Verification variants. MLflow
accepts only letters, digits, ``_ - . : /`` and spaces in metric names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PARENT_RUN_FILE = ".mlflow_parent_run"  # in a multirun's sweep dir: the parent run id for its jobs

# Experiments. MLflow 3 opens an experiment without a kind on its GenAI "Traces" page; this kind opens the
# runs table. Every experiment the project creates carries it.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
BUILDS_EXPERIMENT = "igrpo-builds"  # base-model and judge builds, kept out of the training runs' experiment
# Run artifacts analysis reads back: every evaluation's per-problem scores (the paired bootstrap's input), and the
# eval job's per-sample table
PER_PROBLEM_ARTIFACT = "eval/per_problem_step{step}.json"
EVAL_JOB_SAMPLES = "eval_job/samples_step{step}.json"

# Run tags.
TAG_PHASE = "phase"
PHASE_TRAIN = "train"  # one training run (a child of its multirun's parent, if any)
PHASE_SWEEP = "sweep"  # the parent of a `-m` multirun or an Optuna study
PHASE_EXPERIMENT = "experiment"  # the parent of an experiment's runs (tracking.parent_key)
PHASE_BASE_MODEL = "base_model"  # a base-model build
PHASE_JUDGE_BUILD = "judge_build"  # a judge build
TAG_CONFIG_HASH = "config_hash"  # igrpo.job.runner.config_hash: same hash = same experiment
TAG_EXPERIMENT = "experiment"  # experiments/: the spec's name
TAG_ARM = "arm"
TAG_SCALE = "scale"
TAG_GROUP = "group"
TAG_SEED = "seed"
TAG_VARIANT = "variant"
TAG_ALGO = "algo"
TAG_REWARD = "reward"
TAG_MODEL = "model"
TAG_TASK = "task"
TAG_CHECKPOINT_DIR = "checkpoint_dir"
TAG_RESUMED_FROM_STEP = "resumed_from_step"
TAG_PARENT_KEY = "igrpo.parent_key"  # a parent run's key: how every multirun of a sweep/study/experiment finds it
TAG_PARENT_RUN_ID = "mlflow.parentRunId"  # MLflow's own nesting tag
TAG_OPTUNA_STUDY = "optuna_study"
TAG_OPTUNA_TRIAL = "optuna_trial"
TAG_OPTUNA_STORAGE = "optuna_storage"

_INVALID_METRIC_CHARS = re.compile(r"[^A-Za-z0-9_\-\.:/ ]")
_TRL_RENAMES = {
    "reward": "train/reward",
    "reward_std": "train/reward_std",
    "entropy": "train/entropy",
    "kl": "train/kl",
    "loss": "train/loss",
    "grad_norm": "train/grad_norm",
    "learning_rate": "train/learning_rate",
    "frac_reward_zero_std": "train/frac_groups_zero_std",
    "completions/mean_length": "train/completion_length",
    "step_time": "perf/step_time",
    "entropy_coef": "train/entropy_coef",
    "num_tokens": "train/num_tokens",
    "epoch": "train/epoch",
}


def resolve_tracking_uri(explicit: str | None, environ: dict | None = None, cwd: Path | None = None) -> str:
    environ = os.environ if environ is None else environ
    if explicit:
        return explicit
    if environ.get("MLFLOW_TRACKING_URI"):
        return environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(cwd or Path.cwd()).resolve() / 'mlflow.db'}"


def metric_name(trl_key: str) -> str:
    """Our name for a TRL log key: ``train/...`` per step, ``perf/...`` timings, ``reward/...`` components."""
    if trl_key in _TRL_RENAMES:
        return _TRL_RENAMES[trl_key]
    if trl_key.startswith(("draft/", "refine/", "perf/", "eval/", "reward/", "rollouts/", "critique/", "verify/",
                           "buffer/")):
        name = trl_key
    elif trl_key.startswith("rewards/") and trl_key.endswith("/mean"):
        name = "reward/" + trl_key[len("rewards/") : -len("/mean")]
    elif trl_key.startswith("rewards/"):
        name = "reward/" + trl_key[len("rewards/") :]
    elif trl_key.startswith("profiling/"):
        name = "perf/" + trl_key[len("profiling/") :]
    else:
        name = "train/" + trl_key
    return _INVALID_METRIC_CHARS.sub("_", name)


def flatten(d: dict, prefix: str = "") -> dict[str, str]:
    """Nested config -> {'a.b.c': 'value'} with MLflow-safe string values."""
    out: dict[str, str] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:6000]
    return out


def storage_label(storage: str | None) -> str:
    """An Optuna storage URL without credentials (``in-memory`` for none)."""
    return re.sub(r"//[^/@]*@", "//***@", storage) if storage else "in-memory"


def absolute_sqlite(url: str | None, cwd: Path | None = None) -> str | None:
    """``sqlite:///rel.db`` -> ``sqlite:////<cwd>/rel.db``; other URLs (and in-memory SQLite) unchanged."""
    if not url or not url.startswith("sqlite:///"):
        return url
    path = url[len("sqlite:///"):]
    if path in ("", ":memory:"):
        return url
    return f"sqlite:///{(Path(cwd or Path.cwd()) / Path(path).expanduser()).resolve()}"


def optuna_parent_key(study_name: str, storage: str) -> str:
    """The parent key of a persistent Optuna study: its name and storage (credential-free; a relative SQLite
    path made absolute), since one name in two storages is two studies."""
    return f"optuna:{study_name}@{storage_label(absolute_sqlite(storage))}"


def sweep_parent_key(sweep_dir: str | Path) -> str:
    """The parent key of a plain multirun: its sweep dir (absolute)."""
    return f"sweep:{Path(sweep_dir).resolve()}"


def ui_runs_url(experiment_id: str, server: str = "http://127.0.0.1:5000") -> str:
    """Where ``mlflow ui`` shows an experiment's runs table. MLflow 3.17's UI opens every experiment in its global
    "GenAI" workflow (the Traces overview) unless the browser chose "Model training" (the experiment's kind tag
    does not decide it there); ``workflowType=machine_learning`` in the URL selects the runs view directly."""
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def read_parent_run_id(sweep_dir: str | Path | None) -> str | None:
    """The parent run id a multirun's callback left in its sweep dir, or None (not a multirun / none made)."""
    if not sweep_dir:
        return None
    marker = Path(sweep_dir) / PARENT_RUN_FILE
    return marker.read_text().strip() or None if marker.exists() else None


# ------------------------------------------------------------------------ evaluation metric names

MEAN_AVG_KEY = "avg_at_k"  # eval/mean/avg_at_k: mean of each suite's avg@k (the paper's Avg column)


def avg_key(k: int) -> str:
    """MLflow rejects '@' in metric names, so avg@k is logged as avg_at_<k>."""
    return f"avg_at_{k}"


def suite_samples(eval_cfg, suite: str) -> int:
    """k of a suite's avg@k: its own ``samples`` when it sets one, else ``eval.samples_per_problem``."""
    suites = getattr(eval_cfg, "suites", None) or {}
    own = suites[suite].samples if suite in suites else None
    return int(own) if own else int(eval_cfg.samples_per_problem)


def eval_metric_names(eval_cfg, suites: list[str]) -> list[str]:
    """Every ``eval/...`` metric an evaluation of these suites logs."""
    ks = {s: suite_samples(eval_cfg, s) for s in suites}
    tail = ["greedy"] if eval_cfg.greedy else []
    names = [f"eval/{s}/{m}" for s in suites for m in [avg_key(ks[s]), *tail]]
    mean = [MEAN_AVG_KEY] + ([avg_key(next(iter(ks.values())))] if len(set(ks.values())) == 1 else []) + tail
    return names + [f"eval/mean/{m}" for m in mean]
