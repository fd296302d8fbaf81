"""The options of each config group, read from the ``conf/`` tree (and the variant registry), and the one-line error
for an override that names an option that does not exist: checked before Hydra composes, which would print a
multi-line error. Every entry point that composes a config (run.py, the evaluation, tasks and judge commands, the
experiments runner) uses it."""

from __future__ import annotations

import re
from pathlib import Path

from igrpo import CONF_DIR

_SIMPLE_VALUES = re.compile(r"^[A-Za-z0-9_.\-]+(,[A-Za-z0-9_.\-]+)*$")


def group_options(conf_dir: Path = CONF_DIR) -> dict[str, list[str]]:
    """Config group -> its option names, read from the conf/ tree; nested groups by path (``reward/judge``),
    and the variant group's options registered in code (a method loaded through ``IGRPO_VARIANT_MODULES``).
    Hydra's own groups (``hydra/...``) are left out: plugins add options to them that are not files here."""
    from igrpo.variants import variants

    groups = {
        d.relative_to(conf_dir).as_posix(): sorted(p.stem for p in d.glob("*.yaml"))
        for d in sorted(path for path in conf_dir.rglob("*") if path.is_dir())
        if any(d.glob("*.yaml")) and d.relative_to(conf_dir).parts[0] != "hydra"
    }
    in_code = [v.name for v in variants() if v.option is not None]
    groups["variant"] = sorted({*groups.get("variant", []), *in_code})
    return groups


def find_bad_group_choice(argv: list[str], conf_dir: Path = CONF_DIR) -> str | None:
    """The one-line error for the first override that selects a non-existent group option, if any.
    Only plain values and comma lists are checked; sweep functions (choice(), glob()) are left to Hydra."""
    groups = group_options(conf_dir)
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key not in groups or not _SIMPLE_VALUES.match(value):
            continue
        for option in value.split(","):
            if option not in groups[key]:
                return f"{key}={option} is not a known option; choose one of: {', '.join(groups[key])}"
    return None
