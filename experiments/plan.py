"""From a spec to the list of runs it needs: groups x arms x seeds at one scale, each as the exact
``python run.py`` overrides that reproduce it. Pure: composes nothing and touches no MLflow, so the
paper scale plans (and ``--dry-run`` prints) here even before its config files exist.

Each run lands in the MLflow experiment named after the spec, tagged ``experiment``, ``scale``,
``group`` and ``arm`` (the report matches runs to table cells by these tags and ``seed``), and is named
``<variant>-<algo>-<reward>-s<seed>`` plus the group's and the arm's suffix when they have one (e.g.
``igrpo-grpo-binary-s0-beta1e-4``); the name is a Hydra interpolation, so it is right for any arm.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from experiments.spec import Arm, Group, Spec, SpecError

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

    def command(self) -> str:
        return "python run.py " + " ".join(shlex.quote(o) for o in self.overrides)


def plan_runs(spec: Spec, scale: str, seeds: list[int] | None = None, extra: list[str] | tuple = (),
              tracking_uri: str | None = None) -> list[PlannedRun]:
    """Every run of ``spec`` at ``scale`` (group-major, then arm, then seed: the table's order)."""
    sc = spec.scale(scale)
    seeds = list(sc.seeds if seeds is None else seeds)
    runs = []
    for group in sc.groups:
        for arm in spec.arms:
            for seed in seeds:
                suffix = "".join(f"-{s}" for s in (group.suffix, arm.suffix) if s)
                tags = {"experiment": spec.name, "scale": scale, "group": group.label, "arm": arm.label}
                overrides = [
                    *sc.overrides, *group.overrides, *arm.overrides, f"seed={seed}",
                    f"tracking.experiment={spec.name}",
                    *([f"tracking.run_name={DEFAULT_RUN_NAME}{suffix}"] if suffix else []),
                    *(f"++tracking.tags.{k}={_quote(v)}" for k, v in tags.items()),
                    *([f"tracking.uri={_quote(tracking_uri)}"] if tracking_uri else []),
                    *extra,
                ]
                runs.append(PlannedRun(spec.name, scale, group, arm, seed, _last_wins(overrides)))
    return runs


def _last_wins(overrides: list[str]) -> tuple[str, ...]:
    """Drop a plain ``key=value`` that a later plain override of the same key replaces anyway (Hydra: the
    last one wins), so a printed command shows each key once."""
    keys = [o.split("=", 1)[0] for o in overrides]
    return tuple(o for i, (o, k) in enumerate(zip(overrides, keys)) if k[:1] in "+~" or k not in keys[i + 1:])


def _quote(value: str) -> str:
    """A Hydra override value: bare when it is a simple word, else single-quoted."""
    if all(c.isalnum() or c in "_-./:" for c in value) and value[:1].isalnum():
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
