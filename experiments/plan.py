"""From a spec to the list of runs it needs: groups x arms x seeds at one scale, each as the exact
``python run.py`` overrides that reproduce it. Pure: composes nothing and touches no MLflow (imports nothing from
``igrpo`` but the names module), so ``analysis`` matches runs to table cells with it too.

Each run lands in the MLflow experiment named after the spec, tagged ``experiment``, ``scale``,
``group`` and ``arm`` (the report matches runs to table cells by these tags and ``seed``), and is named
``<variant>-<algo>-<reward>-s<seed>`` plus the group's and the arm's suffix when they have one (e.g.
``igrpo-grpo-binary-s0-beta1e-4``); the name is a Hydra interpolation, so it is right for any arm.

Overrides given after ``--`` to ``python -m experiments run`` are sorted by ``split_extras``: ``hydra/...`` and
``hydra.*`` ones choose the launcher and its settings, ``tracking.*`` ones the MLflow destination (neither is
part of a run's ``config_hash``: they go onto the multirun command line), and every other one is a run-level
override that joins each planned run's overrides (last, so it wins) and its hash. With ``debug=<name>`` among them,
the scale's overrides of the keys that preset sizes are left out (``experiments.debug_preset``), so
``-- debug=smoke`` gives smoke-size runs of any spec.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from experiments.debug_preset import debug_choice, preset_keys, sets_key
from experiments.spec import Arm, Group, Spec, SpecError, group_arms
from igrpo.tracking.names import TAG_ARM, TAG_EXPERIMENT, TAG_GROUP, TAG_SCALE

DEFAULT_RUN_NAME = "${variant.name}-${algo.name}-${reward.name}-s${seed}"


@dataclass(frozen=True)
class PlannedRun:
    experiment: str
    scale: str
    group: Group
    arm: Arm
    seed: int
    overrides: tuple[str, ...]  # everything `python run.py` needs, in order (later wins)

    @property
    def key(self) -> tuple[str, str, int]:
        return self.group.label, self.arm.label, self.seed

    def describe(self) -> str:
        group = "" if self.group.label == "default" else f"{self.group.label} / "
        return f"{group}{self.arm.label} seed {self.seed}"

    @property
    def tags(self) -> dict[str, str]:
        """The tags that place this run in its experiment's table (with its ``seed``, part of its config)."""
        return {TAG_EXPERIMENT: self.experiment, TAG_SCALE: self.scale, TAG_GROUP: self.group.label,
                TAG_ARM: self.arm.label}

    def command(self) -> str:
        return "python run.py " + " ".join(shlex.quote(o) for o in self.overrides)


def plan_runs(spec: Spec, scale: str, seeds: list[int] | None = None, extra: list[str] | tuple = (),
              tracking_uri: str | None = None) -> list[PlannedRun]:
    """Every run of ``spec`` at ``scale`` (group-major, then arm, then seed: the table's order)."""
    sc = spec.scale(scale)
    seeds = list(sc.seeds if seeds is None else seeds)
    debug = debug_choice(extra)
    sized = preset_keys(debug) if debug else frozenset()   # a debug preset sizes the run: the scale's values yield
    runs = []
    for group in sc.groups:
        for arm in group_arms(spec, group):
            for seed in seeds:
                suffix = "".join(f"-{s}" for s in (group.suffix, arm.suffix) if s)
                tags = {TAG_EXPERIMENT: spec.name, TAG_SCALE: scale, TAG_GROUP: group.label, TAG_ARM: arm.label}
                chosen = _choices([*sc.overrides, *group.overrides, *arm.overrides, *extra])
                when = [o for condition, values in sc.when.items() if condition in chosen for o in values]
                scale_overrides = [o for o in [*sc.overrides, *when] if not sets_key(sized, o)]
                overrides = [
                    *scale_overrides, *group.overrides, *arm.overrides, f"seed={seed}",
                    f"tracking.experiment={spec.name}",
                    *([f"tracking.run_name={DEFAULT_RUN_NAME}{suffix}"] if suffix else []),
                    *(f"++tracking.tags.{k}={_quote(v)}" for k, v in tags.items()),
                    *([f"tracking.uri={_quote(tracking_uri)}"] if tracking_uri else []),
                    *extra,
                ]
                runs.append(PlannedRun(spec.name, scale, group, arm, seed, _last_wins(overrides)))
    return runs


def _choices(overrides: list[str]) -> set[str]:
    """The ``key=value`` pairs in force after ``overrides`` (the last value of each plain key), e.g.
    {"variant=igrpo", "seed=0"}: what a scale's ``when`` conditions are matched against."""
    last: dict[str, str] = {}
    for o in overrides:
        if "=" in o and o[:1] not in "+~":
            key, value = o.split("=", 1)
            last[key] = value
    return {f"{k}={v}" for k, v in last.items()}


def _last_wins(overrides: list[str]) -> tuple[str, ...]:
    """Drop a plain ``key=value`` that a later plain override of the same key replaces anyway (Hydra: the
    last one wins), so a printed command shows each key once."""
    keys = [o.split("=", 1)[0] for o in overrides]
    return tuple(o for i, (o, k) in enumerate(zip(overrides, keys)) if k[:1] in "+~" or k not in keys[i + 1:])


def _quote(value: str) -> str:
    """A Hydra override value: bare when it is a simple word or path, else double-quoted."""
    if all(c.isalnum() or c in "_-./:" for c in value) and (value[:1].isalnum() or value[:1] == "/"):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; a one-line SpecError otherwise."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip() != ""]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise SpecError(f"--seeds={text} is not valid; give distinct integers >= 0 separated by commas (e.g. 0,1,2)")
    return seeds


# Set by `python -m experiments run` itself (the spec's experiment and its parent run): not after `--`.
RESERVED_TRACKING = ("tracking.experiment", "tracking.parent_key", "tracking.parent_name", "tracking.parent_run_id")


def override_key(override: str) -> str:
    """``++tracking.tags.x=1`` -> ``tracking.tags.x``."""
    return override.split("=", 1)[0].lstrip("+~")


def split_extras(extra: list[str] | tuple) -> tuple[list[str], list[str], list[str]]:
    """The overrides after ``--`` as (run-level, tracking, hydra-level); a one-line SpecError for a word that is
    not an override or one that the runner sets itself."""
    run_level, tracking, hydra_level = [], [], []
    for item in extra:
        key = override_key(item)
        if item.startswith("-") or ("=" not in item and not item.startswith("~")):
            raise SpecError(f"{item!r} after -- is not a Hydra override; give key=value overrides only "
                            "(e.g. -- train.steps=20 hydra/launcher=local_parallel)")
        if key in RESERVED_TRACKING:
            raise SpecError(f"{key} is set by python -m experiments (the spec's MLflow experiment and parent run); "
                            "leave it out")
        if key.startswith(("hydra.", "hydra/")):
            hydra_level.append(item)
        elif key.startswith("tracking."):
            tracking.append(item)
        else:
            run_level.append(item)
    return run_level, tracking, hydra_level
