"""``python -m igrpo.tasks inspect|decontaminate|probe|words ...``: look at data before training on it.

    python -m igrpo.tasks inspect task=math task.path=/data/math_train.jsonl eval=paper
    python -m igrpo.tasks decontaminate task=math eval=paper task.decontaminate_ngram=13
    python -m igrpo.tasks probe [--problems 24] [--levels sum,story] debug=smoke_real generation.max_completion_length=128
    python -m igrpo.tasks words <dir> [task.train_size=...]   # task=words's files, for task=math task.path=<dir>/train.jsonl

``probe`` measures the base policy's success per level under training sampling (``igrpo.job.probe``): the numbers a
task's default level is chosen from.

Overrides are the same as ``run.py``'s (the config is composed from ``conf/``). Mistakes end with one
``error: ...`` line and exit status 2; so does a hub that cannot be reached (``HF_HUB_OFFLINE``, or no answer within
a few seconds), naming every source that is not in the local cache and needs a local ``path``.
"""

from __future__ import annotations

import sys

COMMANDS = ("inspect", "decontaminate", "probe", "words")
PROBE_DEFAULTS = {"problems": 24, "levels": None}  # 24 problems per level; every level of the task


def compose(overrides: list[str]):
    """The run config composed from conf/ with ``overrides`` (Hydra's compose API, no job directory)."""
    from igrpo.config.compose import compose_for_command

    return compose_for_command(overrides, fixed=("output_dir=.",))


def main(argv: list[str]) -> int:
    from igrpo.errors import ConfigError

    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m igrpo.tasks {{{'|'.join(COMMANDS)}}} [overrides...]", file=sys.stderr)
        return 2
    command, overrides = argv[0], argv[1:]
    probe_args, out_dir = dict(PROBE_DEFAULTS), None
    try:
        if command == "probe":
            probe_args, overrides = _probe_options(overrides)
        elif command == "words":
            if not overrides or "=" in overrides[0]:
                raise ConfigError("python -m igrpo.tasks words needs a directory first: words <dir> [overrides...]")
            out_dir, overrides = overrides[0], ["task=words", *overrides[1:]]
        cfg = compose(overrides)
        from igrpo.config.checks import check_hub_reachable
        from igrpo.config.data import data_hub_needs
        from igrpo.tasks.inspect import decontaminate_lines, inspect_lines

        # offline (HF_HUB_OFFLINE, or the hub does not answer a probe of a few seconds): one line naming every
        # source that needs a local path, instead of each hub load retrying for minutes
        check_hub_reachable(data_hub_needs(cfg))

        if command == "probe":
            lines = _probe(cfg, probe_args)
        elif command == "words":
            lines = _write_words(cfg, out_dir)
        else:
            lines = inspect_lines(cfg) if command == "inspect" else decontaminate_lines(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def _probe_options(args: list[str]) -> tuple[dict, list[str]]:
    """``--problems N`` and ``--levels a,b`` taken out of ``args``; the rest are overrides."""
    from igrpo.errors import ConfigError

    options, rest, i = dict(PROBE_DEFAULTS), [], 0
    while i < len(args):
        if args[i] in ("--problems", "--levels"):
            if i + 1 == len(args):
                raise ConfigError(f"{args[i]} needs a value")
            options[args[i][2:]] = args[i + 1]
            i += 2
        else:
            rest.append(args[i])
            i += 1
    try:
        options["problems"] = int(options["problems"])
    except ValueError:
        raise ConfigError(f"--problems={options['problems']!r} is not valid; it must be an integer > 0") from None
    if options["problems"] <= 0:
        raise ConfigError(f"--problems={options['problems']} is not valid; it must be an integer > 0")
    return options, rest


def _probe(cfg, options: dict) -> list[str]:
    from igrpo.config.validate import validate
    from igrpo.errors import choice_error
    from igrpo.tasks.registry import TASK_LEVELS

    if cfg.task.name not in TASK_LEVELS:
        raise choice_error("task (probe: a generated task with levels)", cfg.task.name, TASK_LEVELS)
    known = TASK_LEVELS[cfg.task.name]
    levels = options["levels"].split(",") if options["levels"] else list(known)
    for level in levels:
        if level not in known:
            raise choice_error("--levels", level, known)
    validate(cfg)
    from igrpo.job.cli import quiet_third_party_logs
    from igrpo.job.probe import probe_levels, probe_lines
    from igrpo.job.threads import apply_cpu_threads

    quiet_third_party_logs()
    apply_cpu_threads(cfg)
    return probe_lines(probe_levels(cfg, levels, options["problems"]))


def _write_words(cfg, out_dir: str) -> list[str]:
    from pathlib import Path

    from igrpo.tasks.words import write_task_files

    t = cfg.task
    paths = write_task_files(Path(out_dir), list(t.train_levels), list(t.eval_suites), int(t.train_size),
                             int(t.eval_size), int(t.data_seed))
    lines = [f"wrote {path}" for path in paths.values()]
    lines.append(f"train on them as MATH: task=math task.path={paths['train']}")
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
