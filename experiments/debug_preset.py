"""The config keys a ``debug=<name>`` preset sizes, so a spec's scale does not undo it.

A scale's overrides are plain ``key=value`` overrides (e.g. the CPU scale's ``train.steps=150``), and on Hydra's
command line a value override beats anything the defaults list chose, ``debug=smoke`` included. So when a spec
run is asked for with ``-- debug=smoke``, ``plan_runs`` drops the scale's overrides of the keys this module names:
the preset's own keys (``train.steps``) and the keys that the group options it picks set themselves
(``override /task: arith_smoke`` sets ``task.eval_size``). Keys those options only inherit (arith_smoke's parent
arith) are not the preset's, so a scale's ``model.warmstart_formats=[...]`` still reaches the smoke model. A
group's or an arm's overrides are never dropped: they are the comparison, not its size.

Reads YAML only (no Hydra composition), like the rest of the planning code.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from experiments.spec import SpecError
from igrpo import CONF_DIR


def debug_choice(overrides: list[str] | tuple) -> str | None:
    """The ``debug=<name>`` in force after ``overrides`` (the last one wins), or None."""
    chosen = None
    for o in overrides:
        if o.startswith(("debug=", "+debug=", "++debug=")):
            value = o.split("=", 1)[1]
            chosen = None if value in ("null", "") else value
    return chosen


def preset_keys(name: str, conf_dir: Path = CONF_DIR) -> frozenset[str]:
    """Dotted keys that ``debug=<name>`` sets: its own and those its chosen group options set in their own files."""
    presets = sorted(p.stem for p in (conf_dir / "debug").glob("*.yaml"))
    if name not in presets:
        raise SpecError(f"debug={name} is not a debug preset; choose one of: {', '.join(presets)}")
    body = _load(conf_dir / "debug" / f"{name}.yaml")
    keys = set(_flat_keys({k: v for k, v in body.items() if k != "defaults"}))
    for entry in body.get("defaults") or []:
        if not isinstance(entry, dict):
            continue
        for group_spec, option in entry.items():
            group = group_spec.split()[-1].lstrip("/").split("@")[0]   # "override /task" -> "task"
            option_file = conf_dir / group / f"{option}.yaml"
            if option is not None and option_file.exists():
                own = {k: v for k, v in _load(option_file).items() if k != "defaults"}
                keys.update(f"{group.replace('/', '.')}.{k}" for k in _flat_keys(own))
    return frozenset(keys)


def sets_key(keys: frozenset[str], override: str) -> bool:
    """Whether the override ``override`` sets one of ``keys`` or something inside one (``task.eval_size=500``)."""
    if "=" not in override or override[:1] in "+~":
        return False
    key = override.split("=", 1)[0]
    return any(key == k or key.startswith(k + ".") for k in keys)


def _load(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f) or {}


def _flat_keys(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.extend(_flat_keys(v, f"{prefix}{k}."))
        else:
            out.append(f"{prefix}{k}")
    return out
